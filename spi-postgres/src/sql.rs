//! SQL text helpers: identifier and literal quoting for the statements that cannot take bind
//! parameters (`CREATE ROLE`, `ALTER ROLE`, …), and the deterministic role name of a binding.

use spi_kit::spec::short_hash;
use spi_kit::spec::usable_verbatim;

/// Prefix of binding role names (never `pg_`, which PostgreSQL reserves).
pub const ROLE_PREFIX: &str = "b_";
/// PostgreSQL's identifier limit (NAMEDATALEN - 1), in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// Quotes an identifier: `"` around it, inner `"` doubled. NUL bytes, which PostgreSQL cannot
/// store, are removed.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars().filter(|c| *c != '\0') {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes a string literal: `'` around it, inner `'` doubled; a value with backslashes is written
/// as an escape string (`E'..'`, backslashes doubled) so that it means the same whatever
/// `standard_conforming_strings` says. NUL bytes are removed.
pub fn quote_literal(value: &str) -> String {
    let has_backslash = value.contains('\\');
    let mut out = String::with_capacity(value.len() + 3);
    if has_backslash {
        out.push('E');
    }
    out.push('\'');
    for c in value.chars().filter(|c| *c != '\0') {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The login role of a binding: `b_<id>` with `-` turned into `_` when the id is lowercase
/// `[a-z0-9-]`, fits in 63 bytes and is not shaped like a hash, otherwise `b_<128-bit hash of
/// the id, hex>`. Injective: verbatim ids have no `_`, so the `-` → `_` change loses nothing,
/// and a verbatim role is never `b_` + 32 hex digits, which every hashed role is.
pub fn binding_role_name(binding_id: &str) -> String {
    if usable_verbatim(binding_id, MAX_IDENTIFIER_BYTES - ROLE_PREFIX.len()) {
        format!("{ROLE_PREFIX}{}", binding_id.replace('-', "_"))
    } else {
        format!("{ROLE_PREFIX}{}", short_hash(binding_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_double_quoted_with_inner_quotes_doubled() {
        assert_eq!(quote_ident("app"), r#""app""#);
        assert_eq!(quote_ident(r#"we"ird"#), r#""we""ird""#);
        assert_eq!(quote_ident("Mixed Case; DROP"), r#""Mixed Case; DROP""#);
        assert_eq!(quote_ident("nul\0byte"), r#""nulbyte""#);
    }

    #[test]
    fn literals_are_single_quoted_with_inner_quotes_doubled() {
        assert_eq!(quote_literal("app_owner"), "'app_owner'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("'; DROP ROLE x; --"), "'''; DROP ROLE x; --'");
    }

    #[test]
    fn literals_with_backslashes_become_escape_strings() {
        assert_eq!(quote_literal(r"a\b"), r"E'a\\b'");
        assert_eq!(quote_literal(r"\'"), r"E'\\'''");
    }

    #[test]
    fn a_uuid_binding_id_gives_a_readable_role() {
        assert_eq!(
            binding_role_name("0a1b2c3d-0000-4000-8000-123456789abc"),
            "b_0a1b2c3d_0000_4000_8000_123456789abc"
        );
    }

    #[test]
    fn other_binding_ids_give_a_stable_hashed_role_within_the_limit() {
        for id in ["UPPER", "with space", "x\"y", &"a".repeat(62), ""] {
            let role = binding_role_name(id);
            assert!(role.len() <= MAX_IDENTIFIER_BYTES, "{role}");
            assert!(role.starts_with("b_"));
            assert!(role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            assert_eq!(role, binding_role_name(id));
        }
        assert_eq!(
            binding_role_name(&"a".repeat(61)),
            format!("b_{}", "a".repeat(61))
        );
        assert_ne!(binding_role_name("A"), binding_role_name("B"));
    }

    #[test]
    fn a_binding_id_equal_to_the_hash_of_another_gets_another_role() {
        let first = "First-Binding";
        let second = short_hash(first);
        assert_eq!(binding_role_name(first), format!("b_{second}"));
        assert_ne!(binding_role_name(first), binding_role_name(&second));
    }
}
