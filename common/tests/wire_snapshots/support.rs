//! The snapshot check. A snapshot file holds, for one type:
//!
//! - `full`: the JSON of a value with every field set;
//! - `required`: the members without which the JSON no longer reads (a `#[serde(default)]`
//!   added or removed changes it);
//! - `minimal`: what a value read from the required members alone writes back (the defaults of
//!   the other fields and which of them are left out when empty).
//!
//! The check also reads `full` from the file back and compares it with the value, so a field
//! that is written but no longer read (or read under another name) fails too.
//!
//! After an intended change of the wire format, re-record with
//! `UPDATE_SNAPSHOTS=1 cargo test -p common --test wire_snapshots` and review the diff.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::fmt::Debug;
use std::path::PathBuf;

/// Compares the wire form of `value` with `tests/snapshots/{name}.json` (see the module doc).
pub fn check<T>(name: &str, value: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let actual = describe(value);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.json"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "no snapshot at {} ({e}); record it with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    let expected: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        actual,
        expected,
        "the wire form of {name} differs from {}:\nnow: {}",
        path.display(),
        serde_json::to_string_pretty(&actual).unwrap()
    );
    let read: T = serde_json::from_value(expected["full"].clone())
        .unwrap_or_else(|e| panic!("the snapshot of {name} no longer reads: {e}"));
    assert_eq!(
        &read, value,
        "the snapshot of {name} reads as another value"
    );
}

/// `full`, and for a JSON object also `required` and `minimal`, of `value`.
fn describe<T>(value: &T) -> Value
where
    T: Serialize + DeserializeOwned,
{
    let full = serde_json::to_value(value).unwrap();
    let Value::Object(members) = &full else {
        return json!({ "full": full });
    };
    let required: Vec<&String> = members
        .keys()
        .filter(|key| {
            let mut without = members.clone();
            without.remove(key.as_str());
            serde_json::from_value::<T>(Value::Object(without)).is_err()
        })
        .collect();
    let only_required: Map<String, Value> = members
        .iter()
        .filter(|(key, _)| required.contains(key))
        .map(|(key, member)| (key.clone(), member.clone()))
        .collect();
    let minimal = serde_json::from_value::<T>(Value::Object(only_required))
        .map(|read| serde_json::to_value(read).unwrap())
        .unwrap_or_else(|e| json!(format!("does not read: {e}")));
    json!({ "full": full, "required": required, "minimal": minimal })
}

#[test]
fn a_field_that_turns_optional_or_is_renamed_changes_the_description() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Strict {
        a: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        b: Option<u8>,
    }
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Loose {
        #[serde(default)]
        a: String,
        b: Option<u8>,
    }
    let strict = describe(&Strict {
        a: "x".into(),
        b: Some(1),
    });
    assert_eq!(
        strict,
        json!({"full": {"a": "x", "b": 1}, "required": ["a"], "minimal": {"a": "x"}})
    );
    let loose = describe(&Loose {
        a: "x".into(),
        b: Some(1),
    });
    assert_eq!(
        loose,
        json!({"full": {"a": "x", "b": 1}, "required": [], "minimal": {"a": "", "b": null}})
    );
}
