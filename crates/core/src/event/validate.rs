//! Event validation: every rule of the contract, every error collected in one pass.

use super::canonical::to_canonical_vec;
use super::{ClickIds, EventKind, EventType, FieldError, Utm, ValidEvent, codes};
use crate::channel::{ChannelResolver, ClickIdKind, TouchSignals, referrer_host};
use crate::money::{CurrencyCode, MAX_AMOUNT_MINOR, MoneyError};
use crate::pii::{self, PiiReason};
use crate::pointer::{self, Segment};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// Longest accepted id, utm tag or client event id, in characters.
pub const MAX_ID_CHARS: usize = 255;
/// Longest accepted click id; Google's `gbraid`/`wbraid` run longer than ordinary ids.
pub const MAX_CLICK_ID_CHARS: usize = 512;
pub const MAX_REFERRER_CHARS: usize = 2048;
/// Deepest nesting of `properties`, counting `properties` itself as 1.
pub const MAX_PROPERTIES_DEPTH: usize = 8;
/// Largest event, measured in canonical form. Every other member is short, so in practice this
/// bounds `properties`.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// How far ahead of the server clock `occurred_at` may be: client clocks drift.
pub const MAX_CLOCK_AHEAD: TimeDelta = TimeDelta::minutes(5);
/// 2000-01-01T00:00:00Z; anything earlier is a broken client clock or a unit mix-up.
const EARLIEST_UNIX_SECONDS: i64 = 946_684_800;

const UTM_FIELDS: [&str; 5] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
];

/// What validation needs besides the event: the clock and the tenant's settings.
#[derive(Debug, Clone, Copy)]
pub struct ValidationContext<'a> {
    /// The server's receive time; `occurred_at` is checked against it.
    pub now: DateTime<Utc>,
    /// The tenant's currency, used when a conversion has revenue but no `currency`.
    pub default_currency: Option<CurrencyCode>,
    /// The tenant's channel rules.
    pub resolver: &'a ChannelResolver,
}

/// Checks `raw` against the contract and normalises it, or returns every problem found.
pub fn validate(raw: &Value, ctx: &ValidationContext<'_>) -> Result<ValidEvent, Vec<FieldError>> {
    let Some(object) = raw.as_object() else {
        return Err(vec![FieldError {
            pointer: String::new(),
            code: codes::INVALID_TYPE,
            message: "an event must be a JSON object".into(),
        }]);
    };
    let mut v = Validator::default();
    let m = v.members(object);

    let event_id = v.text("event_id", m.event_id, TextRule::ID);
    let event_type = v.event_type(m.event_type);
    let occurred_at = v.occurred_at(m.occurred_at, ctx.now);
    let session_id = v.text("session_id", m.session_id, TextRule::REQUIRED_ID);
    let anonymous_id = v.text("anonymous_id", m.anonymous_id, TextRule::ID);
    let user_id = v.text("user_id", m.user_id, TextRule::ID);
    let order_id = v.text("order_id", m.order_id, TextRule::ID);
    let (revenue_cents, currency) = v
        .money(&m, event_type.map(EventType::kind), ctx.default_currency)
        .unzip();
    let [source, medium, campaign, term, content] =
        std::array::from_fn(|i| v.text(UTM_FIELDS[i], m.utm[i], TextRule::ID));
    let referrer_host = v.referrer(m.referrer);
    let mut click_ids = ClickIds::default();
    for kind in ClickIdKind::ALL {
        if let Some(id) = v.text(kind.as_str(), m.click_ids[kind.index()], TextRule::CLICK_ID) {
            click_ids.set(kind, id.to_owned());
        }
    }
    let properties = v.properties(m.properties);

    let canonical = to_canonical_vec(raw);
    if canonical.len() > MAX_EVENT_BYTES {
        v.push(
            if m.properties.is_some() {
                "/properties"
            } else {
                ""
            },
            codes::TOO_LARGE,
            format!(
                "the event is {} bytes in canonical form; the limit is {MAX_EVENT_BYTES}",
                canonical.len()
            ),
        );
    }

    // A required member that is missing or invalid has always recorded an error.
    let (Some(event_type), Some(occurred_at), Some(session_id)) =
        (event_type, occurred_at, session_id)
    else {
        return Err(v.errors);
    };
    if !v.errors.is_empty() {
        return Err(v.errors);
    }
    let payload_sha256: [u8; 32] = Sha256::digest(&canonical).into();
    let channel_code = ctx.resolver.resolve(&TouchSignals {
        utm_source: source,
        utm_medium: medium,
        referrer_host: referrer_host.as_deref(),
        click_ids: click_ids.kinds(),
    });
    let owned = |s: Option<&str>| s.map(str::to_owned);
    Ok(ValidEvent {
        event_id: event_id.map_or_else(
            || format!("sha256:{}", hex::encode(payload_sha256)),
            str::to_owned,
        ),
        payload_sha256,
        kind: event_type.kind(),
        event_type,
        occurred_at,
        session_id: session_id.to_owned(),
        anonymous_id: owned(anonymous_id),
        user_id: owned(user_id),
        order_id: owned(order_id),
        revenue_cents,
        currency,
        channel_code,
        utm: Utm {
            source: owned(source),
            medium: owned(medium),
            campaign: owned(campaign),
            term: owned(term),
            content: owned(content),
        },
        referrer_host,
        click_ids,
        properties: properties.cloned().unwrap_or_default(),
    })
}

/// The event-level code for a dead-lettered event: personal data is the more urgent news.
pub fn rejection_code(errors: &[FieldError]) -> &'static str {
    if errors.iter().any(|e| e.code == codes::PII_DETECTED) {
        codes::REJECTED_PII
    } else {
        codes::REJECTED_INVALID
    }
}

/// The event's members, sorted into slots by name.
#[derive(Default)]
struct Members<'a> {
    event_id: Option<&'a Value>,
    event_type: Option<&'a Value>,
    occurred_at: Option<&'a Value>,
    session_id: Option<&'a Value>,
    anonymous_id: Option<&'a Value>,
    user_id: Option<&'a Value>,
    order_id: Option<&'a Value>,
    revenue: Option<&'a Value>,
    currency: Option<&'a Value>,
    referrer: Option<&'a Value>,
    properties: Option<&'a Value>,
    utm: [Option<&'a Value>; UTM_FIELDS.len()],
    click_ids: [Option<&'a Value>; ClickIdKind::ALL.len()],
}

/// How a string member is checked. Every string member is also checked for personal data: even
/// one that is parsed (a type) or only partly kept (the referrer's host) is copied verbatim into
/// the dead-letter queue when the event is refused for another reason.
#[derive(Clone, Copy)]
pub(super) struct TextRule {
    max_chars: usize,
    required: bool,
}

impl TextRule {
    pub(super) const ID: TextRule = TextRule {
        max_chars: MAX_ID_CHARS,
        required: false,
    };
    pub(super) const REQUIRED_ID: TextRule = TextRule {
        required: true,
        ..TextRule::ID
    };
    const CLICK_ID: TextRule = TextRule {
        max_chars: MAX_CLICK_ID_CHARS,
        required: false,
    };
    const REFERRER: TextRule = TextRule {
        max_chars: MAX_REFERRER_CHARS,
        required: false,
    };
    /// Parsed into something else: a type, a timestamp, a currency.
    pub(super) const KEYWORD: TextRule = TextRule {
        max_chars: 64,
        required: false,
    };
    const REQUIRED_KEYWORD: TextRule = TextRule {
        required: true,
        ..TextRule::KEYWORD
    };
}

#[derive(Default)]
pub(super) struct Validator {
    pub(super) errors: Vec<FieldError>,
}

impl Validator {
    fn push(&mut self, pointer: impl Into<String>, code: &'static str, message: impl Into<String>) {
        self.errors.push(FieldError {
            pointer: pointer.into(),
            code,
            message: message.into(),
        });
    }

    fn push_member(&mut self, name: &str, code: &'static str, message: impl Into<String>) {
        self.push(format!("/{name}"), code, message);
    }

    fn members<'a>(&mut self, object: &'a Map<String, Value>) -> Members<'a> {
        let mut m = Members::default();
        for (name, value) in object {
            let slot = match name.as_str() {
                "event_id" => &mut m.event_id,
                "type" => &mut m.event_type,
                "occurred_at" => &mut m.occurred_at,
                "session_id" => &mut m.session_id,
                "anonymous_id" => &mut m.anonymous_id,
                "user_id" => &mut m.user_id,
                "order_id" => &mut m.order_id,
                "revenue" => &mut m.revenue,
                "currency" => &mut m.currency,
                "referrer" => &mut m.referrer,
                "properties" => &mut m.properties,
                other => {
                    if let Some(i) = UTM_FIELDS.iter().position(|field| *field == other) {
                        &mut m.utm[i]
                    } else if let Some(kind) = ClickIdKind::parse(other) {
                        &mut m.click_ids[kind.index()]
                    } else {
                        self.unknown_member(other);
                        continue;
                    }
                }
            };
            *slot = Some(value);
        }
        m
    }

    /// An unknown member is refused; one named by personal data is reported as such, without
    /// repeating a name that is itself an address.
    pub(super) fn unknown_member(&mut self, name: &str) {
        let (segment, code, message) = match pii::classify_key(name) {
            None => (
                Segment::Key(name),
                codes::UNKNOWN_FIELD,
                "is not part of the event contract; custom data goes in `properties`",
            ),
            Some(reason @ PiiReason::Key) => {
                (Segment::Key(name), codes::PII_DETECTED, pii_message(reason))
            }
            Some(reason) => (Segment::Redacted, codes::PII_DETECTED, pii_message(reason)),
        };
        self.push(pointer::render("", &[segment]), code, message);
    }

    /// A string member; `None` when absent or invalid (the error is recorded).
    pub(super) fn text<'a>(
        &mut self,
        name: &str,
        value: Option<&'a Value>,
        rule: TextRule,
    ) -> Option<&'a str> {
        let text = match value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()).filter(|s| !s.trim().is_empty()),
            Some(_) => {
                self.push_member(name, codes::INVALID_TYPE, "must be a string");
                return None;
            }
        };
        let Some(text) = text else {
            if rule.required {
                self.push_member(name, codes::REQUIRED, "is required");
            }
            return None;
        };
        if text.len() > rule.max_chars && text.chars().count() > rule.max_chars {
            let message = format!("must be at most {} characters", rule.max_chars);
            self.push_member(name, codes::TOO_LONG, message);
            return None;
        }
        if text.chars().any(char::is_control) {
            self.push_member(
                name,
                codes::INVALID_FORMAT,
                "must not contain control characters",
            );
            return None;
        }
        if let Some(reason) = pii::classify_str(text) {
            self.push_member(name, codes::PII_DETECTED, pii_message(reason));
            return None;
        }
        Some(text)
    }

    fn event_type(&mut self, value: Option<&Value>) -> Option<EventType> {
        let name = self.text("type", value, TextRule::REQUIRED_KEYWORD)?;
        let parsed = EventType::parse(name);
        if parsed.is_none() {
            let allowed: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            let message = format!("must be one of: {}", allowed.join(", "));
            self.push_member("type", codes::INVALID_VALUE, message);
        }
        parsed
    }

    fn occurred_at(&mut self, value: Option<&Value>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.instant("occurred_at", value, now, TextRule::REQUIRED_KEYWORD)
    }

    /// An RFC 3339 instant that is neither ahead of `now` by more than the clock drift allows
    /// nor before 2000.
    pub(super) fn instant(
        &mut self,
        name: &str,
        value: Option<&Value>,
        now: DateTime<Utc>,
        rule: TextRule,
    ) -> Option<DateTime<Utc>> {
        let text = self.text(name, value, rule)?;
        let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) else {
            let message = "must be an RFC 3339 timestamp with an offset, e.g. 2024-05-01T12:00:00Z";
            self.push_member(name, codes::INVALID_FORMAT, message);
            return None;
        };
        let at = at.with_timezone(&Utc);
        if at > now + MAX_CLOCK_AHEAD {
            let message = "is more than 5 minutes ahead of the server clock";
            self.push_member(name, codes::IN_FUTURE, message);
            None
        } else if at.timestamp() < EARLIEST_UNIX_SECONDS {
            self.push_member(name, codes::TOO_OLD, "is before the year 2000");
            None
        } else {
            Some(at)
        }
    }

    /// `revenue` and `currency` together: the amount only means something in its currency.
    fn money(
        &mut self,
        m: &Members<'_>,
        kind: Option<EventKind>,
        default_currency: Option<CurrencyCode>,
    ) -> Option<(i64, CurrencyCode)> {
        let revenue = m.revenue.filter(is_present);
        if kind == Some(EventKind::Touch) {
            if revenue.is_some() {
                let message = "touch events carry no revenue; send it on the conversion";
                self.push_member("revenue", codes::NOT_ALLOWED, message);
            }
            if m.currency.filter(is_present).is_some() {
                let message = "touch events carry no currency";
                self.push_member("currency", codes::NOT_ALLOWED, message);
            }
            return None;
        }
        // `Some(None)`: a currency was sent but is invalid, and that is already reported.
        let sent_currency = m.currency.filter(is_present).map(|value| {
            let code = self.text("currency", Some(value), TextRule::KEYWORD)?;
            let parsed = CurrencyCode::parse(code).ok();
            if parsed.is_none() {
                let message = "must be an ISO 4217 currency code with a minor unit, e.g. USD";
                self.push_member("currency", codes::INVALID_VALUE, message);
            }
            parsed
        });
        if kind == Some(EventKind::Conversion) && revenue.is_none() {
            let message = "conversions need revenue; send \"0\" when there is none";
            self.push_member("revenue", codes::REQUIRED, message);
        }
        let revenue = revenue?;
        let currency = match sent_currency {
            Some(parsed) => parsed?,
            None => {
                if default_currency.is_none() {
                    let message = "is required with revenue (the tenant has no default currency)";
                    self.push_member("currency", codes::REQUIRED, message);
                }
                default_currency?
            }
        };
        Some((self.amount(revenue, currency)?, currency))
    }

    fn amount(&mut self, revenue: &Value, currency: CurrencyCode) -> Option<i64> {
        let text = match revenue {
            Value::String(s) => Cow::Borrowed(s.as_str()),
            Value::Number(n) => match number_text(n) {
                Ok(text) => Cow::Owned(text),
                Err((code, message)) => {
                    self.push_member("revenue", code, message);
                    return None;
                }
            },
            _ => {
                let message = "must be a decimal string such as \"19.99\" or a JSON number";
                self.push_member("revenue", codes::INVALID_TYPE, message);
                return None;
            }
        };
        let (code, message) = match currency.parse_amount(&text) {
            Ok(amount) if amount >= 0 => return Some(amount),
            Ok(_) => (codes::OUT_OF_RANGE, "must not be negative".to_owned()),
            Err(MoneyError::NotDecimal(_)) => (
                codes::INVALID_FORMAT,
                "must be a plain decimal such as \"19.99\"".to_owned(),
            ),
            Err(MoneyError::TooPrecise { exponent, .. }) => (
                codes::TOO_PRECISE,
                format!("{currency} has {exponent} decimal places; the amount has more"),
            ),
            Err(MoneyError::OutOfRange(_) | MoneyError::UnknownCurrency(_)) => (
                codes::OUT_OF_RANGE,
                format!(
                    "must be at most {} {currency}",
                    currency.format_amount(MAX_AMOUNT_MINOR)
                ),
            ),
        };
        self.push_member("revenue", code, message);
        None
    }

    fn referrer(&mut self, value: Option<&Value>) -> Option<String> {
        let url = self.text("referrer", value, TextRule::REFERRER)?;
        let host = referrer_host(url);
        if host.is_none() {
            let message = "must be an absolute URL with a host";
            self.push_member("referrer", codes::INVALID_FORMAT, message);
        }
        host
    }

    fn properties<'a>(&mut self, value: Option<&'a Value>) -> Option<&'a Map<String, Value>> {
        let value = value?;
        let members = match value {
            Value::Null => return None,
            Value::Object(members) => members,
            _ => {
                self.push_member("properties", codes::INVALID_TYPE, "must be a JSON object");
                return None;
            }
        };
        if depth(value) > MAX_PROPERTIES_DEPTH {
            let message = format!("must not nest more than {MAX_PROPERTIES_DEPTH} levels deep");
            self.push_member("properties", codes::TOO_DEEP, message);
        }
        for finding in pii::find_pii_under(value, "/properties") {
            self.push(
                finding.pointer,
                codes::PII_DETECTED,
                pii_message(finding.reason),
            );
        }
        Some(members)
    }
}

/// The text of a JSON number for [`CurrencyCode::parse_amount`].
///
/// serde_json is built without `arbitrary_precision`, so a fractional number arrives as a
/// double and its original text is gone. A double's shortest decimal form is exact for any
/// decimal of up to 15 significant digits, which covers real prices; a number needing more
/// (`0.30000000000000004`, or a huge amount) is refused instead of being silently rounded.
/// Decimal strings have no such limit, which is why they are the recommended form.
fn number_text(n: &Number) -> Result<String, (&'static str, &'static str)> {
    let text = n.to_string();
    if !n.is_f64() {
        return Ok(text);
    }
    if text.contains(['e', 'E']) {
        return Err((
            codes::INVALID_FORMAT,
            "must be written without an exponent; send large or tiny amounts as a decimal string",
        ));
    }
    let significant = text
        .bytes()
        .filter(u8::is_ascii_digit)
        .skip_while(|&b| b == b'0')
        .count();
    if significant > 15 {
        return Err((
            codes::TOO_PRECISE,
            "has more digits than a JSON number carries exactly; send it as a decimal string",
        ));
    }
    Ok(text)
}

/// Whether an optional member counts as sent: `null` and blank strings do not.
fn is_present(value: &&Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        _ => true,
    }
}

/// Nesting depth of containers: a scalar is 0, `{}` is 1.
fn depth(value: &Value) -> usize {
    let children = match value {
        Value::Object(members) => members.values().map(depth).max(),
        Value::Array(items) => items.iter().map(depth).max(),
        _ => return 0,
    };
    1 + children.unwrap_or(0)
}

fn pii_message(reason: PiiReason) -> &'static str {
    match reason {
        PiiReason::Key => "names personal data, which Tally does not accept",
        PiiReason::EmailValue => "contains an e-mail address, which Tally does not accept",
        PiiReason::PhoneValue => "is or contains a phone number, which Tally does not accept",
    }
}
