//! Fault tests under load, bounded in time for CI: several API processes and workers on one
//! database, API processes killed with SIGKILL, PostgreSQL restarted and stopped for 10 s.
//!
//! Clients send single events round-robin to the API processes and re-send an event until it
//! is acknowledged (2xx), as a careful client does. At the end every acknowledged event must be
//! stored exactly once. Each test prints its figures (acknowledged, lost, duplicated, 5xx).

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tally_store::cluster::{self, ClusterOptions, Durability, LocalCluster};
use tally_store::testing::TestDb;
use tally_store::{Database, DbConfig, TenantId};
use tokio::sync::Mutex;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tally(subcommand: &str, owner_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
    cmd.arg(subcommand)
        .env("DATABASE_URL", owner_url)
        .env("TALLY_WORKER_LEASE_SECS", "2")
        .env("TALLY_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

struct Api {
    port: u16,
    child: Child,
}

impl Api {
    fn start(owner_url: &str, port: u16) -> Self {
        let child = tally("serve", owner_url)
            .env("TALLY_LISTEN", format!("127.0.0.1:{port}"))
            .spawn()
            .expect("starting tally serve");
        Self { port, child }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no graceful shutdown, in-flight requests die.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} did not become ready");
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    acked: Mutex<HashSet<String>>,
    server_errors: AtomicU64,
    unavailable: AtomicU64,
    without_retry_after: AtomicU64,
    unreachable: AtomicU64,
    /// Milliseconds since the test began of the latest acknowledgement.
    last_ack_ms: AtomicU64,
    slowest_503_ms: AtomicU64,
}

/// Clients that send events to `bases` in turn until `stop`, re-sending each until it is
/// acknowledged.
fn load(
    clients: usize,
    bases: Vec<String>,
    key: String,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    began: Instant,
) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(AtomicUsize::new(0));
    (0..clients)
        .map(|client| {
            let (bases, key, stop, tally, next) = (
                bases.clone(),
                key.clone(),
                stop.clone(),
                tally.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("c{client}-e{n}");
                    let body = json!({
                        "event_id": id,
                        "type": if n % 5 == 4 { "purchase" } else { "page_view" },
                        "occurred_at": "2026-11-01T12:00:00Z",
                        "session_id": format!("s{client}"),
                        "revenue": if n % 5 == 4 { json!("12.50") } else { Value::Null },
                        "currency": if n % 5 == 4 { json!("EUR") } else { Value::Null },
                        "order_id": if n % 5 == 4 { json!(format!("o-{id}")) } else { Value::Null },
                    });
                    let body: Value = body
                        .as_object()
                        .unwrap()
                        .iter()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<serde_json::Map<_, _>>()
                        .into();
                    let base = &bases[next.fetch_add(1, Ordering::Relaxed) % bases.len()];
                    let asked = Instant::now();
                    match http
                        .post(format!("{base}/v1/events"))
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => {
                            tally.acked.lock().await.insert(id);
                            tally
                                .last_ack_ms
                                .fetch_max(began.elapsed().as_millis() as u64, Ordering::Relaxed);
                            n += 1;
                        }
                        Ok(r) if r.status().is_server_error() => {
                            if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                                tally.unavailable.fetch_add(1, Ordering::Relaxed);
                                tally.slowest_503_ms.fetch_max(
                                    asked.elapsed().as_millis() as u64,
                                    Ordering::Relaxed,
                                );
                                if !r.headers().contains_key("retry-after") {
                                    tally.without_retry_after.fetch_add(1, Ordering::Relaxed);
                                }
                            } else {
                                tally.server_errors.fetch_add(1, Ordering::Relaxed);
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Ok(r) => panic!("event {id}: unexpected {}", r.status()),
                        Err(_) => {
                            tally.unreachable.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            })
        })
        .collect()
}

/// Lost and duplicated acknowledged events, as stored.
async fn verify(db: &Database, tenant: TenantId, tally: &Tally, test: &str) -> (usize, usize) {
    let mut tx = db.tenant_tx(tenant).await.unwrap();
    let stored: Vec<(String, i64)> =
        sqlx::query_as("SELECT event_id, count(*) FROM attribution_events GROUP BY event_id")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    let stored: HashMap<String, i64> = stored.into_iter().collect();
    let acked = tally.acked.lock().await;
    let lost = acked.iter().filter(|id| !stored.contains_key(*id)).count();
    let duplicated = stored.values().filter(|&&n| n > 1).count();
    println!(
        "{test}: acknowledged {}, lost {lost}, duplicated {duplicated}, 5xx other than 503 {}, \
         503 {} (without Retry-After {}), unreachable {}, slowest 503 {} ms",
        acked.len(),
        tally.server_errors.load(Ordering::Relaxed),
        tally.unavailable.load(Ordering::Relaxed),
        tally.without_retry_after.load(Ordering::Relaxed),
        tally.unreachable.load(Ordering::Relaxed),
        tally.slowest_503_ms.load(Ordering::Relaxed),
    );
    (lost, duplicated)
}

fn assert_clean(tally: &Tally, lost: usize, duplicated: usize) {
    assert_eq!(
        (lost, duplicated),
        (0, 0),
        "acknowledged events lost or doubled"
    );
    assert_eq!(
        tally.server_errors.load(Ordering::Relaxed),
        0,
        "5xx other than 503"
    );
    assert_eq!(
        tally.without_retry_after.load(Ordering::Relaxed),
        0,
        "503 without Retry-After"
    );
}

async fn only_tenant(db: &Database) -> TenantId {
    db.list_tenants().await.unwrap()[0].tenant_id
}

/// Three `tally serve` processes (each with its built-in worker) and two `tally worker`
/// processes on one database: every event stored once, every recompute job run once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_api_processes_and_two_workers_store_once_and_run_jobs_once() {
    let t = TestDb::new().await;
    let (_, key) = t.db.create_tenant("fault suite").await.unwrap();
    let apis: Vec<Api> = (0..3)
        .map(|_| Api::start(&t.cfg.owner_url, free_port()))
        .collect();
    let _workers: Vec<Api> = (0..2)
        .map(|_| Api {
            port: 0,
            child: tally("worker", &t.cfg.owner_url).spawn().unwrap(),
        })
        .collect();
    let http = reqwest::Client::new();
    for api in &apis {
        wait_ready(&http, &api.base()).await;
    }
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let bases = apis.iter().map(Api::base).collect();
    let clients = load(
        12,
        bases,
        key.secret,
        stop.clone(),
        tally.clone(),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let tenant = only_tenant(&t.db).await;
    let (lost, duplicated) = verify(&t.db, tenant, &tally, "3 API + 2 workers").await;
    assert_clean(&tally, lost, duplicated);
    assert!(
        tally.acked.lock().await.len() > 500,
        "the load made progress"
    );

    // The queue drains, and no job ran twice (a job claimed twice would count two attempts).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (jobs, rerun) = loop {
        let (open, jobs, rerun): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status <> 'succeeded'), count(*),
                    count(*) FILTER (WHERE attempts <> 1) FROM jobs",
        )
        .fetch_one(t.db.operator_pool())
        .await
        .unwrap();
        if open == 0 {
            break (jobs, rerun);
        }
        assert!(
            Instant::now() < deadline,
            "{open} jobs still open after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("3 API + 2 workers: jobs {jobs}, run more than once {rerun}");
    assert!(jobs > 0);
    assert_eq!(rerun, 0);
}

/// One of three API processes is killed with SIGKILL five times under load and restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_an_api_process_five_times_under_load() {
    let t = TestDb::new().await;
    let (_, key) = t.db.create_tenant("fault suite").await.unwrap();
    let mut apis: Vec<Api> = (0..3)
        .map(|_| Api::start(&t.cfg.owner_url, free_port()))
        .collect();
    let http = reqwest::Client::new();
    for api in &apis {
        wait_ready(&http, &api.base()).await;
    }
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let bases = apis.iter().map(Api::base).collect();
    let clients = load(
        12,
        bases,
        key.secret,
        stop.clone(),
        tally.clone(),
        Instant::now(),
    );
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let victim = &mut apis[round % 3];
        victim.kill();
        *victim = Api::start(&t.cfg.owner_url, victim.port);
        wait_ready(&http, &victim.base()).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let tenant = only_tenant(&t.db).await;
    let (lost, duplicated) = verify(&t.db, tenant, &tally, "5 SIGKILLs").await;
    assert_clean(&tally, lost, duplicated);
    assert!(
        tally.unreachable.load(Ordering::Relaxed) > 0,
        "the kills interrupted requests"
    );
}

/// PostgreSQL is restarted, then stopped for 10 s, under load: 503 with Retry-After while it is
/// down, answered fast; service resumes by itself within 2 s of PostgreSQL's return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_and_ten_second_outage_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ClusterOptions {
        data_dir: dir.path().to_path_buf(),
        port: Some(free_port()),
        durability: Durability::Throwaway,
        bindir: std::env::var_os("TALLY_PG_BINDIR").map(Into::into),
    };
    let start_pg = |opts: ClusterOptions| async move {
        Arc::new(
            tokio::task::spawn_blocking(move || LocalCluster::start(&opts).unwrap())
                .await
                .unwrap(),
        )
    };
    let stop_pg = |pg: Arc<LocalCluster>| async move {
        tokio::task::spawn_blocking(move || pg.stop())
            .await
            .unwrap()
    };
    let mut pg = start_pg(opts.clone()).await;
    tally_store::db::bootstrap_managed(&pg.url(cluster::SUPERUSER, "postgres"))
        .await
        .unwrap();
    let cfg = DbConfig {
        owner_url: pg.url(cluster::OWNER, cluster::DATABASE),
        role_password: None,
        max_connections: 4,
        secrets: Default::default(),
    };
    Database::migrate(&cfg).await.unwrap();
    let db = Database::connect(&cfg).await.unwrap();
    let (_, key) = db.create_tenant("fault suite").await.unwrap();
    let api = Api::start(&cfg.owner_url, free_port());
    let http = reqwest::Client::new();
    wait_ready(&http, &api.base()).await;

    let began = Instant::now();
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let clients = load(
        8,
        vec![api.base()],
        key.secret,
        stop.clone(),
        tally.clone(),
        began,
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop_pg(pg.clone()).await;
    pg = start_pg(opts.clone()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop_pg(pg.clone()).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let unavailable_while_down = tally.unavailable.load(Ordering::Relaxed);
    pg = start_pg(opts.clone()).await;
    let back_ms = began.elapsed().as_millis() as u64;
    let recovered = loop {
        let last = tally.last_ack_ms.load(Ordering::Relaxed);
        if last > back_ms {
            break Duration::from_millis(last - back_ms);
        }
        assert!(
            began.elapsed().as_millis() as u64 - back_ms < 2000,
            "no event acknowledged within 2 s of PostgreSQL's return"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let db = Database::connect(&cfg).await.unwrap();
    let tenant = only_tenant(&db).await;
    let (lost, duplicated) = verify(&db, tenant, &tally, "PostgreSQL restart + 10 s outage").await;
    println!("PostgreSQL outage: first acknowledgement {recovered:?} after its return");
    assert_clean(&tally, lost, duplicated);
    assert!(
        unavailable_while_down > 0,
        "requests during the outage were answered 503"
    );
    assert!(
        tally.slowest_503_ms.load(Ordering::Relaxed) < 1000,
        "a 503 took a second or more"
    );
    drop(api);
    pg.stop();
}
