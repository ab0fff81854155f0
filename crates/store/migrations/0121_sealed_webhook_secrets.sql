-- Webhook signing secrets are sealed at rest from this release on (issue 12, section 5): the
-- columns hold `tally-sealed:v1:<key id>:<base64>` (see crates/store/src/secrets.rs), and
-- values stored before are sealed when Tally next starts with a key.

COMMENT ON COLUMN webhook_endpoints.secret IS
    'Signing secret, sealed with ChaCha20-Poly1305 under TALLY_SECRET_KEY (tally-sealed:v1:<key id>:...); unsealed only when Tally runs without a key.';
COMMENT ON COLUMN webhook_endpoints.previous_secret IS
    'The secret before the last rotation, sealed like secret; verifies until previous_secret_expires_at.';
