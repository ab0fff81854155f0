//! Channel rules as stored: the global defaults and a tenant's overrides.

use crate::Database;
use crate::error::StoreError;
use crate::ids::TenantId;
use serde::Serialize;
use sqlx::{FromRow, PgConnection};
use tally_core::channel::ChannelRule;
use uuid::Uuid;

#[derive(FromRow)]
struct RuleRow {
    priority: i32,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    referrer_host: Option<String>,
    click_id: Option<String>,
    channel_code: String,
}

impl From<RuleRow> for ChannelRule {
    fn from(r: RuleRow) -> Self {
        ChannelRule {
            priority: r.priority,
            utm_source: r.utm_source,
            utm_medium: r.utm_medium,
            referrer_host: r.referrer_host,
            click_id: r.click_id,
            channel_code: r.channel_code,
        }
    }
}

/// A tenant's own rule with its id (for removal).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantRule {
    pub rule_id: Uuid,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rule: ChannelRule,
}

const RULE_COLUMNS: &str =
    "priority, utm_source, utm_medium, referrer_host, click_id, channel_code";

/// The global defaults and the tenant's overrides, inside the caller's tenant transaction.
pub async fn load_rules(
    tx: &mut PgConnection,
) -> Result<(Vec<ChannelRule>, Vec<ChannelRule>), StoreError> {
    let global: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM channel_rules"
    )))
    .fetch_all(&mut *tx)
    .await?;
    let tenant: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM tenant_channel_rules"
    )))
    .fetch_all(&mut *tx)
    .await?;
    Ok((
        global.into_iter().map(Into::into).collect(),
        tenant.into_iter().map(Into::into).collect(),
    ))
}

impl Database {
    pub async fn global_rules(&self) -> Result<Vec<ChannelRule>, StoreError> {
        let rows: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM channel_rules ORDER BY priority, channel_code"
        )))
        .fetch_all(self.app_pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn tenant_rules(&self, tenant: TenantId) -> Result<Vec<TenantRule>, StoreError> {
        #[derive(FromRow)]
        struct Row {
            rule_id: Uuid,
            #[sqlx(flatten)]
            rule: RuleRow,
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT rule_id, {RULE_COLUMNS} FROM tenant_channel_rules ORDER BY priority, created_at"
        )))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|r| TenantRule {
                rule_id: r.rule_id,
                rule: r.rule.into(),
            })
            .collect())
    }

    /// Adds a tenant rule; `rule` must already be normalised (`ChannelRule::normalised`).
    pub async fn add_tenant_rule(
        &self,
        tenant: TenantId,
        rule: &ChannelRule,
    ) -> Result<TenantRule, StoreError> {
        let rule_id = Uuid::now_v7();
        let mut tx = self.tenant_tx(tenant).await?;
        let result = sqlx::query(
            "INSERT INTO tenant_channel_rules (tenant_id, rule_id, priority, utm_source, utm_medium, referrer_host, click_id, channel_code)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(tenant)
        .bind(rule_id)
        .bind(rule.priority)
        .bind(&rule.utm_source)
        .bind(&rule.utm_medium)
        .bind(&rule.referrer_host)
        .bind(&rule.click_id)
        .bind(&rule.channel_code)
        .execute(&mut *tx)
        .await;
        if let Err(sqlx::Error::Database(db)) = &result
            && db.is_unique_violation()
        {
            return Err(StoreError::Conflict(
                "this tenant already has a rule for the same evidence; remove it first".into(),
            ));
        }
        result?;
        tx.commit().await?;
        Ok(TenantRule {
            rule_id,
            rule: rule.clone(),
        })
    }

    pub async fn remove_tenant_rule(
        &self,
        tenant: TenantId,
        rule_id: Uuid,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query("DELETE FROM tenant_channel_rules WHERE rule_id = $1")
            .bind(rule_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's settings that ingestion needs: rate limit and default currency.
    pub async fn ingest_settings(&self, tenant: TenantId) -> Result<IngestSettings, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let s = sqlx::query_as(
            "SELECT rate_limit_per_minute, rate_limit_burst, currency::text AS currency, allowed_origins
             FROM tenant_settings",
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(s)
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct IngestSettings {
    pub rate_limit_per_minute: i32,
    pub rate_limit_burst: i32,
    pub currency: String,
    pub allowed_origins: Vec<String>,
}
