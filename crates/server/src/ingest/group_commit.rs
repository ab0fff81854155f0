//! Group commit for single-event requests.
//!
//! One transaction per single event would cap ingestion at the database's commit rate (each
//! durable commit waits for a WAL flush). Instead, requests hand their validated event to a few
//! flusher tasks; a flusher takes everything queued (up to [`MAX_GROUP`]), writes it per tenant
//! in one transaction with the batch code path, commits once, and answers every request. Under
//! load groups grow and the commit cost is shared; when idle a group is one event and adds no
//! delay. A request is answered only after its transaction committed, so "accepted" always
//! means durable.

use crate::ingest::batch::commit;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tally_store::events::{NewEvent, WriteOutcome};
use tally_store::{Database, StoreError, TenantId};
use tokio::sync::{Mutex, mpsc, oneshot};

const MAX_GROUP: usize = 512;
const QUEUE: usize = 16_384;

type Reply = oneshot::Sender<Result<WriteOutcome, Arc<StoreError>>>;

struct Pending {
    tenant: TenantId,
    event: NewEvent,
    reply: Reply,
}

#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Pending>,
    totals: Arc<Totals>,
}

/// Transactions committed and events they carried, for the mean group size `tally bench` prints.
#[derive(Default)]
struct Totals {
    groups: AtomicU64,
    events: AtomicU64,
}

impl GroupCommit {
    /// Starts `flushers` tasks on the current runtime; they stop when every handle is dropped.
    pub fn start(db: Database, flushers: usize) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let totals = Arc::new(Totals::default());
        for _ in 0..flushers.max(1) {
            tokio::spawn(flush_loop(db.clone(), rx.clone(), totals.clone()));
        }
        Self { queue, totals }
    }

    /// Group transactions committed so far and the events in them.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.totals.groups.load(Ordering::Relaxed),
            self.totals.events.load(Ordering::Relaxed),
        )
    }

    /// Writes one event as part of the next group; resolves after its commit.
    pub async fn submit(
        &self,
        tenant: TenantId,
        event: NewEvent,
    ) -> Result<WriteOutcome, Arc<StoreError>> {
        let (reply, answer) = oneshot::channel();
        let gone = || {
            Arc::new(StoreError::Invalid(
                "the ingestion pipeline is shutting down".into(),
            ))
        };
        self.queue
            .send(Pending {
                tenant,
                event,
                reply,
            })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn flush_loop(db: Database, rx: Arc<Mutex<mpsc::Receiver<Pending>>>, totals: Arc<Totals>) {
    loop {
        let mut group = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(first) => group.push(first),
                None => return,
            }
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
        }
        metrics::histogram!("tally_group_commit_size").record(group.len() as f64);
        totals.groups.fetch_add(1, Ordering::Relaxed);
        totals
            .events
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        let mut by_tenant: HashMap<TenantId, Vec<Pending>> = HashMap::new();
        for p in group {
            by_tenant.entry(p.tenant).or_default().push(p);
        }
        for (tenant, pending) in by_tenant {
            flush(&db, tenant, pending).await;
        }
    }
}

async fn flush(db: &Database, tenant: TenantId, pending: Vec<Pending>) {
    let (events, replies): (Vec<NewEvent>, Vec<Reply>) =
        pending.into_iter().map(|p| (p.event, p.reply)).unzip();
    // The group's jobs carry the first request's correlation id; each event keeps its own.
    let correlation = events
        .first()
        .map(|e| e.correlation_id.clone())
        .unwrap_or_default();
    let result = commit(db, tenant, &events, &[], &correlation)
        .await
        .map(|(written, _)| written);
    match result {
        Ok(written) => {
            for (reply, outcome) in replies.into_iter().zip(written) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(err) => {
            tracing::error!(error = %err, events = events.len(), "group commit failed; nothing of it was written");
            let err = Arc::new(err);
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}
