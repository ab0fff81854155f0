//! What every handler can reach.

use crate::auth::KeyCache;
use crate::ingest::group_commit::GroupCommit;
use crate::ingest::tenant::TenantCache;
use std::sync::Arc;
use tally_store::Database;

/// Concurrent group-commit transactions: enough to overlap one group's commit with the next
/// group's insert, few enough to keep groups large.
const GROUP_COMMIT_FLUSHERS: usize = 4;

#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// The operator token for `/v1/admin/*` (`TALLY_ADMIN_TOKEN`); `None` disables that API.
    pub admin_token: Option<String>,
}

#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub config: Arc<ServerConfig>,
    pub keys: KeyCache,
    pub tenants: TenantCache,
    pub group_commit: GroupCommit,
}

impl AppState {
    /// Must be called inside a Tokio runtime: it starts the group-commit flushers.
    pub fn new(db: Database, config: ServerConfig) -> Self {
        Self {
            group_commit: GroupCommit::start(db.clone(), GROUP_COMMIT_FLUSHERS),
            db,
            config: Arc::new(config),
            keys: KeyCache::new(),
            tenants: TenantCache::default(),
        }
    }
}
