//! `POST /v1/identify`: a link between an anonymous id and a user id that no event carries,
//! checked by the same rules as an event's ids (length, no control characters, no personal
//! data: ids must stay pseudonymous).

use super::FieldError;
use super::validate::{TextRule, Validator};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// A valid identify call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidIdentify {
    pub anonymous_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    /// When the shopper was identified: `timestamp`, else `now`.
    pub occurred_at: DateTime<Utc>,
}

/// Checks an identify body, reporting every problem with its pointer.
pub fn validate_identify(
    raw: &Value,
    now: DateTime<Utc>,
) -> Result<ValidIdentify, Vec<FieldError>> {
    let mut v = Validator::default();
    let Some(object) = raw.as_object() else {
        return Err(vec![FieldError {
            pointer: String::new(),
            code: super::codes::INVALID_TYPE,
            message: "an identify call must be a JSON object".into(),
        }]);
    };
    for name in object.keys() {
        if !["anonymous_id", "user_id", "session_id", "timestamp"].contains(&name.as_str()) {
            v.unknown_member(name);
        }
    }
    let anonymous_id = v.text(
        "anonymous_id",
        object.get("anonymous_id"),
        TextRule::REQUIRED_ID,
    );
    let user_id = v.text("user_id", object.get("user_id"), TextRule::REQUIRED_ID);
    let session_id = v.text("session_id", object.get("session_id"), TextRule::ID);
    let timestamp = object.get("timestamp").filter(|t| !t.is_null());
    let occurred_at = match timestamp {
        Some(t) => v.instant("timestamp", Some(t), now, TextRule::KEYWORD),
        None => Some(now),
    };
    match (anonymous_id, user_id, occurred_at) {
        (Some(a), Some(u), Some(at)) if v.errors.is_empty() => Ok(ValidIdentify {
            anonymous_id: a.to_owned(),
            user_id: u.to_owned(),
            session_id: session_id.map(str::to_owned),
            occurred_at: at,
        }),
        _ => Err(v.errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn a_link_defaults_its_time_to_now() {
        let ok =
            validate_identify(&json!({"anonymous_id": "a-7", "user_id": "u-1"}), now()).unwrap();
        assert_eq!(
            (ok.anonymous_id.as_str(), ok.user_id.as_str()),
            ("a-7", "u-1")
        );
        assert_eq!((ok.session_id, ok.occurred_at), (None, now()));
    }

    #[test]
    fn every_problem_is_reported_and_ids_stay_pseudonymous() {
        let errors = validate_identify(
            &json!({"anonymous_id": "a-7", "user_id": "jane@example.com", "timestamp": "yesterday",
                    "email": "x"}),
            now(),
        )
        .unwrap_err();
        let found: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.pointer.as_str(), e.code))
            .collect();
        assert_eq!(
            found,
            [
                ("/email", "pii_detected"),
                ("/user_id", "pii_detected"),
                ("/timestamp", "invalid_format"),
            ]
        );
        let missing = validate_identify(&json!({"anonymous_id": "a-7"}), now()).unwrap_err();
        assert_eq!(missing[0].pointer, "/user_id");
        assert_eq!(missing[0].code, "required");
    }
}
