//! Segment / RudderStack calls (the Segment Spec: `track`, `page`, `screen`, `identify`) mapped
//! onto Tally events, so a team can point an existing analytics.js source or a Segment webhook
//! destination at Tally.
//!
//! The mapping only moves members; the result is then validated exactly like a Tally event, so
//! a mapped call that is invalid (a bad currency, personal data in `properties`) is refused and
//! dead-lettered with the same errors `/v1/events` gives. What has no Tally meaning at all (a
//! `group` call, an event name that is neither a touch nor a conversion) is [`Unmappable`].
//!
//! | Segment | Tally |
//! |---|---|
//! | `messageId` | `event_id` |
//! | `timestamp`, else `originalTimestamp`, else `sentAt` (ISO 8601, or epoch seconds / milliseconds) | `occurred_at` |
//! | `anonymousId`, `userId` | `anonymous_id`, `user_id` |
//! | `context.sessionId` (RudderStack), else `anonymousId`, else `userId` | `session_id` |
//! | `context.campaign.source/medium/name/term/content` | `utm_source/medium/campaign/term/content` |
//! | click ids in `context.page.url` (else `properties.url`) | `gclid`, `fbclid`, … |
//! | `context.page.referrer`, else `properties.referrer` | `referrer` |
//! | `page` / `screen` | `page_view` / `screen_view` |
//! | `track` `"Order Completed"` (any Tally type by name, plus Segment's e-mail events) | `order_completed` |
//! | `properties.revenue`, else `properties.total`; `currency`; `order_id` | `revenue`, `currency`, `order_id` |
//! | the other `properties` | `properties` |

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use tally_core::channel::ClickIdKind;
use tally_core::event::EventType;

/// What a call becomes.
#[derive(Debug, PartialEq)]
pub enum Mapped {
    /// A Tally event, to be validated and written like any other.
    Event(Value),
    /// An `identify` call: the link between a visitor's anonymous id and its user id.
    Identify {
        anonymous_id: String,
        user_id: String,
    },
}

/// A call with no Tally meaning: dead-lettered with this reason, never dropped.
#[derive(Debug, PartialEq)]
pub struct Unmappable {
    /// JSON pointer into the call.
    pub pointer: String,
    pub message: String,
}

fn unmappable(pointer: &str, message: impl Into<String>) -> Unmappable {
    Unmappable {
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// Segment's names for events whose Tally type is spelled differently; every other Tally type
/// is found by its own name in Segment's style (`"Order Completed"` → `order_completed`).
const ALIASES: &[(&str, EventType)] = &[
    ("email_opened", EventType::EmailOpen),
    ("email_link_clicked", EventType::EmailClick),
    ("link_clicked", EventType::LinkClick),
    ("ad_clicked", EventType::AdClick),
    ("page_viewed", EventType::PageView),
    ("screen_viewed", EventType::ScreenView),
    ("session_started", EventType::SessionStart),
];

/// `properties` members that become Tally fields rather than properties.
const MAPPED_PROPERTIES: &[&str] = &[
    "revenue", "total", "currency", "order_id", "url", "referrer",
];

fn event_type(name: &str) -> Option<EventType> {
    let snake: String = name
        .trim()
        .chars()
        .map(|c| {
            if c == ' ' || c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    EventType::parse(&snake).or_else(|| {
        ALIASES
            .iter()
            .find(|(alias, _)| *alias == snake)
            .map(|(_, t)| *t)
    })
}

/// An id as Segment allows it: a string, or a number (some libraries send numeric user ids).
fn id(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// ISO 8601 strings pass through (Tally's validation wants an offset); numbers are epoch
/// seconds, or milliseconds when larger than 10^11 (which as seconds would be the year 5138).
fn instant(value: &Value) -> Result<Value, String> {
    match value {
        Value::String(_) => Ok(value.clone()),
        Value::Number(n) => {
            let n = n
                .as_f64()
                .ok_or_else(|| "an epoch timestamp must be a number".to_string())?;
            let millis = if n.abs() >= 1e11 { n } else { n * 1000.0 };
            let at: Option<DateTime<Utc>> =
                Utc.timestamp_millis_opt(millis.round() as i64).single();
            at.map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
                .ok_or_else(|| format!("{n} is not an epoch time Tally can represent"))
        }
        _ => Err("must be an ISO 8601 time or epoch seconds / milliseconds".into()),
    }
}

/// Maps one call. `batch_context` and `batch_sent_at` are a batch's shared members (Segment's
/// `/v1/batch` lets a batch carry `context` and `sentAt` for all its calls).
pub fn map(
    call: &Value,
    batch_context: Option<&Value>,
    batch_sent_at: Option<&Value>,
) -> Result<Mapped, Unmappable> {
    let call = call
        .as_object()
        .ok_or_else(|| unmappable("", "a Segment call must be a JSON object"))?;
    let kind = call.get("type").and_then(Value::as_str).ok_or_else(|| {
        unmappable(
            "/type",
            "a Segment call needs `type` (track, page, screen or identify)",
        )
    })?;
    let anonymous_id = id(call.get("anonymousId"));
    let user_id = id(call.get("userId"));
    let event_type = match kind {
        "identify" => {
            return match (anonymous_id, user_id) {
                (Some(anonymous_id), Some(user_id)) => Ok(Mapped::Identify {
                    anonymous_id,
                    user_id,
                }),
                _ => Err(unmappable(
                    "",
                    "an identify call links an anonymousId to a userId and needs both",
                )),
            };
        }
        "page" => EventType::PageView,
        "screen" => EventType::ScreenView,
        "track" => {
            let name = call
                .get("event")
                .and_then(Value::as_str)
                .ok_or_else(|| unmappable("/event", "a track call needs its `event` name"))?;
            event_type(name).ok_or_else(|| {
                unmappable(
                    "/event",
                    format!(
                        "{name:?} is neither a touch nor a conversion Tally records; send \
                         \"Order Completed\" (or another Tally type by name, e.g. \"Subscription \
                         Started\") for conversions, page calls for visits"
                    ),
                )
            })?
        }
        other => {
            return Err(unmappable(
                "/type",
                format!("Tally maps track, page, screen and identify calls, not {other:?}"),
            ));
        }
    };

    let mut event = Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(v) = value {
            event.insert(name.to_string(), v);
        }
    };
    put("type", Some(Value::String(event_type.as_str().into())));
    put("event_id", id(call.get("messageId")).map(Value::String));
    let time = ["timestamp", "originalTimestamp", "sentAt"]
        .iter()
        .find_map(|name| call.get(*name).map(|v| (*name, v)))
        .or_else(|| batch_sent_at.map(|v| ("sentAt", v)));
    if let Some((name, value)) = time {
        put(
            "occurred_at",
            Some(instant(value).map_err(|message| unmappable(&format!("/{name}"), message))?),
        );
    }
    let context = call.get("context").or(batch_context);
    let session = context
        .and_then(|c| id(c.get("sessionId")))
        .or_else(|| anonymous_id.clone())
        .or_else(|| user_id.clone());
    put("session_id", session.map(Value::String));
    put("anonymous_id", anonymous_id.map(Value::String));
    put("user_id", user_id.map(Value::String));

    let properties = call.get("properties").and_then(Value::as_object);
    let property = |name: &str| properties.and_then(|p| p.get(name)).cloned();
    let campaign = context.and_then(|c| c.get("campaign"));
    for (segment, tally) in [
        ("source", "utm_source"),
        ("medium", "utm_medium"),
        ("name", "utm_campaign"),
        ("term", "utm_term"),
        ("content", "utm_content"),
    ] {
        put(tally, campaign.and_then(|c| c.get(segment)).cloned());
    }
    let page = context.and_then(|c| c.get("page"));
    put(
        "referrer",
        page.and_then(|p| p.get("referrer"))
            .cloned()
            .or_else(|| property("referrer"))
            .filter(|r| r.as_str().is_some_and(|r| !r.is_empty())),
    );
    let page_url = page
        .and_then(|p| p.get("url"))
        .cloned()
        .or_else(|| property("url"));
    let parsed = page_url
        .as_ref()
        .and_then(Value::as_str)
        .and_then(|u| url::Url::parse(u).ok());
    if let Some(parsed) = parsed {
        for (name, value) in parsed.query_pairs() {
            if ClickIdKind::ALL.iter().any(|k| k.as_str() == name.as_ref()) {
                put(&name, Some(Value::String(value.into_owned())));
            }
        }
    }
    if event_type.kind() == tally_core::event::EventKind::Conversion {
        put("revenue", property("revenue").or_else(|| property("total")));
        put("currency", property("currency"));
        put(
            "order_id",
            id(properties.and_then(|p| p.get("order_id"))).map(Value::String),
        );
    }
    if let Some(properties) = properties {
        let rest: Map<String, Value> = properties
            .iter()
            .filter(|(name, _)| !MAPPED_PROPERTIES.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        if !rest.is_empty() {
            put("properties", Some(Value::Object(rest)));
        }
    }
    Ok(Mapped::Event(Value::Object(event)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_names_map_by_tally_type_and_segment_alias() {
        assert_eq!(
            event_type("Order Completed"),
            Some(EventType::OrderCompleted)
        );
        assert_eq!(
            event_type("Subscription Started"),
            Some(EventType::SubscriptionStarted)
        );
        assert_eq!(
            event_type("Email Link Clicked"),
            Some(EventType::EmailClick)
        );
        assert_eq!(event_type("purchase"), Some(EventType::Purchase));
        assert_eq!(event_type("Product Viewed"), None);
    }

    #[test]
    fn epoch_seconds_and_milliseconds_are_the_same_instant() {
        let seconds = instant(&json!(1_764_410_400)).unwrap();
        let millis = instant(&json!(1_764_410_400_000_i64)).unwrap();
        assert_eq!(seconds, millis);
        assert_eq!(seconds, json!("2025-11-29T10:00:00.000Z"));
    }

    #[test]
    fn a_click_id_in_the_page_url_becomes_the_field() {
        let call = json!({"type": "page", "anonymousId": "a-1", "messageId": "m-1",
            "timestamp": "2026-11-29T10:00:00Z",
            "context": {"page": {"url": "https://shop.example/?gclid=Cj0&x=1", "referrer": ""}}});
        let Ok(Mapped::Event(event)) = map(&call, None, None) else {
            panic!("not mapped")
        };
        assert_eq!(event["gclid"], "Cj0");
        assert_eq!(event["session_id"], "a-1");
        assert!(
            event.get("referrer").is_none(),
            "an empty referrer is no referrer"
        );
    }
}
