//! Tenants and their API keys (their settings are in [`crate::settings`]).

use crate::db::{Database, set_tenant};
use crate::error::StoreError;
use crate::ids::{KeyId, TenantId};
use chrono::{DateTime, Utc};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// What a key may do. Kept as the database's text values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Ingest,
    Read,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Ingest, Scope::Read, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

/// Secret keys (`tk_…`) live on servers; publishable keys (`pk_…`) are embedded in web pages,
/// so they may only ingest, only from the tenant's allowed origins, under their own rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Secret,
    Publishable,
}

impl KeyKind {
    pub const ALL: [KeyKind; 2] = [KeyKind::Secret, KeyKind::Publishable];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Secret => "secret",
            KeyKind::Publishable => "publishable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }

    /// The secret's first characters: they tell a reader of a page's source (or a log) at a
    /// glance which kind of key it is.
    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => "tk_",
            KeyKind::Publishable => "pk_",
        }
    }
}

/// A key's own rate limit, in events, on top of its tenant's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLimit {
    pub per_minute: i32,
    pub burst: i32,
}

impl KeyLimit {
    /// What a publishable key gets unless its creator says otherwise: ample for a shop's pages
    /// (a visitor sends a handful of events per page), far below a tenant's default 600,000 a
    /// minute, so a key copied out of a page cannot spend the tenant's whole budget.
    pub const PUBLISHABLE_DEFAULT: KeyLimit = KeyLimit {
        per_minute: 60_000,
        burst: 2_000,
    };

    /// As the tenant's own limits (`tally_store::settings`) and the columns' CHECK.
    pub const RANGE: std::ops::RangeInclusive<i32> = 1..=1_000_000_000;

    fn from_columns(per_minute: Option<i32>, burst: Option<i32>) -> Option<Self> {
        Some(Self {
            per_minute: per_minute?,
            burst: burst?,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub tenant_id: TenantId,
    pub name: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// A key as listed: never the secret.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyInfo {
    pub key_id: KeyId,
    pub name: String,
    pub prefix: String,
    pub kind: KeyKind,
    pub scopes: Vec<Scope>,
    pub rate_limit: Option<KeyLimit>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A freshly created key: the only moment the secret exists outside its holder.
#[derive(Debug, Clone, Serialize)]
pub struct NewApiKey {
    #[serde(flatten)]
    pub info: ApiKeyInfo,
    pub secret: String,
}

/// Who a presented key belongs to.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub tenant_id: TenantId,
    pub key_id: KeyId,
    pub kind: KeyKind,
    pub scopes: Vec<Scope>,
    pub rate_limit: Option<KeyLimit>,
    pub revoked: bool,
}

/// 43 base62 characters carry 256 bits (43 × log2 62 ≈ 256), the entropy of 32 random bytes.
/// `rand`'s `Alphanumeric` draws uniformly from exactly the 62 base62 characters, so no
/// hand-written base conversion is needed.
const KEY_BODY_LEN: usize = 43;
/// `tk_` or `pk_` and 8 characters of the body.
const VISIBLE_PREFIX_LEN: usize = 3 + 8;

/// SHA-256 of a presented secret, the only form in which keys are stored or looked up.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn generate_secret(kind: KeyKind) -> String {
    random_secret(kind.prefix())
}

/// A fresh secret of 256 bits behind `prefix` (API keys, dashboard session tokens).
pub(crate) fn random_secret(prefix: &str) -> String {
    let body: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(KEY_BODY_LEN)
        .map(char::from)
        .collect();
    format!("{prefix}{body}")
}

pub(crate) fn scopes_from_db(raw: Vec<String>) -> Vec<Scope> {
    raw.iter().filter_map(|s| Scope::parse(s)).collect()
}

fn kind_from_db(row: &sqlx::postgres::PgRow) -> Result<KeyKind, sqlx::Error> {
    let raw: String = row.try_get("kind")?;
    KeyKind::parse(&raw)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown key kind {raw:?}").into()))
}

fn limit_from_db(row: &sqlx::postgres::PgRow) -> Result<Option<KeyLimit>, sqlx::Error> {
    Ok(KeyLimit::from_columns(
        row.try_get("rate_limit_per_minute")?,
        row.try_get("rate_limit_burst")?,
    ))
}

const KEY_COLUMNS: &str = "key_id, name, prefix, kind, scopes, rate_limit_per_minute, rate_limit_burst, created_at, revoked_at";

fn key_info(row: &sqlx::postgres::PgRow) -> Result<ApiKeyInfo, sqlx::Error> {
    Ok(ApiKeyInfo {
        key_id: row.try_get("key_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        kind: kind_from_db(row)?,
        scopes: scopes_from_db(row.try_get("scopes")?),
        rate_limit: limit_from_db(row)?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Database {
    /// Creates a tenant with default settings and a first key holding every scope. All in one
    /// transaction acting as the new tenant, so RLS checks each row it writes.
    pub async fn create_tenant(&self, name: &str) -> Result<(Tenant, NewApiKey), StoreError> {
        let mut tx = self.app_pool().begin().await?;
        let created = insert_tenant(&mut tx, name).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Every tenant of the installation (operator view: names and status only).
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant_id, name, status, created_at FROM tenants ORDER BY created_at, tenant_id",
        )
        .fetch_all(self.operator_pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Tenant {
                    tenant_id: r.try_get("tenant_id")?,
                    name: r.try_get("name")?,
                    status: r.try_get("status")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn tenant_exists(&self, tenant: TenantId) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let found: bool = sqlx::query_scalar("SELECT EXISTS (SELECT FROM tenants)")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(found)
    }

    pub async fn create_api_key(
        &self,
        tenant: TenantId,
        name: &str,
        scopes: &[Scope],
    ) -> Result<NewApiKey, StoreError> {
        self.create_secret_key(tenant, name, scopes, None).await
    }

    /// Creates a secret key, optionally with a rate limit of its own.
    pub async fn create_secret_key(
        &self,
        tenant: TenantId,
        name: &str,
        scopes: &[Scope],
        limit: Option<KeyLimit>,
    ) -> Result<NewApiKey, StoreError> {
        if scopes.is_empty() {
            return Err(StoreError::Invalid("a key needs at least one scope".into()));
        }
        self.insert_key_checked(tenant, name, KeyKind::Secret, scopes, limit)
            .await
    }

    /// Creates a publishable key: scope `ingest` only, with its own rate limit (by default
    /// [`KeyLimit::PUBLISHABLE_DEFAULT`]).
    pub async fn create_publishable_key(
        &self,
        tenant: TenantId,
        name: &str,
        limit: Option<KeyLimit>,
    ) -> Result<NewApiKey, StoreError> {
        let limit = limit.unwrap_or(KeyLimit::PUBLISHABLE_DEFAULT);
        self.insert_key_checked(
            tenant,
            name,
            KeyKind::Publishable,
            &[Scope::Ingest],
            Some(limit),
        )
        .await
    }

    async fn insert_key_checked(
        &self,
        tenant: TenantId,
        name: &str,
        kind: KeyKind,
        scopes: &[Scope],
        limit: Option<KeyLimit>,
    ) -> Result<NewApiKey, StoreError> {
        if name.chars().count() > 200 {
            return Err(StoreError::Invalid(
                "key name must be at most 200 characters".into(),
            ));
        }
        if let Some(limit) = limit
            && !(KeyLimit::RANGE.contains(&limit.per_minute)
                && KeyLimit::RANGE.contains(&limit.burst))
        {
            return Err(StoreError::Invalid(
                "a key's rate_limit_per_minute and rate_limit_burst must be from 1 to 1000000000"
                    .into(),
            ));
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let key = insert_key(&mut tx, tenant, name, kind, scopes, limit).await?;
        tx.commit().await?;
        Ok(key)
    }

    pub async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id"
        )))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(key_info)
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }

    /// Revokes a key; revoking an already revoked key keeps its first revocation time.
    pub async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key: KeyId,
    ) -> Result<ApiKeyInfo, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1
             RETURNING {KEY_COLUMNS}"
        )))
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(key_info(&row)?)
    }

    /// Finds the owner of a presented secret. The lookup policy on `api_keys` lets this
    /// transaction see only the row whose hash it names.
    pub async fn find_key_owner(&self, secret: &str) -> Result<Option<KeyOwner>, StoreError> {
        let hash = hash_secret(secret);
        let mut tx = self.app_pool().begin().await?;
        sqlx::query("SELECT set_config('app.api_key_sha256', $1, true)")
            .bind(hex::encode(hash))
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(
            "SELECT tenant_id, key_id, kind, scopes, rate_limit_per_minute, rate_limit_burst,
                    revoked_at IS NOT NULL AS revoked
             FROM api_keys WHERE secret_sha256 = $1",
        )
        .bind(&hash[..])
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| {
            Ok(KeyOwner {
                tenant_id: r.try_get("tenant_id")?,
                key_id: r.try_get("key_id")?,
                kind: kind_from_db(&r)?,
                scopes: scopes_from_db(r.try_get("scopes")?),
                rate_limit: limit_from_db(&r)?,
                revoked: r.try_get("revoked")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| e.into())
    }
}

/// Writes a tenant, its default settings and its first key in the caller's transaction, which
/// then acts as the new tenant.
pub(crate) async fn insert_tenant(
    tx: &mut sqlx::PgConnection,
    name: &str,
) -> Result<(Tenant, NewApiKey), StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(StoreError::Invalid(
            "tenant name must be 1 to 200 characters".into(),
        ));
    }
    let tenant_id = TenantId::new();
    set_tenant(tx, tenant_id).await?;
    let created_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO tenants (tenant_id, name) VALUES ($1, $2) RETURNING created_at",
    )
    .bind(tenant_id)
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO tenant_settings (tenant_id) VALUES ($1)")
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
    let key = insert_key(tx, tenant_id, "initial", KeyKind::Secret, &Scope::ALL, None).await?;
    let tenant = Tenant {
        tenant_id,
        name: name.to_string(),
        status: "active".into(),
        created_at,
    };
    Ok((tenant, key))
}

async fn insert_key(
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
    name: &str,
    kind: KeyKind,
    scopes: &[Scope],
    limit: Option<KeyLimit>,
) -> Result<NewApiKey, StoreError> {
    let secret = generate_secret(kind);
    let key_id = KeyId::new();
    let scope_names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_keys (tenant_id, key_id, name, prefix, secret_sha256, kind, scopes,
                               rate_limit_per_minute, rate_limit_burst)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING {KEY_COLUMNS}"
    )))
    .bind(tenant)
    .bind(key_id)
    .bind(name)
    .bind(&secret[..VISIBLE_PREFIX_LEN])
    .bind(&hash_secret(&secret)[..])
    .bind(kind.as_str())
    .bind(&scope_names)
    .bind(limit.map(|l| l.per_minute))
    .bind(limit.map(|l| l.burst))
    .fetch_one(tx)
    .await?;
    Ok(NewApiKey {
        info: key_info(&row)?,
        secret,
    })
}
