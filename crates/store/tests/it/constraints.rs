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
/// every model's cents must add up to its revenue and stay off channels it did not credit, and
/// the models and channels (of the taxonomy) come in strictly ascending order, with matrices of
/// the right size, non-negative cents and weights in [0, 1].
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
        models: &'static str,
        channels: &'static str,
        cents: &'static str,
        weights: &'static str,
        shift: &'static str,
    }
    // The seeded conversion's revenue is 1999: first touch gives it all to direct, linear halves it.
    let ok = Split {
        conversion: Some(conversion_a),
        models: "{first_touch,linear}",
        channels: "{direct,email}",
        cents: "{1999,0,999,1000}",
        weights: "{1,0,0.5,0.5}",
        shift: "0",
    };
    let split = |s: Split| {
        let t = &t;
        async move {
            let mut conn = owner(t).await;
            let mut tx = begin_for_tenant(&mut conn, a).await;
            sqlx::query(
                "INSERT INTO attribution_splits (tenant_id, conversion_id, model_version, models,
                     channels, cents, weights, currency, occurred_at)
                 SELECT $1, e.id, 'v2', $3::text[], $4::text[], $5::bigint[], $6::float8[], 'USD',
                        e.occurred_at + $7::interval
                 FROM attribution_events e
                 WHERE e.id = coalesce($2, (SELECT id FROM attribution_events
                                            WHERE event_id = 'touch-1'))",
            )
            .bind(a)
            .bind(s.conversion)
            .bind(s.models)
            .bind(s.channels)
            .bind(s.cents)
            .bind(s.weights)
            .bind(s.shift)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
    };
    let check = "check constraint";
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
                cents: "{1998,0,998,1000}",
                ..ok
            },
            "short of the revenue",
            "does not match",
        ),
        (
            Split {
                cents: "{1999,0,999,999}",
                ..ok
            },
            "models disagree",
            "does not add up",
        ),
        (
            Split {
                cents: "{999,1000,999,1000}",
                ..ok
            },
            "cents off credit",
            "did not credit",
        ),
        (
            Split {
                weights: "{0,0,0.5,0.5}",
                cents: "{0,0,999,1000}",
                ..ok
            },
            "a model credits nothing",
            "credits no channel",
        ),
        (
            Split {
                channels: "{email,direct}",
                ..ok
            },
            "channels out of order",
            check,
        ),
        (
            Split {
                channels: "{email,email}",
                ..ok
            },
            "a channel twice",
            check,
        ),
        (
            Split {
                models: "{linear,first_touch}",
                ..ok
            },
            "models out of order",
            check,
        ),
        (
            Split {
                models: "{first_touch,lineal}",
                ..ok
            },
            "unknown model",
            check,
        ),
        (
            Split {
                weights: "{1,0,0.5}",
                ..ok
            },
            "matrices of different sizes",
            check,
        ),
        (
            Split {
                cents: "{1999,0,999,1000,0}",
                weights: "{1,0,0.5,0.5,0}",
                ..ok
            },
            "matrices not models × channels",
            check,
        ),
        (
            Split {
                cents: "{1999,0,2000,-1}",
                ..ok
            },
            "negative cents",
            check,
        ),
        (
            Split {
                weights: "{1,0,0.5,1.5}",
                ..ok
            },
            "weight above 1",
            check,
        ),
        (
            Split {
                weights: "{1,NULL,0.5,0.5}",
                ..ok
            },
            "a NULL weight",
            check,
        ),
        (
            Split {
                channels: "{}",
                cents: "{}",
                weights: "{}",
                ..ok
            },
            "no channel",
            check,
        ),
    ] {
        let err = split(bad).await.unwrap_err();
        assert!(err.to_string().contains(says), "{why}: {err}");
    }
    split(ok).await.unwrap();
    // The per-channel view lists the credited cells.
    let mut tx = begin_for_tenant(&mut own, a).await;
    let rows: Vec<(String, String, i64, f64)> = sqlx::query_as(
        "SELECT model, channel_code, allocated_cents, weight FROM attribution_allocations
         WHERE model_version = 'v2' ORDER BY model, channel_code",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            ("first_touch".into(), "direct".into(), 1999, 1.0),
            ("linear".into(), "direct".into(), 999, 0.5),
            ("linear".into(), "email".into(), 1000, 0.5),
        ]
    );
    // Another tenant's conversion is invisible under RLS: nothing to split, and writing its id
    // by hand is refused.
    let err = sqlx::query(
        "INSERT INTO attribution_splits (tenant_id, conversion_id, model_version, models,
             channels, cents, weights, currency, occurred_at)
         VALUES ($1, $2, 'v1', '{linear}', '{email}', '{1999}', '{1}', 'USD', now())",
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
