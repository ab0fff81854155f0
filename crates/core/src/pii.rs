//! Personal data in JSON: the app-side PII guard.
//!
//! Tally stores marketing signals, never people. Ingestion rejects an event that carries
//! personal data (layer 1, here), and a database trigger refuses whatever slips past
//! (layer 2, same [`PII_KEYS`] list). Rejected events are dead-lettered only after [`redact`],
//! so not even the dead-letter queue holds personal data.
//!
//! Three things make a JSON member personal data:
//!
//! - its **name** is on [`PII_KEYS`] after normalisation (the whole value is then personal,
//!   whatever it looks like: `{"address": {"city": ...}}` is reported once, at `/address`);
//! - a **string value** contains an e-mail address or is a phone number ([`classify_str`]);
//! - its **name itself** contains an e-mail address or is a phone number
//!   (`{"bob@example.com": 1}`). Such a finding's pointer ends in `[redacted]` instead of the
//!   name, because pointers are stored with the dead-lettered event.
//!
//! Numbers are never personal data here: a JSON number cannot hold an address, and a bare digit
//! run cannot be told from an id.

mod email;
mod keys;
mod phone;

pub use keys::{PII_KEYS, is_pii_key};

use crate::pointer::{self, Segment};
use serde_json::Value;

/// What replaces a personal-data string in a redacted payload.
pub const REDACTED: &str = "[redacted]";

/// Why a member was flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PiiReason {
    /// The member's name is on [`PII_KEYS`].
    Key,
    /// A string (value or member name) contains an e-mail address.
    EmailValue,
    /// A string (value or member name) is a phone number.
    PhoneValue,
}

/// One piece of personal data in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiFinding {
    /// RFC 6901 pointer to the member or array element, relative to the scanned value.
    pub pointer: String,
    pub reason: PiiReason,
}

/// Whether a string value is personal data: it contains an e-mail address (anywhere, including
/// percent-encoded in a URL), is a phone number as a whole, or holds an international one
/// (`"call +1 415 555 0100"`).
pub fn classify_str(s: &str) -> Option<PiiReason> {
    if email::contains_email(s) {
        Some(PiiReason::EmailValue)
    } else if phone::is_phone_number(s) || phone::contains_international_number(s) {
        Some(PiiReason::PhoneValue)
    } else {
        None
    }
}

/// Whether an object member's name makes it personal data, by the list or by its own text.
pub fn classify_key(key: &str) -> Option<PiiReason> {
    if is_pii_key(key) {
        Some(PiiReason::Key)
    } else {
        classify_str(key)
    }
}

/// All personal data in `value`, at any depth, in document order.
///
/// A member flagged by its name is not searched further: its whole value is personal.
pub fn find_pii(value: &Value) -> Vec<PiiFinding> {
    find_pii_under(value, "")
}

/// [`find_pii`] for a value that sits at `prefix` (a JSON pointer) inside a larger document.
pub(crate) fn find_pii_under(value: &Value, prefix: &str) -> Vec<PiiFinding> {
    let mut scan = Scan {
        prefix,
        path: Vec::new(),
        findings: Vec::new(),
    };
    scan.value(value);
    scan.findings
}

struct Scan<'a> {
    prefix: &'a str,
    path: Vec<Segment<'a>>,
    findings: Vec<PiiFinding>,
}

impl<'a> Scan<'a> {
    fn value(&mut self, value: &'a Value) {
        match value {
            Value::String(s) => {
                if let Some(reason) = classify_str(s) {
                    self.report(reason);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Segment::Index(i));
                    self.value(item);
                    self.path.pop();
                }
            }
            Value::Object(members) => {
                for (key, member) in members {
                    match classify_key(key) {
                        Some(PiiReason::Key) => {
                            self.path.push(Segment::Key(key));
                            self.report(PiiReason::Key);
                        }
                        Some(reason) => {
                            self.path.push(Segment::Redacted);
                            self.report(reason);
                        }
                        None => {
                            self.path.push(Segment::Key(key));
                            self.value(member);
                        }
                    }
                    self.path.pop();
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn report(&mut self, reason: PiiReason) {
        self.findings.push(PiiFinding {
            pointer: pointer::render(self.prefix, &self.path),
            reason,
        });
    }
}

/// Removes personal data from `value` in place, so that [`find_pii`] finds nothing afterwards.
///
/// Object members are **removed** when their name or their string value is personal data;
/// array elements that are personal strings are **replaced** by [`REDACTED`], which keeps the
/// positions (and so the field errors' pointers) of their siblings. Removal rather than a
/// placeholder matters for dead-letter replay: a redacted `user_id` must come back absent, not
/// as a user called `[redacted]` that would merge strangers into one journey, and a removed
/// name no longer trips the database trigger.
pub fn redact(value: &mut Value) {
    match value {
        Value::String(s) => {
            if classify_str(s).is_some() {
                *s = REDACTED.to_owned();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::Object(members) => {
            members.retain(|key, member| {
                let personal_string =
                    matches!(member, Value::String(s) if classify_str(s).is_some());
                classify_key(key).is_none() && !personal_string
            });
            members.values_mut().for_each(redact);
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests;
