-- Tenants, their API keys, settings and webhook endpoints.
--
-- Every tenant table puts tenant_id first in its primary key and in each unique key, so the
-- schema can be distributed by tenant_id (Citus) without changing a key. Every tenant table has
-- RLS ENABLEd and FORCEd (FORCE so that even the owner is filtered), with the policy on
-- tally_current_tenant().

CREATE TABLE tenants (
    tenant_id   uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants USING (tenant_id = tally_current_tenant());
-- The operator lists tenants across the installation (names and status only; it reads no
-- tenant's data through this).
CREATE POLICY operator_reads_all ON tenants FOR SELECT TO tally_operator USING (true);

CREATE TABLE api_keys (
    tenant_id      uuid NOT NULL REFERENCES tenants (tenant_id),
    key_id         uuid NOT NULL,
    name           text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    -- The first characters of the secret, shown in listings so a user can tell keys apart.
    prefix         text NOT NULL CHECK (length(prefix) BETWEEN 4 AND 16),
    -- SHA-256 of the whole secret: a database leak does not leak usable keys. A fast hash is
    -- right here because the secret has 190 bits of entropy (no dictionary to attack).
    secret_sha256  bytea NOT NULL CHECK (length(secret_sha256) = 32),
    scopes         text[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['ingest', 'read', 'admin']),
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    PRIMARY KEY (tenant_id, key_id),
    UNIQUE (tenant_id, secret_sha256)
);
CREATE INDEX api_keys_by_secret ON api_keys (secret_sha256);
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys USING (tenant_id = tally_current_tenant());
-- Authentication happens before the tenant is known: a request may see exactly the key row
-- whose secret it holds (it sets app.api_key_sha256 to the hash of the presented secret). No
-- definer function or RLS bypass is needed, and knowing a hash requires knowing the secret.
CREATE POLICY lookup_by_secret ON api_keys FOR SELECT
    USING (secret_sha256 = decode(NULLIF(current_setting('app.api_key_sha256', true), ''), 'hex'));

CREATE TABLE tenant_settings (
    tenant_id              uuid PRIMARY KEY REFERENCES tenants (tenant_id),
    rate_limit_per_minute  integer NOT NULL DEFAULT 600000 CHECK (rate_limit_per_minute > 0),
    rate_limit_burst       integer NOT NULL DEFAULT 20000 CHECK (rate_limit_burst > 0),
    lookback_days          integer NOT NULL DEFAULT 30 CHECK (lookback_days BETWEEN 1 AND 365),
    default_model          text NOT NULL DEFAULT 'last_non_direct',
    time_zone              text NOT NULL DEFAULT 'UTC',
    currency               char(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    time_decay_half_life_hours double precision NOT NULL DEFAULT 168 CHECK (time_decay_half_life_hours > 0),
    markov_order           integer NOT NULL DEFAULT 1 CHECK (markov_order BETWEEN 1 AND 3),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenant_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_settings USING (tenant_id = tally_current_tenant());

CREATE TABLE webhook_endpoints (
    tenant_id                  uuid NOT NULL REFERENCES tenants (tenant_id),
    endpoint_id                uuid NOT NULL,
    source                     text NOT NULL CHECK (source IN ('shopify', 'stripe', 'paypal', 'woocommerce')),
    description                text NOT NULL DEFAULT '',
    -- HMAC secrets must be kept in clear to verify signatures; they never leave through the API
    -- after creation.
    secret                     text,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    paypal_webhook_id          text,
    paypal_certificate_pem     text,
    status                     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at                 timestamptz NOT NULL DEFAULT now(),
    rotated_at                 timestamptz,
    PRIMARY KEY (tenant_id, endpoint_id),
    CHECK (source = 'paypal' OR secret IS NOT NULL),
    CHECK (source <> 'paypal' OR paypal_webhook_id IS NOT NULL)
);
-- The webhook URL carries the endpoint id only (no tenant): one lookup index.
CREATE INDEX webhook_endpoints_by_id ON webhook_endpoints (endpoint_id);
ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_endpoints USING (tenant_id = tally_current_tenant());
-- A delivery names its endpoint before the tenant is known, like an API key: the request may
-- see the one endpoint whose unguessable id it holds.
CREATE POLICY lookup_by_id ON webhook_endpoints FOR SELECT
    USING (endpoint_id = NULLIF(current_setting('app.webhook_endpoint_id', true), '')::uuid);

GRANT SELECT, INSERT ON tenants TO tally_app;
GRANT SELECT ON tenants TO tally_operator;
GRANT SELECT, INSERT, UPDATE ON api_keys, tenant_settings, webhook_endpoints TO tally_app;
-- Analysts never need key hashes or webhook secrets.
GRANT SELECT ON tenants, tenant_settings TO tally_readonly;
