//! Typed ids of the contracts: one newtype per kind of id, so an instance id cannot be passed
//! where a binding id or a deployment name is meant. Each is a `String` on the wire
//! (`#[serde(transparent)]`) and reads like one in code (`Deref<Target = str>`, `Display`,
//! comparisons with `str` and `String`), so the JSON and most call sites do not change.

use super::{validate_id, IdError};

/// Defines a string newtype with the conversions and comparisons every id shares.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps `id` as it is (no check: ids read from storage or built by the system).
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        /// Prints as the bare string, so `{:?}` of a containing type reads as before.
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.0, f)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                Self(id.clone())
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_string())
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

string_id!(
    /// An OSB service instance id, chosen by the platform.
    InstanceId
);
string_id!(
    /// An OSB service binding id, chosen by the platform.
    BindingId
);
string_id!(
    /// An OSB service offering id (`service_id`), from the catalog.
    ServiceId
);
string_id!(
    /// An OSB plan id (`plan_id`), from the catalog.
    PlanId
);
string_id!(
    /// The handle of an asynchronous OSB operation (`operation`), chosen by the broker.
    OperationId
);
string_id!(
    /// The name of a deployment at the deployer (`[a-z0-9-]`, at most 63 characters, chosen by
    /// an SPI).
    DeploymentName
);
string_id!(
    /// The id of a deployer task.
    TaskId
);

impl InstanceId {
    /// An instance id taken from a caller, checked against the rules of [`super`]; a refusal
    /// names the field `instance_id`.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        validate_id("instance_id", value).map(|()| Self::from(value))
    }
}

impl BindingId {
    /// A binding id taken from a caller, checked against the rules of [`super`]; a refusal
    /// names the field `binding_id`.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        validate_id("binding_id", value).map(|()| Self::from(value))
    }
}

impl AsRef<std::path::Path> for DeploymentName {
    fn as_ref(&self) -> &std::path::Path {
        self.0.as_ref()
    }
}

impl AsRef<std::ffi::OsStr> for DeploymentName {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn an_id_is_a_plain_json_string_on_the_wire() {
        let id = InstanceId::from("i-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""i-1""#);
        let read: InstanceId = serde_json::from_str(r#""i-1""#).unwrap();
        assert_eq!(read, id);
        assert!(serde_json::from_str::<InstanceId>("1").is_err());
    }

    #[test]
    fn an_id_reads_and_prints_like_the_string_it_wraps() {
        let id = TaskId::new("t-7");
        assert_eq!(id.to_string(), "t-7");
        assert_eq!(format!("{id:?}"), r#""t-7""#);
        assert_eq!(id.len(), 3);
        let (text, owned): (&str, String) = ("t-7", "t-7".into());
        assert_eq!(id, text);
        assert_eq!(text, id);
        assert_eq!(id, *text);
        assert_eq!(*text, id);
        assert_eq!(id, owned);
        assert_eq!(owned, id);
        assert!(id != "t-8");
        assert_eq!(String::from(id.clone()), "t-7");
        assert_eq!(id.into_string(), "t-7");
    }

    #[test]
    fn a_map_keyed_by_ids_is_looked_up_with_a_str_and_a_name_joins_a_path() {
        let map = HashMap::from([(DeploymentName::from("pg-1"), 1)]);
        assert_eq!(map.get("pg-1"), Some(&1));
        let name = DeploymentName::from("pg-1");
        let path: &std::path::Path = name.as_ref();
        assert_eq!(path.join("data"), std::path::Path::new("pg-1/data"));
    }

    #[test]
    fn osb_ids_parse_by_the_rules_of_the_module_naming_their_field() {
        assert_eq!(InstanceId::parse("i-1").unwrap(), "i-1");
        assert_eq!(BindingId::parse("b-1").unwrap(), "b-1");
        let refused = InstanceId::parse("a\nb").unwrap_err();
        assert_eq!(refused, validate_id("instance_id", "a\nb").unwrap_err());
        let refused = BindingId::parse("").unwrap_err();
        assert_eq!(refused.to_string(), "binding_id must not be empty");
    }
}
