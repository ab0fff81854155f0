//! What every handler can reach.

use crate::auth::KeyCache;
use std::sync::Arc;
use tally_store::Database;

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
}

impl AppState {
    pub fn new(db: Database, config: ServerConfig) -> Self {
        Self {
            db,
            config: Arc::new(config),
            keys: KeyCache::new(),
        }
    }
}
