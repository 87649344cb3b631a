//! README.md's walkthroughs, run literally: the `sh` blocks under every `## Walkthrough:`
//! heading are read from README.md at test time and run in order by one bash session, as a
//! reader would paste them into one terminal, in a directory whose `.osb/osbctl.env` points to
//! a stack this test started. When README and behaviour drift, this test fails.
//!
//! What README shows is checked loosely. A command's expected output is the run of `# ` lines
//! right under it (a blank line ends it; comments at the end of a command line are prose).
//! Each expected line must appear in what the command printed (stdout and stderr), where `…`
//! stands for anything: every piece between the `…`s must be there. A command whose first
//! expected line contains `error:` (any case) must exit non-zero; every other command must exit
//! 0 (redis-cli exits 0 even on an error reply; its reply text is what is checked).
//!
//! One line is not run: `cargo build … && export PATH=…` (a release build would take minutes
//! and the test would not use it): the test puts the directory of the `osbctl` it was built
//! with first on `PATH` instead, and checks that exactly that one line was skipped.

use crate::helpers::TestStack;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// One command of a walkthrough and the output README shows under it.
#[derive(Debug, Clone)]
struct Step {
    /// The README line number of the command (1-based).
    line: usize,
    /// The command as written (continuation lines included).
    command: String,
    /// The `# ` lines under it, without the `# ` prefix.
    expected: Vec<String>,
}

/// The `sh` blocks under the `## Walkthrough:` headings, as steps, in README order.
fn walkthrough_steps(readme: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let (mut in_walkthrough, mut in_block, mut continuing) = (false, false, false);
    let mut current: Option<usize> = None;
    for (i, line) in readme.lines().enumerate() {
        if line.starts_with("## ") {
            in_walkthrough = line.starts_with("## Walkthrough:");
            continue;
        }
        if line.starts_with("```") {
            in_block = !in_block && in_walkthrough && line.trim() == "```sh";
            current = None;
            continue;
        }
        if !in_block {
            continue;
        }
        let trimmed = line.trim();
        if continuing {
            let step = &mut steps[current.expect("a continued command")];
            step.command.push('\n');
            step.command.push_str(line);
            continuing = trimmed.ends_with('\\');
        } else if trimmed.is_empty() {
            current = None;
        } else if let Some(comment) = trimmed.strip_prefix('#') {
            if let Some(c) = current {
                steps[c].expected.push(comment.trim().to_string());
            }
        } else {
            steps.push(Step {
                line: i + 1,
                command: line.to_string(),
                expected: Vec::new(),
            });
            current = Some(steps.len() - 1);
            continuing = trimmed.ends_with('\\');
        }
    }
    steps
}

/// The bash script that runs every step in one session and records each one's output and
/// exit status in `out/<n>.{out,err,rc}`. Returns it and the number of build lines skipped.
fn script(steps: &[Step]) -> (String, usize) {
    let mut skipped = 0;
    let mut s = String::from("cd \"$(dirname \"$0\")\"\n");
    for (n, step) in steps.iter().enumerate() {
        let command = if step.command.trim_start().starts_with("cargo build") {
            skipped += 1;
            "true".to_string()
        } else {
            step.command.clone()
        };
        // The command on its own lines, so a trailing comment cannot swallow the brace.
        s.push_str(&format!(
            "{{\n{command}\n}} >out/{n}.out 2>out/{n}.err </dev/null; echo $? >out/{n}.rc\n"
        ));
    }
    (s, skipped)
}

/// Whether `output` shows the README line `expected` (`…` matches anything).
fn shows(output: &str, expected: &str) -> bool {
    expected
        .split('…')
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .all(|piece| output.contains(piece))
}

/// Checks one step's recorded run against README; the complaint says everything needed.
fn check(step: &Step, n: usize, dir: &Path) -> Result<(), String> {
    let read = |ext: &str| std::fs::read_to_string(dir.join(format!("out/{n}.{ext}")));
    let Ok(rc) = read("rc") else {
        return Err("never ran (the session stopped before it)".into());
    };
    let rc: i32 = rc.trim().parse().unwrap_or(-1);
    let (out, err) = (
        read("out").unwrap_or_default(),
        read("err").unwrap_or_default(),
    );
    let output = format!("{out}{err}");
    let must_fail = step
        .expected
        .first()
        .is_some_and(|l| l.to_lowercase().contains("error:"));
    let mut problems = Vec::new();
    if must_fail && rc == 0 {
        problems.push("README shows an error, but it exited 0".to_string());
    }
    if !must_fail && rc != 0 {
        problems.push(format!("it exited {rc}"));
    }
    for line in &step.expected {
        if !shows(&output, line) {
            problems.push(format!("its output lacks README's line {line:?}"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}\n--- exit status {rc}; stdout:\n{out}--- stderr:\n{err}---",
        problems.join("; ")
    ))
}

#[test]
fn readme_walkthroughs_are_parsed_into_commands_with_the_output_shown_under_them() {
    let readme = "## Walkthrough: x\n\n```sh\na \\\n  b   # prose\n# out 1\n#   out 2\n\n# prose\nc\n```\n\n## Other\n\n```sh\nd\n```\n";
    let steps = walkthrough_steps(readme);
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[0].command, "a \\\n  b   # prose");
    assert_eq!(steps[0].expected, ["out 1", "out 2"]);
    assert_eq!(steps[1].command, "c");
    assert!(steps[1].expected.is_empty());
    assert!(shows("x  (id)  y z", "x  (…)  y"));
    assert!(!shows("x y", "x … q"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_walkthroughs_run_as_written_against_a_fresh_stack() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let steps = walkthrough_steps(&readme);
    assert!(steps.len() > 20, "README's walkthroughs found: {steps:?}");
    let (script, skipped) = script(&steps);
    assert_eq!(skipped, 1, "exactly the one `cargo build` line is skipped");
    for tool in ["jq", "psql", "redis-cli", "curl"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        assert!(
            found.status.success(),
            "{tool} is missing: scripts/prereqs installs it"
        );
    }

    let t = TestStack::start().await;
    let stack = t.stack();
    // README's reader works in the repository root, where `.osb` is the data dir: here a
    // temporary directory plays the root, and the stack's data dir is its `.osb`.
    let root = stack.layout.root.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(root.join(".osb")).unwrap();
    osbctl::up::write_env_file(&root.join(".osb").join(osbctl::up::ENV_FILE), stack).unwrap();
    std::fs::create_dir_all(root.join("out")).unwrap();
    std::fs::write(root.join("walkthrough.sh"), &script).unwrap();

    let bin_dir = Path::new(env!("CARGO_BIN_EXE_osbctl")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script_path = root.join("walkthrough.sh");
    let status = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(script_path)
            .env("PATH", path)
            .env_remove("OSB_BROKER_URL")
            .env_remove("OSB_USERNAME")
            .env_remove("OSB_PASSWORD")
            .env_remove("OSB_PASSWORD_FILE")
            .status()
            .expect("bash runs")
    })
    .await
    .unwrap();
    assert!(status.success(), "the walkthrough session ended: {status}");

    for (n, step) in steps.iter().enumerate() {
        if let Err(why) = check(step, n, &root) {
            panic!(
                "README.md line {}: `{}`: {why}",
                step.line,
                step.command.trim()
            );
        }
    }

    // Everything the walkthroughs created, they deleted (deprovisions finish asynchronously).
    let start = Instant::now();
    loop {
        let left = t.deployments().await;
        if left.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "deployments left after the walkthroughs: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
