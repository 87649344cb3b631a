//! How optional request fields are read: the way the spec lets platforms send them, and the
//! way generated OSB clients do send them. An optional object left empty, a `null`, or an
//! empty string where the spec gives it no meaning reads as absent; only a value of the wrong
//! JSON type is refused. `docs/conformance.md` lists each decision with its spec sentence.

use super::MaintenanceInfo;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `maintenance_info` of a provision or update request (top level or in `previous_values`).
/// Only `version` has a meaning ("Any field except for `maintenance_info.version` will be
/// ignored"), so an object without a non-empty `version` — `{}`, as clients that model the
/// field as a struct with `omitempty` send on every request — is absent.
pub(super) fn maintenance_info<'de, D>(d: D) -> Result<Option<MaintenanceInfo>, D::Error>
where
    D: Deserializer<'de>,
{
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            let version = match map.get("version") {
                None | Some(Value::Null) => return Ok(None),
                Some(Value::String(v)) if v.is_empty() => return Ok(None),
                Some(Value::String(v)) => v.clone(),
                Some(_) => {
                    return Err(D::Error::custom(
                        "maintenance_info.version must be a string",
                    ))
                }
            };
            let description = match map.get("description") {
                Some(Value::String(d)) if !d.is_empty() => Some(d.clone()),
                _ => None,
            };
            Ok(Some(MaintenanceInfo {
                version,
                description,
            }))
        }
        Some(_) => Err(D::Error::custom("maintenance_info must be an object")),
    }
}

/// A member of `previous_values`: informational only (the broker knows the instance's current
/// values), so anything but a non-empty string reads as absent.
pub(super) fn informational_string<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    })
}

/// `maintenance_info` inside `previous_values`: like [`maintenance_info`], and a value of the
/// wrong type is ignored too.
pub(super) fn informational_maintenance_info<'de, D>(
    d: D,
) -> Result<Option<MaintenanceInfo>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.and_then(|v| maintenance_info(v).ok().flatten()))
}

/// `previous_values` of an update: `null` is absent; an object is read member by member with
/// [`informational_string`]; any other type is refused.
pub(super) fn previous_values<'de, D>(d: D) -> Result<Option<super::PreviousValues>, D::Error>
where
    D: Deserializer<'de>,
{
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => super::PreviousValues::deserialize(v)
            .map(Some)
            .map_err(|e| D::Error::custom(format!("previous_values: {e}"))),
        Some(_) => Err(D::Error::custom("previous_values must be an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PreviousValues, ProvisionRequest, UpdateRequest};
    use serde_json::json;

    #[test]
    fn maintenance_info_without_a_version_reads_as_absent() {
        for m in [
            json!({}),
            json!(null),
            json!({"version": null}),
            json!({"version": ""}),
            json!({"description": "only a description"}),
        ] {
            let req: ProvisionRequest =
                serde_json::from_value(json!({"service_id": "s", "maintenance_info": m})).unwrap();
            assert_eq!(req.maintenance_info, None, "{m}");
            let req: UpdateRequest = serde_json::from_value(
                json!({"service_id": "s", "maintenance_info": m, "previous_values": {"maintenance_info": m}}),
            )
            .unwrap();
            assert_eq!(req.maintenance_info, None, "{m}");
            assert_eq!(req.previous_values.unwrap().maintenance_info, None, "{m}");
        }
        let req: UpdateRequest = serde_json::from_value(
            json!({"service_id": "s", "maintenance_info": {"version": "1.0.0", "x": 1}}),
        )
        .unwrap();
        assert_eq!(req.maintenance_info.unwrap().version, "1.0.0");
    }

    #[test]
    fn maintenance_info_of_the_wrong_type_is_refused_naming_the_field() {
        for m in [json!("1.0.0"), json!({"version": 1})] {
            let e = serde_json::from_value::<ProvisionRequest>(json!({"maintenance_info": m}))
                .unwrap_err();
            assert!(e.to_string().contains("maintenance_info"), "{e}");
        }
    }

    #[test]
    fn previous_values_with_empty_odd_or_unknown_members_are_read_and_ignored() {
        let req: UpdateRequest = serde_json::from_value(json!({
            "service_id": "s",
            "previous_values": {"plan_id": "", "service_id": null, "organization_id": 5,
                "space_id": {}, "maintenance_info": "x", "x-unknown": [1]}
        }))
        .unwrap();
        assert_eq!(req.previous_values, Some(PreviousValues::default()));
        let req: UpdateRequest =
            serde_json::from_value(json!({"service_id": "s", "previous_values": null})).unwrap();
        assert_eq!(req.previous_values, None);
        let e =
            serde_json::from_value::<UpdateRequest>(json!({"previous_values": "p"})).unwrap_err();
        assert!(e.to_string().contains("previous_values"), "{e}");
    }
}
