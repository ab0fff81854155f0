//! The PII trigger (layer 2) on every table that stores free-form JSON.

use crate::fixtures::{owner, seed_tenant};
use serde_json::json;
use sqlx::PgConnection;
use tally_store::testing::{TestDb, begin_for_tenant};
use uuid::Uuid;

async fn insert(
    conn: &mut PgConnection,
    tenant: Uuid,
    table: &str,
    doc: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    let mut tx = begin_for_tenant(conn, tenant).await;
    let sql = match table {
        "attribution_events" => "INSERT INTO attribution_events (tenant_id, id, event_id, payload_sha256, kind, event_type,
                occurred_at, session_id, channel_code, correlation_id, properties)
            VALUES ($1, tally_uuid_v7(), tally_uuid_v7()::text, sha256('p'), 'touch', 'page_view', now(), 's', 'direct', 'c', $2)",
        "dead_events" => "INSERT INTO dead_events (tenant_id, id, source, error_code, payload, correlation_id)
            VALUES ($1, tally_uuid_v7(), 'api', 'validation_failed', $2, 'c')",
        "webhook_deliveries" => "INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, source, delivery_key, topic, payload, body_sha256, status, correlation_id)
            SELECT $1, tally_uuid_v7(), endpoint_id, 'shopify', tally_uuid_v7()::text, 't', $2, sha256('b'), 'posted', 'c' FROM webhook_endpoints",
        other => panic!("no PII-guarded table {other}"),
    };
    sqlx::query(sql)
        .bind(tenant)
        .bind(doc)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

#[tokio::test]
async fn refuses_nested_pii_keys_and_accepts_clean_payloads() {
    let t = TestDb::new().await;
    let a = Uuid::now_v7();
    let mut own = owner(&t).await;
    seed_tenant(&mut own, a).await;
    let dirty = [
        json!({"email": "x"}),
        json!({"a": {"b": {"c": {"d": {"First_Name": "Ada"}}}}}),
        json!({"items": [{"meta": [{"deep": {"E-Mail": "x"}}]}]}),
        json!({"customer": {"phone number": "1"}}),
        json!({"billing": {"Street.Address": "1 Main St"}}),
        json!({"x": {"card-number": "4242"}}),
        json!({"net": {"IP_ADDRESS": "1.2.3.4"}}),
        json!({"SSN": "1"}),
        // Escaped characters inside a key are dropped by the normalisation, like separators.
        json!({"x": [{"e\"mail": "a"}]}),
        json!({"e\nmail": 1}),
        json!({"phone\\": 1}),
    ];
    let clean = json!({"sku": "A-1", "items": [{"name": "Tee", "qty": 2}], "emailed": false, "a": {"b": {"c": {"d": {"e": 1}}}}});
    for table in ["attribution_events", "dead_events", "webhook_deliveries"] {
        for doc in &dirty {
            let err = insert(&mut own, a, table, doc)
                .await
                .expect_err(&format!("{table} {doc}"));
            assert!(err.to_string().contains("personal data"), "{table}: {err}");
        }
        insert(&mut own, a, table, &clean)
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
    }
}

/// The triggers' WHEN clause calls `tally_pii_suspect`, which carries a regular expression
/// built from the key list when its migration ran (0013 and 0015): every listed key, however
/// decorated, must still reach the exact check, and a longer or shorter key must not.
#[tokio::test]
async fn the_stored_prefilter_catches_every_listed_key() {
    let t = TestDb::new().await;
    let a = Uuid::now_v7();
    let mut own = owner(&t).await;
    seed_tenant(&mut own, a).await;
    let keys: Vec<String> = sqlx::query_scalar("SELECT unnest(tally_pii_key_list())")
        .fetch_all(&mut own)
        .await
        .unwrap();
    assert!(keys.len() > 40, "{keys:?}");
    for key in &keys {
        let decorated: String = key
            .chars()
            .enumerate()
            .map(|(i, c)| match i % 3 {
                0 => c.to_ascii_uppercase().to_string(),
                1 => format!("_{c}"),
                _ => format!("-.{c}"),
            })
            .collect();
        for table in ["attribution_events", "dead_events", "webhook_deliveries"] {
            for doc in [
                json!({ key.as_str(): 1 }),
                json!({"a": [{"b": { format!(" {decorated}!"): "x" }}]}),
            ] {
                let err = insert(&mut own, a, table, &doc)
                    .await
                    .expect_err(&format!("{table} {doc}"));
                assert!(err.to_string().contains("personal data"), "{table}: {err}");
            }
            let near_misses = json!({ format!("{key}x"): 1, format!("x{key}"): 2 });
            insert(&mut own, a, table, &near_misses)
                .await
                .unwrap_or_else(|e| panic!("{table} {near_misses}: {e}"));
        }
    }
}
