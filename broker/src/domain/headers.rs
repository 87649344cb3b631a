//! The request headers checked before any request is served: Basic auth,
//! `X-Broker-API-Version`, and the platform's `X-Broker-API-Originating-Identity`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The API version this broker implements, named in 412 answers.
pub const SUPPORTED_VERSION: &str = "2.17";

/// Why an `X-Broker-API-Version` header is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionError {
    /// No header.
    Missing,
    /// Not `MAJOR.MINOR` digits.
    Malformed(String),
    /// A major version other than 2.
    Unsupported(String),
}

impl VersionError {
    /// What the 412 answer says.
    pub fn description(&self) -> String {
        match self {
            Self::Missing => format!(
                "the X-Broker-API-Version header is required; this broker implements {SUPPORTED_VERSION}"
            ),
            Self::Malformed(v) => format!(
                "X-Broker-API-Version {v:?} is not MAJOR.MINOR; this broker implements {SUPPORTED_VERSION}"
            ),
            Self::Unsupported(v) => format!(
                "X-Broker-API-Version {v} is not supported; this broker implements {SUPPORTED_VERSION} and accepts any 2.x"
            ),
        }
    }
}

/// Parses `X-Broker-API-Version`: any `2.<minor>` is accepted.
pub fn check_api_version(header: Option<&str>) -> Result<(u32, u32), VersionError> {
    let raw = header.ok_or(VersionError::Missing)?;
    let value = raw.trim();
    let printable: String = value.chars().take(32).collect();
    let malformed = || VersionError::Malformed(printable.clone());
    let (major, minor) = value.split_once('.').ok_or_else(malformed)?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return Err(malformed());
    }
    let major: u32 = major.parse().map_err(|_| malformed())?;
    let minor: u32 = minor.parse().map_err(|_| malformed())?;
    if major != 2 {
        return Err(VersionError::Unsupported(printable));
    }
    Ok((major, minor))
}

/// The user a platform acted for, from `X-Broker-API-Originating-Identity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginatingIdentity {
    /// The platform token (`cloudfoundry`, `kubernetes`, or another platform's).
    pub platform: String,
    /// Who: the Cloud Foundry `user_id`, the Kubernetes `username`, or `-` for other platforms.
    pub user: String,
}

/// Parses `X-Broker-API-Originating-Identity: <platform> <base64(JSON object)>`. The profile's
/// mandatory properties are checked for `cloudfoundry` (`user_id`) and `kubernetes`
/// (`username`, `uid`; `groups` an array and `extra` an object when present); other platforms
/// only need a JSON object. The error says what is wrong, for a 400.
pub fn parse_originating_identity(header: &str) -> Result<OriginatingIdentity, String> {
    let (platform, value) = header.trim().split_once(' ').ok_or(
        "X-Broker-API-Originating-Identity must be `<platform> <base64 of a JSON object>`",
    )?;
    if platform.is_empty() || !platform.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("X-Broker-API-Originating-Identity: the platform token is invalid".into());
    }
    let decoded = STANDARD
        .decode(value.trim())
        .map_err(|_| "X-Broker-API-Originating-Identity: the value is not Base64".to_string())?;
    let json: serde_json::Value = serde_json::from_slice(&decoded).map_err(|_| {
        "X-Broker-API-Originating-Identity: the value is not Base64 of a JSON object".to_string()
    })?;
    let object = json
        .as_object()
        .ok_or("X-Broker-API-Originating-Identity: the value is not Base64 of a JSON object")?;
    let text = |key: &str| -> Result<String, String> {
        match object.get(key).and_then(serde_json::Value::as_str) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(format!(
                "X-Broker-API-Originating-Identity: the {platform} identity needs a non-empty string `{key}`"
            )),
        }
    };
    let user = match platform {
        "cloudfoundry" => text("user_id")?,
        "kubernetes" => {
            text("uid")?;
            if object.get("groups").is_some_and(|g| !g.is_array()) {
                return Err(
                    "X-Broker-API-Originating-Identity: kubernetes `groups` must be an array"
                        .into(),
                );
            }
            if object.get("extra").is_some_and(|e| !e.is_object()) {
                return Err(
                    "X-Broker-API-Originating-Identity: kubernetes `extra` must be an object"
                        .into(),
                );
            }
            text("username")?
        }
        _ => "-".to_string(),
    };
    Ok(OriginatingIdentity {
        platform: platform.to_string(),
        user,
    })
}

/// Parses an `Authorization: Basic …` header into user name and password.
pub fn parse_basic_auth(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Compares two secrets in time independent of where they differ and of their lengths
/// (both are hashed first, then the digests compared without early exit).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let da = ring::digest::digest(&ring::digest::SHA256, a);
    let db = ring::digest::digest(&ring::digest::SHA256, b);
    let diff = da
        .as_ref()
        .iter()
        .zip(db.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Whether the `Authorization` header carries exactly the configured credentials.
pub fn credentials_match(header: Option<&str>, username: &str, password: &str) -> bool {
    let Some((user, pass)) = header.and_then(parse_basic_auth) else {
        return false;
    };
    // Both compared, always, so timing does not tell which one was wrong.
    let user_ok = constant_time_eq(user.as_bytes(), username.as_bytes());
    let pass_ok = constant_time_eq(pass.as_bytes(), password.as_bytes());
    user_ok & pass_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_2_x_version_is_accepted() {
        assert_eq!(check_api_version(Some("2.17")), Ok((2, 17)));
        assert_eq!(check_api_version(Some("2.13")), Ok((2, 13)));
        assert_eq!(check_api_version(Some(" 2.0 ")), Ok((2, 0)));
    }

    #[test]
    fn a_missing_malformed_or_other_major_version_is_refused() {
        assert_eq!(check_api_version(None), Err(VersionError::Missing));
        assert!(matches!(
            check_api_version(Some("2")),
            Err(VersionError::Malformed(_))
        ));
        assert!(matches!(
            check_api_version(Some("two.x")),
            Err(VersionError::Malformed(_))
        ));
        assert!(matches!(
            check_api_version(Some("2.-1")),
            Err(VersionError::Malformed(_))
        ));
        assert!(matches!(
            check_api_version(Some("99999999999.1")),
            Err(VersionError::Malformed(_))
        ));
        assert!(matches!(
            check_api_version(Some("3.0")),
            Err(VersionError::Unsupported(_))
        ));
        assert!(matches!(
            check_api_version(Some("1.9")),
            Err(VersionError::Unsupported(_))
        ));
    }

    #[test]
    fn every_refusal_names_the_implemented_version() {
        for e in [
            VersionError::Missing,
            VersionError::Malformed("x".into()),
            VersionError::Unsupported("3.0".into()),
        ] {
            assert!(e.description().contains("2.17"), "{}", e.description());
        }
    }

    fn identity(platform: &str, json: &str) -> String {
        format!("{platform} {}", STANDARD.encode(json))
    }

    #[test]
    fn cloud_foundry_and_kubernetes_identities_are_parsed() {
        let cf = parse_originating_identity(&identity("cloudfoundry", r#"{"user_id":"u-1"}"#));
        assert_eq!(
            cf,
            Ok(OriginatingIdentity {
                platform: "cloudfoundry".into(),
                user: "u-1".into()
            })
        );
        let k8s = parse_originating_identity(&identity(
            "kubernetes",
            r#"{"username":"alice","uid":"1","groups":["admin"],"extra":{"a":["b"]}}"#,
        ));
        assert_eq!(k8s.map(|i| i.user), Ok("alice".to_string()));
        let other = parse_originating_identity(&identity("myplatform", r#"{"who":"x"}"#));
        assert_eq!(other.map(|i| i.platform), Ok("myplatform".to_string()));
    }

    #[test]
    fn malformed_identities_are_refused_with_the_reason() {
        for bad in [
            "cloudfoundry".to_string(),
            "cloudfoundry !!!".to_string(),
            identity("cloudfoundry", "[1]"),
            identity("cloudfoundry", r#"{"user":"x"}"#),
            identity("kubernetes", r#"{"username":"a"}"#),
            identity("kubernetes", r#"{"username":"a","uid":"1","groups":"g"}"#),
            identity("", r#"{}"#),
        ] {
            let e = parse_originating_identity(&bad).unwrap_err();
            assert!(
                e.contains("X-Broker-API-Originating-Identity"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn basic_auth_headers_are_parsed() {
        let header = format!("Basic {}", STANDARD.encode("admin:pa:ss"));
        assert_eq!(
            parse_basic_auth(&header),
            Some(("admin".into(), "pa:ss".into()))
        );
        let lower = format!("basic {}", STANDARD.encode("u:p"));
        assert_eq!(parse_basic_auth(&lower), Some(("u".into(), "p".into())));
    }

    #[test]
    fn other_schemes_and_garbage_are_not_basic_auth() {
        assert_eq!(parse_basic_auth("Bearer abc"), None);
        assert_eq!(parse_basic_auth("Basic !!!"), None);
        assert_eq!(
            parse_basic_auth(&format!("Basic {}", STANDARD.encode("nocolon"))),
            None
        );
        assert_eq!(parse_basic_auth(""), None);
    }

    #[test]
    fn only_the_configured_credentials_match() {
        let good = format!("Basic {}", STANDARD.encode("broker:secret"));
        let bad = format!("Basic {}", STANDARD.encode("broker:Secret"));
        assert!(credentials_match(Some(&good), "broker", "secret"));
        assert!(!credentials_match(Some(&bad), "broker", "secret"));
        assert!(!credentials_match(None, "broker", "secret"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
