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

-- A rule matches on one shape of evidence: a click id alone, utm source + medium, source alone,
-- medium alone, or a referrer host (`example.com` also matches subdomains, `google.*` any
-- top-level domain). Values are lower-case; lower priority numbers win (see tally_core::channel).
CREATE TABLE channel_rules (
    rule_id       uuid PRIMARY KEY DEFAULT tally_uuid_v7(),
    priority      integer NOT NULL,
    utm_source    text CHECK (utm_source = lower(utm_source)),
    utm_medium    text CHECK (utm_medium = lower(utm_medium)),
    referrer_host text CHECK (referrer_host = lower(referrer_host)),
    click_id      text CHECK (click_id = lower(click_id)),
    channel_code  text NOT NULL REFERENCES channel_taxonomy (code),
    UNIQUE NULLS NOT DISTINCT (utm_source, utm_medium, referrer_host, click_id),
    CHECK (num_nonnulls(utm_source, utm_medium, referrer_host, click_id) > 0)
);

CREATE TABLE tenant_channel_rules (
    tenant_id     uuid NOT NULL REFERENCES tenants (tenant_id),
    rule_id       uuid NOT NULL,
    priority      integer NOT NULL,
    utm_source    text CHECK (utm_source = lower(utm_source)),
    utm_medium    text CHECK (utm_medium = lower(utm_medium)),
    referrer_host text CHECK (referrer_host = lower(referrer_host)),
    click_id      text CHECK (click_id = lower(click_id)),
    channel_code  text NOT NULL REFERENCES channel_taxonomy (code),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, rule_id),
    UNIQUE NULLS NOT DISTINCT (tenant_id, utm_source, utm_medium, referrer_host, click_id),
    CHECK (num_nonnulls(utm_source, utm_medium, referrer_host, click_id) > 0)
);
ALTER TABLE tenant_channel_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_channel_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_channel_rules USING (tenant_id = tally_current_tenant());

GRANT SELECT ON channel_taxonomy, channel_rules TO tally_app, tally_operator, tally_readonly;
GRANT SELECT, INSERT, DELETE ON tenant_channel_rules TO tally_app;
GRANT SELECT ON tenant_channel_rules TO tally_readonly;
