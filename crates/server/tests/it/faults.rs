//! Faults: what the database refuses, lost races between processes, connection loss, rate-limit
//! state and key revocation across processes.

use crate::common::{TestServer, assert_problem};
use crate::events::{tenant_scalar, touch};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally_store::testing::begin_for_tenant;

/// Runs `sql` as the schema owner (e.g. to install a test-only trigger).
async fn as_owner(s: &TestServer, sql: &str) {
    let mut conn = PgConnection::connect(&s.t.cfg.owner_url).await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(sql.to_string()))
        .await
        .unwrap();
}

/// A trigger that refuses every event whose `event_id` starts with `poison`: a stand-in for
/// whatever the database refuses that the app does not check first.
const POISON_TRIGGER: &str = r#"
CREATE FUNCTION test_refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event % is poisoned', NEW.event_id;
END $$;
CREATE TRIGGER test_refuse_poison BEFORE INSERT ON attribution_events
    FOR EACH ROW WHEN (NEW.event_id LIKE 'poison%') EXECUTE FUNCTION test_refuse_poison();
"#;

async fn post_event(
    http: reqwest::Client,
    url: String,
    key: String,
    body: Value,
) -> (StatusCode, Value) {
    let r = http
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn an_event_the_database_refuses_fails_alone() {
    let s = TestServer::start().await;
    as_owner(&s, POISON_TRIGGER).await;
    let (_, other) = s.t.db.create_tenant("Other shop").await.unwrap();
    // Concurrent single events of two tenants share group commits with poisoned ones.
    let mut tasks = Vec::new();
    let mut own_valid = 0;
    for i in 0..300 {
        let poisoned = i % 15 == 7;
        let key = if i % 2 == 0 {
            own_valid += i64::from(!poisoned);
            s.key.clone()
        } else {
            other.secret.clone()
        };
        let id = if poisoned {
            format!("poison-{i}")
        } else {
            format!("ok-{i}")
        };
        let fut = post_event(s.http.clone(), s.url("/v1/events"), key, touch(&id));
        tasks.push((id, tokio::spawn(fut)));
    }
    let mut refused = 0;
    for (id, task) in tasks {
        let (status, body) = task.await.unwrap();
        if id.starts_with("poison") {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{id}: {body}");
            assert_problem(&body, 422, "refused_by_database");
            assert!(
                body["detail"].as_str().unwrap().contains("poisoned"),
                "{body}"
            );
            refused += 1;
        } else {
            assert_eq!(status, StatusCode::CREATED, "{id}: {body}");
        }
    }
    assert_eq!(refused, 20);
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM attribution_events").await,
        own_valid,
        "every valid event of this tenant is stored"
    );

    // In a batch, the refused event gets its own result and the others are written.
    let batch = json!([touch("b-1"), touch("poison-b"), touch("b-2"), touch("b-3")]);
    let body = s.post("/v1/events/batch", &batch, StatusCode::OK).await;
    let statuses: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["accepted", "refused", "accepted", "accepted"]);
    assert_eq!(body["results"][1]["error_code"], "refused_by_database");
    assert_eq!(body["results"][1]["event_id"], "poison-b");
    assert_eq!(
        (body["accepted"].as_u64(), body["refused"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM attribution_events").await,
        own_valid + 3
    );
}

/// One event sent to two API processes at once: their group commits must not deadlock, and
/// the loser of the race is told `duplicate`, never 503. At most 256 pairs are in flight: both
/// servers and every client share this test's runtime, and thousands of requests at once would
/// starve the pools' acquire timers rather than test the race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_pairs_on_two_servers_are_answered_duplicate_never_503() {
    let s = TestServer::start().await;
    let peer = s.peer().await;
    let pairs = 2000;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::new();
    for i in 0..pairs {
        let permit = in_flight.clone().acquire_owned().await.unwrap();
        let permit = Arc::new(permit);
        for url in [s.url("/v1/events"), peer.url("/v1/events")] {
            let body = touch(&format!("race-{i}"));
            let fut = post_event(s.http.clone(), url, s.key.clone(), body);
            let permit = permit.clone();
            tasks.push(tokio::spawn(async move {
                let answer = fut.await;
                drop(permit);
                answer
            }));
        }
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let errors: Vec<_> = results
        .iter()
        .filter(|(status, _)| ![StatusCode::OK, StatusCode::CREATED].contains(status))
        .collect();
    println!("racing pairs: {pairs}, errors: {}", errors.len());
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    for pair in results.chunks(2) {
        let mut statuses = [pair[0].0, pair[1].0];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED]);
        assert_eq!(pair[0].1["id"], pair[1].1["id"]);
    }
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM attribution_events").await,
        i64::from(pairs)
    );
}

/// Two transactions writing overlapping keys in opposite orders (one event sent to two API
/// processes, each in its own group): the second waits for the first instead of deadlocking,
/// because rows go in by key. Step by step, so that the interleaving that deadlocked is forced.
#[tokio::test]
async fn overlapping_groups_in_opposite_orders_do_not_deadlock() {
    use tally_server::ingest::batch::{self, Checked};
    use tally_server::ingest::tenant::TenantCache;
    use tally_store::events::{NewEvent, WriteOutcome, ingest_events};
    let s = TestServer::start().await;
    let tenant = tally_store::TenantId(s.tenant_id.parse().unwrap());
    let ingest = TenantCache::default().get(&s.t.db, tenant).await.unwrap();
    let event = |id: &str| match batch::check(&touch(id), &ingest, "corr") {
        Checked::Valid(v) => NewEvent {
            event: *v,
            correlation_id: "corr".into(),
            replayed_from: None,
        },
        Checked::Invalid(..) => panic!("{id} is valid"),
    };
    let mut first = s.t.db.tenant_tx(tenant).await.unwrap();
    ingest_events(&mut first, tenant, &[event("a")], "corr")
        .await
        .unwrap();
    let db = s.t.db.clone();
    let reversed = [event("b"), event("a")];
    let second = tokio::spawn(async move {
        let mut tx = db.tenant_tx(tenant).await?;
        let outcomes = ingest_events(&mut tx, tenant, &reversed, "corr").await?;
        tx.commit().await?;
        Ok::<_, tally_store::StoreError>(outcomes)
    });
    // The second transaction now waits for "a"; unsorted, it would already hold "b".
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = ingest_events(&mut first, tenant, &[event("b")], "corr").await;
    assert!(b.is_ok(), "the first transaction: {b:?}");
    first.commit().await.unwrap();
    let outcomes = second.await.unwrap().expect("the second transaction");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, WriteOutcome::Duplicate { .. })),
        "{outcomes:?}"
    );
}

/// A fast shutdown or `pg_terminate_backend` mid-request ("terminating connection due to
/// administrator command") is a connection fault: 503 with Retry-After, never 500.
#[tokio::test]
async fn a_terminated_connection_is_503_with_retry_after() {
    let s = TestServer::start().await;
    as_owner(
        &s,
        r#"
CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(5);
    RETURN NEW;
END $$;
CREATE TRIGGER test_slow BEFORE INSERT ON attribution_events
    FOR EACH ROW WHEN (NEW.event_id = 'slow') EXECUTE FUNCTION test_slow();
"#,
    )
    .await;
    let request = s
        .http
        .post(s.url("/v1/events/batch"))
        .bearer_auth(&s.key)
        .json(&json!([touch("slow")]))
        .send();
    let terminate = async {
        let superuser =
            tally_store::testing::cluster().url(tally_store::cluster::SUPERUSER, "postgres");
        let mut conn = PgConnection::connect(&superuser).await.unwrap();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let killed: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = $1 AND query LIKE '%tally_ingest_events%' AND state = 'active') k",
            )
            .bind(&s.t.name)
            .fetch_one(&mut conn)
            .await
            .unwrap();
            if killed > 0 {
                return;
            }
        }
    };
    let (resp, ()) = tokio::join!(request, terminate);
    let resp = resp.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_problem(&resp.json().await.unwrap(), 503, "unavailable");
    // The next request gets a fresh connection.
    s.post("/v1/events/batch", &json!([touch("after")]), StatusCode::OK)
        .await;
}

async fn set_limits(s: &TestServer, per_minute: i32, burst: i32) {
    let mut conn = PgConnection::connect(&s.t.cfg.owner_url).await.unwrap();
    let mut tx = begin_for_tenant(&mut conn, s.tenant_id.parse().unwrap()).await;
    sqlx::query("UPDATE tenant_settings SET rate_limit_per_minute = $1, rate_limit_burst = $2")
        .bind(per_minute)
        .bind(burst)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// The limiter is state: reloading the tenant's cached settings (every 30 s, or at once after
/// a rule change) must not hand out a fresh burst.
#[tokio::test]
async fn rate_limit_state_outlives_the_tenant_cache() {
    let s = TestServer::start().await;
    set_limits(&s, 1, 5).await;
    let five: Vec<Value> = (0..5).map(|i| touch(&format!("l{i}"))).collect();
    let resp = s
        .http
        .post(s.url("/v1/events/batch"))
        .bearer_auth(&s.key)
        .json(&five)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["ratelimit-remaining"], "0");
    // A rule change drops the tenant's cache entry, as its expiry does.
    s.post(
        "/v1/channel-rules",
        &json!({"priority": 150, "utm_source": "PartnerX", "channel_code": "affiliate"}),
        StatusCode::CREATED,
    )
    .await;
    let body = s
        .post("/v1/events", &touch("l5"), StatusCode::TOO_MANY_REQUESTS)
        .await;
    assert_problem(&body, 429, "rate_limited");
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM attribution_events").await,
        5
    );
}

#[tokio::test]
async fn rate_limit_headers_on_success_and_a_batch_over_the_burst() {
    let s = TestServer::start().await;
    set_limits(&s, 60, 10).await;
    let seven: Vec<Value> = (0..7).map(|i| touch(&format!("r{i}"))).collect();
    let resp = s
        .http
        .post(s.url("/v1/events/batch"))
        .bearer_auth(&s.key)
        .json(&seven)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["ratelimit-remaining"], "3");
    // Seven cells at one per second come back within 7 s.
    assert_eq!(resp.headers()["ratelimit-reset"], "7");

    // Eleven events can never fit a burst of ten: not a 429 whose retry fails forever.
    let eleven: Vec<Value> = (10..21).map(|i| touch(&format!("r{i}"))).collect();
    let body = s
        .post(
            "/v1/events/batch",
            &json!(eleven),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
    assert_problem(&body, 413, "batch_exceeds_burst");
    assert!(
        body["detail"].as_str().unwrap().contains("at most 10"),
        "{body}"
    );
}

/// Each process caches key owners; a revocation through one must reach the other within 1 s.
#[tokio::test]
async fn a_revoked_key_stops_working_in_every_process_within_a_second() {
    let s = TestServer::start().await;
    let peer = s.peer().await;
    let key = s
        .post(
            "/v1/keys",
            &json!({"name": "ci", "scopes": ["read"]}),
            StatusCode::CREATED,
        )
        .await;
    let secret = key["secret"].as_str().unwrap().to_string();
    let me = |base: &str| {
        s.http
            .get(format!("{base}/v1/me"))
            .bearer_auth(&secret)
            .send()
    };
    // Both processes now hold the key in their caches.
    assert_eq!(me(&s.base).await.unwrap().status(), StatusCode::OK);
    assert_eq!(me(&peer.base).await.unwrap().status(), StatusCode::OK);
    let path = format!("/v1/keys/{}/revoke", key["key_id"].as_str().unwrap());
    s.post(&path, &json!({}), StatusCode::OK).await;
    let revoked = Instant::now();
    assert_eq!(
        me(&s.base).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    loop {
        let status = me(&peer.base).await.unwrap().status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "the other process still accepts the key after {:?}",
            revoked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "revocation reached the other process after {:?}",
        revoked.elapsed()
    );
}

/// While PostgreSQL is down, requests and `/readyz` answer 503 with Retry-After well within a
/// second (not after the pool's old 10 s), and the server recovers by itself once it is back.
#[tokio::test]
async fn while_postgres_is_down_requests_fail_fast_and_recover() {
    use std::sync::Arc;
    use tally_store::cluster::{self, ClusterOptions, Durability, LocalCluster};
    let dir = std::env::temp_dir().join(format!("tally-down-{}", uuid::Uuid::now_v7()));
    let opts = ClusterOptions {
        data_dir: dir.clone(),
        port: None,
        durability: Durability::Throwaway,
        bindir: std::env::var_os("TALLY_PG_BINDIR").map(Into::into),
    };
    let start = |opts: ClusterOptions| async move {
        Arc::new(
            tokio::task::spawn_blocking(move || LocalCluster::start(&opts).unwrap())
                .await
                .unwrap(),
        )
    };
    let pg = start(opts.clone()).await;
    tally_store::db::bootstrap_managed(&pg.url(cluster::SUPERUSER, "postgres"))
        .await
        .unwrap();
    let cfg = tally_store::DbConfig {
        owner_url: pg.url(cluster::OWNER, cluster::DATABASE),
        role_password: None,
        max_connections: 8,
        secrets: Default::default(),
    };
    tally_store::Database::migrate(&cfg).await.unwrap();
    let db = tally_store::Database::connect(&cfg).await.unwrap();
    let (_, key) = db.create_tenant("Down shop").await.unwrap();
    let (base, _stop) = crate::common::serve(db).await;
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&key.secret);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    let resp = send(reqwest::Method::POST, "/v1/events", Some(touch("before")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    let stopping = pg.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap();
    let mut slowest = Duration::ZERO;
    for (method, path, body) in [
        (reqwest::Method::GET, "/readyz", None),
        (reqwest::Method::POST, "/v1/events", Some(touch("during"))),
        (
            reqwest::Method::POST,
            "/v1/events/batch",
            Some(json!([touch("during-b")])),
        ),
        (reqwest::Method::GET, "/v1/events", None),
        (reqwest::Method::GET, "/readyz", None),
    ] {
        let asked = Instant::now();
        let resp = send(method.clone(), path, body).await.unwrap();
        let took = asked.elapsed();
        slowest = slowest.max(took);
        assert_eq!(
            resp.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}"
        );
        assert!(
            resp.headers().contains_key("retry-after"),
            "{method} {path}"
        );
        assert_problem(&resp.json().await.unwrap(), 503, "unavailable");
        assert!(
            took < Duration::from_millis(800),
            "{method} {path} took {took:?}"
        );
    }
    println!("slowest 503 while PostgreSQL was down: {slowest:?}");

    let restarted = start(ClusterOptions {
        port: Some(pg.port()),
        ..opts
    })
    .await;
    let back = Instant::now();
    loop {
        let resp = send(reqwest::Method::GET, "/readyz", None).await.unwrap();
        if resp.status() == StatusCode::OK {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(2),
            "not ready 2 s after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "ready again {:?} after PostgreSQL accepted connections",
        back.elapsed()
    );
    let resp = send(reqwest::Method::POST, "/v1/events", Some(touch("after")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    restarted.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A dead letter whose `event_id` is accepted later (a fixed re-send) is closed as
/// `superseded`, linked to the event, instead of staying open forever.
#[tokio::test]
async fn a_dead_letter_is_superseded_when_its_event_is_accepted_later() {
    let s = TestServer::start().await;
    let mut broken = touch("fix-1");
    broken["occurred_at"] = json!("not a time");
    let refused = s
        .post("/v1/events", &broken, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let dead_id = refused["dead_event_id"].as_str().unwrap().to_string();
    let other = s
        .post(
            "/v1/events",
            &{
                let mut b = touch("fix-2");
                b["occurred_at"] = json!("still not a time");
                b
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    let accepted = s
        .post("/v1/events", &touch("fix-1"), StatusCode::CREATED)
        .await;

    let open = s.get("/v1/dead-events?status=open", StatusCode::OK).await;
    let open_ids: Vec<&str> = open["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(open_ids, [other["dead_event_id"].as_str().unwrap()]);
    let closed = s
        .get("/v1/dead-events?status=superseded", StatusCode::OK)
        .await;
    assert_eq!(closed["items"][0]["id"], dead_id.as_str());
    assert_eq!(closed["items"][0]["replayed_event_id"], accepted["id"]);
    // Closed means closed: it can no longer be replayed.
    let body = s
        .post(
            &format!("/v1/dead-events/{dead_id}/replay"),
            &json!({}),
            StatusCode::CONFLICT,
        )
        .await;
    assert_problem(&body, 409, "not_open");
}
