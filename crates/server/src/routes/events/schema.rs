//! The event body's OpenAPI schema.
//!
//! Events are not deserialised into these types: `tally_core::event::validate` reads the raw
//! JSON so that it can report every invalid member at once and dead-letter refused events. These
//! types exist so that the document shows clients the real contract instead of `object`; the
//! limits are the validator's (see `tally_core::event`).

use chrono::{DateTime, Utc};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};

/// One tracking event. Members not listed here are refused (`unknown_field`); an optional
/// member that is `null` or blank counts as not sent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema only: events are validated from raw JSON"
)]
pub struct EventBody {
    /// The client's idempotency key; without one, the SHA-256 of the canonical payload is.
    #[schema(max_length = 255)]
    event_id: Option<String>,
    #[schema(rename = "type", schema_with = tally_store::doc::event_types)]
    event_type: String,
    /// RFC 3339 with an offset; from 2000 to at most 5 minutes ahead of the server clock.
    occurred_at: DateTime<Utc>,
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    session_id: String,
    #[schema(max_length = 255)]
    anonymous_id: Option<String>,
    /// Never an e-mail address: hash it or use the customer id.
    #[schema(max_length = 255)]
    user_id: Option<String>,
    #[schema(max_length = 255)]
    order_id: Option<String>,
    /// Conversions only, and required there: a decimal string (`"59.99"`, recommended) or a
    /// number, at least 0, exact in the currency's minor unit, at most 10^13 minor units.
    #[schema(schema_with = revenue)]
    revenue: Option<String>,
    /// ISO 4217 code with a minor unit; defaults to the tenant's currency. Only with `revenue`.
    #[schema(schema_with = currency)]
    currency: Option<String>,
    #[schema(max_length = 255)]
    utm_source: Option<String>,
    #[schema(max_length = 255)]
    utm_medium: Option<String>,
    #[schema(max_length = 255)]
    utm_campaign: Option<String>,
    #[schema(max_length = 255)]
    utm_term: Option<String>,
    #[schema(max_length = 255)]
    utm_content: Option<String>,
    /// An absolute URL; only its host is kept.
    #[schema(max_length = 2048)]
    referrer: Option<String>,
    #[schema(max_length = 512)]
    gclid: Option<String>,
    #[schema(max_length = 512)]
    gbraid: Option<String>,
    #[schema(max_length = 512)]
    wbraid: Option<String>,
    #[schema(max_length = 512)]
    msclkid: Option<String>,
    #[schema(max_length = 512)]
    fbclid: Option<String>,
    #[schema(max_length = 512)]
    ttclid: Option<String>,
    #[schema(max_length = 512)]
    li_fat_id: Option<String>,
    /// Custom data, nested at most 8 deep; no personal data (names, e-mail addresses, phone
    /// numbers...) at any depth. The whole event is at most 32 KiB.
    #[schema(value_type = Option<Object>)]
    properties: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A batch: at most 1000 events and 1 MiB, as `{"events": [...]}` or a bare array. Each item
/// is checked on its own against [`EventBody`]: one that is not a valid event (even `null`)
/// comes back `rejected` in its result without failing the others, so an item can be any JSON.
#[derive(ToSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "a schema only: batches are read from raw JSON")]
pub enum BatchBody {
    Wrapped(BatchObject),
    Bare(Vec<serde_json::Value>),
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "a schema only: batches are read from raw JSON")]
pub struct BatchObject {
    /// At most 1000 (more is a 413). Not stated as `maxItems`: schemathesis' generator fails
    /// on a 1000-item array of free-form items.
    events: Vec<serde_json::Value>,
}

/// A known currency, or blank (then the tenant's).
fn currency() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(tally_store::doc::currencies())
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^\s*$")),
            )
            .build(),
    )
}

fn revenue() -> Schema {
    let either = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^\s*\+?[0-9]*(\.[0-9]*)?\s*$")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build();
    Schema::OneOf(either)
}
