//! `tally tenant create --currency --time-zone` and `tally tenant settings [--set]` against a
//! real database: they validate exactly as the API does and refuse with every field named.

use serde_json::Value;
use std::process::{Command, Output};
use tally_store::testing::TestDb;

fn tally(t: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .env("DATABASE_URL", &t.cfg.owner_url)
        .env("TALLY_LOG", "error")
        .output()
        .expect("running tally")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn tenants_are_created_with_and_changed_to_valid_settings_only() {
    let t = TestDb::new().await;
    let created = json_of(&tally(
        &t,
        &[
            "tenant",
            "create",
            "--name",
            "Berlin shop",
            "--currency",
            "eur",
            "--time-zone",
            "Europe/Berlin",
            "--json",
        ],
    ));
    assert_eq!(created["settings"]["currency"], "EUR");
    assert_eq!(created["settings"]["time_zone"], "Europe/Berlin");
    let tenant = created["tenant"]["tenant_id"].as_str().unwrap().to_string();

    let refused = tally(
        &t,
        &[
            "tenant",
            "create",
            "--name",
            "CET shop",
            "--time-zone",
            "CET",
        ],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("/time_zone"), "{stderr}");
    assert_eq!(
        t.db.list_tenants().await.unwrap().len(),
        1,
        "nothing written"
    );

    let changed = json_of(&tally(
        &t,
        &[
            "tenant",
            "settings",
            "--tenant",
            &tenant,
            "--set",
            "lookback_days=14",
            "--set",
            "time_zone=America/New_York",
            "--json",
        ],
    ));
    assert_eq!(changed["settings"]["lookback_days"], 14);
    assert_eq!(changed["settings"]["time_zone"], "America/New_York");
    assert_eq!(changed["settings"]["currency"], "EUR", "kept");
    assert_eq!(changed["recompute"]["windows"], 0, "no conversions yet");

    let refused = tally(
        &t,
        &[
            "tenant",
            "settings",
            "--tenant",
            &tenant,
            "--set",
            "currency=EURO",
            "--set",
            "colour=blue",
        ],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("/currency") && stderr.contains("/colour"),
        "{stderr}"
    );

    let shown = tally(&t, &["tenant", "settings", "--tenant", &tenant]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success());
    assert!(
        text.lines()
            .any(|l| l.starts_with("lookback_days") && l.ends_with(" 14")),
        "{text}"
    );
    assert!(text.contains("America/New_York"), "{text}");
}
