//! The rules every id taken from a caller must follow, shared by the broker, the SPIs and the
//! deployer: OSB instance and binding ids and the request id.
//!
//! An id is at most [`MAX_ID_LEN`] bytes long and holds no control character (C0, DEL, C1)
//! and no Unicode line or paragraph separator, so it can be written to a log line, a URL or a
//! database column as it is. The OSB specification recommends GUIDs and RFC 3986 unreserved
//! characters; anything else printable is still accepted.
//!
//! The typed ids of the contracts ([`InstanceId`], [`BindingId`], [`DeploymentName`], …) live
//! here too; [`InstanceId::parse`] and [`BindingId::parse`] apply these rules.

mod newtype;

pub use newtype::{BindingId, DeploymentName, InstanceId, OperationId, PlanId, ServiceId, TaskId};

/// The longest id accepted, in bytes (UTF-8): OSB instance and binding ids, and the request
/// id of `X-Broker-API-Request-Identity`. One limit for every service, so an id accepted by
/// the broker crosses the SPIs and the deployer unchanged.
pub const MAX_ID_LEN: usize = 256;

/// Why an id is refused; the message names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is empty.
    #[error("{field} must not be empty")]
    Empty {
        /// The id's name (`instance_id`, `binding_id`, …).
        field: String,
    },
    /// The id is longer than [`MAX_ID_LEN`] bytes.
    #[error("{field} is {len} bytes long; the longest id accepted is {MAX_ID_LEN} bytes")]
    TooLong {
        /// The id's name.
        field: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The id holds a control character or a line separator.
    #[error(
        "{field} contains a control character ({found}); ids must be printable text without control characters or line breaks"
    )]
    ControlCharacter {
        /// The id's name.
        field: String,
        /// The character found, as `U+XXXX`.
        found: String,
    },
}

/// Whether `c` may not appear in an id: control characters (C0, DEL, C1) and the Unicode line
/// and paragraph separators, which some log viewers render as line breaks.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Checks `value`, the id called `field`, against the rules of this module.
pub fn validate_id(field: &str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty {
            field: field.to_string(),
        });
    }
    if value.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            field: field.to_string(),
            len: value.len(),
        });
    }
    if let Some(c) = value.chars().find(|&c| is_forbidden_char(c)) {
        return Err(IdError::ControlCharacter {
            field: field.to_string(),
            found: format!("U+{:04X}", u32::from(c)),
        });
    }
    Ok(())
}

/// Whether `value` is acceptable as a request id (the rules of [`validate_id`]); a service
/// replaces a refused request id with a fresh one rather than refusing the request.
pub fn is_valid_request_id(value: &str) -> bool {
    validate_id("request id", value).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_and_printable_ids_up_to_the_limit_are_accepted() {
        assert_eq!(
            validate_id("instance_id", "0f4c1b1e-3a8d-4b8e-9d1c-7c5e2f1a9b00"),
            Ok(())
        );
        assert_eq!(validate_id("instance_id", "my instance/é"), Ok(()));
        assert_eq!(validate_id("instance_id", &"x".repeat(MAX_ID_LEN)), Ok(()));
    }

    #[test]
    fn empty_overlong_and_control_character_ids_are_refused_naming_the_rule() {
        assert!(matches!(
            validate_id("binding_id", ""),
            Err(IdError::Empty { .. })
        ));
        let long = validate_id("binding_id", &"x".repeat(MAX_ID_LEN + 1)).unwrap_err();
        assert!(long.to_string().contains("binding_id"), "{long}");
        assert!(long.to_string().contains("256"), "{long}");
        for bad in [
            "a\nb",
            "a\rb",
            "a\0b",
            "a\tb",
            "a\u{7f}",
            "a\u{85}",
            "a\u{2028}",
        ] {
            let e = validate_id("instance_id", bad).unwrap_err();
            assert!(matches!(e, IdError::ControlCharacter { .. }), "{bad:?}");
            assert!(e.to_string().contains("control character"), "{e}");
        }
        assert_eq!(
            validate_id("instance_id", "a\nb").unwrap_err().to_string(),
            "instance_id contains a control character (U+000A); ids must be printable text without control characters or line breaks"
        );
    }

    #[test]
    fn request_ids_follow_the_same_rules() {
        assert!(is_valid_request_id("req-1"));
        assert!(!is_valid_request_id("req\t1"));
        assert!(!is_valid_request_id(&"r".repeat(MAX_ID_LEN + 1)));
    }
}
