//! The request headers checked before any request is served: Basic auth and
//! `X-Broker-API-Version`.

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
