//! Rough timing of event validation, the per-event cost on the ingestion path.
//!
//! `cargo run --release -p tally-core --example validate_bench [iterations]`

use chrono::Utc;
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;
use tally_core::channel::{ChannelResolver, default_rules};
use tally_core::event::{ValidationContext, validate};
use tally_core::money::CurrencyCode;

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let resolver = ChannelResolver::new(&default_rules(), &[]).expect("default rules compile");
    let ctx = ValidationContext {
        now: Utc::now(),
        default_currency: Some(CurrencyCode::parse("USD").expect("USD")),
        resolver: &resolver,
    };
    let events = [
        (
            "touch",
            json!({
                "event_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "type": "page_view",
                "occurred_at": "2024-06-01T11:00:00Z", "session_id": "sess_8f3a2c",
                "anonymous_id": "anon_51d0e7", "utm_source": "Google", "utm_medium": "cpc",
                "utm_campaign": "spring_sale", "referrer": "https://www.google.com/search?q=mugs",
                "gclid": "Cj0KCQjw8J6wBhDXARIsAPo7QA8",
                "properties": {"path": "/products/blue-mug", "title": "Blue Mug", "ab": "B"},
            }),
        ),
        (
            "purchase",
            json!({
                "type": "purchase", "occurred_at": "2024-06-01T11:05:00+02:00",
                "session_id": "sess_8f3a2c", "user_id": "cust_1042", "order_id": "ORD-2024-000123",
                "revenue": "59.97", "currency": "EUR",
                "properties": {"items": [
                    {"sku": "MUG-BL", "name": "Blue Mug", "qty": 3, "price": "19.99"}
                ], "coupon": "SPRING10"},
            }),
        ),
    ];
    for (name, event) in &events {
        validate(event, &ctx).expect("benchmark events are valid");
        let start = Instant::now();
        for _ in 0..iterations {
            black_box(validate(black_box(event), &ctx).is_ok());
        }
        let per_event = start.elapsed() / iterations;
        println!("{name:>8}: {per_event:?} per event");
    }
}
