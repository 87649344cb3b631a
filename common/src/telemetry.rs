//! Telemetry: one tracing subscriber per process, filtered by `RUST_LOG`, compact or JSON.
//!
//! Colour codes are written only when stderr is a terminal: logs captured by a file, a pipe, a
//! container runtime or journald stay plain text (or plain JSON).

use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, one line per event.
    #[default]
    Compact,
    /// One JSON object per line (for log collectors).
    Json,
}

/// A log format name that is neither `compact` nor `json`.
#[derive(Debug, thiserror::Error)]
#[error("unknown log format {0:?}: use compact or json")]
pub struct UnknownLogFormat(String);

impl std::str::FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "compact" => Ok(Self::Compact),
            "json" => Ok(Self::Json),
            _ => Err(UnknownLogFormat(s.to_string())),
        }
    }
}

/// Whether log lines carry ANSI colour codes: only on a terminal, and never when `NO_COLOR`
/// is set (<https://no-color.org>).
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber (a second call is a no-op). `default_filter` applies when
/// `RUST_LOG` is unset.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let colour = format == LogFormat::Compact
        && use_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let builder = builder.with_ansi(colour);
    let _ = match format {
        LogFormat::Compact => builder
            .compact()
            // Control characters in field values are escaped: no forged log lines.
            .fmt_fields(crate::logsafe::escaping_fields())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_is_used_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(!use_colour(false, None));
        assert!(!use_colour(true, Some("1".as_ref())));
        assert!(use_colour(true, Some("".as_ref())));
    }

    #[test]
    fn log_format_names_parse_case_insensitively_and_others_are_refused() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("Compact".parse::<LogFormat>().unwrap(), LogFormat::Compact);
        let err = "pretty".parse::<LogFormat>().unwrap_err().to_string();
        assert!(err.contains("compact or json"), "{err}");
    }
}
