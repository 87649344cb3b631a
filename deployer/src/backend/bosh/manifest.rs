//! The BOSH manifest of a deployment spec: the template configured for its engine, major
//! version and plan (`[bosh.templates."<engine>-<major>".<plan>]`, falling back to the plan
//! `default`), with the spec's engine, version, port, admin account and settings as the
//! server job's `osb` properties. The admin password is only ever a job property: the
//! manifest is sent to the Director and never logged.

use crate::config::bosh::{BoshSettings, ManifestTemplate, DEFAULT_PLAN};
use crate::engine;
use common::deployer::{DeploymentSpec, Engine, PLAN_LABEL};
use serde_json::json;

/// What the deployment needs beside its manifest: where its server listens and how its
/// instances are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// The instance group (the engine's key).
    pub instance_group: String,
    /// The network endpoints are on (the template's first).
    pub network: String,
    /// The server's port.
    pub port: u16,
}

/// The template for `spec`; the refusal names engine, version and plan.
pub fn template_for<'a>(
    settings: &'a BoshSettings,
    spec: &DeploymentSpec,
) -> Result<&'a ManifestTemplate, String> {
    let key = format!(
        "{}-{}",
        engine::key(spec.engine),
        engine::major(&spec.version)
    );
    let plan = spec.labels.get(PLAN_LABEL).map(String::as_str);
    let plans = settings.templates.get(&key);
    let found = plans.and_then(|plans| {
        plan.and_then(|p| plans.get(p))
            .or_else(|| plans.get(DEFAULT_PLAN))
    });
    found.ok_or_else(|| {
        let offered: Vec<&str> = plans
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        format!(
            "{} {} with plan {} cannot be deployed with BOSH: no manifest template {key}.{} (templates for {key}: {})",
            engine::name(spec.engine),
            spec.version,
            plan.unwrap_or("(none)"),
            plan.unwrap_or(DEFAULT_PLAN),
            if offered.is_empty() { "none".to_string() } else { offered.join(", ") },
        )
    })
}

/// Checks what the manifest needs from a template.
pub fn check_template(template: &ManifestTemplate) -> Result<(), String> {
    if template.releases.is_empty() {
        return Err("the manifest template names no release".into());
    }
    if template.networks.is_empty() {
        return Err("the manifest template names no network".into());
    }
    if template.instances == 0 {
        return Err("the manifest template asks for 0 instances".into());
    }
    Ok(())
}

/// Where the deployment's server will listen and be found.
pub fn shape(spec: &DeploymentSpec, template: &ManifestTemplate) -> Shape {
    Shape {
        instance_group: engine::key(spec.engine).to_string(),
        network: template.networks.first().cloned().unwrap_or_default(),
        port: template
            .port
            .unwrap_or_else(|| engine::default_port(spec.engine)),
    }
}

/// The default server job of an engine.
fn default_job(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgresql => "postgres",
        Engine::Redis => "redis",
    }
}

/// The manifest (YAML) of BOSH deployment `deployment` running `spec` from `template`.
pub fn render(
    deployment: &str,
    spec: &DeploymentSpec,
    template: &ManifestTemplate,
) -> Result<String, String> {
    check_template(template)?;
    let shape = shape(spec, template);
    let releases: Vec<_> = template
        .releases
        .iter()
        .map(|r| json!({"name": r.name, "version": r.version}))
        .collect();
    let job_release = template
        .job_release
        .clone()
        .unwrap_or_else(|| template.releases[0].name.clone());
    let networks: Vec<_> = template
        .networks
        .iter()
        .map(|n| json!({ "name": n }))
        .collect();
    let manifest = json!({
        "name": deployment,
        "releases": releases,
        "stemcells": [{
            "alias": "default",
            "os": template.stemcell.os,
            "version": template.stemcell.version,
        }],
        "update": {
            "canaries": 1,
            "max_in_flight": 1,
            "canary_watch_time": "1000-300000",
            "update_watch_time": "1000-300000",
            "serial": true,
        },
        "instance_groups": [{
            "name": shape.instance_group,
            "instances": template.instances,
            "azs": template.azs,
            "vm_type": template.vm_type,
            "persistent_disk_type": template.persistent_disk_type,
            "stemcell": "default",
            "networks": networks,
            "jobs": [{
                "name": template.job.as_deref().unwrap_or(default_job(spec.engine)),
                "release": job_release,
                "properties": {
                    "osb": {
                        "engine": engine::key(spec.engine),
                        "version": spec.version,
                        "port": shape.port,
                        "admin": {
                            "username": spec.admin.username,
                            "password": spec.admin.password.expose(),
                        },
                        "settings": spec.settings,
                    }
                }
            }]
        }]
    });
    serde_yaml::to_string(&manifest).map_err(|e| format!("writing the manifest: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::bosh::{ReleaseRef, StemcellRef};
    use std::collections::BTreeMap;

    fn template(vm_type: &str) -> ManifestTemplate {
        ManifestTemplate {
            releases: vec![ReleaseRef {
                name: "postgres".into(),
                version: "48".into(),
            }],
            stemcell: StemcellRef {
                os: "ubuntu-noble".into(),
                version: "latest".into(),
            },
            vm_type: vm_type.into(),
            persistent_disk_type: "10GB".into(),
            networks: vec!["services".into(), "backup".into()],
            azs: vec!["z1".into(), "z2".into()],
            instances: 2,
            job: None,
            job_release: None,
            port: None,
        }
    }

    fn settings() -> BoshSettings {
        let mut s = BoshSettings::new(
            "https://10.0.0.6:25555",
            "ca.pem".into(),
            "osb",
            "s".to_string().into(),
        );
        s.templates.insert(
            "postgresql-15".into(),
            BTreeMap::from([
                ("small".to_string(), template("small")),
                ("default".to_string(), template("any")),
            ]),
        );
        s
    }

    fn spec(plan: Option<&str>) -> DeploymentSpec {
        let mut labels = serde_json::Map::new();
        if let Some(plan) = plan {
            labels.insert("plan".into(), plan.into());
        }
        serde_json::from_value(json!({
            "name": "pg-1", "engine": "postgresql", "version": "15.4",
            "settings": {"max_connections": "50"},
            "admin": {"username": "admin", "password": "s3cret pass"},
            "labels": labels,
        }))
        .unwrap()
    }

    #[test]
    fn the_plans_template_is_chosen_else_the_default_else_the_spec_is_refused() {
        let s = settings();
        assert_eq!(
            template_for(&s, &spec(Some("small"))).unwrap().vm_type,
            "small"
        );
        assert_eq!(
            template_for(&s, &spec(Some("large"))).unwrap().vm_type,
            "any"
        );
        assert_eq!(template_for(&s, &spec(None)).unwrap().vm_type, "any");
        let mut no_default = settings();
        no_default
            .templates
            .get_mut("postgresql-15")
            .unwrap()
            .remove("default");
        let refusal = template_for(&no_default, &spec(Some("large"))).unwrap_err();
        for part in [
            "PostgreSQL",
            "15.4",
            "large",
            "postgresql-15.large",
            "small",
        ] {
            assert!(refusal.contains(part), "{part} missing in: {refusal}");
        }
        let mut redis = spec(Some("small"));
        redis.engine = Engine::Redis;
        redis.version = "7".into();
        assert!(template_for(&s, &redis)
            .unwrap_err()
            .contains("templates for redis-7: none"));
    }

    #[test]
    fn the_manifest_carries_the_template_and_the_spec_as_job_properties() {
        let s = settings();
        let spec = spec(Some("small"));
        let yaml = render("osb-pg-1", &spec, template_for(&s, &spec).unwrap()).unwrap();
        let m: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(m["name"], "osb-pg-1");
        assert_eq!(
            m["releases"],
            json!([{"name": "postgres", "version": "48"}])
        );
        assert_eq!(
            m["stemcells"],
            json!([{"alias": "default", "os": "ubuntu-noble", "version": "latest"}])
        );
        assert_eq!(m["update"]["canaries"], 1);
        assert_eq!(m["update"]["serial"], true);
        let group = &m["instance_groups"][0];
        assert_eq!(group["name"], "postgresql");
        assert_eq!(group["instances"], 2);
        assert_eq!(group["azs"], json!(["z1", "z2"]));
        assert_eq!(group["vm_type"], "small");
        assert_eq!(group["persistent_disk_type"], "10GB");
        assert_eq!(group["stemcell"], "default");
        assert_eq!(
            group["networks"],
            json!([{"name": "services"}, {"name": "backup"}])
        );
        let job = &group["jobs"][0];
        assert_eq!(job["name"], "postgres");
        assert_eq!(job["release"], "postgres");
        assert_eq!(
            job["properties"]["osb"],
            json!({
                "engine": "postgresql", "version": "15.4", "port": 5432,
                "admin": {"username": "admin", "password": "s3cret pass"},
                "settings": {"max_connections": "50"},
            })
        );
        // The password is in the job's properties and nowhere else.
        assert_eq!(yaml.matches("s3cret pass").count(), 1, "{yaml}");
    }

    #[test]
    fn a_template_may_name_the_job_its_release_and_the_port() {
        let mut t = template("small");
        t.job = Some("pg".into());
        t.job_release = Some("osb-servers".into());
        t.port = Some(6543);
        let spec = spec(None);
        let m: serde_json::Value = serde_yaml::from_str(&render("d", &spec, &t).unwrap()).unwrap();
        let job = &m["instance_groups"][0]["jobs"][0];
        assert_eq!(job["name"], "pg");
        assert_eq!(job["release"], "osb-servers");
        assert_eq!(job["properties"]["osb"]["port"], 6543);
        assert_eq!(
            shape(&spec, &t),
            Shape {
                instance_group: "postgresql".into(),
                network: "services".into(),
                port: 6543
            }
        );
        t.networks.clear();
        assert!(render("d", &spec, &t).unwrap_err().contains("no network"));
    }
}
