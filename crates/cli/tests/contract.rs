//! The API against its own OpenAPI document, checked by schemathesis: a real server over a
//! throwaway database, a tenant with a key of each scope, every check schemathesis has
//! (server errors, status codes, content types, response schemas, negative data rejected,
//! positive data accepted, authentication enforced, ...) and a bounded number of examples per
//! operation. Any failure fails the test and prints schemathesis' report.
//!
//! Schemathesis is a Python tool: the test creates a virtualenv under `target/` on first use
//! (`python3 -m venv` and `pip install`, about 15 s) and reuses it afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use tally_server::{AppState, ServerConfig};
use tally_store::tenants::Scope;
use tally_store::testing::TestDb;

/// Pinned: a new release can add checks, and the suite must not fail for a reason unrelated to
/// the change under test.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Test cases per operation and phase: enough to reach every documented status in a few
/// minutes on two cores.
const EXAMPLES_PER_OPERATION: &str = "25";
const OPERATOR_TOKEN: &str = "contract-operator-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_its_openapi_contract() {
    let st = schemathesis();
    let t = TestDb::new().await;
    let (tenant, admin) = t.db.create_tenant("Contract shop").await.unwrap();
    let key = |scope: Scope| {
        let db = t.db.clone();
        async move {
            db.create_api_key(tenant.tenant_id, scope.as_str(), &[scope])
                .await
                .unwrap()
                .secret
        }
    };
    let (ingest, read) = (key(Scope::Ingest).await, key(Scope::Read).await);

    let state = AppState::new(
        t.db.clone(),
        ServerConfig {
            admin_token: Some(OPERATOR_TOKEN.into()),
            ..ServerConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(tally_server::serve(listener, state, async {
        let _ = stopped.await;
    }));

    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract/schemathesis.toml");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(st)
            // Hypothesis keeps its example database in the working directory: not the sources.
            .current_dir(target_dir())
            .arg("--config-file")
            .arg(config)
            .args(["run", &format!("{base}/openapi.json")])
            .args(["--checks", "all", "--max-examples", EXAMPLES_PER_OPERATION])
            .args(["--seed", "20261129", "--workers", "2", "--no-color"])
            .env("TALLY_ADMIN_KEY", admin.secret)
            .env("TALLY_INGEST_KEY", ingest)
            .env("TALLY_READ_KEY", read)
            .env("TALLY_OPERATOR_TOKEN", OPERATOR_TOKEN)
            .output()
            .expect("running schemathesis")
    })
    .await
    .unwrap();
    let _ = stop.send(());
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures (reproduce each with the curl line it prints):\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
}

/// `st` from the virtualenv under `target/`, created on first use.
fn schemathesis() -> PathBuf {
    let venv = target_dir().join("schemathesis-venv");
    let st = venv.join("bin/st");
    let pinned = venv.join(SCHEMATHESIS);
    if st.exists() && pinned.exists() {
        return st;
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", SCHEMATHESIS]));
    std::fs::write(&pinned, "").unwrap();
    st
}

fn run(command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("{command:?}: {e} (is python3 with venv installed?)"));
    assert!(status.success(), "{command:?} failed");
}

/// The workspace's `target/` (or `CARGO_TARGET_DIR`): this binary is `target/debug/deps/contract-*`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<binary>")
        .to_path_buf()
}
