//! JSON-schema validation of request parameters with messages a person can act on: each names
//! the parameter and the rule it broke ("parameter 'max_connections': integer expected, got
//! 1.5").

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

/// A schema compiled once, with the parameter names it allows (for "unknown parameter" messages).
pub struct CompiledSchema {
    validator: Validator,
    allowed: Vec<String>,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema")
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

/// A schema that does not compile (a bug in the catalog).
#[derive(Debug, thiserror::Error)]
#[error("invalid JSON schema: {0}")]
pub struct SchemaError(String);

impl CompiledSchema {
    /// Compiles a draft-04 schema.
    pub fn compile(schema: &Value) -> Result<Self, SchemaError> {
        let validator = jsonschema::draft4::new(schema).map_err(|e| SchemaError(e.to_string()))?;
        let allowed = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        Ok(Self { validator, allowed })
    }

    /// Validates `parameters`; the error is one message listing every broken rule.
    pub fn check(&self, parameters: &Value) -> Result<(), String> {
        let errors: Vec<_> = self.validator.iter_errors(parameters).collect();
        if errors.is_empty() {
            return Ok(());
        }
        // A value of the wrong type also fails its range checks; the type is what to report.
        let mistyped: Vec<&str> = errors
            .iter()
            .filter(|e| matches!(e.kind, ValidationErrorKind::Type { .. }))
            .map(|e| e.instance_path.as_str())
            .collect();
        let mut messages: Vec<String> = errors
            .iter()
            .filter(|e| {
                matches!(e.kind, ValidationErrorKind::Type { .. })
                    || !mistyped.contains(&e.instance_path.as_str())
            })
            .map(|e| self.describe(e))
            .collect();
        messages.sort();
        messages.dedup();
        Err(messages.join("; "))
    }

    fn allowed_list(&self) -> String {
        if self.allowed.is_empty() {
            "none are accepted".to_string()
        } else {
            format!("allowed parameters: {}", self.allowed.join(", "))
        }
    }

    fn describe(&self, error: &ValidationError<'_>) -> String {
        let name = parameter_name(error.instance_path.as_str());
        let got = shown(&error.instance);
        match &error.kind {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let names = unexpected
                    .iter()
                    .map(|u| format!("'{u}'"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let noun = if unexpected.len() == 1 {
                    "parameter"
                } else {
                    "parameters"
                };
                format!("unknown {noun} {names} ({})", self.allowed_list())
            }
            ValidationErrorKind::Type { kind } if name.is_empty() => {
                format!("parameters must be a JSON {}", type_names(kind))
            }
            ValidationErrorKind::Type { kind } => {
                // JSON form, so that the string "5" reads differently from the number 5.
                let got = as_json(&error.instance);
                format!(
                    "parameter '{name}': {} expected, got {got}",
                    type_names(kind)
                )
            }
            ValidationErrorKind::Minimum { limit } => {
                format!("parameter '{name}': must be at least {limit}, got {got}")
            }
            ValidationErrorKind::Maximum { limit } => {
                format!("parameter '{name}': must be at most {limit}, got {got}")
            }
            ValidationErrorKind::ExclusiveMinimum { limit } => {
                format!("parameter '{name}': must be greater than {limit}, got {got}")
            }
            ValidationErrorKind::ExclusiveMaximum { limit } => {
                format!("parameter '{name}': must be less than {limit}, got {got}")
            }
            ValidationErrorKind::Enum { options } => {
                let allowed = options
                    .as_array()
                    .map(|o| o.iter().map(shown).collect::<Vec<_>>().join(", "))
                    .unwrap_or_else(|| shown(options));
                format!("parameter '{name}': must be one of {allowed}, got {got}")
            }
            ValidationErrorKind::Required { property } => {
                format!("parameter {} is required", shown(property))
            }
            _ if name.is_empty() => format!("parameters: {error}"),
            _ => format!("parameter '{name}': {error}"),
        }
    }
}

/// The parameter a JSON pointer designates (`/a/b` → `a/b`), with `~1`/`~0` unescaped.
fn parameter_name(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .replace("~1", "/")
        .replace("~0", "~")
}

fn type_names(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(set) => set
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// A value in its JSON form, long ones cut.
fn as_json(value: &Value) -> String {
    cut(value.to_string())
}

/// A value as a person reads it: strings bare, everything else as JSON, long ones cut.
fn shown(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    cut(text)
}

fn cut(text: String) -> String {
    const MAX: usize = 64;
    if text.chars().count() > MAX {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> CompiledSchema {
        CompiledSchema::compile(&json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "mode": {"type": "string", "enum": ["fast", "safe"]}
            }
        }))
        .unwrap()
    }

    #[test]
    fn valid_parameters_pass() {
        assert_eq!(schema().check(&json!({"size": 3, "mode": "fast"})), Ok(()));
        assert_eq!(schema().check(&json!({})), Ok(()));
    }

    #[test]
    fn a_float_for_an_integer_names_the_parameter_and_the_type() {
        assert_eq!(
            schema().check(&json!({"size": 1.5})).unwrap_err(),
            "parameter 'size': integer expected, got 1.5"
        );
    }

    #[test]
    fn an_unknown_parameter_is_named_with_the_allowed_ones() {
        assert_eq!(
            schema().check(&json!({"colour": "red"})).unwrap_err(),
            "unknown parameter 'colour' (allowed parameters: mode, size)"
        );
    }

    #[test]
    fn range_violations_name_the_bound() {
        assert_eq!(
            schema().check(&json!({"size": 0})).unwrap_err(),
            "parameter 'size': must be at least 1, got 0"
        );
        assert_eq!(
            schema().check(&json!({"size": 11})).unwrap_err(),
            "parameter 'size': must be at most 10, got 11"
        );
    }

    #[test]
    fn an_enum_violation_lists_the_allowed_values() {
        assert_eq!(
            schema().check(&json!({"mode": "slow"})).unwrap_err(),
            "parameter 'mode': must be one of fast, safe, got slow"
        );
    }

    #[test]
    fn several_violations_are_all_reported() {
        let msg = schema()
            .check(&json!({"size": "big", "mode": 1}))
            .unwrap_err();
        assert!(
            msg.contains(r#"parameter 'size': integer expected, got "big""#),
            "{msg}"
        );
        assert!(msg.contains("parameter 'mode'"), "{msg}");
    }

    #[test]
    fn a_schema_without_properties_accepts_no_parameter() {
        let s = CompiledSchema::compile(&json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object", "additionalProperties": false, "properties": {}
        }))
        .unwrap();
        assert_eq!(
            s.check(&json!({"x": 1})).unwrap_err(),
            "unknown parameter 'x' (none are accepted)"
        );
    }
}
