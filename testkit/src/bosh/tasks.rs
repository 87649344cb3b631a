//! The fake Director's tasks: their states (`queued` → `processing` → `done` | `error` |
//! `cancelled` | `timeout`), their JSON form (`GET /tasks/<id>`), and their event output, one
//! JSON object per line as the Director writes it, served with `Range: bytes=N-` (206 with
//! the rest, 416 past the end, 204 while there is none).

use serde::Serialize;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// The state of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting (for the deployment's lock, or for its turn).
    Queued,
    /// Running.
    Processing,
    /// Finished successfully.
    Done,
    /// Failed.
    Error,
    /// Cancelled.
    Cancelled,
    /// Ran out of time.
    Timeout,
}

impl TaskState {
    /// The Director's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Done => "done",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
            Self::Timeout => "timeout",
        }
    }

    /// Whether the task has ended.
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Queued | Self::Processing)
    }
}

/// A task as `GET /tasks/<id>` shows it, plus its event output.
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    /// Task id.
    pub id: u64,
    /// Current state.
    pub state: TaskState,
    /// What it does ("create deployment", "delete deployment osb-x").
    pub description: String,
    /// Last change (Unix seconds).
    pub timestamp: u64,
    /// When it started processing (Unix seconds).
    pub started_at: Option<u64>,
    /// The outcome: "/deployments/<name>" when done, the error message when failed.
    pub result: Option<String>,
    /// Who asked.
    pub user: String,
    /// The deployment it works on.
    pub deployment: String,
    /// The `X-Bosh-Context-Id` of the request that made it.
    pub context_id: Option<String>,
    /// The event output (JSON lines).
    #[serde(skip)]
    pub events: String,
}

impl Task {
    /// A queued task.
    pub fn new(id: u64, description: String, user: String, deployment: String) -> Self {
        Self {
            id,
            state: TaskState::Queued,
            description,
            timestamp: now(),
            started_at: None,
            result: None,
            user,
            deployment,
            context_id: None,
            events: String::new(),
        }
    }

    /// Moves to `state` (recording when processing started).
    pub fn set_state(&mut self, state: TaskState) {
        self.state = state;
        self.timestamp = now();
        if state == TaskState::Processing {
            self.started_at = Some(self.timestamp);
        }
    }

    /// Appends one event line.
    pub fn push_event(&mut self, event: &Value) {
        self.events.push_str(&event.to_string());
        self.events.push('\n');
    }
}

/// One stage event: `state` is `started`, `in_progress`, `finished` or `failed`.
pub fn stage_event(stage: &str, tags: &[&str], step: Step<'_>, state: &str) -> Value {
    let progress = match state {
        "started" => 0,
        "in_progress" => 50,
        _ => 100,
    };
    json!({
        "time": now(),
        "stage": stage,
        "tags": tags,
        "total": step.total,
        "task": step.task,
        "index": step.index,
        "state": state,
        "progress": progress,
    })
}

/// The task's error event (the last line of a failed task).
pub fn error_event(code: u32, message: &str) -> Value {
    json!({"time": now(), "error": {"code": code, "message": message}})
}

/// Which step of a stage an event is about.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// Its name ("postgresql/<id> (0) (canary)").
    pub task: &'a str,
    /// Its number, from 1.
    pub index: usize,
    /// How many the stage has.
    pub total: usize,
}

/// What a `GET /tasks/<id>/output` answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// 200 with everything.
    Full(String),
    /// 206 with the bytes from `start` and the `Content-Range` value.
    Partial(String, String),
    /// 416 with the `Content-Range` value (`bytes */<len>`).
    Unsatisfiable(String),
    /// 204: no output yet.
    Empty,
}

/// Serves `text` for a `Range` header (`bytes=N-` or `bytes=N-M`; anything else: all of it).
pub fn ranged(text: &str, range: Option<&str>) -> Output {
    let len = text.len();
    let Some((start, end)) = range.and_then(parse_range) else {
        return if len == 0 {
            Output::Empty
        } else {
            Output::Full(text.to_string())
        };
    };
    if len == 0 {
        return Output::Empty;
    }
    if start >= len {
        return Output::Unsatisfiable(format!("bytes */{len}"));
    }
    let last = end.map_or(len - 1, |e| e.min(len - 1));
    if last < start {
        return Output::Unsatisfiable(format!("bytes */{len}"));
    }
    let body = String::from_utf8_lossy(&text.as_bytes()[start..=last]).into_owned();
    Output::Partial(body, format!("bytes {start}-{last}/{len}"))
}

fn parse_range(header: &str) -> Option<(usize, Option<usize>)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    Some((start, end))
}

/// Now, in Unix seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_answer_the_rest_past_the_end_or_nothing_yet() {
        assert_eq!(ranged("", Some("bytes=0-")), Output::Empty);
        assert_eq!(ranged("", None), Output::Empty);
        assert_eq!(ranged("ab\n", None), Output::Full("ab\n".into()));
        assert_eq!(
            ranged("ab\ncd\n", Some("bytes=3-")),
            Output::Partial("cd\n".into(), "bytes 3-5/6".into())
        );
        assert_eq!(
            ranged("ab\ncd\n", Some("bytes=0-1")),
            Output::Partial("ab".into(), "bytes 0-1/6".into())
        );
        assert_eq!(
            ranged("ab\ncd\n", Some("bytes=6-")),
            Output::Unsatisfiable("bytes */6".into())
        );
    }

    #[test]
    fn events_carry_the_fields_a_client_reads() {
        let step = Step {
            task: "redis/abc (0) (canary)",
            index: 1,
            total: 2,
        };
        let event = stage_event("Updating instance", &["redis"], step, "finished");
        assert_eq!(event["progress"], 100);
        assert_eq!(event["total"], 2);
        assert_eq!(event["tags"][0], "redis");
        let mut task = Task::new(1, "create deployment".into(), "admin".into(), "d".into());
        task.push_event(&event);
        task.push_event(&error_event(100, "boom"));
        assert_eq!(task.events.lines().count(), 2);
        assert!(task.events.ends_with('\n'));
        let last: Value = serde_json::from_str(task.events.lines().last().unwrap()).unwrap();
        assert_eq!(last["error"]["message"], "boom");
    }
}
