//! Who a service instance or binding belongs to, beyond its service, plan and parameters:
//! the organization and space of an instance, the application (or other resource) of a
//! binding. A repeated PUT of an existing id that names another owner is a 409 Conflict: the
//! broker never hands an instance or credentials made for one owner to a request of another.

use common::osb::JsonObject;

/// Context members that name the organization (Cloud Foundry) or cluster (Kubernetes).
const ORGANIZATION_KEYS: [&str; 2] = ["organization_guid", "clusterid"];
/// Context members that name the space (Cloud Foundry) or namespace (Kubernetes).
const SPACE_KEYS: [&str; 2] = ["space_guid", "namespace"];

/// Where an instance lives: its organization and space, as far as the request said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// `context.organization_guid` / `context.clusterid`, else the top-level
    /// `organization_guid`.
    pub organization: Option<String>,
    /// `context.space_guid` / `context.namespace`, else the top-level `space_guid`.
    pub space: Option<String>,
}

fn context_member(context: Option<&JsonObject>, keys: &[&str]) -> Option<String> {
    let context = context?;
    keys.iter()
        .find_map(|k| context.get(*k).and_then(|v| v.as_str()))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

impl Placement {
    /// The placement a request (or a stored instance) names.
    pub fn of(
        context: Option<&JsonObject>,
        organization_guid: Option<&str>,
        space_guid: Option<&str>,
    ) -> Self {
        let fallback = |v: Option<&str>| v.filter(|v| !v.is_empty()).map(str::to_string);
        Self {
            organization: context_member(context, &ORGANIZATION_KEYS)
                .or_else(|| fallback(organization_guid)),
            space: context_member(context, &SPACE_KEYS).or_else(|| fallback(space_guid)),
        }
    }

    /// The first of organization and space that both name and that differ, if any. What one
    /// side leaves out is not compared (platforms resend context with members added).
    pub fn differs_from(&self, other: &Placement) -> Option<&'static str> {
        let differ =
            |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a != b);
        if differ(&self.organization, &other.organization) {
            Some("organization")
        } else if differ(&self.space, &other.space) {
            Some("space")
        } else {
            None
        }
    }
}

/// The members of `bind_resource` that name what the credentials are for (the spec's
/// `app_guid` and `route`, the Cloud Foundry profile's `space_guid` and
/// `credential_client_id`); other members are extensions and are not compared.
const RESOURCE_MEMBERS: [(&str, &str); 4] = [
    ("app_guid", "bind_resource.app_guid"),
    ("route", "bind_resource.route"),
    ("space_guid", "bind_resource.space_guid"),
    ("credential_client_id", "bind_resource.credential_client_id"),
];

/// Who a binding's credentials are for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindingTarget {
    /// The deprecated top-level `app_guid`.
    pub app_guid: Option<String>,
    /// The identifying members of `bind_resource` (see `RESOURCE_MEMBERS`), in that order.
    resource: [Option<String>; 4],
}

impl BindingTarget {
    /// The target a request (or a stored binding) names; empty and `null` values count as
    /// absent.
    pub fn new(app_guid: Option<String>, bind_resource: Option<&JsonObject>) -> Self {
        let member = |key: &str| {
            bind_resource
                .and_then(|b| b.get(key))
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Self {
            app_guid: app_guid.filter(|a| !a.is_empty()),
            resource: RESOURCE_MEMBERS.map(|(key, _)| member(key)),
        }
    }

    /// The field that differs from `other`, if any: a repeat must name the same application
    /// and the same bind resource.
    pub fn differs_from(&self, other: &BindingTarget) -> Option<&'static str> {
        if self.app_guid != other.app_guid {
            return Some("app_guid");
        }
        RESOURCE_MEMBERS
            .iter()
            .zip(self.resource.iter().zip(other.resource.iter()))
            .find(|(_, (a, b))| a != b)
            .map(|((_, field), _)| *field)
    }
}

/// `bind_resource.app_guid`, when sent, names an application: a non-empty string (`null`
/// counts as absent). The refusal names the field.
pub fn check_bind_resource(bind_resource: Option<&JsonObject>) -> Result<(), String> {
    match bind_resource.and_then(|b| b.get("app_guid")) {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(()),
        Some(serde_json::Value::String(_)) => {
            Err("bind_resource.app_guid must not be empty".into())
        }
        Some(_) => Err("bind_resource.app_guid must be a string".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> JsonObject {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn placement_reads_both_context_profiles_and_falls_back_to_the_top_level_guids() {
        let cf =
            obj(json!({"platform": "cloudfoundry", "organization_guid": "o", "space_guid": "s"}));
        assert_eq!(
            Placement::of(Some(&cf), Some("x"), None),
            Placement {
                organization: Some("o".into()),
                space: Some("s".into())
            }
        );
        let k8s = obj(json!({"platform": "kubernetes", "clusterid": "c", "namespace": "n"}));
        assert_eq!(
            Placement::of(Some(&k8s), None, None),
            Placement {
                organization: Some("c".into()),
                space: Some("n".into())
            }
        );
        assert_eq!(
            Placement::of(None, Some("o"), Some("")),
            Placement {
                organization: Some("o".into()),
                space: None
            }
        );
    }

    #[test]
    fn placements_differ_only_where_both_name_a_value() {
        let a = Placement::of(None, Some("o"), Some("s1"));
        assert_eq!(
            a.differs_from(&Placement::of(None, Some("o"), Some("s2"))),
            Some("space")
        );
        assert_eq!(
            a.differs_from(&Placement::of(None, Some("p"), Some("s1"))),
            Some("organization")
        );
        assert_eq!(a.differs_from(&Placement::default()), None);
        assert_eq!(a.differs_from(&a.clone()), None);
    }

    #[test]
    fn bind_resource_app_guid_must_be_a_non_empty_string_when_sent() {
        assert!(check_bind_resource(None).is_ok());
        for ok in [
            json!({}),
            json!({"app_guid": null}),
            json!({"app_guid": "a"}),
        ] {
            assert!(check_bind_resource(Some(&obj(ok.clone()))).is_ok(), "{ok}");
        }
        for bad in [json!({"app_guid": ""}), json!({"app_guid": 5})] {
            let e = check_bind_resource(Some(&obj(bad.clone()))).unwrap_err();
            assert!(e.contains("bind_resource.app_guid"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_binding_target_differs_by_app_guid_or_an_identifying_bind_resource_member_only() {
        let app = |a: &str| BindingTarget::new(Some(a.into()), None);
        assert_eq!(app("a").differs_from(&app("b")), Some("app_guid"));
        assert_eq!(app("a").differs_from(&app("a")), None);
        let res = |v: serde_json::Value| BindingTarget::new(None, Some(&obj(v)));
        assert_eq!(
            res(json!({"app_guid": "a"})).differs_from(&res(json!({"app_guid": "b"}))),
            Some("bind_resource.app_guid")
        );
        assert_eq!(
            res(json!({"app_guid": "a", "route": "r1"}))
                .differs_from(&res(json!({"app_guid": "a", "route": "r2"}))),
            Some("bind_resource.route")
        );
        assert_eq!(
            res(json!({"app_guid": "a"}))
                .differs_from(&res(json!({"app_guid": "a", "x-acme-pod": "p"}))),
            None,
            "extension members are not compared"
        );
        assert_eq!(
            res(json!({"app_guid": null, "route": ""}))
                .differs_from(&BindingTarget::new(Some(String::new()), None)),
            None,
            "empty values count as absent"
        );
    }
}
