//! `/tally.js` in a real browser (Debian's headless Chromium through chromedriver): a shop's
//! static pages, served on a second loopback port, load the snippet from Tally's port.

use crate::browser::Browser;
use crate::collect::publishable;
use crate::common::{TestServer, until};
use axum::extract::{Path, State};
use axum::response::Html;
use serde_json::{Value, json};
use std::time::Duration;

/// The shop's keys, and where Tally is.
#[derive(Clone)]
struct Site {
    tally: String,
    publishable: String,
    secret: String,
}

/// `/{variant}/{page}`: `pk` loads the snippet with the publishable key, `sk` with the secret
/// key, `denied` with the publishable key and `data-consent="denied"`.
async fn page(
    State(site): State<Site>,
    Path((variant, name)): Path<(String, String)>,
) -> Html<String> {
    let (key, consent) = match variant.as_str() {
        "pk" => (&site.publishable, ""),
        "sk" => (&site.secret, ""),
        _ => (&site.publishable, r#" data-consent="denied""#),
    };
    Html(format!(
        r#"<!doctype html><html><head><title>{name}</title>
<script async src="{tally}/tally.js" data-key="{key}"{consent}></script>
<script>window.tally=window.tally||function(){{(tally.q=tally.q||[]).push(arguments)}}</script>
</head><body><h1>{name}</h1></body></html>"#,
        tally = site.tally
    ))
}

/// Serves the shop's pages on a loopback port of their own until the test ends, with a new
/// publishable key allowed from there; returns the origin, the port and the keys.
async fn shop(s: &TestServer) -> (String, u16, Site) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let origin = format!("http://127.0.0.1:{port}");
    let key = publishable(s, &[&origin], json!({})).await;
    let site = Site {
        tally: s.base.clone(),
        publishable: key["secret"].as_str().unwrap().to_string(),
        secret: s.key.clone(),
    };
    let app = axum::Router::new()
        .route("/{variant}/{name}", axum::routing::get(page))
        .with_state(site.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (origin, port, site)
}

async fn events(s: &TestServer, filter: &str) -> Vec<Value> {
    let page = s
        .get(
            &format!("/v1/events?limit=100{filter}"),
            reqwest::StatusCode::OK,
        )
        .await;
    page["items"].as_array().unwrap().clone()
}

/// Waits until the page has loaded the snippet.
async fn loaded(browser: &Browser) {
    browser
        .wait_for(
            "tally.js",
            15,
            "return !!(window.tally && window.tally.loaded);",
            json!([]),
        )
        .await;
}

#[tokio::test]
async fn the_snippet_sends_a_journey_from_an_allowed_origin() {
    let s = TestServer::start().await;
    let (origin, _, _) = shop(&s).await;

    let browser = Browser::start(1024, 768).await;
    browser
        .goto(&format!(
            "{origin}/pk/landing?utm_source=google&utm_medium=cpc&utm_campaign=bf&gclid=Cj0KCQiA"
        ))
        .await;
    loaded(&browser).await;
    let first = until(&s, "/v1/events?type=page_view", |b| {
        b["items"].as_array().unwrap().len() == 1
    })
    .await["items"][0]
        .clone();
    assert_eq!(first["channel_code"], "paid_search_google", "{first}");
    assert_eq!(first["click_ids"]["gclid"], "Cj0KCQiA");
    assert_eq!(first["utm_campaign"], "bf");
    let anonymous_id = first["anonymous_id"].as_str().unwrap().to_string();
    let stored = browser
        .js("return localStorage.getItem('tally_aid');", json!([]))
        .await;
    assert_eq!(stored, json!(anonymous_id), "kept in first-party storage");

    // A second page of the shop: same visitor and session, and the shop itself is no referrer.
    browser.goto(&format!("{origin}/pk/checkout")).await;
    loaded(&browser).await;
    until(&s, "/v1/events?type=page_view", |b| {
        b["items"].as_array().unwrap().len() == 2
    })
    .await;
    browser
        .js(
            "tally.identify('user-42');
             tally.track('purchase', {order_id: '1001', revenue: '59.99', currency: 'EUR', items: 2});
             return true;",
            json!([]),
        )
        .await;
    let purchase = until(&s, "/v1/events?type=purchase", |b| {
        b["items"].as_array().unwrap().len() == 1
    })
    .await["items"][0]
        .clone();
    assert_eq!(purchase["user_id"], "user-42");
    assert_eq!(purchase["anonymous_id"], json!(anonymous_id));
    assert_eq!(purchase["revenue_cents"], 5999);
    assert_eq!(purchase["order_id"], "1001");
    assert_eq!(purchase["properties"]["items"], 2);

    let all = events(&s, "").await;
    assert_eq!(all.len(), 3);
    for event in &all {
        assert_eq!(event["anonymous_id"], json!(anonymous_id), "{event}");
        assert_eq!(event["session_id"], first["session_id"], "{event}");
    }
    let second = all
        .iter()
        .find(|e| e["type"] == "page_view" && e["id"] != first["id"])
        .unwrap();
    assert!(second["referrer_host"].is_null(), "{second}");
    browser.quit().await;
}

#[tokio::test]
async fn the_snippet_is_refused_elsewhere_and_silent_without_consent() {
    let s = TestServer::start().await;
    let (allowed, port, site) = shop(&s).await;
    let browser = Browser::start(1024, 768).await;

    // Another origin (same pages, but `localhost` is not in allowed_origins): refused, and
    // without a CORS grant the page cannot even read the refusal.
    browser
        .goto(&format!("http://localhost:{port}/pk/landing?gclid=x"))
        .await;
    loaded(&browser).await;
    let probe = r"
        window.__probe = null;
        fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'text/plain'},
              body: JSON.stringify({events: []}), credentials: 'omit'})
          .then(r => window.__probe = 'status ' + r.status, () => window.__probe = 'refused');
        return true;";
    let batch_url = format!("{}/v1/events/batch?key={}", site.tally, site.publishable);
    browser.js(probe, json!([batch_url])).await;
    let seen = browser
        .wait_for("the probe", 10, "return window.__probe;", json!([]))
        .await;
    assert_eq!(seen, "refused");

    // A secret key in a page: refused in the URL, and as a header its preflight is refused.
    browser.goto(&format!("{allowed}/sk/landing?gclid=y")).await;
    loaded(&browser).await;
    let with_header = r"
        window.__probe = null;
        fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'application/json',
              'Authorization': 'Bearer ' + arguments[1]}, body: '{}', credentials: 'omit'})
          .then(r => window.__probe = 'status ' + r.status, () => window.__probe = 'refused');
        return true;";
    browser
        .js(
            with_header,
            json!([format!("{}/v1/events", site.tally), site.secret]),
        )
        .await;
    let seen = browser
        .wait_for("the probe", 10, "return window.__probe;", json!([]))
        .await;
    assert_eq!(seen, "refused");

    // No consent: nothing stored, nothing sent, until the page grants it. (The secret-key
    // page above stored an id on this origin: a new visitor has none.)
    browser
        .js("localStorage.clear(); return true;", json!([]))
        .await;
    browser
        .goto(&format!("{allowed}/denied/landing?gclid=z"))
        .await;
    loaded(&browser).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let quiet = browser
        .js(
            "return {stored: localStorage.getItem('tally_aid'), cookie: document.cookie,
                     requests: performance.getEntriesByType('resource')
                         .filter(e => e.name.includes('/v1/')).length};",
            json!([]),
        )
        .await;
    assert_eq!(
        quiet,
        json!({"stored": null, "cookie": "", "requests": 0}),
        "denied consent"
    );
    assert!(events(&s, "").await.is_empty(), "nothing arrived so far");

    browser
        .js("tally.consent(true); return true;", json!([]))
        .await;
    let arrived = until(&s, "/v1/events", |b| {
        !b["items"].as_array().unwrap().is_empty()
    })
    .await;
    let items = arrived["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the consented page's view: {arrived}");
    assert_eq!(items[0]["click_ids"]["gclid"], "z");
    let stored = browser
        .js("return localStorage.getItem('tally_aid');", json!([]))
        .await;
    assert_eq!(stored, items[0]["anonymous_id"]);
    browser.quit().await;
}
