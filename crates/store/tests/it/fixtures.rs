//! One row in every tenant table for a tenant, written as the owner acting for that tenant.

use sqlx::{Connection, PgConnection};
use tally_store::testing::TestDb;
use uuid::Uuid;

pub async fn owner(t: &TestDb) -> PgConnection {
    PgConnection::connect(&t.cfg.owner_url).await.unwrap()
}

pub async fn as_role(t: &TestDb, role: &str) -> PgConnection {
    PgConnection::connect(&t.url_as(role)).await.unwrap()
}

/// Seeds `tenant` with one row in each tenant table and returns the conversion event id.
pub async fn seed_tenant(conn: &mut PgConnection, tenant: Uuid) -> Uuid {
    let event = Uuid::now_v7();
    let endpoint = Uuid::now_v7();
    let sql = format!(
        r#"
        BEGIN;
        SELECT set_config('app.current_tenant_id', '{tenant}', true);
        INSERT INTO tenants (tenant_id, name) VALUES ('{tenant}', 'shop {tenant}');
        INSERT INTO tenant_settings (tenant_id) VALUES ('{tenant}');
        INSERT INTO api_keys (tenant_id, key_id, prefix, secret_sha256, scopes)
            VALUES ('{tenant}', tally_uuid_v7(), 'tk_abcdefgh', sha256('{tenant}'::text::bytea), ARRAY['read']);
        INSERT INTO webhook_endpoints (tenant_id, endpoint_id, source, secret)
            VALUES ('{tenant}', '{endpoint}', 'shopify', 'shh');
        INSERT INTO tenant_channel_rules (tenant_id, rule_id, priority, utm_source, channel_code)
            VALUES ('{tenant}', tally_uuid_v7(), 10, 'partner', 'affiliate');
        INSERT INTO attribution_events (tenant_id, id, event_id, payload_sha256, kind, event_type, occurred_at,
                session_id, revenue_cents, currency, channel_code, correlation_id, properties)
            VALUES ('{tenant}', '{event}', 'evt-1', sha256('x'), 'conversion', 'purchase', now(),
                's1', 1999, 'USD', 'direct', 'corr', '{{"sku": "A-1"}}');
        INSERT INTO dead_events (tenant_id, id, source, error_code, payload, correlation_id)
            VALUES ('{tenant}', tally_uuid_v7(), 'api', 'validation_failed', '{{"type": "x"}}', 'corr');
        INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, source, delivery_key, topic, payload, body_sha256, status, correlation_id)
            VALUES ('{tenant}', tally_uuid_v7(), '{endpoint}', 'shopify', 'd1', 'orders/paid', '{{}}', sha256('b'), 'posted', 'corr');
        INSERT INTO revenue_ledger (tenant_id, id, source, external_id, entry_type, amount_cents, currency, occurred_at, correlation_id)
            VALUES ('{tenant}', tally_uuid_v7(), 'shopify', 'pay-1', 'payment', 1999, 'USD', now(), 'corr');
        INSERT INTO attribution_splits (tenant_id, conversion_id, model_version, models, channels, cents, weights, currency, occurred_at)
            VALUES ('{tenant}', '{event}', 'v1', '{{linear}}', '{{direct}}', '{{1999}}', '{{1}}', 'USD', now());
        INSERT INTO conversion_paths (tenant_id, model_version, conversion_id, occurred_at, currency, revenue_cents, path)
            VALUES ('{tenant}', 'v1', '{event}', now(), 'USD', 1999, ARRAY['direct']);
        INSERT INTO attribution_recompute_jobs (tenant_id, id, window_start, window_end, model_version, status)
            VALUES ('{tenant}', tally_uuid_v7(), now() - interval '1 day', now(), 'v1', 'pending');
        INSERT INTO worker_failed_jobs (tenant_id, id, job_id, kind, payload, attempts, error, correlation_id)
            VALUES ('{tenant}', tally_uuid_v7(), tally_uuid_v7(), 'noop', '{{}}', 3, 'boom', 'corr');
        -- The ledger row above scheduled a reconciliation run (and its job) and a live delta.
        INSERT INTO reconciliation_items (tenant_id, run_id, order_id, status, conversion_id, verified_cents,
                paid_cents, reversed_cents, postings)
            SELECT '{tenant}', id, 'o1', 'matched', '{event}', 1999, 1999, 0, 1 FROM reconciliation_runs;
        INSERT INTO revenue_rollups (tenant_id, model_version, grain, bucket_start, time_zone, model, channel_code, currency, claimed_cents)
            VALUES ('{tenant}', 'v1', 'hour', date_trunc('hour', now()), 'UTC', 'linear', 'direct', 'USD', 1999);
        INSERT INTO unattributed_rollups (tenant_id, grain, bucket_start, time_zone, currency, orders, verified_cents)
            VALUES ('{tenant}', 'hour', date_trunc('hour', now()), 'UTC', 'USD', 1, 500);
        INSERT INTO live_totals (tenant_id, stream, bucket_start, currency, events, cents, last_at)
            VALUES ('{tenant}', 'tracked', tally_quarter_hour(now()), 'USD', 1, 1999, now());
        INSERT INTO idempotency_keys (tenant_id, route, key, request_sha256, status, response_body)
            VALUES ('{tenant}', '/v1/keys', 'k1', sha256('r'), 201, '\x7b7d');
        INSERT INTO dashboard_sessions (tenant_id, key_id, token_sha256, expires_at)
            SELECT '{tenant}', key_id, sha256(('session ' || '{tenant}')::bytea), now() + interval '1 hour'
            FROM api_keys WHERE tenant_id = '{tenant}';
        INSERT INTO identity_links (tenant_id, session_id, anonymous_id, occurred_at, source)
            VALUES ('{tenant}', 's-1', 'a-1', now(), 'event');
        INSERT INTO identity_members (tenant_id, identity, component)
            VALUES ('{tenant}', 's:s-1', 'a:a-1');
        INSERT INTO identity_fold_marks (tenant_id, folded_through) VALUES ('{tenant}', 1);
        INSERT INTO identity_rejected_links (tenant_id, link_seq, identity, other_identity,
                component_ids, other_ids, max_ids, occurred_at)
            VALUES ('{tenant}', 1, 'u:kiosk', 'a:a-2', 100, 1, 100, now());
        COMMIT;
        "#
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await
        .unwrap();
    event
}

/// Every table of the schema that carries a tenant_id.
pub async fn tenant_tables(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c
         JOIN information_schema.tables t USING (table_schema, table_name)
         WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id'
           AND t.table_type = 'BASE TABLE'
         ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}
