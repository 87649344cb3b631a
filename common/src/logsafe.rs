//! Log lines that a caller cannot forge: every field value and message of the human-readable
//! (compact) log format is written with its control characters escaped (`\n`, `\r`, `\0`,
//! `\u{1b}`, …), so a request-derived string (an id, a description an SPI echoed, an error
//! text) can neither start a new log line, nor hide text with a carriage return, nor send
//! terminal escape sequences. The JSON format escapes them by itself.

use crate::ids::is_forbidden_char;
use std::borrow::Cow;
use std::fmt::{self, Write as _};
use tracing::field::Field;
use tracing_subscriber::field::delimited::Delimited;
use tracing_subscriber::field::MakeExt as _;
use tracing_subscriber::fmt::format::{debug_fn, FieldFn, Writer};

/// `s` with every control character (and Unicode line or paragraph separator) written as an
/// escape sequence; borrowed when there is none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_forbidden_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if is_forbidden_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

type FieldFormat = fn(&mut Writer<'_>, &Field, &dyn fmt::Debug) -> fmt::Result;

fn write_field(writer: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    let text = format!("{value:?}");
    let text = escape(&text);
    match field.name() {
        "message" => writer.write_str(&text),
        name => write!(writer, "{}={text}", name.strip_prefix("r#").unwrap_or(name)),
    }
}

/// The field formatter of the compact format: `name=value` separated by spaces, the message
/// bare, every value escaped with [`escape`].
pub fn escaping_fields() -> Delimited<&'static str, FieldFn<FieldFormat>> {
    debug_fn(write_field as FieldFormat).delimited(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn control_characters_are_escaped_and_clean_text_is_borrowed() {
        assert!(matches!(escape("plain id-1"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\nb\r\0\u{1b}[31m\u{2028}"),
            "a\\nb\\r\\0\\u{1b}[31m\\u{2028}"
        );
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_forged_line_in_a_field_or_message_stays_on_one_log_line() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .compact()
            .fmt_fields(escaping_fields())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let id = "x\nERROR forged line";
            let span = tracing::info_span!("request", instance.id = %id);
            let _entered = span.enter();
            tracing::warn!(description = %"y\r\nINFO forged", user = "z\nq", "refused {}", id);
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("instance.id=x\\nERROR forged line"), "{text}");
        assert!(text.contains("description=y\\r\\nINFO forged"), "{text}");
        assert!(text.contains("refused x\\nERROR forged line"), "{text}");
    }
}
