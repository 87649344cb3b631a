//! The release's shape: specs against the files that exist, the manifest's properties against
//! the specs, the bpm files against the packages.

use crate::harness::{release_dir, render, ALL_OPS};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// The names of the entries of a directory.
fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn every_job_spec_lists_exactly_the_templates_and_packages_that_exist() {
    let rendered = render(&[]);
    let release = release_dir();
    let jobs = &rendered.report["release"]["jobs"];
    let packages = &rendered.report["release"]["packages"];
    assert_eq!(
        keys(jobs),
        entries(&release.join("jobs")),
        "a job directory without a spec"
    );
    assert_eq!(
        keys(packages),
        entries(&release.join("packages")),
        "a package directory without a spec"
    );
    let mut used = BTreeSet::new();
    for (name, spec) in jobs.as_object().unwrap() {
        let dir = release.join("jobs").join(name);
        assert_eq!(spec["name"], name.as_str(), "job {name}: spec name");
        assert_eq!(
            keys(&spec["templates"]),
            entries(&dir.join("templates")),
            "job {name}: the spec's templates and the files in templates/ differ"
        );
        assert!(dir.join("monit").is_file(), "job {name} has no monit file");
        for package in strings(&spec["packages"]) {
            assert!(
                packages.get(&package).is_some(),
                "job {name} needs package {package}, which the release lacks"
            );
            used.insert(package);
        }
    }
    for (name, spec) in packages.as_object().unwrap() {
        let dir = release.join("packages").join(name);
        assert_eq!(spec["name"], name.as_str(), "package {name}: spec name");
        let packaging = std::fs::read_to_string(dir.join("packaging"))
            .unwrap_or_else(|_| panic!("package {name} has no packaging script"));
        let files = strings(&spec["files"]);
        assert!(!files.is_empty(), "package {name} lists no files");
        for file in files {
            assert!(
                packaging.contains(&file),
                "package {name}: its packaging never uses {file}"
            );
        }
        for dep in strings(&spec["dependencies"]) {
            assert!(packages.get(&dep).is_some(), "package {name}: no {dep}");
        }
        assert!(used.contains(name), "package {name} is used by no job");
    }
}

/// The dotted property names set under `value` that the spec does not declare.
fn undeclared(prefix: &str, value: &Value, declared: &BTreeSet<String>, out: &mut Vec<String>) {
    if !prefix.is_empty() && declared.contains(prefix) {
        return;
    }
    match value.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, v) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                undeclared(&name, v, declared, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn every_property_the_manifest_and_its_ops_files_set_is_declared_in_the_job_spec() {
    for ops in [&[][..], &ALL_OPS[..]] {
        let rendered = render(ops);
        let mut checked = 0;
        for group in rendered.report["manifest"]["instance_groups"]
            .as_array()
            .unwrap()
        {
            for job in group["jobs"].as_array().unwrap() {
                if job["release"] != "osb" {
                    continue;
                }
                let name = job["name"].as_str().unwrap();
                let declared = keys(&rendered.job_spec(name)["properties"]);
                let mut wrong = Vec::new();
                if !job["properties"].is_null() {
                    undeclared("", &job["properties"], &declared, &mut wrong);
                }
                assert!(
                    wrong.is_empty(),
                    "with {ops:?}, the manifest sets properties job {name} does not declare: {wrong:?}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 7, "every osb job of the manifest was checked");
    }
}

#[test]
fn each_rendered_bpm_file_runs_the_jobs_own_binary_on_its_rendered_config() {
    let rendered = render(&ALL_OPS);
    let mut services = BTreeSet::new();
    for instance in rendered.instances() {
        let job = instance["job"].as_str().unwrap();
        let spec = rendered.job_spec(job);
        if keys(&spec["templates"]).contains("bpm.yml.erb") {
            let process = &instance["bpm"]["processes"][0];
            assert_eq!(process["name"], job, "{job}: the bpm process is the job");
            assert_eq!(
                process["executable"],
                format!("/var/vcap/packages/{job}/bin/{job}"),
                "{job}: bpm runs the job's own binary"
            );
            assert!(strings(&spec["packages"]).contains(job));
            let config = process["args"][0].as_str().unwrap();
            let dest = config
                .strip_prefix(&format!("/var/vcap/jobs/{job}/"))
                .unwrap_or_else(|| panic!("{job}: bpm's argument {config} is not a job file"));
            assert!(
                rendered.file(job, 0, dest).is_file(),
                "{job}: bpm's config {dest} is rendered"
            );
            let monit = std::fs::read_to_string(release_dir().join("jobs").join(job).join("monit"))
                .unwrap();
            assert!(monit.contains(&format!("/var/vcap/sys/run/bpm/{job}/{job}.pid")));
            assert!(monit.contains(&format!("bpm start {job}")));
            services.insert(job.to_string());
        } else {
            // An errand: BOSH runs bin/run, which the spec must render.
            assert!(
                rendered.file(job, 0, "bin/run").is_file(),
                "{job}: neither a bpm service nor an errand"
            );
            let monit = std::fs::read_to_string(release_dir().join("jobs").join(job).join("monit"))
                .unwrap();
            assert!(
                monit.trim().is_empty(),
                "{job}: an errand has no monit checks"
            );
        }
    }
    assert_eq!(
        services,
        ["broker", "deployer", "spi-keyvalue", "spi-postgres"]
            .map(String::from)
            .into(),
    );
}

#[test]
fn a_second_broker_instance_on_sqlite_is_refused_when_rendering() {
    let Err(refused) = crate::harness::try_render(&[crate::harness::SCALE_BROKER]) else {
        panic!("two broker instances sharing nothing rendered");
    };
    assert!(
        refused.message.contains("broker/1")
            && refused
                .message
                .contains("needs a PostgreSQL state database"),
        "{}",
        refused.message
    );
}
