//! The test harness: a server on port 0 over a fresh database, and a client that states the
//! expected status on every call.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};
use tally_server::{AppState, ServerConfig};
use tally_store::Database;
use tally_store::TenantId;
use tally_store::testing::TestDb;
use tally_worker::{Handlers, Worker, WorkerConfig};
use tokio::sync::watch;

pub const ADMIN_TOKEN: &str = "test-operator-token";

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub t: TestDb,
    /// A tenant created for the test, with an all-scopes key.
    pub tenant_id: String,
    pub key: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        let t = TestDb::new().await;
        let (base, tx) = serve(t.db.clone()).await;
        let (tenant, key) = t.db.create_tenant("Test shop").await.unwrap();
        Self {
            base,
            http: reqwest::Client::new(),
            t,
            tenant_id: tenant.tenant_id.to_string(),
            key: key.secret,
            shutdown: Some(tx),
        }
    }

    /// Another API process on this server's database: its own pools, caches and group
    /// commit, as a second `tally serve` would have. Stops when dropped.
    pub async fn peer(&self) -> Peer {
        let db = Database::connect(&self.t.cfg).await.unwrap();
        let (base, shutdown) = serve(db).await;
        Peer {
            base,
            _shutdown: shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with `key` as bearer (if any) and asserts the status; returns the body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        expect: StatusCode,
    ) -> Value {
        let mut req = self.http.request(method.clone(), self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, expect, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    pub async fn get(&self, path: &str, expect: StatusCode) -> Value {
        self.call(Method::GET, path, Some(&self.key.clone()), None, expect)
            .await
    }

    pub async fn post(&self, path: &str, body: &Value, expect: StatusCode) -> Value {
        self.call(
            Method::POST,
            path,
            Some(&self.key.clone()),
            Some(body),
            expect,
        )
        .await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Workers (recompute, reconciliation, realtime folding) on the test's database, polling fast;
/// they stop when the returned sender is dropped.
pub fn workers(s: &TestServer) -> watch::Sender<bool> {
    let (stop, rx) = watch::channel(false);
    let cfg = WorkerConfig {
        poll_interval: Duration::from_millis(100),
        ..WorkerConfig::default()
    };
    tokio::spawn(Worker::new(s.t.db.clone(), cfg, Handlers::standard()).run(rx));
    stop
}

pub fn tenant(s: &TestServer) -> TenantId {
    s.tenant_id.parse().unwrap()
}

/// GETs `path` until `done` holds (30 s at most) and returns that body.
pub async fn until(s: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = s.get(path, StatusCode::OK).await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A second server over the same database (see [`TestServer::peer`]).
pub struct Peer {
    pub base: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Peer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Serves the API over `db` on a loopback port until the returned sender is dropped or fires.
pub async fn serve(db: Database) -> (String, tokio::sync::oneshot::Sender<()>) {
    let state = AppState::new(
        db,
        ServerConfig {
            admin_token: Some(ADMIN_TOKEN.into()),
            ..ServerConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(tally_server::serve(listener, state, async {
        let _ = rx.await;
    }));
    (base, tx)
}

/// Asserts `body` is a problem document with `code` and the fields RFC 7807 asks for.
pub fn assert_problem(body: &Value, status: u16, code: &str) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    for field in ["type", "title", "detail", "instance", "correlation_id"] {
        assert!(body[field].is_string(), "problem lacks {field}: {body}");
    }
}
