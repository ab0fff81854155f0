//! Group commit for single-event requests.
//!
//! One transaction per single event would cap ingestion at the database's commit rate (each
//! durable commit waits for a WAL flush). Instead, requests hand their validated event to a few
//! flusher tasks; a flusher takes everything queued (up to [`MAX_GROUP`]), writes it per tenant
//! in one transaction with the batch code path, commits once, and answers every request. Under
//! load groups grow and the commit cost is shared; when idle a group is one event and adds no
//! delay. A request is answered only after its transaction committed, so "accepted" always
//! means durable.
//!
//! While another flusher's transaction is being written, a flusher with a small group first
//! yields to the runtime a few times ([`GATHER_ROUNDS`]) so that requests already being parsed
//! join it. Each group pays a fixed cost in PostgreSQL (statement start-up, one WAL flush), so
//! fewer, larger groups leave more CPU for requests. Measured with `tally bench ingest` (64
//! clients, 2 cores, fresh data directories, 3 alternating runs each): without gathering, groups
//! of 15.2 events and 8.15 k events/s on average (p99 18–26 ms); gathering up to 24 events in 8
//! rounds, 24.7 events and 9.24 k/s (p99 18 ms); up to 40 in 16 rounds (kept), 23.3 events and
//! 9.62 k/s against 9.26 k/s for 24 / 8 in the same set (p99 17–18 ms). When no other flush is
//! in flight nothing waits, so a lone event is still committed at once.

use crate::ingest::batch::{ItemResult, commit};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tally_store::events::{NewEvent, WriteOutcome};
use tally_store::{Database, Fault, StoreError, TenantId};
use tokio::sync::{Mutex, mpsc, oneshot};

const MAX_GROUP: usize = 512;
const QUEUE: usize = 16_384;
/// A group at least this large is flushed without gathering more.
const GATHER: usize = 40;
/// Scheduler turns a flusher gives requests to join its group (each costs a pass over the
/// runtime's ready tasks, microseconds, not a timer: tokio's timers tick in milliseconds).
const GATHER_ROUNDS: usize = 16;

type Reply = oneshot::Sender<ItemResult<WriteOutcome>>;

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
        let writing = Arc::new(AtomicUsize::new(0));
        let outage = Arc::new(Outage::default());
        for _ in 0..flushers.max(1) {
            tokio::spawn(flush_loop(
                db.clone(),
                rx.clone(),
                totals.clone(),
                writing.clone(),
                outage.clone(),
            ));
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
    pub async fn submit(&self, tenant: TenantId, event: NewEvent) -> ItemResult<WriteOutcome> {
        let (reply, answer) = oneshot::channel();
        let gone = || {
            Arc::new(StoreError::Unavailable(
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

/// `writing` counts the group transactions under way, across flushers.
async fn flush_loop(
    db: Database,
    rx: Arc<Mutex<mpsc::Receiver<Pending>>>,
    totals: Arc<Totals>,
    writing: Arc<AtomicUsize>,
    outage: Arc<Outage>,
) {
    loop {
        let mut group = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(first) => group.push(first),
                None => return,
            }
            drain(&mut rx, &mut group);
            for _ in 0..GATHER_ROUNDS {
                if group.len() >= GATHER || writing.load(Ordering::Acquire) == 0 {
                    break;
                }
                tokio::task::yield_now().await;
                drain(&mut rx, &mut group);
            }
        }
        let _writing = Writing::start(&writing);
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
            flush(&db, &outage, tenant, pending).await;
        }
    }
}

/// When the database was unreachable, each group would wait out the pool's acquire timeout in
/// turn, and a request queued behind one failing group waited twice that or more (917 ms for
/// the slowest 503 in the fault suite's outage). For [`OUTAGE_HOLD`] after such a failure,
/// groups fail at once; the first group after it tries the database again.
#[derive(Default)]
struct Outage(std::sync::Mutex<Option<Instant>>);

const OUTAGE_HOLD: Duration = Duration::from_millis(250);

impl Outage {
    fn start(&self) {
        if let Ok(mut since) = self.0.lock() {
            *since = Some(Instant::now());
        }
    }

    fn recent(&self) -> bool {
        self.0
            .lock()
            .ok()
            .and_then(|since| *since)
            .is_some_and(|since| since.elapsed() < OUTAGE_HOLD)
    }
}

/// Marks one group transaction as under way until dropped, also if its task is cancelled.
struct Writing<'a>(&'a AtomicUsize);

impl<'a> Writing<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Moves what is queued now into `group`, up to [`MAX_GROUP`].
fn drain(rx: &mut mpsc::Receiver<Pending>, group: &mut Vec<Pending>) {
    while group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(next) => group.push(next),
            Err(_) => break,
        }
    }
}

/// Every request gets its own answer: an event the database refuses fails alone (see
/// [`commit`]), and the group's other events are written without it.
async fn flush(db: &Database, outage: &Outage, tenant: TenantId, pending: Vec<Pending>) {
    let (events, replies): (Vec<NewEvent>, Vec<Reply>) =
        pending.into_iter().map(|p| (p.event, p.reply)).unzip();
    if outage.recent() {
        let err = Arc::new(StoreError::Unavailable(
            "the database was unreachable a moment ago".into(),
        ));
        for reply in replies {
            let _ = reply.send(Err(err.clone()));
        }
        return;
    }
    // The group's jobs carry the first request's correlation id; each event keeps its own.
    let correlation = events
        .first()
        .map(|e| e.correlation_id.clone())
        .unwrap_or_default();
    let committed = commit(db, tenant, &events, &[], &correlation).await;
    if committed
        .events
        .iter()
        .any(|r| r.as_ref().is_err_and(|e| e.fault() == Fault::Unavailable))
    {
        outage.start();
    }
    for (reply, outcome) in replies.into_iter().zip(committed.events) {
        let _ = reply.send(outcome);
    }
}
