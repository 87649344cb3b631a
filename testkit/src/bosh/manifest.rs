//! The part of a BOSH manifest the fake Director acts on: the deployment name, and per
//! instance group its instance count, azs and jobs, with the `properties.osb` block that asks
//! a job for a PostgreSQL or Redis server (see the contract in the module docs of
//! [`crate::bosh`]). Everything else (releases, stemcells, update, networks, vm types) is
//! kept verbatim in the stored manifest and otherwise ignored.

use common::deployer::{AdminCredentials, Engine};
use common::secret::SecretString;
use serde_yaml::Value;
use std::collections::BTreeMap;

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// `name`.
    pub name: String,
    /// `instance_groups`, in manifest order.
    pub groups: Vec<Group>,
}

/// One instance group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub name: String,
    pub instances: usize,
    pub azs: Vec<String>,
    pub jobs: Vec<Job>,
}

/// One job of an instance group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    pub name: String,
    /// `properties.osb`, when the job runs a data server.
    pub server: Option<ServerSpec>,
}

/// What `properties.osb` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerSpec {
    pub engine: Engine,
    pub version: String,
    pub port: u16,
    pub admin: AdminCredentials,
    pub settings: BTreeMap<String, String>,
}

impl Group {
    /// The az of instance `index` (round robin over `azs`, like the Director's placement).
    pub fn az(&self, index: usize) -> Option<&str> {
        (!self.azs.is_empty()).then(|| self.azs[index % self.azs.len()].as_str())
    }
}

/// The manifest's `name`, or why it has none (checked when the manifest is posted).
pub(crate) fn name_of(text: &str) -> Result<String, String> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("Incorrect YAML: {e}"))?;
    match doc.get("name") {
        Some(Value::String(name)) if !name.is_empty() => Ok(name.clone()),
        _ => Err("Deployment manifest must have a name".into()),
    }
}

/// Parses the manifest; the error says which field is wrong (it ends the task `error`).
pub(crate) fn parse(text: &str) -> Result<Manifest, String> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("Incorrect YAML: {e}"))?;
    let name = name_of(text)?;
    let mut groups = Vec::new();
    let empty = Vec::new();
    let list = match doc.get("instance_groups") {
        None | Some(Value::Null) => &empty,
        Some(Value::Sequence(list)) => list,
        Some(_) => return Err("instance_groups must be a list".into()),
    };
    for (i, group) in list.iter().enumerate() {
        groups.push(parse_group(group).map_err(|e| format!("instance_groups[{i}]: {e}"))?);
    }
    Ok(Manifest { name, groups })
}

fn parse_group(group: &Value) -> Result<Group, String> {
    let name = string(group, "name")?;
    let instances = match group.get("instances") {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or("instances must be a non-negative integer")?,
        _ => return Err("instances must be a non-negative integer".into()),
    };
    let azs = match group.get("azs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(azs)) => azs
            .iter()
            .map(|az| az.as_str().map(str::to_string).ok_or("azs must be strings"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("azs must be a list".into()),
    };
    let mut jobs = Vec::new();
    for (i, job) in group
        .get("jobs")
        .and_then(Value::as_sequence)
        .ok_or("jobs must be a list")?
        .iter()
        .enumerate()
    {
        let name = string(job, "name").map_err(|e| format!("jobs[{i}]: {e}"))?;
        let server = match job.get("properties").and_then(|p| p.get("osb")) {
            None => None,
            Some(osb) => {
                Some(parse_server(osb).map_err(|e| format!("jobs[{i}].properties.osb: {e}"))?)
            }
        };
        jobs.push(Job { name, server });
    }
    Ok(Group {
        name,
        instances,
        azs,
        jobs,
    })
}

fn parse_server(osb: &Value) -> Result<ServerSpec, String> {
    let engine = match string(osb, "engine")?.as_str() {
        "postgresql" => Engine::Postgresql,
        "redis" => Engine::Redis,
        other => return Err(format!("engine {other:?} is neither postgresql nor redis")),
    };
    let port = match osb.get("port") {
        None => deployer::engine::default_port(engine),
        Some(v) => v
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .ok_or("port must be 1 to 65535")?,
    };
    let admin = osb.get("admin").ok_or("admin is missing")?;
    let admin = AdminCredentials {
        username: string(admin, "username").map_err(|e| format!("admin: {e}"))?,
        password: SecretString::new(string(admin, "password").map_err(|e| format!("admin: {e}"))?),
    };
    let mut settings = BTreeMap::new();
    if let Some(map) = osb.get("settings").and_then(Value::as_mapping) {
        for (key, value) in map {
            let key = scalar(key).ok_or("settings keys must be strings")?;
            let value = scalar(value).ok_or_else(|| format!("settings.{key} must be a scalar"))?;
            settings.insert(key, value);
        }
    }
    Ok(ServerSpec {
        engine,
        version: osb.get("version").and_then(scalar).unwrap_or_default(),
        port,
        admin,
        settings,
    })
}

/// A required non-empty string field.
fn string(value: &Value, field: &str) -> Result<String, String> {
    match value.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(format!("{field} must be a non-empty string")),
    }
}

/// A scalar as text (YAML may give `version: 15` as a number).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
name: osb-pg
releases: [{name: postgres, version: "48"}]
instance_groups:
- name: postgresql
  instances: 2
  azs: [z1, z2]
  jobs:
  - name: postgres
    release: postgres
    properties:
      osb:
        engine: postgresql
        version: 15
        port: 5432
        admin: {username: admin, password: secret}
        settings: {max_connections: "50", fsync: false}
  - name: bpm
"#;

    #[test]
    fn the_osb_properties_of_each_job_are_read() {
        let m = parse(MANIFEST).unwrap();
        assert_eq!(m.name, "osb-pg");
        let group = &m.groups[0];
        assert_eq!((group.instances, group.az(1)), (2, Some("z2")));
        let server = group.jobs[0].server.as_ref().unwrap();
        assert_eq!(server.engine, Engine::Postgresql);
        assert_eq!((server.version.as_str(), server.port), ("15", 5432));
        assert_eq!(server.admin.password.expose(), "secret");
        assert_eq!(server.settings["fsync"], "false");
        assert_eq!(group.jobs[1].server, None);
    }

    #[test]
    fn a_bad_field_is_named() {
        assert!(name_of("releases: []")
            .unwrap_err()
            .contains("must have a name"));
        let err = parse(&MANIFEST.replace("instances: 2", "instances: -1")).unwrap_err();
        assert!(err.contains("instance_groups[0]: instances"), "{err}");
        let bad = MANIFEST.replace("engine: postgresql", "engine: mysql");
        let err = parse(&bad).unwrap_err();
        assert!(
            err.contains("instance_groups[0]: jobs[0].properties.osb: engine"),
            "{err}"
        );
    }
}
