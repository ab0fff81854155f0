//! The store's error type. Constraint violations keep their constraint name so the HTTP layer
//! can map them to 409/422 without parsing messages, and [`StoreError::fault`] sorts every
//! failure into what a caller can do about it, so that mapping lives in one place.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    /// The store cannot take work now (shutting down); nothing was written.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// What a failure says about the work that failed, which decides what may be done next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The database could not be reached, dropped the connection or is shutting down: the
    /// transaction did not commit, and the same work can succeed later (503 + Retry-After).
    Unavailable,
    /// A deadlock or serialization failure: the transaction lost a race with another one and
    /// was rolled back; running it again at once normally succeeds.
    Contention,
    /// The database refused the data itself (a constraint, a trigger, a value it cannot store,
    /// a row too large): the same rows fail the same way every time, so the caller must not
    /// retry them, and rows written with them may be retried without them.
    Refused(Refusal),
    /// Not found, conflict, invalid input or a bug: the caller handles these by variant.
    Other,
}

/// Why the database refused data, as a stable code for clients (SQLSTATE classes, PostgreSQL
/// manual appendix A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Class 22, data exception: a value PostgreSQL cannot store (a NUL in text, a number out
    /// of range, an invalid escape).
    UnstorableValue,
    /// 23505: a unique key is taken.
    Duplicate,
    /// Class 23 otherwise: a check, not-null or foreign key constraint, or a trigger that
    /// raises one (PII guard, append-only guard).
    ConstraintViolation,
    /// Class 54, program limit exceeded: e.g. a value too large for an index.
    TooLarge,
    /// P0001: a trigger or function raised an error of its own.
    RaisedByDatabase,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::UnstorableValue => "unstorable_value",
            Refusal::Duplicate => "duplicate_key",
            Refusal::ConstraintViolation => "constraint_violation",
            Refusal::TooLarge => "value_too_large",
            Refusal::RaisedByDatabase => "refused_by_database",
        }
    }
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

    /// Sorts this failure by what the caller can do about it.
    pub fn fault(&self) -> Fault {
        match self {
            StoreError::Unavailable(_) | StoreError::Cluster(_) => Fault::Unavailable,
            StoreError::Database(err) => sqlx_fault(err),
            StoreError::Migrate(_)
            | StoreError::NotFound
            | StoreError::Conflict(_)
            | StoreError::Invalid(_) => Fault::Other,
        }
    }
}

fn sqlx_fault(err: &sqlx::Error) -> Fault {
    use sqlx::Error as E;
    match err {
        E::Io(_)
        | E::Tls(_)
        | E::Protocol(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed
        | E::BeginFailed => Fault::Unavailable,
        E::Database(db) => db.code().map_or(Fault::Other, |code| sqlstate_fault(&code)),
        _ => Fault::Other,
    }
}

fn sqlstate_fault(code: &str) -> Fault {
    match code {
        "40001" | "40P01" | "55P03" => Fault::Contention,
        "23505" => Fault::Refused(Refusal::Duplicate),
        "P0001" => Fault::Refused(Refusal::RaisedByDatabase),
        // 08: connection exception; 57P01-57P03: administrator or crash shutdown, cannot
        // connect now; 53: insufficient resources (too many connections, disk full);
        // 58: system error (I/O) on the server.
        c if ["08", "57P", "53", "58"]
            .iter()
            .any(|class| c.starts_with(class)) =>
        {
            Fault::Unavailable
        }
        c if c.starts_with("22") => Fault::Refused(Refusal::UnstorableValue),
        c if c.starts_with("23") => Fault::Refused(Refusal::ConstraintViolation),
        c if c.starts_with("54") => Fault::Refused(Refusal::TooLarge),
        _ => Fault::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_sort_into_faults() {
        for (code, fault) in [
            ("40P01", Fault::Contention),
            ("40001", Fault::Contention),
            ("57P01", Fault::Unavailable),
            ("08006", Fault::Unavailable),
            ("53300", Fault::Unavailable),
            ("22021", Fault::Refused(Refusal::UnstorableValue)),
            ("23514", Fault::Refused(Refusal::ConstraintViolation)),
            ("23505", Fault::Refused(Refusal::Duplicate)),
            ("54000", Fault::Refused(Refusal::TooLarge)),
            ("P0001", Fault::Refused(Refusal::RaisedByDatabase)),
            ("42P01", Fault::Other),
        ] {
            assert_eq!(sqlstate_fault(code), fault, "{code}");
        }
    }
}
