//! The Director's side of the conversation: its answers (tasks, instances, `/info`), its
//! errors (`{code, description}`), and the task id a `302 Location` names.

use serde::Deserialize;

/// The header a mutating request tags its task with (≤ 64 characters).
pub const CONTEXT_HEADER: &str = "X-Bosh-Context-Id";
/// Director error code of an unknown deployment.
pub const DEPLOYMENT_NOT_FOUND: i64 = 70_000;

/// Why a Director call failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectorError {
    /// The Director could not be reached (or answered 5xx) for the whole retry window.
    #[error("the BOSH Director at {url} is unreachable: {message}")]
    Unreachable {
        /// The Director.
        url: String,
        /// The last failure.
        message: String,
    },
    /// The Director answered with an error.
    #[error("the BOSH Director answered {status} to {what}: {description} (code {code})")]
    Api {
        /// What was asked.
        what: String,
        /// HTTP status.
        status: u16,
        /// The Director's error code (0 when the body had none).
        code: i64,
        /// The Director's description.
        description: String,
    },
    /// Anything else: bad credentials, a malformed answer, bad local setup.
    #[error("{0}")]
    Other(String),
}

impl DirectorError {
    /// Whether this is the Director's "deployment doesn't exist".
    pub fn is_deployment_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, code, .. } if *code == DEPLOYMENT_NOT_FOUND)
    }
}

/// A task as `GET /tasks/<id>` (or the task list) describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct DirectorTask {
    /// Task id.
    pub id: u64,
    /// `queued`, `processing`, `cancelling`, `done`, `error`, `cancelled`, `timeout`.
    pub state: String,
    /// What the task does ("create deployment").
    #[serde(default)]
    pub description: String,
    /// The result line (an error's text when it failed).
    #[serde(default)]
    pub result: Option<String>,
    /// The `X-Bosh-Context-Id` the request that made it carried.
    #[serde(default)]
    pub context_id: Option<String>,
}

impl DirectorTask {
    /// Whether the task has not ended yet.
    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "queued" | "processing" | "cancelling")
    }
}

/// One VM of a deployment, from `GET /deployments/<name>/instances`.
#[derive(Debug, Clone, Deserialize)]
pub struct DirectorInstance {
    /// The instance group.
    pub job: String,
    /// Index in its group.
    #[serde(default)]
    pub index: Option<u32>,
    /// The instance's id (a UUID; part of its BOSH DNS name).
    pub id: String,
    /// Its IP addresses.
    #[serde(default)]
    pub ips: Vec<String>,
}

/// What an unauthenticated `GET /info` says about logging in.
#[derive(Debug, Deserialize)]
pub(super) struct Info {
    pub user_authentication: UserAuthentication,
}

#[derive(Debug, Deserialize)]
pub(super) struct UserAuthentication {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub options: AuthOptions,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AuthOptions {
    #[serde(default)]
    pub url: Option<String>,
}

/// The body of a Director error.
#[derive(Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub description: String,
}

/// The task id in a `Location` such as `https://10.0.0.6:25555/tasks/42` (only the path
/// counts, as for the bosh CLI).
pub fn task_id_from_location(location: &str) -> Option<u64> {
    let after_scheme = location
        .split_once("://")
        .map_or(location, |(_, rest)| rest);
    let path = match after_scheme.find('/') {
        Some(i) if location.contains("://") => &after_scheme[i..],
        Some(_) => after_scheme,
        None => return None,
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let id = path.trim_end_matches('/').strip_prefix("/tasks/")?;
    id.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_id_comes_from_the_locations_path() {
        assert_eq!(
            task_id_from_location("https://10.0.0.6:25555/tasks/42"),
            Some(42)
        );
        assert_eq!(
            task_id_from_location("https://director.example:25555/tasks/7/"),
            Some(7)
        );
        assert_eq!(task_id_from_location("/tasks/9"), Some(9));
        assert_eq!(task_id_from_location("https://h/tasks/9?x=1"), Some(9));
        assert_eq!(task_id_from_location("https://h/deployments/9"), None);
        assert_eq!(task_id_from_location("https://h/tasks/abc"), None);
        assert_eq!(task_id_from_location("https://tasks/1"), None);
        assert_eq!(task_id_from_location(""), None);
    }

    #[test]
    fn only_the_directors_deployment_not_found_counts_as_gone() {
        let api = |status, code| DirectorError::Api {
            what: "x".into(),
            status,
            code,
            description: String::new(),
        };
        assert!(api(404, DEPLOYMENT_NOT_FOUND).is_deployment_not_found());
        assert!(!api(404, 10_000).is_deployment_not_found());
        assert!(!api(400, DEPLOYMENT_NOT_FOUND).is_deployment_not_found());
    }
}
