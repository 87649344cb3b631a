//! Runs the ERB harness and reads what it rendered.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `deploy/bosh` in this checkout.
pub fn release_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/bosh")
}

/// An ops file of `deploy/bosh/manifests/operations`.
pub const POSTGRES_STATE: &str = "use-postgres-state.yml";
/// Two broker instances.
pub const SCALE_BROKER: &str = "scale-broker.yml";
/// The deployer's bosh backend.
pub const BOSH_BACKEND: &str = "use-bosh-backend.yml";
/// Every ops file, in an order that renders.
pub const ALL_OPS: [&str; 3] = [POSTGRES_STATE, SCALE_BROKER, BOSH_BACKEND];

/// What one run of the harness rendered (kept until dropped).
pub struct Rendered {
    /// The output directory.
    pub dir: tempfile::TempDir,
    /// `report.json`: release specs, final manifest, rendered files, CA private keys.
    pub report: Value,
}

/// Why the harness refused to render.
pub struct Refused {
    /// Its stderr.
    pub message: String,
}

/// Renders `manifests/osb.yml` with the named ops files of `manifests/operations` applied and
/// `test/vars.yml`.
pub fn try_render(ops: &[&str]) -> Result<Rendered, Refused> {
    let release = release_dir();
    let ops: Vec<PathBuf> = ops
        .iter()
        .map(|op| release.join("manifests/operations").join(op))
        .collect();
    try_render_with(&ops, &release.join("test/vars.yml"))
}

/// Renders `manifests/osb.yml` with the ops files `ops` applied and the variables in `vars`.
pub fn try_render_with(ops: &[PathBuf], vars: &Path) -> Result<Rendered, Refused> {
    try_render_manifest(&release_dir().join("manifests/osb.yml"), ops, vars)
}

/// Renders the jobs of release `osb` in `manifest` with the ops files `ops` applied and the
/// variables in `vars`.
pub fn try_render_manifest(
    manifest: &Path,
    ops: &[PathBuf],
    vars: &Path,
) -> Result<Rendered, Refused> {
    let release = release_dir();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("ruby");
    cmd.arg(release.join("test/render.rb"))
        .arg("--release")
        .arg(&release)
        .arg("--manifest")
        .arg(manifest)
        .arg("--vars")
        .arg(vars)
        .arg("--out")
        .arg(dir.path());
    for op in ops {
        cmd.arg("--ops").arg(op);
    }
    let out = cmd
        .output()
        .expect("ruby runs the ERB harness (scripts/prereqs installs Debian's ruby)");
    if !out.status.success() {
        return Err(Refused {
            message: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let report = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    Ok(Rendered {
        report: serde_json::from_str(&report).unwrap(),
        dir,
    })
}

/// Renders, panicking with the harness's message when it refuses.
pub fn render(ops: &[&str]) -> Rendered {
    try_render(ops).unwrap_or_else(|r| panic!("rendering with {ops:?} failed: {}", r.message))
}

impl Rendered {
    /// Every rendered job instance (`instance_group`, `index`, `job`, `files`, `bpm`).
    pub fn instances(&self) -> &[Value] {
        self.report["rendered"].as_array().unwrap()
    }

    /// The rendered instance `index` of `job`.
    pub fn instance(&self, job: &str, index: u64) -> &Value {
        self.instances()
            .iter()
            .find(|r| r["job"] == job && r["index"] == index)
            .unwrap_or_else(|| panic!("no rendered instance {index} of job {job}"))
    }

    /// The rendered file at `dest` (as the job spec names it) of instance `index` of `job`.
    pub fn file(&self, job: &str, index: u64, dest: &str) -> PathBuf {
        let path = self.instance(job, index)["files"][dest]
            .as_str()
            .unwrap_or_else(|| panic!("job {job} rendered no {dest}"));
        PathBuf::from(path)
    }

    /// Where `/var/vcap/jobs/<job>/…` of instance `index` was rendered.
    pub fn job_dir(&self, job: &str, index: u64) -> PathBuf {
        let group = self.instance(job, index)["instance_group"]
            .as_str()
            .unwrap();
        self.dir
            .path()
            .join(group)
            .join(index.to_string())
            .join(job)
    }

    /// `path` on the VM, as rendered here (`/var/vcap/jobs/<job>/x` → the rendered `x`).
    pub fn on_vm(&self, job: &str, index: u64, path: &Path) -> PathBuf {
        let prefix = format!("/var/vcap/jobs/{job}/");
        let rest = path
            .to_str()
            .and_then(|p| p.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{} is not under {prefix}", path.display()));
        self.job_dir(job, index).join(rest)
    }

    /// The job spec of `job` in the release.
    pub fn job_spec(&self, job: &str) -> &Value {
        &self.report["release"]["jobs"][job]
    }

    /// The properties the final manifest sets on `job` in instance group `group`.
    pub fn manifest_properties(&self, group: &str, job: &str) -> &Value {
        let ig = self.report["manifest"]["instance_groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == group)
            .unwrap();
        let j = ig["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == job)
            .unwrap();
        &j["properties"]
    }
}

/// Loads a rendered TOML config with the service's own loader (no environment overrides).
pub fn load<T: serde::Serialize + serde::de::DeserializeOwned>(defaults: &T, file: &Path) -> T {
    common::settings::load(defaults, Some(file), "OSB_BOSH_RELEASE_TEST_UNUSED")
        .unwrap_or_else(|e| panic!("{} does not load: {e}", file.display()))
}
