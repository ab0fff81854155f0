//! The demo month, generated from a seed: the tracking events a small shop's site sends and the
//! webhook deliveries its four payment vendors send, as plain request bodies. Nothing here talks
//! to a server; [`super::load`] sends it.
//!
//! Every id and every timestamp follows from the seed and the month's end, so generating twice
//! gives byte-identical bodies: a rerun sends exact duplicates, which Tally answers as such.

use chrono::{DateTime, Datelike, TimeDelta, Utc, Weekday};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Map, Value, json};
use tally_payments::Source;
use tally_payments::testing::payloads;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub days: u32,
    /// Visitors on an average weekday (weekends bring more).
    pub visitors_per_day: u32,
    /// Every event and payment happens before this instant.
    pub end: DateTime<Utc>,
}

/// One signed webhook request to be: the vendor, its topic, the id that travels in the vendor's
/// headers (Shopify's event id, PayPal's transmission id) and the raw body.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub source: Source,
    pub topic: &'static str,
    pub id: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Month {
    /// Valid tracking events in time order, exact re-sends included.
    pub events: Vec<Value>,
    /// Events the API refuses, so the dead-letter queue has something to show.
    pub invalid: Vec<Value>,
    /// Each order's deliveries in the order they must arrive (a refund may come before its
    /// payment); orders are independent of each other.
    pub deliveries: Vec<Vec<Delivery>>,
}

impl Month {
    pub fn delivery_count(&self) -> usize {
        self.deliveries.iter().map(Vec::len).sum()
    }
}

/// The shop's currency; one order is paid in [`OTHER_CURRENCY`] to show a currency mismatch.
pub const CURRENCY: &str = "EUR";
const OTHER_CURRENCY: &str = "USD";

/// How a visit arrived. Each maps to a different taxonomy channel by Tally's default rules.
#[derive(Debug, Clone, Copy)]
enum Arrival {
    GoogleAds,
    MicrosoftAds,
    MetaAds,
    TikTokAds,
    GoogleDisplay,
    OrganicSearch,
    OrganicSocial,
    Email,
    Affiliate,
    Referral,
    Direct,
}

/// Arrivals and their weights: paid search and organic search bring most visits.
const ARRIVALS: [(Arrival, u32); 11] = [
    (Arrival::GoogleAds, 22),
    (Arrival::MicrosoftAds, 5),
    (Arrival::MetaAds, 14),
    (Arrival::TikTokAds, 7),
    (Arrival::GoogleDisplay, 5),
    (Arrival::OrganicSearch, 18),
    (Arrival::OrganicSocial, 6),
    (Arrival::Email, 9),
    (Arrival::Affiliate, 4),
    (Arrival::Referral, 4),
    (Arrival::Direct, 6),
];

/// What happens to a tracked order on the payment side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Paid,
    /// Paid, but not the tracked amount (a voucher applied at checkout, shipping added).
    PaidOtherAmount,
    /// Paid in another currency than the one tracked.
    PaidOtherCurrency,
    /// Never paid (abandoned bank transfer).
    Unpaid,
    Refunded,
    PartiallyRefunded,
    /// Fully refunded, the refund's webhook arriving before the payment's.
    RefundedBeforePaid,
    /// Paid; the site reported the purchase twice with two event ids.
    TrackedTwice,
}

const FATES: [(Fate, u32); 8] = [
    (Fate::Paid, 780),
    (Fate::PaidOtherAmount, 40),
    (Fate::PaidOtherCurrency, 10),
    (Fate::Unpaid, 50),
    (Fate::Refunded, 40),
    (Fate::PartiallyRefunded, 40),
    (Fate::RefundedBeforePaid, 10),
    (Fate::TrackedTwice, 30),
];

/// The first orders (oldest first) get these fates, so that even a two-day demo shows every
/// reconciliation status; the newest order stays unpaid too (awaiting payment).
const GUARANTEED: [Fate; 7] = [
    Fate::Unpaid,
    Fate::PaidOtherCurrency,
    Fate::PaidOtherAmount,
    Fate::Refunded,
    Fate::PartiallyRefunded,
    Fate::RefundedBeforePaid,
    Fate::TrackedTwice,
];

struct Order {
    number: u64,
    at: DateTime<Utc>,
    cents: i64,
    session: String,
    anonymous_id: String,
}

pub fn generate(plan: &Plan) -> Month {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    let start = plan.end - TimeDelta::days(plan.days.into());
    let mut month = Month::default();
    let mut orders = Vec::new();
    for day in 0..plan.days {
        let midnight = start + TimeDelta::days(day.into());
        let weekend = matches!(midnight.weekday(), Weekday::Sat | Weekday::Sun);
        let factor = if weekend { 1.3 } else { 1.0 } * rng.random_range(0.85..1.15);
        let visitors = (f64::from(plan.visitors_per_day) * factor).round() as u32;
        for visitor in 0..visitors {
            let first = midnight + TimeDelta::seconds(rng.random_range(0..86_400));
            visit(
                &mut rng,
                plan.end,
                day,
                visitor,
                first,
                &mut month,
                &mut orders,
            );
        }
    }
    month
        .events
        .sort_by(|a, b| a["occurred_at"].as_str().cmp(&b["occurred_at"].as_str()));
    orders.sort_by_key(|o| o.at);
    pay(&mut rng, plan, &orders, &mut month);
    month.invalid = invalid_events(start);
    month
}

/// One visitor's journey: one to five visits over the following days, each from a channel, and
/// maybe a purchase after the last.
fn visit(
    rng: &mut ChaCha8Rng,
    end: DateTime<Utc>,
    day: u32,
    visitor: u32,
    first: DateTime<Utc>,
    month: &mut Month,
    orders: &mut Vec<Order>,
) {
    let anonymous_id = format!("demo-anon-{day}-{visitor}");
    let touches = *[1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5]
        .choose(rng)
        .expect("non-empty");
    let mut at = first;
    let mut last = first;
    let mut session = String::new();
    for touch in 0..touches {
        if at >= end {
            break;
        }
        last = at;
        session = format!("demo-s-{day}-{visitor}-{touch}");
        let arrival = ARRIVALS
            .choose_weighted(rng, |(_, w)| *w)
            .expect("weights")
            .0;
        let mut event = arrival_fields(rng, arrival);
        event.insert(
            "event_id".into(),
            json!(format!("demo-{day}-{visitor}-{touch}")),
        );
        event.insert("occurred_at".into(), json!(rfc3339(at)));
        event.insert("session_id".into(), json!(session));
        event.insert("anonymous_id".into(), json!(anonymous_id));
        event.insert(
            "properties".into(),
            json!({"path": *["/", "/sale", "/products/kettle", "/products/mug", "/blog/brewing"].choose(rng).expect("non-empty")}),
        );
        push(rng, &mut month.events, Value::Object(event));
        at += TimeDelta::minutes(rng.random_range(20..2_160));
    }
    // More visits, more intent.
    let converts = rng.random_bool(0.03 + 0.025 * f64::from(touches));
    let bought = last + TimeDelta::minutes(rng.random_range(2..40));
    if !converts || bought >= end {
        return;
    }
    let order = Order {
        number: 100_000 + orders.len() as u64,
        at: bought,
        cents: rng.random_range(12..240) * 100
            + *[0, 49, 90, 95, 99].choose(rng).expect("non-empty"),
        session,
        anonymous_id,
    };
    month
        .events
        .push(purchase(&format!("demo-{day}-{visitor}-purchase"), &order));
    orders.push(order);
}

/// Adds `event`, and now and then an exact re-send of it (a tracker retrying after a timeout).
fn push(rng: &mut ChaCha8Rng, events: &mut Vec<Value>, event: Value) {
    if rng.random_bool(0.01) {
        events.push(event.clone());
    }
    events.push(event);
}

fn purchase(event_id: &str, order: &Order) -> Value {
    json!({
        "event_id": event_id,
        "type": "purchase",
        "occurred_at": rfc3339(order.at),
        "session_id": order.session,
        "anonymous_id": order.anonymous_id,
        "order_id": order.number.to_string(),
        "revenue": decimal(order.cents),
        "currency": CURRENCY,
        "properties": {"items": 1 + order.cents % 3},
    })
}

/// The members a tracker sends for a visit that arrived this way: UTM tags, click ids,
/// referrers, and the event type.
fn arrival_fields(rng: &mut ChaCha8Rng, arrival: Arrival) -> Map<String, Value> {
    let click_id =
        |rng: &mut ChaCha8Rng, prefix: &str| format!("{prefix}{:016x}", rng.random::<u64>());
    let value = match arrival {
        Arrival::GoogleAds => json!({
            "type": "ad_click", "gclid": click_id(rng, "Cj0KCQ"), "utm_source": "google",
            "utm_medium": "cpc",
            "utm_campaign": *["brand", "shopping-kettles", "black-friday"].choose(rng).expect("non-empty"),
            "utm_term": "electric kettle"}),
        Arrival::MicrosoftAds => json!({
            "type": "ad_click", "msclkid": click_id(rng, ""), "utm_source": "bing",
            "utm_medium": "cpc", "utm_campaign": "brand"}),
        Arrival::MetaAds => json!({
            "type": "ad_click", "fbclid": click_id(rng, "IwAR"), "utm_source": "facebook",
            "utm_medium": "paid_social",
            "utm_campaign": *["prospecting", "retargeting"].choose(rng).expect("non-empty"),
            "utm_content": "carousel"}),
        Arrival::TikTokAds => json!({
            "type": "ad_click", "ttclid": click_id(rng, "E.C.P."), "utm_source": "tiktok",
            "utm_medium": "paid_social", "utm_campaign": "creator-unboxing"}),
        Arrival::GoogleDisplay => json!({
            "type": "ad_click", "utm_source": "google", "utm_medium": "display",
            "utm_campaign": "remarketing"}),
        Arrival::OrganicSearch => json!({
            "type": "page_view",
            "referrer": *["https://www.google.com/", "https://www.google.de/", "https://duckduckgo.com/", "https://www.bing.com/"].choose(rng).expect("non-empty")}),
        Arrival::OrganicSocial => json!({
            "type": "link_click", "utm_source": "instagram", "utm_medium": "social",
            "referrer": "https://l.instagram.com/"}),
        Arrival::Email => json!({
            "type": "email_click", "utm_source": "newsletter", "utm_medium": "email",
            "utm_campaign": *["weekly-digest", "winback", "black-friday-teaser"].choose(rng).expect("non-empty")}),
        Arrival::Affiliate => json!({
            "type": "link_click", "utm_source": "awin", "utm_medium": "affiliate",
            "utm_campaign": "coffee-blogs", "referrer": "https://www.brew-guide.example/best-kettles"}),
        Arrival::Referral => json!({
            "type": "page_view",
            "referrer": *["https://news.ycombinator.com/item", "https://www.reddit.com/r/coffee/"].choose(rng).expect("non-empty")}),
        Arrival::Direct => json!({"type": "session_start"}),
    };
    match value {
        Value::Object(map) => map,
        _ => unreachable!("every arrival is an object literal"),
    }
}

/// The payment side of every order, plus payments for orders tracking never saw.
fn pay(rng: &mut ChaCha8Rng, plan: &Plan, orders: &[Order], month: &mut Month) {
    let guaranteed = orders.len() > GUARANTEED.len();
    for (i, order) in orders.iter().enumerate() {
        let fate = match (guaranteed, GUARANTEED.get(i)) {
            (true, Some(fate)) => *fate,
            (true, None) if i + 1 == orders.len() => Fate::Unpaid,
            _ => FATES.choose_weighted(rng, |(_, w)| *w).expect("weights").0,
        };
        if fate == Fate::TrackedTwice {
            // The thank-you page fired again on reload.
            let mut again = purchase(&format!("demo-order-{}-again", order.number), order);
            again["occurred_at"] = json!(rfc3339(order.at + TimeDelta::seconds(30)));
            month.events.push(again);
        }
        let deliveries = order_deliveries(rng, order, fate, plan.end);
        if !deliveries.is_empty() {
            month.deliveries.push(deliveries);
        }
    }
    // Phone orders and invoices: paid, never tracked.
    let untracked = (orders.len() / 50).max(1);
    let start = plan.end - TimeDelta::days(plan.days.into());
    let span = (plan.end - start).num_seconds().max(1);
    for i in 0..untracked {
        let order = Order {
            number: 900_000 + i as u64,
            at: start + TimeDelta::seconds(rng.random_range(0..span)),
            cents: rng.random_range(30..400) * 100,
            session: String::new(),
            anonymous_id: String::new(),
        };
        month
            .deliveries
            .push(order_deliveries(rng, &order, Fate::Paid, plan.end));
    }
}

fn order_deliveries(
    rng: &mut ChaCha8Rng,
    order: &Order,
    fate: Fate,
    end: DateTime<Utc>,
) -> Vec<Delivery> {
    let paid_at = (order.at + TimeDelta::seconds(rng.random_range(5..300))).min(end);
    let refunded_at = (paid_at + TimeDelta::hours(rng.random_range(2..96))).min(end);
    let (source, cents, currency) = match fate {
        Fate::Unpaid => return Vec::new(),
        Fate::PaidOtherCurrency => (Source::Stripe, order.cents, OTHER_CURRENCY),
        Fate::PaidOtherAmount => {
            let source = *[Source::Shopify, Source::Stripe, Source::WooCommerce]
                .choose(rng)
                .expect("non-empty");
            (source, order.cents - 500, CURRENCY)
        }
        Fate::Refunded | Fate::PartiallyRefunded => {
            let source = *[Source::Shopify, Source::PayPal]
                .choose(rng)
                .expect("non-empty");
            (source, order.cents, CURRENCY)
        }
        Fate::RefundedBeforePaid => (Source::PayPal, order.cents, CURRENCY),
        Fate::Paid | Fate::TrackedTwice => {
            let vendors = [
                (Source::Shopify, 40),
                (Source::Stripe, 30),
                (Source::PayPal, 20),
                (Source::WooCommerce, 10),
            ];
            let source = vendors
                .choose_weighted(rng, |(_, w)| *w)
                .expect("weights")
                .0;
            (source, order.cents, CURRENCY)
        }
    };
    let payment = payment(source, order.number, cents, currency, paid_at);
    let mut deliveries = match fate {
        Fate::Refunded => vec![payment, refund(source, order.number, cents, refunded_at)],
        Fate::PartiallyRefunded => {
            let part = (cents / 4).max(1);
            vec![payment, refund(source, order.number, part, refunded_at)]
        }
        Fate::RefundedBeforePaid => vec![refund(source, order.number, cents, paid_at), payment],
        _ => vec![payment],
    };
    // A vendor retrying a delivery it thinks failed.
    if rng.random_bool(0.03) {
        deliveries.push(deliveries[0].clone());
    }
    deliveries
}

fn payment(source: Source, number: u64, cents: i64, currency: &str, at: DateTime<Utc>) -> Delivery {
    let amount = decimal(cents);
    let (topic, id, body) = match source {
        Source::Shopify => {
            let body = payloads::shopify_order(number, &amount, currency, "paid");
            (
                "orders/paid",
                format!("demo-shopify-{number}-paid"),
                retimed(
                    &body,
                    &["created_at", "processed_at", "updated_at"],
                    rfc3339(at),
                ),
            )
        }
        Source::Stripe => {
            let intent = format!("pi_demo_{number}");
            let object = payloads::stripe_payment_intent(
                &intent,
                cents,
                &currency.to_lowercase(),
                &number.to_string(),
            );
            let id = format!("evt_demo_{number}_paid");
            let body = payloads::stripe_event(&id, "payment_intent.succeeded", object, None);
            ("payment_intent.succeeded", id, retimed_unix(&body, at))
        }
        Source::PayPal => {
            let mut resource = payloads::paypal_resource(
                &format!("CAP-DEMO-{number}"),
                &amount,
                currency,
                Some(&number.to_string()),
            );
            resource["create_time"] = json!(rfc3339(at));
            resource["update_time"] = json!(rfc3339(at));
            let id = format!("WH-DEMO-{number}-CAPTURE");
            let body = payloads::paypal_event(&id, "PAYMENT.CAPTURE.COMPLETED", resource);
            ("PAYMENT.CAPTURE.COMPLETED", id, body)
        }
        Source::WooCommerce => {
            let naive = woo_time(at);
            let body = payloads::woo_order(number, "processing", &amount, currency, &naive, &[]);
            (
                "order.updated",
                format!("demo-woo-{number}-paid"),
                retimed(&body, &["date_created_gmt", "date_paid_gmt"], naive),
            )
        }
    };
    Delivery {
        source,
        topic,
        id,
        body,
    }
}

/// A refund of `cents` of order `number`; only the vendors [`order_deliveries`] refunds with.
fn refund(source: Source, number: u64, cents: i64, at: DateTime<Utc>) -> Delivery {
    let amount = decimal(cents);
    match source {
        Source::Shopify => {
            let body = payloads::shopify_refund(
                number,
                number,
                CURRENCY,
                &[("refund", "success", &amount)],
            );
            Delivery {
                source,
                topic: "refunds/create",
                id: format!("demo-shopify-{number}-refund"),
                body: retimed(&body, &["created_at", "processed_at"], rfc3339(at)),
            }
        }
        Source::PayPal => {
            let mut resource = payloads::paypal_resource(
                &format!("REF-DEMO-{number}"),
                &amount,
                CURRENCY,
                Some(&number.to_string()),
            );
            resource["create_time"] = json!(rfc3339(at));
            resource["update_time"] = json!(rfc3339(at));
            let id = format!("WH-DEMO-{number}-REFUND");
            Delivery {
                source,
                topic: "PAYMENT.CAPTURE.REFUNDED",
                body: payloads::paypal_event(&id, "PAYMENT.CAPTURE.REFUNDED", resource),
                id,
            }
        }
        Source::Stripe | Source::WooCommerce => {
            unreachable!("the demo refunds through Shopify and PayPal only")
        }
    }
}

/// Events a buggy tracker might send: each is refused and kept as a dead letter.
fn invalid_events(start: DateTime<Utc>) -> Vec<Value> {
    let at = rfc3339(start + TimeDelta::hours(6));
    vec![
        json!({"event_id": "demo-invalid-no-revenue", "type": "purchase", "occurred_at": at,
               "session_id": "demo-broken", "order_id": "demo-broken-1"}),
        json!({"event_id": "demo-invalid-type", "type": "add_to_cart", "occurred_at": at,
               "session_id": "demo-broken"}),
        json!({"event_id": "demo-invalid-time", "type": "page_view", "occurred_at": "yesterday",
               "session_id": "demo-broken"}),
        json!({"event_id": "demo-invalid-pii", "type": "page_view", "occurred_at": at,
               "session_id": "demo-broken",
               "properties": {"customer_email": "ada@example.com"}}),
    ]
}

/// The payload builders stamp fixed times; the demo's payments happen across the month.
fn retimed(body: &[u8], fields: &[&str], at: String) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(body).expect("a builder's body is JSON");
    for field in fields {
        value[*field] = json!(at);
    }
    serde_json::to_vec(&value).expect("JSON serialises")
}

/// Stripe's events carry unix seconds.
fn retimed_unix(body: &[u8], at: DateTime<Utc>) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(body).expect("a builder's body is JSON");
    value["created"] = json!(at.timestamp());
    value["data"]["object"]["created"] = json!(at.timestamp());
    serde_json::to_vec(&value).expect("JSON serialises")
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// WooCommerce's `_gmt` dates: UTC without an offset.
fn woo_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Two-decimal money text (EUR and USD have two minor digits).
fn decimal(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(seed: u64) -> Plan {
        Plan {
            seed,
            days: 3,
            visitors_per_day: 60,
            end: DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
                .expect("valid")
                .to_utc(),
        }
    }

    fn bodies(m: &Month) -> (String, Vec<Vec<u8>>) {
        let events = serde_json::to_string(&m.events).expect("serialises");
        let deliveries = m
            .deliveries
            .iter()
            .flatten()
            .map(|d| d.body.clone())
            .collect();
        (events, deliveries)
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() {
        assert_eq!(bodies(&generate(&plan(7))), bodies(&generate(&plan(7))));
        assert_ne!(bodies(&generate(&plan(7))), bodies(&generate(&plan(8))));
    }

    #[test]
    fn everything_happens_before_the_end() {
        let p = plan(1);
        let m = generate(&p);
        let end = rfc3339(p.end);
        assert!(
            m.events
                .iter()
                .all(|e| e["occurred_at"].as_str().unwrap() < end.as_str())
        );
        assert!(m.events.iter().any(|e| e["type"] == "purchase"));
    }
}
