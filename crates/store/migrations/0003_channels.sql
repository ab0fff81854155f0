-- Marketing channels: a global taxonomy (reference data, the same for every tenant, so no RLS and
-- no tenant_id: with Citus it becomes a reference table) and the rules mapping UTM tags, click ids
-- and referrers to a code. Global rules are seeded here; tenants add overrides of their own.

CREATE TABLE channel_taxonomy (
    code          text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{1,62}$'),
    family        text NOT NULL,
    is_paid       boolean NOT NULL,
    display_name  text NOT NULL,
    is_active     boolean NOT NULL DEFAULT true
);

-- match_kind says which signal a rule reads; pattern is lower-case. For utm_source_medium the
-- pattern is 'source|medium'. For referrer_host a leading '*.' matches any subdomain and a
-- trailing '.*' any top-level domain (google.* covers google.co.uk).
CREATE TABLE channel_rules (
    rule_id       uuid PRIMARY KEY DEFAULT tally_uuid_v7(),
    priority      integer NOT NULL,
    match_kind    text NOT NULL CHECK (match_kind IN ('click_id', 'utm_source_medium', 'utm_source', 'utm_medium', 'referrer_host')),
    pattern       text NOT NULL CHECK (pattern = lower(pattern) AND length(pattern) BETWEEN 1 AND 255),
    channel_code  text NOT NULL REFERENCES channel_taxonomy (code),
    UNIQUE (match_kind, pattern)
);

CREATE TABLE tenant_channel_rules (
    tenant_id     uuid NOT NULL REFERENCES tenants (tenant_id),
    rule_id       uuid NOT NULL,
    priority      integer NOT NULL,
    match_kind    text NOT NULL CHECK (match_kind IN ('click_id', 'utm_source_medium', 'utm_source', 'utm_medium', 'referrer_host')),
    pattern       text NOT NULL CHECK (pattern = lower(pattern) AND length(pattern) BETWEEN 1 AND 255),
    channel_code  text NOT NULL REFERENCES channel_taxonomy (code),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, rule_id),
    UNIQUE (tenant_id, match_kind, pattern)
);
ALTER TABLE tenant_channel_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_channel_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_channel_rules USING (tenant_id = tally_current_tenant());

GRANT SELECT ON channel_taxonomy, channel_rules TO tally_app, tally_operator, tally_readonly;
GRANT SELECT, INSERT, DELETE ON tenant_channel_rules TO tally_app;
GRANT SELECT ON tenant_channel_rules TO tally_readonly;
