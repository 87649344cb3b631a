//! The broker's rules without I/O: request headers, the states of instances, bindings and
//! operations, the decisions each OSB request leads to, and the journal's step table, retry
//! and deadline policy and end states. Unit-tested inline.

pub mod binding;
pub mod ending;
pub mod headers;
pub mod identity;
pub mod instance;
pub mod operation;
pub mod plan;
pub mod policy;
pub mod quota;
pub mod request;
pub mod steps;

use common::osb::JsonObject;

/// The attributes compared to tell an identical repeat request from a conflicting one.
#[derive(Debug, Clone, PartialEq)]
pub struct Attributes<'a> {
    /// Offering id.
    pub service_id: &'a str,
    /// Plan id.
    pub plan_id: &'a str,
    /// Parameters; an absent object counts as empty.
    pub parameters: &'a JsonObject,
}

impl Attributes<'_> {
    /// Whether a repeat request asks for exactly the same thing (context is not compared:
    /// platforms resend it with changed names).
    pub fn identical(&self, other: &Attributes<'_>) -> bool {
        self.service_id == other.service_id
            && self.plan_id == other.plan_id
            && self.parameters == other.parameters
    }
}

/// An operation in progress on an instance or binding, as the decisions need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningOperation {
    /// The OSB `operation` string.
    pub id: String,
    /// What it does.
    pub kind: operation::OperationKind,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> JsonObject {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn attributes_are_identical_only_when_service_plan_and_parameters_match() {
        let p1 = obj(json!({"a": 1}));
        let p2 = obj(json!({"a": 2}));
        let a = Attributes {
            service_id: "s",
            plan_id: "p",
            parameters: &p1,
        };
        assert!(a.identical(&a.clone()));
        assert!(!a.identical(&Attributes {
            parameters: &p2,
            ..a.clone()
        }));
        assert!(!a.identical(&Attributes {
            plan_id: "q",
            ..a.clone()
        }));
        assert!(!a.identical(&Attributes {
            service_id: "t",
            ..a.clone()
        }));
    }
}
