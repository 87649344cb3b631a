//! What every OSB request's fields must hold, and the refusals the domain's checks answer
//! with (the service turns each into its status code and OSB error body).

/// A request refused by a domain rule, by the answer it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed request, or it names something it may not: 400.
    BadRequest(String),
    /// The resource the request is about does not exist: 404.
    NotFound(String),
    /// Same id, other attributes: 409.
    Conflict(String),
    /// Another operation is in progress, or the state does not allow it now: 422
    /// `ConcurrencyError`.
    Concurrency(String),
    /// `maintenance_info.version` is not the plan's: 422 `MaintenanceInfoConflict`.
    MaintenanceInfoConflict(String),
    /// A change the offering does not support: 422 without an error code.
    Unprocessable(String),
}

/// A mandatory, non-empty string field.
pub fn required(value: Option<String>, name: &str) -> Result<String, Refusal> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) => Err(Refusal::BadRequest(format!("{name} must not be empty"))),
        None => Err(Refusal::BadRequest(format!("{name} is required"))),
    }
}

/// An optional string field that must not be empty when present.
pub fn non_empty_if_present(value: &Option<String>, name: &str) -> Result<(), Refusal> {
    match value {
        Some(v) if v.is_empty() => Err(Refusal::BadRequest(format!("{name} must not be empty"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_required_field_must_be_present_and_not_empty() {
        assert_eq!(required(Some("x".into()), "plan_id"), Ok("x".to_string()));
        assert_eq!(
            required(None, "plan_id"),
            Err(Refusal::BadRequest("plan_id is required".into()))
        );
        assert_eq!(
            required(Some(String::new()), "plan_id"),
            Err(Refusal::BadRequest("plan_id must not be empty".into()))
        );
    }

    #[test]
    fn an_optional_field_may_be_absent_but_not_empty() {
        assert_eq!(non_empty_if_present(&None, "app_guid"), Ok(()));
        assert_eq!(non_empty_if_present(&Some("a".into()), "app_guid"), Ok(()));
        assert_eq!(
            non_empty_if_present(&Some(String::new()), "app_guid"),
            Err(Refusal::BadRequest("app_guid must not be empty".into()))
        );
    }
}
