//! The store's error type. Constraint violations keep their constraint name so the HTTP layer
//! can map them to 409/422 without parsing messages.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

impl StoreError {
    /// Whether the database refused the data itself (SQLSTATE class 22, data exception, or 23,
    /// integrity constraint violation): the same write would fail on every retry, unlike a lost
    /// connection or a timeout.
    pub fn is_refused_data(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => db
                .code()
                .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
            _ => false,
        }
    }

    /// The violated constraint, when the database refused a row.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => db.constraint(),
            _ => None,
        }
    }
}
