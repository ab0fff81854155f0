//! The tracking event contract (`POST /v1/events`): what a valid event is, and the normalised
//! row it becomes.
//!
//! An event is a JSON object with these members (anything else is refused with
//! `unknown_field`: a typo like `ocurred_at` must not silently drop data):
//!
//! | member | rule |
//! |---|---|
//! | `event_id` | optional client idempotency key, ≤ 255 chars; when absent it is `sha256:<hex>` of the canonical payload, so exact re-sends still dedupe |
//! | `type` | required, one of [`EventType::ALL`]; decides the [`EventKind`] |
//! | `occurred_at` | required RFC 3339 timestamp with offset, not before 2000, at most 5 minutes ahead of the server clock |
//! | `session_id` | required, ≤ 255 chars |
//! | `anonymous_id`, `user_id`, `order_id` | optional, ≤ 255 chars |
//! | `revenue` | conversions: required, ≥ 0 and at most [`crate::money::MAX_AMOUNT_MINOR`] minor units, decimal string or JSON number, exact in the currency's minor unit; touches: not allowed |
//! | `currency` | ISO 4217 code; defaults to the tenant's currency; only with `revenue` |
//! | `utm_source`, `utm_medium`, `utm_campaign`, `utm_term`, `utm_content` | optional, ≤ 255 chars |
//! | `referrer` | optional absolute URL, ≤ 2048 chars; only its host is kept |
//! | `gclid`, `gbraid`, `wbraid`, `msclkid`, `fbclid`, `ttclid`, `li_fat_id` | optional, ≤ 512 chars |
//! | `properties` | optional object, nested at most 8 deep |
//!
//! `null` and blank strings count as absent for optional members (trackers send empty URL
//! parameters). The whole event, in canonical form, may not exceed 32 KiB.
//!
//! Personal data is refused: no `properties` member may be named or hold personal data, and no
//! string member at all (ids, utm tags, click ids, even the referrer) may contain an e-mail
//! address or be a phone number (see [`crate::pii`]). A `user_id` that is an e-mail address is
//! therefore rejected: hash it client-side or use the customer id. Error messages never repeat
//! the submitted value, because errors are stored; the dead-lettered copy of a refused event
//! goes through [`crate::pii::redact`] first.

mod canonical;
mod identify;
mod validate;

pub use canonical::{canonical_sha256, to_canonical_vec};
pub use identify::{ValidIdentify, validate_identify};
pub use validate::{
    MAX_CLICK_ID_CHARS, MAX_CLOCK_AHEAD, MAX_EVENT_BYTES, MAX_ID_CHARS, MAX_PROPERTIES_DEPTH,
    MAX_REFERRER_CHARS, ValidationContext, rejection_code, validate,
};

use crate::channel::{ClickIdKind, ClickIdSet};
use crate::money::CurrencyCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// Whether an event is a step in a journey or the outcome attribution credits journeys for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Touch,
    Conversion,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Touch => "touch",
            EventKind::Conversion => "conversion",
        }
    }
}

macro_rules! event_types {
    ($($variant:ident = $name:literal, $kind:ident;)*) => {
        /// The accepted event types. The list is closed so that every stored event has a known
        /// kind; a new type is a one-line change here.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
        pub enum EventType {
            $(#[serde(rename = $name)] $variant,)*
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }

            pub fn kind(self) -> EventKind {
                match self {
                    $(EventType::$variant => EventKind::$kind,)*
                }
            }
        }
    };
}

event_types! {
    PageView = "page_view", Touch;
    ScreenView = "screen_view", Touch;
    SessionStart = "session_start", Touch;
    AdClick = "ad_click", Touch;
    LinkClick = "link_click", Touch;
    EmailOpen = "email_open", Touch;
    EmailClick = "email_click", Touch;
    Purchase = "purchase", Conversion;
    OrderCompleted = "order_completed", Conversion;
    SubscriptionStarted = "subscription_started", Conversion;
    SubscriptionRenewed = "subscription_renewed", Conversion;
}

impl EventType {
    /// Parses a type name exactly (`Purchase` is not `purchase`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == name)
    }
}

/// The five utm tags, as sent (the channel code is their interpretation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Utm {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
}

/// The click ids an event carries, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClickIds([Option<String>; ClickIdKind::ALL.len()]);

impl ClickIds {
    pub fn get(&self, kind: ClickIdKind) -> Option<&str> {
        self.0[kind.index()].as_deref()
    }

    /// The present ones, in [`ClickIdKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (ClickIdKind, &str)> {
        ClickIdKind::ALL
            .into_iter()
            .filter_map(|kind| Some((kind, self.get(kind)?)))
    }

    pub fn kinds(&self) -> ClickIdSet {
        self.iter().map(|(kind, _)| kind).collect()
    }

    fn set(&mut self, kind: ClickIdKind, value: String) {
        self.0[kind.index()] = Some(value);
    }
}

/// A valid event, normalised into the columns of `attribution_events`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent {
    /// The client's key, or `sha256:<hex>` of the canonical payload when it sent none.
    pub event_id: String,
    /// SHA-256 of the canonical submitted payload: same `event_id` with the same hash is a
    /// duplicate, with another hash a conflict.
    pub payload_sha256: [u8; 32],
    pub kind: EventKind,
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    pub session_id: String,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub order_id: Option<String>,
    /// Revenue in the currency's minor units, whatever they are called (cents for USD, yen for
    /// JPY, fils for KWD); always present for conversions, never for touches.
    pub revenue_cents: Option<i64>,
    /// Present exactly when `revenue_cents` is.
    pub currency: Option<CurrencyCode>,
    /// A [`crate::channel::TAXONOMY`] code.
    pub channel_code: &'static str,
    pub utm: Utm,
    pub referrer_host: Option<String>,
    pub click_ids: ClickIds,
    /// Empty when the event had none.
    pub properties: Map<String, Value>,
}

impl ValidEvent {
    /// Whose journey this event belongs to: the most durable id it carries.
    pub fn identity(&self) -> &str {
        self.user_id
            .as_deref()
            .or(self.anonymous_id.as_deref())
            .unwrap_or(&self.session_id)
    }
}

/// One reason an event was refused, located by a JSON Pointer into the submitted event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub pointer: String,
    /// One of [`codes`].
    pub code: &'static str,
    /// For people; never contains the submitted value.
    pub message: String,
}

/// Error codes, stable API: clients and the dead-letter queue filter on them.
pub mod codes {
    /// A required member is missing, `null` or blank.
    pub const REQUIRED: &str = "required";
    /// The member has the wrong JSON type.
    pub const INVALID_TYPE: &str = "invalid_type";
    /// A string that does not parse: timestamp, decimal, URL, control characters.
    pub const INVALID_FORMAT: &str = "invalid_format";
    /// Well-formed but not an accepted value: event type, currency.
    pub const INVALID_VALUE: &str = "invalid_value";
    pub const TOO_LONG: &str = "too_long";
    /// The event exceeds the size limit.
    pub const TOO_LARGE: &str = "too_large";
    /// `properties` nests deeper than the limit.
    pub const TOO_DEEP: &str = "too_deep";
    pub const IN_FUTURE: &str = "in_future";
    pub const TOO_OLD: &str = "too_old";
    /// A negative or unrepresentable amount.
    pub const OUT_OF_RANGE: &str = "out_of_range";
    /// More decimal places than the currency has, or a JSON number a double cannot carry.
    pub const TOO_PRECISE: &str = "too_precise";
    /// A member that this kind of event must not have (revenue on a touch).
    pub const NOT_ALLOWED: &str = "not_allowed";
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    pub const PII_DETECTED: &str = "pii_detected";

    /// Event-level code of a dead-lettered event whose errors include personal data.
    pub const REJECTED_PII: &str = "pii_detected";
    /// Event-level code of any other refused event.
    pub const REJECTED_INVALID: &str = "validation_failed";
}

#[cfg(test)]
mod tests;
