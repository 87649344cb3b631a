//! The OSB v2.17 `openapi.yaml` (the fixture in `spec/`) as the interop tests read it: each
//! operation's query parameters and request body schema, and the request shapes derived from
//! them. The fields spec.md defines but openapi.yaml lacks (`maintenance_info` in provision and
//! update bodies and in `previous_values`) are added, as the spec is the authority.

use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// The parsed fixture.
pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        serde_yaml::from_str(include_str!("../spec/openapi.yaml")).expect("openapi.yaml parses")
    })
}

/// Follows a local `$ref` (`#/components/...`), as often as it takes.
fn resolve(schema: &Value) -> Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("only local references: {reference}"));
            resolve(
                spec()
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("{reference} is in the spec")),
            )
        }
        None => schema.clone(),
    }
}

/// The shapes a request is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Only what the schema requires.
    Absent,
    /// Every optional field present with its type's empty value (`""`, `{}`, `[]`, `false`,
    /// `0`), except those the spec says MUST be non-empty.
    Empty,
    /// Like `Empty`, and the optional objects that have members of their own carry each of
    /// them empty.
    EmptyMembers,
    /// Every optional field `null`.
    Nulls,
    /// Only what is required, plus fields no version of the spec defines: at the top level,
    /// and as the only member of every optional object the spec defines members of.
    Unknown,
}

/// Every shape, in the order the tests send them.
pub const SHAPES: [Shape; 5] = [
    Shape::Absent,
    Shape::Empty,
    Shape::EmptyMembers,
    Shape::Nulls,
    Shape::Unknown,
];

/// One operation of the spec.
pub struct Operation {
    operation: Value,
}

/// A query parameter.
#[derive(Debug, Clone)]
pub struct Parameter {
    /// Its name.
    pub name: String,
    /// Whether the spec marks it required.
    pub required: bool,
}

/// The operation `method` (lower case) of `path`; panics when the spec has none.
pub fn operation(path: &str, method: &str) -> Operation {
    let operation = spec()["paths"][path][method].clone();
    assert!(operation.is_object(), "{method} {path} is in the spec");
    Operation { operation }
}

impl Operation {
    /// The query parameters.
    pub fn query(&self) -> Vec<Parameter> {
        self.operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(resolve)
            .filter(|p| p["in"] == "query")
            .map(|p| Parameter {
                name: p["name"].as_str().unwrap().to_string(),
                required: p["required"].as_bool().unwrap_or(false),
            })
            .collect()
    }

    /// The request body schema, with its properties resolved and spec.md's additions.
    pub fn body_schema(&self) -> Option<Value> {
        let schema = resolve(
            self.operation
                .pointer("/requestBody/content/application~1json/schema")?,
        );
        Some(with_spec_md_fields(
            self.operation["operationId"].as_str()?,
            schema,
        ))
    }

    /// A query string in `shape`: required parameters take `required` values (by name);
    /// optional ones are empty (`Empty`, `EmptyMembers`), left out (`Absent`, `Nulls`: a
    /// query has no null) or replaced by an unknown one (`Unknown`).
    pub fn query_string(&self, shape: Shape, required: &[(&str, &str)]) -> String {
        let mut pairs = Vec::new();
        for p in self.query() {
            if p.required {
                let value = required
                    .iter()
                    .find(|(n, _)| *n == p.name)
                    .unwrap_or_else(|| panic!("a value for the required {}", p.name))
                    .1;
                pairs.push(format!("{}={value}", p.name));
            } else if matches!(shape, Shape::Empty | Shape::EmptyMembers) {
                pairs.push(format!("{}=", p.name));
            }
        }
        if shape == Shape::Unknown {
            pairs.push("x-interop-extension=1".into());
        }
        if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", pairs.join("&"))
        }
    }
}

/// Adds what spec.md defines and openapi.yaml lacks.
fn with_spec_md_fields(operation_id: &str, mut schema: Value) -> Value {
    let maintenance_info = json!({"$ref": "#/components/schemas/MaintenanceInfo"});
    if matches!(
        operation_id,
        "serviceInstance.provision" | "serviceInstance.update"
    ) {
        schema["properties"]["maintenance_info"] = maintenance_info.clone();
    }
    if operation_id == "serviceInstance.update" {
        let mut previous = resolve(&schema["properties"]["previous_values"]);
        previous["properties"]["maintenance_info"] = maintenance_info;
        schema["properties"]["previous_values"] = previous;
    }
    schema
}

/// The empty value of a schema's type.
fn empty_value(schema: &Value) -> Value {
    match schema["type"].as_str() {
        Some("string") => json!(""),
        Some("boolean") => json!(false),
        Some("integer" | "number") => json!(0),
        Some("array") => json!([]),
        _ => json!({}),
    }
}

/// An object of `schema`'s optional members for `shape`, leaving out the paths in `strict`
/// (dotted, under `prefix`) when they would be empty.
fn optional_members(
    schema: &Value,
    shape: Shape,
    strict: &[&str],
    prefix: &str,
) -> Map<String, Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut out = Map::new();
    let Some(properties) = schema["properties"].as_object() else {
        return out;
    };
    for (name, member) in properties {
        let path = format!("{prefix}{name}");
        // Required members of the top level are the caller's; those of an optional object
        // are sent like its other members.
        if prefix.is_empty() && required.contains(&name.as_str()) {
            continue;
        }
        let member = resolve(member);
        let value = match shape {
            Shape::Absent => continue,
            // Objects with defined members (free-form ones such as `parameters` are data).
            Shape::Unknown if member["properties"].is_object() => {
                json!({"x-interop-extension": 1})
            }
            Shape::Unknown => continue,
            Shape::Nulls => Value::Null,
            Shape::Empty => empty_value(&member),
            Shape::EmptyMembers if member["properties"].is_object() => Value::Object(
                optional_members(&member, shape, strict, &format!("{path}.")),
            ),
            Shape::EmptyMembers => empty_value(&member),
        };
        let empty = value.as_str() == Some("");
        if empty && strict.contains(&path.as_str()) {
            continue;
        }
        out.insert(name.clone(), value);
    }
    out
}

/// A request body of `schema` in `shape`: the required members from `required` (which must
/// name each of them), the optional ones as `shape` says. `strict` lists the optional
/// members that MUST be non-empty when present: they are left out rather than sent empty.
pub fn body(schema: &Value, shape: Shape, required: &Value, strict: &[&str]) -> Value {
    let mut out = Map::new();
    for name in schema["required"].as_array().into_iter().flatten() {
        let name = name.as_str().unwrap();
        let value = required
            .get(name)
            .unwrap_or_else(|| panic!("a value for the required {name}"));
        out.insert(name.to_string(), value.clone());
    }
    out.extend(optional_members(schema, shape, strict, ""));
    if shape == Shape::Unknown {
        out.insert(
            "x-interop-extension".into(),
            json!({"nested": [1, "two", null], "flag": true}),
        );
    }
    Value::Object(out)
}

/// The names of the schema's required members.
pub fn required_members(schema: &Value) -> Vec<String> {
    schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}
