//! Fault test: the server is killed with SIGKILL while clients send batches, then restarted;
//! clients retry every batch that was not acknowledged. Every acknowledged event must be stored
//! exactly once, and nothing twice.

use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally_store::testing::TestDb;
use tokio::sync::Mutex;

fn start_server(owner_url: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("serve")
        .env("DATABASE_URL", owner_url)
        .env("TALLY_LISTEN", format!("127.0.0.1:{port}"))
        .env("TALLY_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting tally serve")
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
    panic!("server did not become ready");
}

fn batch(client: usize, n: usize) -> Vec<Value> {
    (0..100)
        .map(|i| {
            json!({
                "event_id": format!("c{client}-b{n}-e{i}"),
                "type": "page_view",
                "occurred_at": "2026-11-01T12:00:00Z",
                "session_id": format!("s{client}"),
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_exactly_once() {
    let t = TestDb::new().await;
    let (_, key) = t.db.create_tenant("crash").await.unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let server = Arc::new(Mutex::new(start_server(&t.cfg.owner_url, port)));
    wait_ready(&http, &base).await;

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Instant::now() + Duration::from_secs(6);
    let mut clients = Vec::new();
    for client in 0..4 {
        let (http, base, key, acked) = (
            http.clone(),
            base.clone(),
            key.secret.clone(),
            acked.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut n = 0;
            let mut retries = 0;
            while Instant::now() < stop {
                let body = batch(client, n);
                let sent = http
                    .post(format!("{base}/v1/events/batch"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        let v: Value = r.json().await.unwrap();
                        let results = v["results"].as_array().unwrap();
                        assert_eq!(results.len(), 100);
                        assert!(
                            results
                                .iter()
                                .all(|r| r["status"] == "accepted" || r["status"] == "duplicate")
                        );
                        acked.lock().await.extend(
                            body.iter()
                                .map(|e| e["event_id"].as_str().unwrap().to_string()),
                        );
                        n += 1;
                    }
                    // Not acknowledged (connection refused or reset, 5xx): retry the same batch.
                    _ => {
                        retries += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            retries
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    {
        let mut s = server.lock().await;
        s.kill().unwrap(); // SIGKILL: no graceful shutdown, in-flight requests die
        s.wait().unwrap();
        *s = start_server(&t.cfg.owner_url, port);
    }
    wait_ready(&http, &base).await;

    let mut retries = 0;
    for c in clients {
        retries += c.await.unwrap();
    }
    server.lock().await.kill().unwrap();
    assert!(
        retries > 0,
        "the kill should have interrupted at least one batch"
    );

    let acked = acked.lock().await.clone();
    assert!(
        acked.len() >= 400,
        "clients made progress before and after the kill"
    );
    let mut conn =
        t.db.tenant_tx(tally_store::TenantId(owner_tenant(&t).await))
            .await
            .unwrap();
    let stored: Vec<(String, i64)> =
        sqlx::query_as("SELECT event_id, count(*) FROM attribution_events GROUP BY event_id")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let stored: std::collections::HashMap<String, i64> = stored.into_iter().collect();
    for id in &acked {
        assert_eq!(
            stored.get(id),
            Some(&1),
            "acknowledged event {id} must be stored exactly once"
        );
    }
    assert!(stored.values().all(|&n| n == 1));
}

async fn owner_tenant(t: &TestDb) -> uuid::Uuid {
    t.db.list_tenants().await.unwrap()[0].tenant_id.0
}
