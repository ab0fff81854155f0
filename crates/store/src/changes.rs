//! Which tenants' data may have changed, as this process saw it: a version per tenant that every
//! committed [`TenantTx`](crate::TenantTx) that wrote moves on, and so does ingestion's one-statement write
//! ([`crate::Database::ingest_events`]), which runs outside one. Read caches key their answers on it
//! (crates/server/src/answers.rs), so that in one process (the server with its workers, as
//! `tally serve` runs them) a read after a write never sees an answer computed before it.
//!
//! Versions live in a fixed array of counters that tenants share by hash rather than in a map:
//! memory stays bounded whatever the number of tenants, and a tenant whose counter another one
//! moves only loses some cache hits. Writes by other processes (another server, a separate
//! `tally worker`, SQL by hand) are not seen here; caches bound their staleness with a TTL.

use crate::ids::TenantId;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const SLOTS: usize = 4096;

#[derive(Clone)]
pub struct Changes(Arc<[AtomicU64]>);

impl Changes {
    pub fn new() -> Self {
        Self((0..SLOTS).map(|_| AtomicU64::new(0)).collect())
    }

    /// The tenant's version: it moves after every commit of a write acting for it.
    pub fn version(&self, tenant: TenantId) -> u64 {
        self.slot(tenant).load(Ordering::Acquire)
    }

    /// Called after a commit, so that a reader that sees the new version also sees the data.
    pub(crate) fn changed(&self, tenant: TenantId) {
        self.slot(tenant).fetch_add(1, Ordering::AcqRel);
    }

    fn slot(&self, tenant: TenantId) -> &AtomicU64 {
        // Tenant ids are random (v4), so their low bits spread tenants over the slots.
        &self.0[(tenant.0.as_u128() % SLOTS as u128) as usize]
    }
}

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_moves_the_tenants_version_only() {
        let changes = Changes::new();
        let (a, b) = (
            TenantId(uuid::Uuid::from_u128(1)),
            TenantId(uuid::Uuid::from_u128(2)),
        );
        let (va, vb) = (changes.version(a), changes.version(b));
        changes.changed(a);
        assert_eq!(changes.version(a), va + 1);
        // Another tenant's version moves too only when the two share a slot.
        let shared = std::ptr::eq(changes.slot(a), changes.slot(b));
        assert_eq!(changes.version(b), vb + u64::from(shared));
    }
}
