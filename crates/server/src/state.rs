//! What every handler can reach.

use crate::answers::Answers;
use crate::auth::KeyCache;
use crate::ingest::group_commit::GroupCommit;
use crate::ingest::tenant::TenantCache;
use std::sync::Arc;
use tally_store::Database;

/// Concurrent group-commit transactions by default: enough to overlap one group's commit with
/// the next group's insert, few enough to keep groups large. `tally bench ingest` on the 2-core
/// machine (64 clients): 1 flusher 6.6 k events/s, p99 31 ms (groups of 32, but PostgreSQL idles
/// while the next group forms); 2 flushers 6.9 k/s, p99 19 ms (groups of 15); 4 flushers
/// 5.6 k/s, p99 25 ms (groups of 9: each transaction's fixed cost is paid more often).
pub const GROUP_COMMIT_FLUSHERS: usize = 2;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The operator token for `/v1/admin/*` (`TALLY_ADMIN_TOKEN`); `None` disables that API.
    pub admin_token: Option<String>,
    /// Group-commit transactions in flight at once (see [`GroupCommit`]).
    pub group_commit_flushers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            admin_token: None,
            group_commit_flushers: GROUP_COMMIT_FLUSHERS,
        }
    }
}

/// The handlers' shared state behind one `Arc`: axum clones the state for every extractor of
/// every request, and cloning one pointer is cheaper than cloning (and later dropping) each
/// pool, cache and channel handle inside it.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub db: Database,
    pub config: ServerConfig,
    pub keys: KeyCache,
    pub tenants: TenantCache,
    pub answers: Answers,
    pub group_commit: GroupCommit,
}

impl AppState {
    /// Must be called inside a Tokio runtime: it starts the group-commit flushers.
    pub fn new(db: Database, config: ServerConfig) -> Self {
        Self(Arc::new(Shared {
            group_commit: GroupCommit::start(db.clone(), config.group_commit_flushers),
            db,
            config,
            keys: KeyCache::new(),
            tenants: TenantCache::default(),
            answers: Answers::new(),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
