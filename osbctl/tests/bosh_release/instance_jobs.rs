//! The service-instance jobs `postgres` and `redis`, rendered from the manifest the deployer's
//! bosh backend writes (its own `manifest::render`, the template naming release `osb`): their
//! configs carry the osb properties, a job refuses another engine and settings names that are
//! not plain identifiers, and the admin password is in no bpm argument.

use crate::harness::{release_dir, try_render_manifest, Refused, Rendered};
use deployer::backend::bosh::manifest;
use deployer::config::bosh::{ManifestTemplate, ReleaseRef, StemcellRef};
use serde_json::json;
use std::collections::BTreeMap;

/// The admin password the tests deploy with (quotes and spaces to catch bad escaping).
pub const PASSWORD: &str = "it's a \"pass\" word";

/// The deployer's manifest template naming this release (jobs by the backend's defaults).
fn template(job: Option<&str>) -> ManifestTemplate {
    ManifestTemplate {
        releases: vec![ReleaseRef {
            name: "osb".into(),
            version: "latest".into(),
        }],
        stemcell: StemcellRef {
            os: "ubuntu-noble".into(),
            version: "latest".into(),
        },
        vm_type: "default".into(),
        persistent_disk_type: "10GB".into(),
        networks: vec!["services".into()],
        azs: vec!["z1".into()],
        instances: 1,
        job: job.map(String::from),
        job_release: None,
        port: None,
    }
}

/// Renders the deployment the bosh backend would create for `engine` `version` with
/// `settings`, its job being `job` (the backend's default when `None`).
pub fn try_render_instance(
    engine: &str,
    version: &str,
    settings: &[(&str, &str)],
    job: Option<&str>,
) -> Result<Rendered, Refused> {
    let settings: BTreeMap<&str, &str> = settings.iter().copied().collect();
    let spec = serde_json::from_value(json!({
        "name": "instance-1", "engine": engine, "version": version,
        "settings": settings,
        "admin": {"username": "admin", "password": PASSWORD},
        "labels": {},
    }))
    .unwrap();
    let yaml = manifest::render("osb-instance-1", &spec, &template(job)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifest.yml");
    std::fs::write(&file, yaml).unwrap();
    try_render_manifest(&file, &[], &release_dir().join("test/vars.yml"))
}

/// Like [`try_render_instance`], panicking with the harness's message when it refuses.
pub fn render_instance(engine: &str, version: &str, settings: &[(&str, &str)]) -> Rendered {
    try_render_instance(engine, version, settings, None)
        .unwrap_or_else(|r| panic!("rendering {engine} {version} failed: {}", r.message))
}

fn read(rendered: &Rendered, job: &str, dest: &str) -> String {
    std::fs::read_to_string(rendered.file(job, 0, dest)).unwrap()
}

/// The bpm file runs the package's server with the rendered config, the password nowhere in
/// it; the rendered pre-start parses.
fn assert_bpm(rendered: &Rendered, job: &str, executable: &str) {
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(rendered.file(job, 0, "bin/pre-start"))
        .status()
        .unwrap();
    assert!(syntax.success(), "job {job}: bin/pre-start does not parse");
    let bpm = &rendered.instance(job, 0)["bpm"]["processes"][0];
    assert_eq!(bpm["name"], job);
    assert_eq!(bpm["executable"], executable);
    assert_eq!(bpm["persistent_disk"], true);
    let text = read(rendered, job, "config/bpm.yml");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!text.contains("pass"), "{text}");
}

#[test]
fn the_postgres_job_renders_the_server_config_from_the_osb_properties() {
    let rendered = render_instance(
        "postgresql",
        "15.4",
        &[("max_connections", "50"), ("search_path", "'$user', x")],
    );
    assert_eq!(
        rendered.instance("postgres", 0)["instance_group"],
        "postgresql"
    );
    assert_bpm(
        &rendered,
        "postgres",
        "/var/vcap/packages/postgres-15/usr/lib/postgresql/15/bin/postgres",
    );
    let conf = read(&rendered, "postgres", "config/postgresql.conf");
    for line in [
        "max_connections = '50'",
        "search_path = '''$user'', x'",
        "listen_addresses = '*'",
        "port = 5432",
        "hba_file = '/var/vcap/jobs/postgres/config/pg_hba.conf'",
    ] {
        assert!(conf.lines().any(|l| l == line), "no {line:?} in:\n{conf}");
    }
    let hba = read(&rendered, "postgres", "config/pg_hba.conf");
    let rules: Vec<&str> = hba.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(rules.len() >= 2, "{hba}");
    assert!(rules.iter().all(|r| r.ends_with(" scram-sha-256")), "{hba}");
    assert_eq!(
        read(&rendered, "postgres", "config/admin-password"),
        PASSWORD
    );
    let setup = read(&rendered, "postgres", "bin/setup");
    assert!(!setup.contains(PASSWORD), "the password is in bin/setup");
    let pre_start = read(&rendered, "postgres", "bin/pre-start");
    assert!(pre_start.contains("chmod 0600 \"$job/config/admin-password\""));
}

#[test]
fn the_redis_job_renders_the_server_config_and_an_acl_with_the_admin_only() {
    let rendered = render_instance(
        "redis",
        "7.2",
        &[("maxmemory-policy", "allkeys-lru"), ("save", "900 1")],
    );
    assert_eq!(rendered.instance("redis", 0)["instance_group"], "redis");
    assert_bpm(
        &rendered,
        "redis",
        "/var/vcap/packages/redis-7/bin/redis-server",
    );
    let conf = read(&rendered, "redis", "config/redis.conf");
    for line in [
        "maxmemory-policy allkeys-lru",
        "save 900 1",
        "port 6379",
        "bind 0.0.0.0",
        "dir /var/vcap/store/redis",
        "aclfile /var/vcap/jobs/redis/config/users.acl",
    ] {
        assert!(conf.lines().any(|l| l == line), "no {line:?} in:\n{conf}");
    }
    let acl = read(&rendered, "redis", "config/users.acl");
    assert!(!acl.contains(PASSWORD), "the ACL file holds the password");
    let lines: Vec<&str> = acl.lines().collect();
    assert_eq!(lines.len(), 2, "{acl}");
    assert!(lines[0].starts_with("user default off "), "{acl}");
    assert!(lines[1].starts_with("user admin on #"), "{acl}");
    assert!(lines[1].ends_with(" ~* &* +@all"), "{acl}");
}

#[test]
fn a_job_refuses_another_engine_and_a_setting_name_that_is_not_an_identifier() {
    let refused = |engine: &str, version: &str, settings: &[(&str, &str)], job| {
        try_render_instance(engine, version, settings, job)
            .err()
            .unwrap_or_else(|| panic!("{engine} {settings:?} on {job:?} was rendered"))
            .message
    };
    let wrong = refused("redis", "7", &[], Some("postgres"));
    assert!(
        wrong.contains("osb.engine \"redis\" is not postgresql"),
        "{wrong}"
    );
    let wrong = refused("postgresql", "15", &[], Some("redis"));
    assert!(
        wrong.contains("osb.engine \"postgresql\" is not redis"),
        "{wrong}"
    );
    for (engine, version) in [("postgresql", "15"), ("redis", "7")] {
        let bad = refused(engine, version, &[("port\nbind", "1")], None);
        assert!(bad.contains("is not a plain setting name"), "{bad}");
        let bad = refused(engine, version, &[("include", "/etc/passwd")], None);
        assert!(bad.contains("include is managed by the job"), "{bad}");
        let bad = refused(engine, version, &[("timeout", "1\nport 1")], None);
        assert!(bad.contains("line break"), "{bad}");
    }
    let old = refused("postgresql", "14.2", &[], None);
    assert!(old.contains("is not PostgreSQL 15"), "{old}");
}
