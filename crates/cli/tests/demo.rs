//! `tally demo` against a real `tally serve` over HTTP: a short demo (two days, few visitors)
//! must fill every reconciliation status, give at least eight channels revenue, leave dead
//! letters, and a rerun must change none of it.

use chrono::{DurationRound, TimeDelta, Utc};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tally_store::testing::TestDb;

/// Kills the server when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(owner_url: &str, port: u16) -> Server {
    Server(
        Command::new(env!("CARGO_BIN_EXE_tally"))
            .arg("serve")
            .env("DATABASE_URL", owner_url)
            .env("TALLY_LISTEN", format!("127.0.0.1:{port}"))
            .env("TALLY_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .expect("starting tally serve"),
    )
}

async fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not become ready");
}

/// Runs `tally demo` to completion; returns its output and the read key it printed.
async fn demo(owner_url: &str, base: &str) -> (String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
    cmd.args(["demo", "--base-url", base, "--days", "2", "--scale", "400"])
        .env("DATABASE_URL", owner_url)
        .stderr(Stdio::inherit());
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("running tally demo"))
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "tally demo failed:\n{stdout}");
    let key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("read key"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no key in:\n{stdout}"))
        .to_string();
    (stdout, key)
}

async fn get(base: &str, key: &str, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// Everything the dashboard would show for the demo's days, minus clocks.
async fn snapshot(base: &str, key: &str) -> Value {
    let hour = |t: chrono::DateTime<Utc>| {
        t.duration_trunc(TimeDelta::hours(1))
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let now = Utc::now();
    let window = format!(
        "from={}&to={}",
        hour(now - TimeDelta::days(4)),
        hour(now + TimeDelta::hours(2))
    );
    let status = get(base, key, &format!("/v1/reconciliation/status?{window}")).await;
    let platforms: Vec<Value> = status["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            json!([
                p["platform_name"],
                p["endpoint_id"],
                p["events_processed"],
                p["revenue_verified_cents"],
                p["connection_status"]
            ])
        })
        .collect();
    let channels = get(base, key, &format!("/v1/attribution/channels?{window}")).await;
    let dead = get(base, key, "/v1/dead-events?limit=500").await;
    let events = get(base, key, "/v1/events?limit=500").await;
    json!({
        "overall_status": status["overall_status"],
        "counts": status["counts"],
        "platforms": platforms,
        "channels": channels["channels"],
        "dead_letters": dead["items"].as_array().unwrap().len(),
        "newest_events": events["items"].as_array().unwrap().len(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_fills_every_status_eight_channels_and_dead_letters_and_a_rerun_changes_nothing() {
    let t = TestDb::new().await;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = start_server(&t.cfg.owner_url, port);
    wait_ready(&base).await;

    let (first_out, first_key) = demo(&t.cfg.owner_url, &base).await;
    assert!(
        first_out.contains(&format!("dashboard    {base}/")),
        "{first_out}"
    );
    let me = get(&base, &first_key, "/v1/me").await;
    assert_eq!(
        me["scopes"],
        json!(["read"]),
        "the printed key is read-only"
    );
    let before = snapshot(&base, &first_key).await;

    for status in [
        "matched",
        "amount_mismatch",
        "currency_mismatch",
        "awaiting_payment",
        "tracked_not_paid",
        "paid_not_tracked",
        "refunded",
        "partially_refunded",
    ] {
        assert!(
            before["counts"][status].as_i64().unwrap_or(0) > 0,
            "no {status} item: {}",
            before["counts"]
        );
    }
    let paying: Vec<&str> = before["channels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["channel_code"] != "unattributed")
        .filter(|c| {
            c["models"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["verified_cents"].as_i64().unwrap() > 0)
        })
        .map(|c| c["channel_code"].as_str().unwrap())
        .collect();
    assert!(
        paying.len() >= 8,
        "channels with verified revenue: {paying:?}"
    );
    assert!(before["dead_letters"].as_u64().unwrap() >= 4, "{before}");
    let platforms = before["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 4, "one endpoint per vendor: {platforms:?}");
    assert!(
        platforms.iter().all(|p| p[2].as_i64().unwrap() > 0),
        "every vendor delivered: {platforms:?}"
    );

    let (second_out, second_key) = demo(&t.cfg.owner_url, &base).await;
    assert!(second_out.contains(" 0 accepted, "), "{second_out}");
    assert!(second_out.contains(": 0 new, "), "{second_out}");
    // Another process revoked it: the server's key cache forgets it within its 5 s TTL.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = reqwest::Client::new()
            .get(format!("{base}/v1/me"))
            .bearer_auth(&first_key)
            .send()
            .await
            .unwrap()
            .status();
        if status == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "a rerun revokes the earlier key");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(snapshot(&base, &second_key).await, before);
}

/// `serve --demo` loads in the background while serving, then prints the dashboard URL (its own
/// listen address) and a read key that works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_loads_in_the_background_and_prints_its_url_and_key() {
    use std::io::{BufRead, BufReader};
    let t = TestDb::new().await;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(["serve", "--demo", "--days", "2", "--scale", "30"])
            .env("DATABASE_URL", &t.cfg.owner_url)
            .env("TALLY_LISTEN", format!("127.0.0.1:{port}"))
            .env("TALLY_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tally serve --demo"),
    );
    let stderr = server.0.stderr.take().unwrap();
    // Reads up to and including the key line (the summary's last).
    let printed = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let last = line.starts_with("read key");
            lines.push(line);
            if last {
                break;
            }
        }
        lines
    });
    wait_ready(&base).await;
    let printed = printed.await.unwrap();
    assert!(
        printed.contains(&format!("dashboard    {base}/")),
        "{printed:?}"
    );
    let key = printed
        .last()
        .and_then(|l| l.strip_prefix("read key"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no key in {printed:?}"));
    let me = get(&base, key, "/v1/me").await;
    assert_eq!(me["scopes"], json!(["read"]));
    let status = get(&base, key, "/v1/reconciliation/status").await;
    assert_ne!(
        status["overall_status"], "pending",
        "settled before printing"
    );
}
