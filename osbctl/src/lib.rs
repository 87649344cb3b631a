//! `osbctl`: runs the whole stack on one machine (`up`, `down`), makes the mTLS material
//! (`certs`), drives any OSB broker (`catalog`, `provision`, `bind`, …) and benchmarks the stack
//! (`bench`).

pub mod bench;
pub mod bench_store;
pub mod certs;
pub mod cli;
pub mod down;
pub mod osb_client;
pub mod stack;
pub mod up;

/// An error and its causes as one line: `Error: outer: cause: root cause`.
pub fn error_line(e: &anyhow::Error) -> String {
    format!("Error: {e:#}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_is_one_line_with_its_causes_and_no_backtrace() {
        let e = anyhow::anyhow!("connection refused").context("GET http://127.0.0.1:1/v2/catalog");
        assert_eq!(
            super::error_line(&e),
            "Error: GET http://127.0.0.1:1/v2/catalog: connection refused"
        );
    }
}
