//! The README's path end to end: `tally serve` with no DATABASE_URL starts its own PostgreSQL,
//! `tally tenant create` prints a key that the API accepts, webhook secrets are sealed with a
//! key file of the data directory (a wrong key is refused at start-up), SIGTERM stops both
//! cleanly, and a restart finds the data again.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tally(data: &Path, pg_port: u16, api_port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
    cmd.env_remove("DATABASE_URL")
        .env("TALLY_DATA_DIR", data)
        .env("TALLY_PG_PORT", pg_port.to_string())
        .env("TALLY_LISTEN", format!("127.0.0.1:{api_port}"))
        .env("TALLY_LOG", "warn");
    cmd
}

fn serve(data: &Path, pg_port: u16, api_port: u16) -> Child {
    tally(data, pg_port, api_port)
        .arg("serve")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("tally serve did not become ready");
}

fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status}");
            return;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test]
async fn serve_manages_its_own_postgres_and_tenant_keys_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tally-data");
    let (pg_port, api_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{api_port}");
    let server = serve(&data, pg_port, api_port);
    wait_ready(&base).await;

    let out =
        run(tally(&data, pg_port, api_port).args(["tenant", "create", "--name", "Acme", "--json"]));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["api_key"]["secret"].as_str().unwrap().to_string();
    let me: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/v1/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["tenant_id"], created["tenant"]["tenant_id"]);

    // Webhook secrets are sealed with a key generated into the data directory, readable by
    // Tally's user alone.
    let endpoint = reqwest::Client::new()
        .post(format!("{base}/v1/webhook-endpoints"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"source": "stripe", "secret": "whsec_0123456789abcdefghij"}))
        .send()
        .await
        .unwrap();
    assert_eq!(endpoint.status(), 201);
    let key_file = std::fs::metadata(data.join("secret.key")).unwrap();
    assert_eq!(key_file.permissions().mode() & 0o777, 0o600);

    // Another data directory pointed at the same port must not use this cluster.
    let elsewhere = dir.path().join("elsewhere");
    let out = tally(&elsewhere, pg_port, api_port)
        .args(["tenant", "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "attached to another data directory's cluster"
    );
    assert!(
        stderr.contains("another data directory") && stderr.contains("--pg-port"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Acme"));

    stop(server);
    assert!(
        !data.join("pg/postmaster.pid").exists(),
        "PostgreSQL stopped with Tally"
    );

    // Another key does not open the stored secrets: a clear refusal at start-up, not
    // deliveries failing later.
    let out = tally(&data, pg_port, api_port)
        .env("TALLY_SECRET_KEY", format!("{}=", "A".repeat(43)))
        .args(["tenant", "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with the wrong key");
    assert!(
        stderr.contains("TALLY_SECRET_KEY") && stderr.contains("was sealed with key"),
        "{stderr}"
    );

    // Restart: the cluster is reused and the tenant is still there.
    let server = serve(&data, pg_port, api_port);
    wait_ready(&base).await;
    let out = run(tally(&data, pg_port, api_port).args(["tenant", "list"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Acme"));
    let status = reqwest::Client::new()
        .get(format!("{base}/v1/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    stop(server);
}

#[test]
fn missing_postgres_binaries_give_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = tally(&dir.path().join("d"), free_port(), free_port())
        .env("TALLY_PG_BINDIR", dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("apt-get install postgresql") && stderr.contains("DATABASE_URL"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
