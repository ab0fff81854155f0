//! Webhook endpoints and their delivery inbox.
//!
//! An endpoint is what a payment vendor posts to: its unguessable id is the URL, its secret (or,
//! for PayPal, webhook id and certificate) what deliveries are verified with. Secrets are kept in
//! clear because HMAC verification needs them, and leave only in the create/rotate answer.
//!
//! A verified delivery is recorded in one transaction acting for the endpoint's tenant: the inbox
//! row, then its postings or its dead letter. The inbox row is claimed in the same transaction as
//! the money it carries, so a failed write never turns the vendor's retry into a "duplicate" that
//! lost the posting (see REFERENCE.md, "Idempotency semantics").

use crate::db::Database;
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::ledger::{CurrencyTotal, NewPosting, insert_postings};
use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Row};
use uuid::Uuid;

/// Shopify keeps signing with the old secret for up to an hour after a rotation.
pub const DEFAULT_ROTATION_GRACE: TimeDelta = TimeDelta::hours(1);

const SECRET_PREFIX: &str = "whsec_";
/// 43 base62 characters carry 256 bits, like API keys.
const SECRET_BODY_LEN: usize = 43;

/// An endpoint as listed: never a secret.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub endpoint_id: Uuid,
    pub source: String,
    pub description: String,
    pub status: String,
    pub paypal_webhook_id: Option<String>,
    pub has_paypal_certificate: bool,
    pub order_id_prefix: Option<String>,
    pub created_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// An endpoint's traffic and failures, for the reconciliation status page and the endpoint
/// listing: a vendor that stopped delivering, a secret that no longer verifies, deliveries Tally
/// could not read.
#[derive(Debug, Clone, FromRow)]
pub struct EndpointHealth {
    pub endpoint_id: Uuid,
    pub source: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// When the last verified delivery was recorded.
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// Verified deliveries recorded (repeats of one delivery count once).
    pub deliveries: i64,
    pub dead_lettered: i64,
    /// Requests whose signature did not verify.
    pub verification_failures: i64,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// The last failure's code (`bad_signature`, `stale_timestamp`, ...).
    pub last_failure_reason: Option<String>,
    /// Net of the ledger postings first carried by this endpoint's deliveries, per currency.
    #[sqlx(json)]
    pub revenue_net: Vec<CurrencyTotal>,
}

/// An endpoint as listed, with its health.
#[derive(Debug, Clone)]
pub struct ListedEndpoint {
    pub endpoint: WebhookEndpoint,
    pub health: EndpointHealth,
}

/// An endpoint with the secret the caller must paste into the vendor (absent for PayPal, which
/// signs with its own key): the only moment it leaves Tally.
#[derive(Debug, Clone)]
pub struct EndpointWithSecret {
    pub endpoint: WebhookEndpoint,
    pub secret: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub source: String,
    pub description: String,
    /// The vendor-issued secret (Stripe's `whsec_...`, Shopify's app secret); generated when
    /// absent, for vendors where the merchant chooses it (WooCommerce).
    pub secret: Option<String>,
    pub paypal_webhook_id: Option<String>,
    pub paypal_certificate_pem: Option<String>,
    /// Prepended to the order ids of the endpoint's postings (see the migration adding it).
    pub order_id_prefix: Option<String>,
}

/// What a delivery needs to be verified and posted, found before its tenant is known.
#[derive(Debug, Clone)]
pub struct EndpointKeys {
    pub tenant_id: TenantId,
    pub endpoint_id: Uuid,
    pub source: String,
    pub active: bool,
    pub secret: Option<String>,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub paypal_webhook_id: Option<String>,
    pub paypal_certificate_pem: Option<String>,
    pub order_id_prefix: Option<String>,
}

impl EndpointKeys {
    /// The secrets a delivery may be signed with at `now`: the current one first, then the
    /// previous one while its grace period lasts.
    pub fn live_secrets(&self, now: DateTime<Utc>) -> Vec<&[u8]> {
        let previous = self.previous_secret.as_deref().filter(|_| {
            self.previous_secret_expires_at
                .is_some_and(|until| until > now)
        });
        self.secret
            .as_deref()
            .into_iter()
            .chain(previous)
            .map(str::as_bytes)
            .collect()
    }
}

/// A verified delivery, ready for the inbox. `payload` must already be redacted.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub endpoint_id: Uuid,
    pub source: String,
    pub delivery_key: String,
    pub topic: String,
    pub payload: Value,
    pub body_sha256: [u8; 32],
    pub correlation_id: String,
    pub outcome: DeliveryOutcome,
}

#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    Posted(Vec<NewPosting>),
    Ignored { reason: String },
    DeadLettered { error_code: String, message: String },
}

impl DeliveryOutcome {
    pub fn status(&self) -> &'static str {
        match self {
            DeliveryOutcome::Posted(_) => "posted",
            DeliveryOutcome::Ignored { .. } => "ignored",
            DeliveryOutcome::DeadLettered { .. } => "dead_lettered",
        }
    }

    pub fn detail(&self) -> Option<String> {
        match self {
            DeliveryOutcome::Posted(_) => None,
            DeliveryOutcome::Ignored { reason } => Some(reason.clone()),
            DeliveryOutcome::DeadLettered {
                error_code,
                message,
            } => Some(format!("{error_code}: {message}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// First time this delivery was seen; `new_postings` counts the facts the ledger lacked.
    New {
        delivery_id: Uuid,
        new_postings: usize,
    },
    /// The vendor sent this delivery before: nothing changed.
    Duplicate,
}

fn generate_secret() -> String {
    let body: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(SECRET_BODY_LEN)
        .map(char::from)
        .collect();
    format!("{SECRET_PREFIX}{body}")
}

const ENDPOINT_COLUMNS: &str = "endpoint_id, source, description, status, paypal_webhook_id,
    paypal_certificate_pem IS NOT NULL AS has_paypal_certificate, order_id_prefix, created_at,
    rotated_at, previous_secret_expires_at";

fn endpoint(row: &PgRow) -> Result<WebhookEndpoint, sqlx::Error> {
    Ok(WebhookEndpoint {
        endpoint_id: row.try_get("endpoint_id")?,
        source: row.try_get("source")?,
        description: row.try_get("description")?,
        status: row.try_get("status")?,
        paypal_webhook_id: row.try_get("paypal_webhook_id")?,
        has_paypal_certificate: row.try_get("has_paypal_certificate")?,
        order_id_prefix: row.try_get("order_id_prefix")?,
        created_at: row.try_get("created_at")?,
        rotated_at: row.try_get("rotated_at")?,
        previous_secret_expires_at: row.try_get("previous_secret_expires_at")?,
    })
}

/// Short secrets are guessable offline from one signed delivery, so even vendor-issued ones
/// are held to a minimum length.
fn check_secret(secret: &str) -> Result<(), StoreError> {
    if (16..=512).contains(&secret.len()) {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "secret must be 16 to 512 characters".into(),
        ))
    }
}

/// Short and plain, so that prefixed order ids stay readable and fit the ledger (the migration's
/// `CHECK` says the same).
fn check_order_id_prefix(prefix: &str) -> Result<(), StoreError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if (1..=32).contains(&prefix.len()) && prefix.chars().all(plain) {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "order_id_prefix must be 1 to 32 letters, digits or . _ : -".into(),
        ))
    }
}

fn check_new_endpoint(new: &NewEndpoint) -> Result<(), StoreError> {
    let invalid = |msg: &str| Err(StoreError::Invalid(msg.into()));
    if new.description.chars().count() > 200 {
        return invalid("description must be at most 200 characters");
    }
    if let Some(secret) = &new.secret {
        check_secret(secret)?;
    }
    if let Some(prefix) = &new.order_id_prefix {
        check_order_id_prefix(prefix)?;
    }
    let paypal = new.source == "paypal";
    match (paypal, new.paypal_webhook_id.as_deref()) {
        (true, None | Some("")) => invalid("a PayPal endpoint needs paypal_webhook_id"),
        (true, _) if new.secret.is_some() => {
            invalid("PayPal signs with its own certificate: give no secret")
        }
        (false, Some(_)) => invalid("paypal_webhook_id is for PayPal endpoints only"),
        (false, None) if new.paypal_certificate_pem.is_some() => {
            invalid("paypal_certificate_pem is for PayPal endpoints only")
        }
        _ if new
            .paypal_certificate_pem
            .as_deref()
            .is_some_and(|pem| !pem.contains("-----BEGIN CERTIFICATE-----")) =>
        {
            invalid("paypal_certificate_pem must be a PEM certificate")
        }
        _ => Ok(()),
    }
}

/// Every endpoint of the connection's tenant transaction with its health, oldest first. Reads
/// only the endpoint rows and two covering indexes (deliveries by endpoint, ledger by delivery),
/// so it is cheap enough for every status request.
pub async fn endpoint_health(conn: &mut PgConnection) -> Result<Vec<EndpointHealth>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT e.endpoint_id, e.source, e.status, e.created_at, d.last_delivery_at,
                coalesce(d.deliveries, 0) AS deliveries,
                coalesce(d.dead_lettered, 0) AS dead_lettered,
                e.verification_failures, e.last_failure_at, e.last_failure_reason,
                coalesce(n.revenue_net, '[]') AS revenue_net
         FROM webhook_endpoints e
         LEFT JOIN LATERAL (
             SELECT max(received_at) AS last_delivery_at, count(*) AS deliveries,
                    count(*) FILTER (WHERE status = 'dead_lettered') AS dead_lettered
             FROM webhook_deliveries
             WHERE tenant_id = e.tenant_id AND endpoint_id = e.endpoint_id
         ) d ON true
         LEFT JOIN LATERAL (
             SELECT jsonb_agg(jsonb_build_object('currency', currency, 'amount_cents', net)
                              ORDER BY currency) AS revenue_net
             FROM (
                 SELECT l.currency, sum(l.amount_cents)::bigint AS net
                 FROM webhook_deliveries d
                 JOIN revenue_ledger l ON l.tenant_id = d.tenant_id AND l.delivery_id = d.id
                 WHERE d.tenant_id = e.tenant_id AND d.endpoint_id = e.endpoint_id
                 GROUP BY l.currency
             ) per_currency
         ) n ON true
         WHERE e.tenant_id = tally_current_tenant()
         ORDER BY e.created_at, e.endpoint_id",
    )
    .fetch_all(conn)
    .await?)
}

impl Database {
    pub async fn create_webhook_endpoint(
        &self,
        tenant: TenantId,
        new: NewEndpoint,
    ) -> Result<EndpointWithSecret, StoreError> {
        check_new_endpoint(&new)?;
        let secret = match new.source.as_str() {
            "paypal" => None,
            _ => Some(new.secret.unwrap_or_else(generate_secret)),
        };
        let endpoint_id = Uuid::now_v7();
        let sealed = secret.as_deref().map(|s| self.secrets.seal(endpoint_id, s));
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO webhook_endpoints (tenant_id, endpoint_id, source, description, secret,
                 paypal_webhook_id, paypal_certificate_pem, order_id_prefix)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(tenant)
        .bind(endpoint_id)
        .bind(&new.source)
        .bind(&new.description)
        .bind(&sealed)
        .bind(&new.paypal_webhook_id)
        .bind(&new.paypal_certificate_pem)
        .bind(&new.order_id_prefix)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(EndpointWithSecret {
            endpoint: endpoint(&row)?,
            secret,
        })
    }

    /// The tenant's endpoints, oldest first, each with its health.
    pub async fn list_webhook_endpoints(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<ListedEndpoint>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, endpoint_id"
        )))
        .fetch_all(&mut *tx)
        .await?;
        let health = endpoint_health(&mut tx).await?;
        tx.commit().await?;
        // Both come from one snapshot, in the same order.
        rows.iter()
            .zip(health)
            .map(|(row, health)| {
                Ok(ListedEndpoint {
                    endpoint: endpoint(row)?,
                    health,
                })
            })
            .collect()
    }

    /// Counts a request to `endpoint_id` whose signature did not verify, with why (`reason`, a
    /// short code: never anything from the request).
    pub async fn record_verification_failure(
        &self,
        tenant: TenantId,
        endpoint_id: Uuid,
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "UPDATE webhook_endpoints
             SET verification_failures = verification_failures + 1, last_failure_at = now(),
                 last_failure_reason = left($2, 200)
             WHERE endpoint_id = $1",
        )
        .bind(endpoint_id)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the secret; the old one keeps verifying for `grace` (zero retires it at once).
    /// `secret` is the vendor's new secret, or `None` to have one generated.
    pub async fn rotate_webhook_secret(
        &self,
        tenant: TenantId,
        endpoint_id: Uuid,
        secret: Option<String>,
        grace: TimeDelta,
    ) -> Result<EndpointWithSecret, StoreError> {
        if grace < TimeDelta::zero() || grace > TimeDelta::days(7) {
            return Err(StoreError::Invalid(
                "the grace period must be between 0 and 7 days".into(),
            ));
        }
        let secret = secret.unwrap_or_else(generate_secret);
        check_secret(&secret)?;
        let mut tx = self.tenant_tx(tenant).await?;
        // PayPal endpoints have no secret to rotate: they match no row and read as not found
        // unless they exist, which the second query tells apart.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_endpoints
             SET previous_secret = secret, previous_secret_expires_at = now() + $2,
                 secret = $3, rotated_at = now()
             WHERE endpoint_id = $1 AND source <> 'paypal'
             RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(endpoint_id)
        .bind(grace)
        .bind(self.secrets.seal(endpoint_id, &secret))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let exists: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT FROM webhook_endpoints WHERE endpoint_id = $1)",
            )
            .bind(endpoint_id)
            .fetch_one(&mut *tx)
            .await?;
            return Err(if exists {
                StoreError::Invalid("PayPal endpoints have no secret to rotate".into())
            } else {
                StoreError::NotFound
            });
        };
        tx.commit().await?;
        Ok(EndpointWithSecret {
            endpoint: endpoint(&row)?,
            secret: Some(secret),
        })
    }

    /// Stops accepting deliveries; the endpoint and its inbox stay for the record.
    pub async fn disable_webhook_endpoint(
        &self,
        tenant: TenantId,
        endpoint_id: Uuid,
    ) -> Result<WebhookEndpoint, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_endpoints SET status = 'disabled' WHERE endpoint_id = $1
             RETURNING {ENDPOINT_COLUMNS}"
        )))
        .bind(endpoint_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(endpoint(&row)?)
    }

    /// The endpoint a delivery names, before its tenant is known. The `lookup_by_id` policy lets
    /// this transaction see only the row whose id it sets, as `find_key_owner` does for keys.
    pub async fn find_webhook_endpoint(
        &self,
        endpoint_id: Uuid,
    ) -> Result<Option<EndpointKeys>, StoreError> {
        let mut tx = self.app_pool().begin().await?;
        sqlx::query("SELECT set_config('app.webhook_endpoint_id', $1, true)")
            .bind(endpoint_id.to_string())
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(
            "SELECT tenant_id, endpoint_id, source, status = 'active' AS active, secret,
                    previous_secret, previous_secret_expires_at, paypal_webhook_id,
                    paypal_certificate_pem, order_id_prefix
             FROM webhook_endpoints WHERE endpoint_id = $1",
        )
        .bind(endpoint_id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(r) = row else { return Ok(None) };
        // A secret that does not open is refused at start-up (`seal_webhook_secrets`); one
        // altered since fails this delivery as unavailable, never as a bad signature.
        let open = |column: &str| -> Result<Option<String>, StoreError> {
            let stored: Option<String> = r.try_get(column)?;
            stored
                .map(|s| self.secrets.open(endpoint_id, &s))
                .transpose()
                .map_err(|e| {
                    tracing::error!(error = %e, "a webhook secret cannot be opened");
                    StoreError::Unavailable(e.to_string())
                })
        };
        Ok(Some(EndpointKeys {
            tenant_id: r.try_get("tenant_id")?,
            endpoint_id: r.try_get("endpoint_id")?,
            source: r.try_get("source")?,
            active: r.try_get("active")?,
            secret: open("secret")?,
            previous_secret: open("previous_secret")?,
            previous_secret_expires_at: r.try_get("previous_secret_expires_at")?,
            paypal_webhook_id: r.try_get("paypal_webhook_id")?,
            paypal_certificate_pem: r.try_get("paypal_certificate_pem")?,
            order_id_prefix: r.try_get("order_id_prefix")?,
        }))
    }

    /// Checks that every stored signing secret opens with this process's keys, and seals under
    /// the current key those that are not yet (stored before encryption, or under the key being
    /// replaced). Run at start-up, before serving: a wrong key is a clear error here rather than
    /// every delivery failing later. Returns how many values were sealed.
    pub async fn seal_webhook_secrets(&self) -> Result<usize, StoreError> {
        let mut sealed = 0;
        for tenant in self.list_tenants().await? {
            let mut tx = self.tenant_tx(tenant.tenant_id).await?;
            let rows = sqlx::query(
                "SELECT endpoint_id, secret, previous_secret FROM webhook_endpoints
                 WHERE secret IS NOT NULL OR previous_secret IS NOT NULL
                 ORDER BY endpoint_id FOR UPDATE",
            )
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                let endpoint_id: Uuid = r.try_get("endpoint_id")?;
                let reseal = |column: &str| -> Result<Option<String>, StoreError> {
                    let stored: Option<String> = r.try_get(column)?;
                    Ok(match stored {
                        Some(s) => self.resealed(endpoint_id, &s)?,
                        None => None,
                    })
                };
                let (secret, previous) = (reseal("secret")?, reseal("previous_secret")?);
                if secret.is_none() && previous.is_none() {
                    continue;
                }
                sealed += usize::from(secret.is_some()) + usize::from(previous.is_some());
                sqlx::query(
                    "UPDATE webhook_endpoints SET secret = COALESCE($2, secret),
                         previous_secret = COALESCE($3, previous_secret)
                     WHERE endpoint_id = $1",
                )
                .bind(endpoint_id)
                .bind(secret)
                .bind(previous)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        Ok(sealed)
    }

    /// What to store instead of `stored` (`None`: keep it), once it is known to open.
    fn resealed(&self, endpoint: Uuid, stored: &str) -> Result<Option<String>, StoreError> {
        let plain = self
            .secrets
            .open(endpoint, stored)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        Ok(self
            .secrets
            .needs_sealing(stored)
            .then(|| self.secrets.seal(endpoint, &plain)))
    }

    /// Records a verified delivery and what it carried, all or nothing, acting for `tenant`.
    /// A delivery key seen before changes nothing; a posting whose fact the ledger already holds
    /// (another delivery of the same money) is skipped.
    pub async fn record_delivery(
        &self,
        tenant: TenantId,
        delivery: &NewDelivery,
    ) -> Result<Recorded, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let delivery_id: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, source, delivery_key,
                 topic, payload, body_sha256, status, detail, correlation_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (tenant_id, source, delivery_key) DO NOTHING
             RETURNING id",
        )
        .bind(tenant)
        .bind(Uuid::now_v7())
        .bind(delivery.endpoint_id)
        .bind(&delivery.source)
        .bind(&delivery.delivery_key)
        .bind(&delivery.topic)
        .bind(&delivery.payload)
        .bind(&delivery.body_sha256[..])
        .bind(delivery.outcome.status())
        .bind(delivery.outcome.detail())
        .bind(&delivery.correlation_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(delivery_id) = delivery_id else {
            return Ok(Recorded::Duplicate);
        };
        let new_postings = match &delivery.outcome {
            DeliveryOutcome::Posted(postings) => {
                insert_postings(
                    &mut tx,
                    tenant,
                    delivery_id,
                    postings,
                    &delivery.correlation_id,
                )
                .await?
            }
            DeliveryOutcome::Ignored { .. } => 0,
            DeliveryOutcome::DeadLettered {
                error_code,
                message,
            } => {
                sqlx::query(
                    "INSERT INTO dead_events (tenant_id, id, source, error_code, errors, payload,
                         event_id, correlation_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(tenant)
                .bind(Uuid::now_v7())
                .bind(&delivery.source)
                .bind(error_code)
                .bind(json!([{ "pointer": "", "code": error_code, "message": message }]))
                .bind(&delivery.payload)
                .bind(delivery_id.to_string())
                .bind(&delivery.correlation_id)
                .execute(&mut *tx)
                .await?;
                0
            }
        };
        tx.commit().await?;
        Ok(Recorded::New {
            delivery_id,
            new_postings,
        })
    }
}
