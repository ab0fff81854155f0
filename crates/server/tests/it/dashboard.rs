//! The dashboard: sign-in sessions and their safety over plain HTTP, then the pages in a real
//! headless Chromium against a server with seeded data, every figure checked against the API.
//!
//! Seeded by hand rather than by `tally demo`: the demo loader lives in the CLI crate, which
//! depends on this one, so these tests cannot call it; and a few hand-made orders (three
//! currencies, each reconciliation outcome the page shows) make every assertion exact. The demo
//! month itself is checked through its API in `crates/cli/tests/demo.rs`.

use crate::browser::Browser;
use crate::common::{TestServer, assert_problem, until, workers};
use crate::reconciliation::quiet;
use crate::vendors::{Hook, hook, send};
use chrono::{Duration as Days, Utc};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;
use tally_payments::Source;
use tally_payments::testing::payloads::{stripe_event, stripe_payment_intent};
use tally_store::testing::begin_for_tenant;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn read_key(s: &TestServer) -> String {
    let k = s
        .post(
            "/v1/keys",
            &json!({"name": "dashboard", "scopes": ["read"]}),
            StatusCode::CREATED,
        )
        .await;
    k["secret"].as_str().unwrap().to_string()
}

/// Posts the sign-in form with `key`, without following the redirect.
async fn sign_in(s: &TestServer, key: &str) -> reqwest::Response {
    no_redirects()
        .post(s.url("/dashboard/sign-in"))
        .form(&[("key", key)])
        .send()
        .await
        .unwrap()
}

fn cookie_of(resp: &reqwest::Response) -> String {
    let set = resp.headers()[SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

async fn with_cookie(
    cookie: &str,
    method: Method,
    url: String,
    csrf: Option<&str>,
) -> reqwest::Response {
    let method_is_write = method != Method::GET;
    let mut req = reqwest::Client::new()
        .request(method, url)
        .header(COOKIE, cookie);
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    if method_is_write {
        req = req.json(&json!({}));
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn dashboard_session_is_an_httponly_strict_cookie_and_writes_need_the_csrf_token() {
    let s = TestServer::start().await;

    // A bad key goes back to the form with a flag, never the key, in the URL.
    let bad = sign_in(&s, "tk_not-a-key").await;
    assert_eq!(bad.status(), StatusCode::SEE_OTHER);
    assert_eq!(bad.headers()[LOCATION], "/?sign_in=failed");
    assert!(bad.headers().get(SET_COOKIE).is_none());

    // A post that is not the form is a problem document, not a redirect or a 500.
    let json_post = s
        .call(
            Method::POST,
            "/dashboard/sign-in",
            None,
            Some(&json!({"key": s.key})),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .await;
    assert_problem(&json_post, 415, "unsupported_media_type");
    let empty = no_redirects()
        .post(s.url("/dashboard/sign-in"))
        .form(&[("not_key", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // An ingest-only key cannot open the (read) dashboard.
    let ingest = s
        .post(
            "/v1/keys",
            &json!({"name": "ingest", "scopes": ["ingest"]}),
            StatusCode::CREATED,
        )
        .await;
    let refused = sign_in(&s, ingest["secret"].as_str().unwrap()).await;
    assert_eq!(refused.headers()[LOCATION], "/?sign_in=failed");

    // Another site's form cannot sign a browser in (login CSRF).
    let cross = no_redirects()
        .post(s.url("/dashboard/sign-in"))
        .header("origin", "http://evil.example")
        .form(&[("key", s.key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);

    let ok = sign_in(&s, &s.key).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()[LOCATION], "/");
    let set = ok.headers()[SET_COOKIE].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains(&s.key), "the key must not be the cookie");
    let cookie = cookie_of(&ok);

    // Stored under RLS as a hash: the runtime role sees no session without a tenant or token.
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM dashboard_sessions")
        .fetch_one(s.t.db.app_pool())
        .await
        .unwrap();
    assert_eq!(visible, 0);
    let mut conn = sqlx::PgConnection::connect(&s.t.url_as("tally_app"))
        .await
        .unwrap();
    let mut tx = begin_for_tenant(&mut conn, s.tenant_id.parse().unwrap()).await;
    let token = cookie.trim_start_matches("tally_session=");
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_sha256 FROM dashboard_sessions")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        stored,
        vec![Sha256::digest(token).to_vec()],
        "only the token's hash is kept"
    );
    tx.rollback().await.unwrap();

    // The cookie reads the API like a key would.
    let me = with_cookie(&cookie, Method::GET, s.url("/dashboard/session"), None).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["tenant_id"], s.tenant_id);
    assert_eq!(me["time_zone"], "UTC");
    let csrf = me["csrf_token"].as_str().unwrap().to_string();
    let read = with_cookie(
        &cookie,
        Method::GET,
        s.url("/v1/dead-events?status=open"),
        None,
    )
    .await;
    assert_eq!(read.status(), StatusCode::OK);

    // A write without the CSRF token is refused; with it, it goes through.
    let forged = with_cookie(&cookie, Method::POST, s.url("/v1/dead-events/replay"), None).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_problem(&forged.json().await.unwrap(), 403, "csrf");
    let wrong = with_cookie(
        &cookie,
        Method::POST,
        s.url("/v1/dead-events/replay"),
        Some("0000"),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let real = with_cookie(
        &cookie,
        Method::POST,
        s.url("/v1/dead-events/replay"),
        Some(&csrf),
    )
    .await;
    assert_eq!(real.status(), StatusCode::OK, "{:?}", real.text().await);

    // Sign-out ends the session on the server, not only in the browser.
    let out = with_cookie(
        &cookie,
        Method::POST,
        s.url("/dashboard/sign-out"),
        Some(&csrf),
    )
    .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(
        out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = with_cookie(
        &cookie,
        Method::GET,
        s.url("/v1/dead-events?status=open"),
        None,
    )
    .await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let gone = with_cookie(&cookie, Method::GET, s.url("/dashboard/session"), None).await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn dashboard_session_ends_when_its_key_is_revoked() {
    let s = TestServer::start().await;
    let created = s
        .post(
            "/v1/keys",
            &json!({"name": "analyst", "scopes": ["read"]}),
            StatusCode::CREATED,
        )
        .await;
    let cookie = cookie_of(&sign_in(&s, created["secret"].as_str().unwrap()).await);
    let url = s.url("/v1/reconciliation/runs");
    assert_eq!(
        with_cookie(&cookie, Method::GET, url.clone(), None)
            .await
            .status(),
        StatusCode::OK
    );
    let key_id = created["key_id"].as_str().unwrap();
    s.post(
        &format!("/v1/keys/{key_id}/revoke"),
        &json!({}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        with_cookie(&cookie, Method::GET, url, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn dashboard_pages_carry_a_strict_csp_and_refuse_framing() {
    let s = TestServer::start().await;
    for path in ["/", "/dashboard/app.js", "/dashboard/app.css", "/v1/me"] {
        let resp = reqwest::get(s.url(path)).await.unwrap();
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
    let page = reqwest::get(s.url("/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("<script>"),
        "no inline script: the CSP would block it"
    );
}

// --- the browser test --------------------------------------------------------------------------

async fn event(s: &TestServer, body: Value) {
    s.post("/v1/events", &body, StatusCode::CREATED).await;
}

fn ago(minutes: i64) -> String {
    (Utc::now() - Days::minutes(minutes)).to_rfc3339()
}

async fn stripe_paid(s: &TestServer, stripe: &Hook, order: &str, cents: i64, currency: &str) {
    let mut pi = stripe_payment_intent(&format!("pi_{order}"), cents, currency, order);
    let id = format!("evt_{order}");
    // Paid a minute ago rather than on the payloads' fixed test day, so that today's cards and
    // the runs of today include the payments, as they would in a live shop.
    let paid_at = Utc::now().timestamp() - 60;
    pi["created"] = json!(paid_at);
    let mut body: Value =
        serde_json::from_slice(&stripe_event(&id, "payment_intent.succeeded", pi, None)).unwrap();
    body["created"] = json!(paid_at);
    send(s, stripe, "", &id, &serde_json::to_vec(&body).unwrap()).await;
}

/// Orders of the last two hours across four channels and three currencies (JPY has no decimals,
/// KWD three): matched, an amount mismatch, one awaiting payment, one paid but never tracked;
/// plus a refused event for the dead letters.
async fn seed(s: &TestServer) {
    let stripe = hook(s, Source::Stripe).await;
    event(s, json!({"event_id": "c-a", "type": "ad_click", "occurred_at": ago(100), "session_id": "s-a", "gclid": "g-a"})).await;
    event(s, json!({"event_id": "v-a", "type": "page_view", "occurred_at": ago(70), "session_id": "s-a", "referrer": "https://www.google.com/"})).await;
    event(s, json!({"event_id": "p-a", "type": "purchase", "occurred_at": ago(60), "session_id": "s-a", "order_id": "A-1", "revenue": "59.99", "currency": "USD"})).await;
    event(s, json!({"event_id": "c-b", "type": "email_click", "occurred_at": ago(90), "session_id": "s-b", "utm_source": "newsletter", "utm_medium": "email"})).await;
    event(s, json!({"event_id": "p-b", "type": "purchase", "occurred_at": ago(55), "session_id": "s-b", "order_id": "B-2", "revenue": "20.00", "currency": "USD"})).await;
    event(s, json!({"event_id": "p-c", "type": "purchase", "occurred_at": ago(50), "session_id": "s-c", "order_id": "C-3", "revenue": "30.00", "currency": "USD"})).await;
    event(s, json!({"event_id": "c-e", "type": "ad_click", "occurred_at": ago(80), "session_id": "s-e", "utm_source": "facebook", "utm_medium": "paid_social"})).await;
    event(s, json!({"event_id": "p-e", "type": "purchase", "occurred_at": ago(45), "session_id": "s-e", "order_id": "E-5", "revenue": "1200", "currency": "JPY"})).await;
    event(s, json!({"event_id": "p-k", "type": "purchase", "occurred_at": ago(40), "session_id": "s-k", "order_id": "K-6", "revenue": "12.345", "currency": "KWD"})).await;
    stripe_paid(s, &stripe, "A-1", 5999, "usd").await;
    stripe_paid(s, &stripe, "B-2", 1500, "usd").await;
    stripe_paid(s, &stripe, "D-4", 1200, "usd").await;
    stripe_paid(s, &stripe, "E-5", 1200, "jpy").await;
    s.post(
        "/v1/events",
        &json!({"event_id": "bad-1", "type": "teleport", "occurred_at": ago(5), "session_id": "s-x"}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

/// Today and tomorrow in the tenant's zone (UTC here).
fn today() -> (String, String) {
    let d = Utc::now().date_naive();
    (d.to_string(), (d + Days::days(1)).to_string())
}

/// Waits until attribution and a reconciliation of today have caught up with the seed, and no
/// job is left that could change a figure while the browser reads it.
async fn settle(s: &TestServer) {
    let (from, to) = today();
    until(
        s,
        &format!("/v1/attribution/channels?from={from}&to={to}&model=linear"),
        |r| {
            let usd: i64 = r["channels"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["currency"] == "USD" && c["channel_code"] != "unattributed")
                .map(|c| c["models"][0]["claimed_cents"].as_i64().unwrap())
                .sum();
            usd == 10_999
        },
    )
    .await;
    let run = s
        .post(
            "/v1/reconciliation/runs",
            &json!({"from": from, "to": to}),
            StatusCode::ACCEPTED,
        )
        .await;
    let path = format!("/v1/reconciliation/runs/{}", run["id"].as_str().unwrap());
    until(s, &path, |r| r["run"]["status"] == "succeeded").await;
    quiet(s).await;
}

/// `data-cents` of every element whose `data-k` starts with `prefix`, keyed by the rest.
const CENTS_BY_KEY: &str = "return Object.fromEntries([...document.querySelectorAll(`[data-k^='${arguments[0]}']`)]
    .map(e => [e.dataset.k.slice(arguments[0].length), Number(e.dataset.cents ?? e.dataset.value)]));";

async fn shown(b: &Browser, prefix: &str) -> BTreeMap<String, f64> {
    serde_json::from_value(b.js(CENTS_BY_KEY, json!([prefix])).await).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

async fn open_page(b: &Browser, page: &str) {
    b.click(&format!("#nav a[href='#{page}']")).await;
    b.wait_for(
        &format!("page {page}"),
        15,
        "return document.body.dataset.ready === arguments[0];",
        json!([page]),
    )
    .await;
}

async fn select(b: &Browser, css: &str, value: &str) {
    b.js(
        "const e = document.querySelector(arguments[0]); e.value = arguments[1];
         e.dispatchEvent(new Event('change')); return true;",
        json!([css, value]),
    )
    .await;
}

async fn range_of(b: &Browser) -> (String, String) {
    let r = b
        .js(
            "return [document.querySelector('#from').value, document.querySelector('#to').value];",
            json!([]),
        )
        .await;
    (r[0].as_str().unwrap().into(), r[1].as_str().unwrap().into())
}

/// The channel table as shown equals the API's figures for the same range and model.
async fn check_channels(s: &TestServer, b: &Browser, model: &str) {
    select(b, "#model", model).await;
    b.wait_for(
        "channels under the new model",
        15,
        "return document.body.dataset.ready === 'channels' && document.querySelector('#csv')?.download.includes(arguments[0]);",
        json!([model]),
    )
    .await;
    let (from, to) = range_of(b).await;
    let api = s
        .get(
            &format!("/v1/attribution/channels?from={from}&to={to}&model={model}"),
            StatusCode::OK,
        )
        .await;
    let claimed = shown(b, "claimed-").await;
    let verified = shown(b, "verified-").await;
    let rows = api["channels"].as_array().unwrap();
    assert_eq!(claimed.len(), rows.len(), "{claimed:?} vs {api}");
    for c in rows {
        let key = format!(
            "{}-{}",
            c["channel_code"].as_str().unwrap(),
            c["currency"].as_str().unwrap()
        );
        assert_eq!(
            claimed[&key],
            f(&c["models"][0]["claimed_cents"]),
            "{model} {key}"
        );
        assert_eq!(
            verified[&key],
            f(&c["models"][0]["verified_cents"]),
            "{model} {key}"
        );
    }
    // The CSV is exactly the table: one line per row, same channels, same formatted amounts.
    let csv = b
        .js(
            "const h = document.querySelector('#csv').href; return decodeURIComponent(h.slice(h.indexOf(',') + 1));",
            json!([]),
        )
        .await;
    let table = b
        .js(
            "return [...document.querySelectorAll('#channels-table tbody tr')].map(tr => [...tr.cells].map(td => td.textContent));",
            json!([]),
        )
        .await;
    let mut reader = csv::Reader::from_reader(csv.as_str().unwrap().as_bytes());
    let lines: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    let table: Vec<Vec<String>> = serde_json::from_value(table).unwrap();
    assert_eq!(lines, table, "CSV vs table under {model}");
    assert_eq!(lines.len(), rows.len());
}

async fn check_overview(s: &TestServer, b: &Browser) {
    let (from, to) = range_of(b).await;
    let api = s
        .get(
            &format!("/api/attribution/revenue/realtime?from={from}&to={to}"),
            StatusCode::OK,
        )
        .await;
    let claimed = shown(b, "range-claimed-").await;
    let verified = shown(b, "range-verified-").await;
    for c in api["currencies"].as_array().unwrap() {
        let cur = c["currency"].as_str().unwrap();
        assert_eq!(
            claimed[cur],
            f(&c["claimed_cents"]),
            "overview claimed {cur}"
        );
        assert_eq!(
            verified[cur],
            f(&c["verified_cents"]),
            "overview verified {cur}"
        );
    }
    assert_eq!(claimed.len(), api["currencies"].as_array().unwrap().len());
    // Today's cards (polled without a window: the API's today in the tenant's zone).
    let api = s
        .get("/api/attribution/revenue/realtime", StatusCode::OK)
        .await;
    let claimed = shown(b, "today-claimed-").await;
    let verified = shown(b, "today-verified-").await;
    for c in api["currencies"].as_array().unwrap() {
        let cur = c["currency"].as_str().unwrap();
        assert_eq!(
            claimed[cur],
            f(&c["claimed_cents"]),
            "today claimed {cur}: {api}"
        );
        assert_eq!(
            verified[cur],
            f(&c["verified_cents"]),
            "today verified {cur}: {api}"
        );
    }
}

fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots")
}

#[tokio::test]
async fn dashboard_in_a_real_browser_shows_what_the_api_says() {
    let s = TestServer::start().await;
    let _workers = workers(&s);
    seed(&s).await;
    settle(&s).await;
    let key = read_key(&s).await;

    let b = Browser::start(1280, 900).await;
    b.goto(&s.url("/")).await;
    b.wait_for(
        "the sign-in form",
        10,
        "return !document.querySelector('#sign-in').hidden;",
        json!([]),
    )
    .await;
    b.type_into("#key", &key).await;
    b.click("#sign-in button[type=submit]").await;
    b.wait_for(
        "the overview",
        15,
        "return document.body.dataset.ready === 'overview';",
        json!([]),
    )
    .await;
    let html = b
        .js(
            "return document.documentElement.outerHTML + location.href;",
            json!([]),
        )
        .await;
    assert!(
        !html.as_str().unwrap().contains(&key),
        "the key must not be in the page or URL"
    );

    // First meaningful paint: a fresh load of the overview until its figures are drawn.
    // (a query string makes it a new document; a bare hash change would not reload)
    b.goto(&s.url("/?reload#overview")).await;
    let paint = b
        .wait_for(
            "the reloaded overview",
            15,
            "const m = performance.getEntriesByName('tally-ready')[0];
             const fcp = performance.getEntriesByName('first-contentful-paint')[0];
             return m ? [fcp ? fcp.startTime : null, m.startTime] : null;",
            json!([]),
        )
        .await;
    println!(
        "dashboard first contentful paint {:?} ms, overview figures drawn at {} ms",
        paint[0], paint[1]
    );

    check_overview(&s, &b).await;
    let formatted = b
        .js(
            "return ['JPY', 'KWD', 'USD'].map(c => document.querySelector(`[data-k='range-claimed-${c}']`).textContent);",
            json!([]),
        )
        .await;
    assert_eq!(
        formatted,
        json!(["¥1,200", "KWD\u{a0}12.345", "$109.99"]),
        "each currency with its own decimals, never added up"
    );

    // Keyboard: from a fresh page the first Tab stop is the skip link (shown when focused),
    // then the pages; Enter on one opens it.
    const TAB: &str = "\u{E004}";
    const ENTER: &str = "\u{E007}";
    b.press(TAB).await;
    let skip = b
        .js(
            "const a = document.activeElement; return [a.className, a.getBoundingClientRect().left >= 0];",
            json!([]),
        )
        .await;
    assert_eq!(
        skip,
        json!(["skip", true]),
        "the skip link comes first, visibly"
    );
    b.press(&format!("{TAB}{TAB}{ENTER}")).await;
    b.wait_for(
        "the channels page opened by keyboard",
        15,
        "return document.body.dataset.ready === 'channels' && document.activeElement.getAttribute('href') === '#channels';",
        json!([]),
    )
    .await;

    // Screenshots of today, where the seed's orders and its reconciliation runs are.
    b.click("[data-preset='today']").await;
    b.wait_for(
        "today's range",
        15,
        "return !!document.body.dataset.ready && document.querySelector('[data-preset=\"today\"]').getAttribute('aria-pressed') === 'true';",
        json!([]),
    )
    .await;
    let dir = screenshots_dir();
    let pages = [
        "overview",
        "channels",
        "trend",
        "paths",
        "reconciliation",
        "health",
    ];
    for width in [1280u32, 390] {
        b.resize(width, 900).await;
        for page in pages {
            open_page(&b, page).await;
            b.screenshot(&dir.join(format!("{page}-{width}.png"))).await;
        }
    }
    b.resize(1280, 900).await;

    // Channels under two models, and the CSV of each.
    open_page(&b, "channels").await;
    check_channels(&s, &b, "last_touch").await;
    check_channels(&s, &b, "linear").await;
    // Sortable: Claimed is sorted descending; pressing its header sorts ascending.
    b.click("#channels-table th:nth-child(4) button").await;
    let order = b
        .js(
            "return [...document.querySelectorAll('#channels-table tbody [data-k^=\"claimed-\"]')].map(e => Number(e.dataset.cents));",
            json!([]),
        )
        .await;
    let order: Vec<f64> = serde_json::from_value(order).unwrap();
    assert!(
        order.len() > 2 && order.windows(2).all(|w| w[0] <= w[1]),
        "{order:?}"
    );

    // The drill-down: a conversion's journey and its split under every model, as the API has it.
    open_page(&b, "paths").await;
    b.click("[data-conversion='p-a']").await;
    b.wait_for(
        "the conversion drill-down",
        10,
        "return !!document.querySelector('#split-table');",
        json!([]),
    )
    .await;
    let api = s
        .get("/v1/attribution/conversions/p-a", StatusCode::OK)
        .await;
    let split = shown(&b, "split-").await;
    let splits = api["splits"].as_array().unwrap();
    assert_eq!(splits.len(), 8, "every model: {api}");
    for m in splits {
        for c in m["channels"].as_array().unwrap() {
            let key = format!(
                "{}-{}",
                m["model"].as_str().unwrap(),
                c["channel_code"].as_str().unwrap()
            );
            assert_eq!(split[&key], f(&c["allocated_cents"]), "{key}");
        }
    }

    // The trend in JPY (one currency per chart), its total as the API's series adds up.
    open_page(&b, "trend").await;
    select(&b, "#trend-currency", "JPY").await;
    b.wait_for(
        "the JPY trend",
        15,
        "return document.body.dataset.ready === 'trend' && document.querySelector('#trend-currency').value === 'JPY';",
        json!([]),
    )
    .await;
    let (from, to) = range_of(&b).await;
    let series = s
        .get(
            &format!(
                "/v1/revenue/timeseries?from={from}&to={to}&interval=hour&model=linear&currency=JPY"
            ),
            StatusCode::OK,
        )
        .await;
    let total: i64 = series["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["claimed_cents"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 1200, "{series}");
    assert_eq!(shown(&b, "trend-claimed").await[""], 1200.0);
    let label = b
        .js(
            "return document.querySelector(\"[data-k='trend-claimed']\").textContent;",
            json!([]),
        )
        .await;
    assert_eq!(label, "¥1,200", "JPY has no decimals");
    // Compare to the previous period (yesterday here): its claimed total as the API's series.
    b.click("#compare").await;
    b.wait_for(
        "the trend against the previous period",
        15,
        "return document.body.dataset.ready === 'trend' && !!document.querySelector(\"[data-k='trend-prev-claimed']\");",
        json!([]),
    )
    .await;
    let yesterday = (Utc::now().date_naive() - Days::days(1)).to_string();
    let previous = s
        .get(
            &format!("/v1/revenue/timeseries?from={yesterday}&to={from}&interval=hour&model=linear&currency=JPY"),
            StatusCode::OK,
        )
        .await;
    let previous: i64 = previous["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["claimed_cents"].as_i64().unwrap())
        .sum();
    assert_eq!(shown(&b, "trend-prev-claimed").await[""], previous as f64);
    b.click("#compare").await;

    // Another range: 7 days, and the overview still equals the API for it.
    open_page(&b, "overview").await;
    b.click("[data-preset='7d']").await;
    b.wait_for(
        "the 7-day overview",
        15,
        "return document.body.dataset.ready === 'overview' && document.querySelector('[data-preset=\"7d\"]').getAttribute('aria-pressed') === 'true';",
        json!([]),
    )
    .await;
    let (from, to) = range_of(&b).await;
    let today = Utc::now().date_naive();
    assert_eq!(from, (today - Days::days(6)).to_string());
    assert_eq!(to, (today + Days::days(1)).to_string());
    check_overview(&s, &b).await;
    // No run contains these 7 days: no ghost revenue from another window, and a note says why.
    let ghost = b
        .js(
            "return [document.querySelectorAll(\"[data-k^='ghost-']\").length, document.querySelector('#overview-run').textContent];",
            json!([]),
        )
        .await;
    assert_eq!(ghost[0], 0, "{ghost}");
    assert!(
        ghost[1]
            .as_str()
            .unwrap()
            .starts_with("No reconciliation run contains"),
        "{ghost}"
    );

    // No run contains these 7 days (the seed's runs are of today): the page says so and offers
    // no write.
    open_page(&b, "reconciliation").await;
    let notice = b
        .js(
            "return [document.querySelector('#no-run')?.textContent, document.querySelectorAll('#view button').length];",
            json!([]),
        )
        .await;
    assert!(
        notice[0]
            .as_str()
            .unwrap()
            .contains("No reconciliation run covers"),
        "{notice}"
    );
    assert_eq!(notice[1], 0, "nothing to press when there is no run");

    // Today: the newest succeeded run containing today, one item as the API reports it, and
    // its order drill-down.
    b.click("[data-preset='today']").await;
    b.wait_for(
        "the reconciliation of today",
        15,
        "return document.body.dataset.ready === 'reconciliation' && !!document.querySelector('#run-of-range');",
        json!([]),
    )
    .await;
    let (from, to) = range_of(&b).await;
    assert_eq!((from.clone(), to.clone()), self::today());
    let runs = s
        .get(
            &format!("/v1/reconciliation/runs?status=succeeded&from={from}&to={to}&limit=1"),
            StatusCode::OK,
        )
        .await;
    let run_id = runs["items"][0]["id"].as_str().unwrap();
    let shown_run = b
        .js(
            "return document.querySelector('#run-of-range').dataset.run;",
            json!([]),
        )
        .await;
    assert_eq!(shown_run, run_id);
    let run = s
        .get(
            &format!("/v1/reconciliation/runs/{run_id}?limit=500"),
            StatusCode::OK,
        )
        .await;
    let item = run["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["order_id"] == "B-2")
        .unwrap()
        .clone();
    assert_eq!(item["status"], "amount_mismatch");
    let tracked = shown(&b, "item-tracked-B-2").await;
    let verified = shown(&b, "item-verified-B-2").await;
    assert_eq!(tracked[""], f(&item["tracked_cents"]));
    assert_eq!(verified[""], f(&item["verified_cents"]));
    b.click("#items-table [data-order='B-2']").await;
    b.wait_for(
        "the order drill-down",
        10,
        "return document.querySelector('#order-detail h2')?.textContent === 'Order B-2';",
        json!([]),
    )
    .await;

    // A fresh event shows in the live view, and a fresh purchase in the overview, within 5 s.
    open_page(&b, "health").await;
    let sent = Instant::now();
    event(&s, json!({"event_id": "live-1", "type": "page_view", "occurred_at": ago(0), "session_id": "s-live"})).await;
    b.wait_for(
        "the live event",
        5,
        "return [...document.querySelectorAll('#live-table td')].some(td => td.textContent === 'live-1');",
        json!([]),
    )
    .await;
    println!("live view showed the event after {:?}", sent.elapsed());
    open_page(&b, "overview").await;
    let before = shown(&b, "today-claimed-USD").await[""];
    let sent = Instant::now();
    event(&s, json!({"event_id": "live-p", "type": "purchase", "occurred_at": ago(0), "session_id": "s-live",
                     "order_id": "L-9", "revenue": "10.00", "currency": "USD"}))
    .await;
    b.wait_for(
        "the overview to count the new purchase",
        5,
        "return Number(document.querySelector(\"[data-k='today-claimed-USD']\").dataset.cents) === arguments[0];",
        json!([before + 1000.0]),
    )
    .await;
    println!("overview counted the purchase after {:?}", sent.elapsed());

    // A read-only session is offered no dead-letter writes; a key with `ingest` gets replay and
    // discard, sent with the CSRF token.
    open_page(&b, "health").await;
    let buttons = b
        .js(
            "return document.querySelectorAll('#dead-table [data-action]').length;",
            json!([]),
        )
        .await;
    assert_eq!(buttons, 0, "no write buttons for a read key");
    b.click("#sign-out").await;
    b.wait_for(
        "the sign-in form after signing out",
        10,
        "return !document.querySelector('#sign-in').hidden;",
        json!([]),
    )
    .await;
    b.type_into("#key", &s.key).await;
    b.click("#sign-in button[type=submit]").await;
    b.wait_for(
        "the overview for the full key",
        15,
        "return document.body.dataset.ready === 'overview';",
        json!([]),
    )
    .await;
    open_page(&b, "health").await;
    let dead = s
        .get("/v1/dead-events?status=open&limit=500", StatusCode::OK)
        .await;
    let bad = dead["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["event_id"] == "bad-1")
        .unwrap_or_else(|| panic!("bad-1 is an open dead letter: {dead}"));
    let id = bad["id"].as_str().unwrap();
    b.click(&format!("[data-action='discard'][data-dead='{id}']"))
        .await;
    b.wait_for(
        "the discarded dead letter to leave the open list",
        10,
        "return document.body.dataset.ready === 'health' && !document.querySelector(`[data-dead='${arguments[0]}']`);",
        json!([id]),
    )
    .await;
    let after = s
        .get("/v1/dead-events?status=discarded", StatusCode::OK)
        .await;
    assert!(
        after["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == id),
        "discarded through the dashboard: {after}"
    );

    let errors: Vec<Value> = b
        .console()
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    b.quit().await;
}
