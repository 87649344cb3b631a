//! A Director task's event output (`GET /tasks/<id>/output?type=event`, one JSON object per
//! line) read a piece at a time, and the progress text a person can follow built from it:
//! "Updating instance postgresql/0 (2/3), 40% complete" — stage, task, index/total and the
//! share of the stage done.

use serde::Deserialize;

/// One event line.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Event {
    /// "Preparing deployment", "Creating missing vms", "Updating instance", …
    #[serde(default)]
    pub stage: String,
    /// What this step works on ("postgresql/0 (canary)").
    #[serde(default)]
    pub task: String,
    /// Position of the step in its stage, from 1.
    #[serde(default)]
    pub index: u32,
    /// Steps in the stage.
    #[serde(default)]
    pub total: u32,
    /// `started`, `in_progress`, `finished`, `failed`.
    #[serde(default)]
    pub state: String,
    /// Percent of this step done (for `in_progress`).
    #[serde(default)]
    pub progress: u32,
    /// An error the task ended with.
    #[serde(default)]
    pub error: Option<EventError>,
}

/// The error of an error event.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventError {
    /// Director error code.
    #[serde(default)]
    pub code: i64,
    /// The Director's message (operator log only: it may name internals).
    #[serde(default)]
    pub message: String,
}

/// Reads the event output in pieces: keeps the byte offset of the first line not read yet (a
/// line cut off at the end of a piece is read again whole with the next one).
#[derive(Debug, Default)]
pub struct EventReader {
    offset: u64,
    partial: Vec<u8>,
    /// The last step event seen (what the task is doing now).
    pub last_step: Option<Event>,
    /// The last error event seen.
    pub last_error: Option<EventError>,
}

impl EventReader {
    /// Where the next `Range: bytes=N-` starts.
    pub fn offset(&self) -> u64 {
        self.offset + self.partial.len() as u64
    }

    /// Takes the bytes that followed [`Self::offset`]; answers the events of the complete
    /// lines among them (lines that are not events are skipped).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.partial.extend_from_slice(bytes);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        self.offset += complete.len() as u64;
        let events: Vec<Event> = complete
            .split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect();
        for event in &events {
            if let Some(error) = &event.error {
                self.last_error = Some(error.clone());
            } else if !event.stage.is_empty() {
                self.last_step = Some(event.clone());
            }
        }
        events
    }
}

/// The progress text of a step event; `None` for an event that is not a step.
pub fn describe(event: &Event) -> Option<String> {
    if event.stage.is_empty() {
        return None;
    }
    let mut text = event.stage.clone();
    if !event.task.is_empty() {
        text.push(' ');
        text.push_str(&event.task);
    }
    if event.total > 0 {
        text.push_str(&format!(" ({}/{})", event.index, event.total));
        text.push_str(&format!(", {}% complete", percent(event)));
    }
    if event.state == "failed" {
        text.push_str(", failed");
    }
    Some(text)
}

/// The share of the event's stage done: steps before this one, plus this one's own progress.
fn percent(event: &Event) -> u32 {
    let total = u64::from(event.total.max(1));
    let before = u64::from(event.index.saturating_sub(1)).min(total);
    let own = match event.state.as_str() {
        "finished" => 100,
        "in_progress" => u64::from(event.progress.min(100)),
        _ => 0,
    };
    ((before * 100 + own) / total) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_step_reads_as_stage_task_position_and_percent() {
        let e = event(
            r#"{"time":1,"stage":"Updating instance","tags":[],"total":3,"task":"postgresql/0","index":2,"state":"in_progress","progress":20}"#,
        );
        assert_eq!(
            describe(&e).unwrap(),
            "Updating instance postgresql/0 (2/3), 40% complete"
        );
        let started = event(
            r#"{"stage":"Creating missing vms","task":"redis/1","index":1,"total":2,"state":"started","progress":0}"#,
        );
        assert_eq!(
            describe(&started).unwrap(),
            "Creating missing vms redis/1 (1/2), 0% complete"
        );
        let finished = event(
            r#"{"stage":"Creating missing vms","task":"redis/1","index":2,"total":2,"state":"finished","progress":100}"#,
        );
        assert_eq!(
            describe(&finished).unwrap(),
            "Creating missing vms redis/1 (2/2), 100% complete"
        );
        let failed = event(
            r#"{"stage":"Updating instance","task":"redis/0","index":1,"total":1,"state":"failed","progress":100}"#,
        );
        assert!(describe(&failed).unwrap().ends_with(", failed"));
        assert_eq!(
            describe(&event(r#"{"error":{"code":1,"message":"x"}}"#)),
            None
        );
    }

    #[test]
    fn pieces_are_read_line_by_line_and_a_cut_line_waits_for_its_end() {
        let mut reader = EventReader::default();
        let first = br#"{"stage":"Preparing deployment","task":"Rendering templates","index":1,"total":1,"state":"started"}"#;
        let mut piece = first.to_vec();
        piece.extend_from_slice(b"\n{\"stage\":\"Upda");
        let events = reader.push(&piece);
        assert_eq!(events.len(), 1);
        assert_eq!(reader.offset(), piece.len() as u64);
        let events = reader.push(
            b"ting instance\",\"task\":\"pg/0\",\"index\":1,\"total\":1,\"state\":\"started\"}\n\
              {\"time\":2,\"error\":{\"code\":450001,\"message\":\"boom\"}}\n",
        );
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].stage, "Updating instance");
        assert_eq!(reader.last_step.as_ref().unwrap().task, "pg/0");
        assert_eq!(reader.last_error.as_ref().unwrap().message, "boom");
        assert!(reader.push(b"").is_empty());
    }
}
