-- Collection from the browser (issue 13 §2): publishable keys, the origins they may be used
-- from, and Segment as a dead-letter source.
--
-- A publishable key (pk_…) is public by design (it sits in a page's HTML), so the database
-- itself guarantees it can do nothing but ingest: its scopes are exactly {ingest}. Its own
-- rate limit (per key, on top of the tenant's) bounds what a copied key can send.
ALTER TABLE api_keys
    ADD COLUMN kind text NOT NULL DEFAULT 'secret' CHECK (kind IN ('secret', 'publishable')),
    ADD COLUMN rate_limit_per_minute integer CHECK (rate_limit_per_minute BETWEEN 1 AND 1000000000),
    ADD COLUMN rate_limit_burst integer CHECK (rate_limit_burst BETWEEN 1 AND 1000000000),
    ADD CONSTRAINT api_keys_publishable_ingest_only CHECK (kind = 'secret' OR scopes = ARRAY['ingest']),
    ADD CONSTRAINT api_keys_limit_complete
        CHECK ((rate_limit_per_minute IS NULL) = (rate_limit_burst IS NULL));

-- Exact `scheme://host[:port]` origins a publishable key is accepted from (validated by
-- tally_store::settings); empty means publishable keys are refused everywhere.
ALTER TABLE tenant_settings
    ADD COLUMN allowed_origins text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(allowed_origins) <= 100);

-- Segment calls that map onto no Tally event are kept like any refused event. They are not
-- replayable as Tally events (replay reads source 'api' only), so they can only be discarded.
ALTER TABLE dead_events DROP CONSTRAINT dead_events_source_check;
ALTER TABLE dead_events ADD CONSTRAINT dead_events_source_check
    CHECK (source IN ('api', 'segment', 'shopify', 'stripe', 'paypal', 'woocommerce'));
