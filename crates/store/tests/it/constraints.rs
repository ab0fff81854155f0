//! Constraints that keep the data model honest.

use crate::fixtures::{owner, seed_tenant};
use tally_store::testing::{TestDb, begin_for_tenant};
use uuid::Uuid;

async fn insert_event(
    t: &TestDb,
    tenant: Uuid,
    event_id: &str,
    channel: &str,
) -> Result<(), sqlx::Error> {
    let mut conn = owner(t).await;
    let mut tx = begin_for_tenant(&mut conn, tenant).await;
    sqlx::query(
        "INSERT INTO attribution_events (tenant_id, id, event_id, payload_sha256, kind, event_type,
            occurred_at, session_id, channel_code, correlation_id)
         VALUES ($1, tally_uuid_v7(), $2, sha256('p'), 'touch', 'page_view', now(), 's', $3, 'c')",
    )
    .bind(tenant)
    .bind(event_id)
    .bind(channel)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

#[tokio::test]
async fn channel_code_must_be_in_the_taxonomy() {
    let t = TestDb::new().await;
    let a = Uuid::now_v7();
    seed_tenant(&mut owner(&t).await, a).await;
    insert_event(&t, a, "e-ok", "paid_search_google")
        .await
        .unwrap();
    let err = insert_event(&t, a, "e-bad", "not_a_channel")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("foreign key"), "{err}");
}

#[tokio::test]
async fn event_id_is_unique_per_tenant_only() {
    let t = TestDb::new().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut own = owner(&t).await;
    seed_tenant(&mut own, a).await;
    seed_tenant(&mut own, b).await;
    insert_event(&t, a, "same-key", "direct").await.unwrap();
    let err = insert_event(&t, a, "same-key", "direct").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("attribution_events_tenant_id_event_id_key"),
        "{err}"
    );
    // Another tenant may use the same client key.
    insert_event(&t, b, "same-key", "direct").await.unwrap();
}

#[tokio::test]
async fn money_signs_and_windows_are_checked() {
    let t = TestDb::new().await;
    let a = Uuid::now_v7();
    let mut own = owner(&t).await;
    seed_tenant(&mut own, a).await;
    let mut tx = begin_for_tenant(&mut own, a).await;
    let err = sqlx::query(
        "INSERT INTO revenue_ledger (tenant_id, id, source, external_id, entry_type, amount_cents, currency, occurred_at, correlation_id)
         VALUES ($1, tally_uuid_v7(), 'stripe', 're_1', 'refund', 500, 'USD', now(), 'c')",
    )
    .bind(a)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("check constraint"), "{err}");
}

/// Splits are checked per statement (migrations 0130, 0150) rather than by per-row foreign keys:
/// each must name a conversion event of its own tenant, with that event's time and currency,
/// add up to its revenue, and name channels of the taxonomy, in strictly ascending order, with
/// parallel arrays of non-negative cents and weights in [0, 1].
#[tokio::test]
async fn splits_must_match_a_conversion_of_their_tenant() {
    let t = TestDb::new().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut own = owner(&t).await;
    let conversion_a = seed_tenant(&mut own, a).await;
    let conversion_b = seed_tenant(&mut own, b).await;
    insert_event(&t, a, "touch-1", "direct").await.unwrap();
    #[derive(Clone, Copy)]
    struct Split {
        conversion: Option<Uuid>,
        channels: &'static str,
        cents: &'static str,
        weights: &'static str,
        shift: &'static str,
    }
    let ok = Split {
        conversion: Some(conversion_a),
        channels: "{direct,email}",
        cents: "{999,1000}",
        weights: "{0.5,0.5}",
        shift: "0",
    };
    let split = |s: Split| {
        let t = &t;
        async move {
            let mut conn = owner(t).await;
            let mut tx = begin_for_tenant(&mut conn, a).await;
            sqlx::query(
                "INSERT INTO attribution_splits (tenant_id, conversion_id, model,
                     model_version, channels, cents, weights, currency, occurred_at)
                 SELECT $1, e.id, 'first_touch', 'v1', $3::text[], $4::bigint[], $5::float8[], 'USD',
                        e.occurred_at + $6::interval
                 FROM attribution_events e
                 WHERE e.id = coalesce($2, (SELECT id FROM attribution_events
                                            WHERE event_id = 'touch-1'))",
            )
            .bind(a)
            .bind(s.conversion)
            .bind(s.channels)
            .bind(s.cents)
            .bind(s.weights)
            .bind(s.shift)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
    };
    for (bad, why, says) in [
        (
            Split {
                conversion: None,
                ..ok
            },
            "a touch is not a conversion",
            "does not match a conversion",
        ),
        (
            Split {
                channels: "{direct,not_a_channel}",
                ..ok
            },
            "unknown channel",
            "unknown channel",
        ),
        (
            Split {
                shift: "1 second",
                ..ok
            },
            "not the conversion's time",
            "does not match",
        ),
        (
            Split {
                cents: "{999,999}",
                ..ok
            },
            "cents short of the revenue",
            "does not match",
        ),
        (
            Split {
                channels: "{email,direct}",
                ..ok
            },
            "channels out of order",
            "check constraint",
        ),
        (
            Split {
                channels: "{email,email}",
                ..ok
            },
            "a channel twice",
            "check constraint",
        ),
        (
            Split {
                weights: "{0.5}",
                ..ok
            },
            "arrays not parallel",
            "check constraint",
        ),
        (
            Split {
                cents: "{2000,-1}",
                ..ok
            },
            "negative cents",
            "check constraint",
        ),
        (
            Split {
                weights: "{0.5,1.5}",
                ..ok
            },
            "weight above 1",
            "check constraint",
        ),
        (
            Split {
                weights: "{0.5,NULL}",
                ..ok
            },
            "a NULL weight",
            "check constraint",
        ),
    ] {
        let err = split(bad).await.unwrap_err();
        assert!(err.to_string().contains(says), "{why}: {err}");
    }
    split(ok).await.unwrap();
    // The per-channel view reads the split back as rows.
    let mut tx = begin_for_tenant(&mut own, a).await;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT channel_code, allocated_cents FROM attribution_allocations
         WHERE model = 'first_touch' ORDER BY channel_code",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(rows, [("direct".into(), 999), ("email".into(), 1000)]);
    // Another tenant's conversion is invisible under RLS: nothing to split, and writing its id
    // by hand is refused.
    let err = sqlx::query(
        "INSERT INTO attribution_splits (tenant_id, conversion_id, model, model_version,
             channels, cents, weights, currency, occurred_at)
         VALUES ($1, $2, 'linear', 'v1', '{email}', '{1999}', '{1}', 'USD', now())",
    )
    .bind(a)
    .bind(conversion_b)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("does not match a conversion"),
        "{err}"
    );
}
