-- Tracking events (append-only), the dead-letter queue and the webhook inbox.

CREATE TABLE attribution_events (
    tenant_id       uuid NOT NULL REFERENCES tenants (tenant_id),
    id              uuid NOT NULL,
    -- The client's idempotency key (or sha256 of the canonical payload when it sent none).
    event_id        text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    -- Same event_id with the same hash is a duplicate; with another hash, a conflict.
    payload_sha256  bytea NOT NULL CHECK (length(payload_sha256) = 32),
    kind            text NOT NULL CHECK (kind IN ('touch', 'conversion')),
    event_type      text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 64),
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    session_id      text NOT NULL CHECK (length(session_id) BETWEEN 1 AND 255),
    anonymous_id    text CHECK (length(anonymous_id) <= 255),
    user_id         text CHECK (length(user_id) <= 255),
    order_id        text CHECK (length(order_id) <= 255),
    revenue_cents   bigint,
    currency        char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    channel_code    text NOT NULL REFERENCES channel_taxonomy (code),
    utm_source      text CHECK (length(utm_source) <= 255),
    utm_medium      text CHECK (length(utm_medium) <= 255),
    utm_campaign    text CHECK (length(utm_campaign) <= 255),
    utm_term        text CHECK (length(utm_term) <= 255),
    utm_content     text CHECK (length(utm_content) <= 255),
    referrer_host   text CHECK (length(referrer_host) <= 255),
    click_ids       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(click_ids) = 'object'),
    properties      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(properties) = 'object'),
    correlation_id  text NOT NULL CHECK (length(correlation_id) BETWEEN 1 AND 128),
    -- Set when the event came from replaying a dead-lettered one.
    replayed_from   uuid,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, event_id),
    -- A conversion carries its revenue (zero is allowed: a free order still converts); a touch
    -- carries none, so revenue can only be counted once per order.
    CHECK ((kind = 'conversion') = (revenue_cents IS NOT NULL)),
    CHECK (revenue_cents IS NULL OR (revenue_cents >= 0 AND currency IS NOT NULL))
);
-- Listing newest first and attribution windows both read by time.
CREATE INDEX attribution_events_by_time ON attribution_events (tenant_id, occurred_at DESC, id DESC);
CREATE INDEX attribution_events_by_session ON attribution_events (tenant_id, session_id);
CREATE INDEX attribution_events_by_order ON attribution_events (tenant_id, order_id) WHERE order_id IS NOT NULL;

ALTER TABLE attribution_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE attribution_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON attribution_events USING (tenant_id = tally_current_tenant());
CREATE TRIGGER attribution_events_append_only BEFORE UPDATE OR DELETE ON attribution_events
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_mutation();
CREATE TRIGGER attribution_events_no_truncate BEFORE TRUNCATE ON attribution_events
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_mutation();

-- PII guard, layer 2: the application rejects PII first; this refuses what slipped by.
-- One trigger function per table, each reading only its own table's column.
CREATE FUNCTION attribution_events_refuse_pii() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tally_assert_no_pii(NEW.properties, 'attribution_events.properties', 'attribution_events_no_pii');
    RETURN NEW;
END
$$;
CREATE TRIGGER attribution_events_no_pii BEFORE INSERT ON attribution_events
    FOR EACH ROW WHEN (NEW.properties <> '{}'::jsonb) EXECUTE FUNCTION attribution_events_refuse_pii();

CREATE TABLE dead_events (
    tenant_id          uuid NOT NULL REFERENCES tenants (tenant_id),
    id                 uuid NOT NULL,
    source             text NOT NULL CHECK (source IN ('api', 'shopify', 'stripe', 'paypal', 'woocommerce')),
    error_code         text NOT NULL CHECK (length(error_code) BETWEEN 1 AND 64),
    errors             jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(errors) = 'array'),
    -- The submitted payload with personal data redacted (keys renamed, values replaced).
    payload            jsonb NOT NULL,
    event_id           text CHECK (length(event_id) <= 255),
    correlation_id     text NOT NULL CHECK (length(correlation_id) BETWEEN 1 AND 128),
    status             text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'replayed', 'discarded')),
    replay_count       integer NOT NULL DEFAULT 0 CHECK (replay_count >= 0),
    replayed_event_id  uuid,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CHECK ((status = 'replayed') = (replayed_event_id IS NOT NULL))
);
CREATE INDEX dead_events_open ON dead_events (tenant_id, status, created_at DESC, id DESC);
ALTER TABLE dead_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE dead_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dead_events USING (tenant_id = tally_current_tenant());
CREATE FUNCTION dead_events_refuse_pii() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tally_assert_no_pii(NEW.payload, 'dead_events.payload', 'dead_events_no_pii');
    RETURN NEW;
END
$$;
CREATE TRIGGER dead_events_no_pii BEFORE INSERT OR UPDATE OF payload ON dead_events
    FOR EACH ROW EXECUTE FUNCTION dead_events_refuse_pii();

CREATE TABLE webhook_deliveries (
    tenant_id       uuid NOT NULL REFERENCES tenants (tenant_id),
    id              uuid NOT NULL,
    endpoint_id     uuid NOT NULL,
    source          text NOT NULL CHECK (source IN ('shopify', 'stripe', 'paypal', 'woocommerce')),
    delivery_key    text NOT NULL CHECK (length(delivery_key) BETWEEN 1 AND 512),
    topic           text NOT NULL,
    -- Vendors put customer names and addresses in their payloads: only a redacted copy is kept,
    -- plus the hash of the exact bytes that were verified.
    payload         jsonb NOT NULL,
    body_sha256     bytea NOT NULL CHECK (length(body_sha256) = 32),
    status          text NOT NULL CHECK (status IN ('posted', 'ignored', 'dead_lettered')),
    detail          text,
    correlation_id  text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, source, delivery_key),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, endpoint_id)
);
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_deliveries USING (tenant_id = tally_current_tenant());
CREATE FUNCTION webhook_deliveries_refuse_pii() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tally_assert_no_pii(NEW.payload, 'webhook_deliveries.payload', 'webhook_deliveries_no_pii');
    RETURN NEW;
END
$$;
CREATE TRIGGER webhook_deliveries_no_pii BEFORE INSERT OR UPDATE OF payload ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION webhook_deliveries_refuse_pii();

-- Events are facts: the runtime role may add them, never change them.
GRANT SELECT, INSERT ON attribution_events TO tally_app;
GRANT SELECT, INSERT, UPDATE ON dead_events TO tally_app;
GRANT SELECT, INSERT ON webhook_deliveries TO tally_app;
GRANT SELECT ON attribution_events, dead_events TO tally_readonly;
