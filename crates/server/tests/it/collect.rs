//! Collection from web pages over HTTP: publishable keys, allowed origins, CORS, beacons,
//! per-key rate limits and `/tally.js`.

use crate::common::{TestServer, assert_problem};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SHOP: &str = "https://shop.example";

/// Lets `origins` use publishable keys and returns a new publishable key.
pub async fn publishable(s: &TestServer, origins: &[&str], extra: Value) -> Value {
    s.call(
        Method::PATCH,
        "/v1/settings",
        Some(&s.key),
        Some(&json!({ "allowed_origins": origins })),
        StatusCode::OK,
    )
    .await;
    let mut body = json!({"name": "web", "kind": "publishable"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    s.post("/v1/keys", &body, StatusCode::CREATED).await
}

fn page_view(id: &str) -> Value {
    json!({"event_id": id, "type": "page_view", "occurred_at": chrono::Utc::now().to_rfc3339(),
           "session_id": "s-1", "anonymous_id": "a-1"})
}

/// POSTs `body` as JSON with `key` as bearer and `origin` (if any); returns status, headers
/// and body.
async fn send(
    s: &TestServer,
    path: &str,
    key: &str,
    origin: Option<&str>,
    body: &Value,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = s.http.post(s.url(path)).bearer_auth(key).json(body);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn publishable_keys_are_created_listed_revoked_and_only_ingest() {
    let s = TestServer::start().await;
    let key = publishable(&s, &[SHOP], json!({})).await;
    let pk = key["secret"].as_str().unwrap();
    assert!(pk.starts_with("pk_"), "{key}");
    assert_eq!(key["kind"], "publishable");
    assert_eq!(key["scopes"], json!(["ingest"]));
    assert_eq!(key["rate_limit_per_minute"], 60000);

    let refused = s
        .post(
            "/v1/keys",
            &json!({"kind": "publishable", "scopes": ["ingest", "read"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(refused["errors"][0]["pointer"], "/scopes", "{refused}");
    let unknown = s
        .post(
            "/v1/keys",
            &json!({"kind": "public", "scopes": ["ingest"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(unknown["errors"][0]["pointer"], "/kind", "{unknown}");

    let listed = s.get("/v1/keys", StatusCode::OK).await;
    let kinds: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["secret", "publishable"]);

    // From an allowed page it sends events, and nothing else.
    let (status, _, _) = send(&s, "/v1/events", pk, Some(SHOP), &page_view("e-1")).await;
    assert_eq!(status, StatusCode::CREATED);
    for (method, path) in [
        (Method::GET, "/v1/events"),
        (Method::GET, "/v1/settings"),
        (Method::GET, "/v1/keys"),
        (Method::POST, "/v1/dead-events/replay"),
    ] {
        let resp = s
            .http
            .request(method.clone(), s.url(path))
            .bearer_auth(pk)
            .header("origin", SHOP)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }

    let key_id = key["key_id"].as_str().unwrap();
    s.post(
        &format!("/v1/keys/{key_id}/revoke"),
        &json!({}),
        StatusCode::OK,
    )
    .await;
    let (status, _, body) = send(&s, "/v1/events", pk, Some(SHOP), &page_view("e-2")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn publishable_keys_work_only_from_allowed_origins() {
    let s = TestServer::start().await;
    let key = publishable(&s, &[SHOP], json!({})).await;
    let pk = key["secret"].as_str().unwrap();

    let (status, _, body) = send(&s, "/v1/events", pk, None, &page_view("e-1")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&body, 403, "origin_not_allowed");
    let (status, _, body) = send(
        &s,
        "/v1/events",
        pk,
        Some("https://evil.example"),
        &page_view("e-1"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&body, 403, "origin_not_allowed");
    assert!(
        body["detail"].as_str().unwrap().contains("evil.example"),
        "{body}"
    );
    let (status, _, _) = send(&s, "/v1/events", pk, Some(SHOP), &page_view("e-1")).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn secret_keys_are_refused_from_pages_and_urls() {
    let s = TestServer::start().await;
    let (status, _, body) = send(&s, "/v1/events", &s.key, Some(SHOP), &page_view("e-1")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&body, 403, "secret_key_in_browser");

    // Tally's own pages (same origin) may use a secret key, as its dashboard does.
    let own = s.base.clone();
    let (status, _, body) = send(&s, "/v1/events", &s.key, Some(&own), &page_view("e-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // ... also behind a proxy that rewrites `Host`, as the browser says.
    let resp = s
        .http
        .post(s.url("/v1/events"))
        .bearer_auth(&s.key)
        .header("origin", "https://tally.example")
        .header("sec-fetch-site", "same-origin")
        .json(&page_view("e-3"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    let resp = s
        .http
        .post(s.url(&format!("/v1/events?key={}", s.key)))
        .json(&page_view("e-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_problem(&resp.json().await.unwrap(), 403, "secret_key_in_url");
}

#[tokio::test]
async fn cors_preflight_and_grants_go_to_allowed_origins_only() {
    let s = TestServer::start().await;
    let key = publishable(&s, &[SHOP], json!({})).await;
    let pk = key["secret"].as_str().unwrap();
    let preflight = |origin: &'static str, path: String| {
        s.http
            .request(Method::OPTIONS, s.url(&path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };

    for path in [
        "/v1/events",
        "/v1/events/batch",
        "/v1/segment",
        "/v1/segment/batch",
    ] {
        let resp = preflight(SHOP, format!("{path}?key={pk}")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{path}");
        let h = resp.headers();
        assert_eq!(h["access-control-allow-origin"], SHOP, "{path}");
        assert!(
            h["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("POST")
        );
        assert!(
            h["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .contains("content-type")
        );
        assert_eq!(h["access-control-max-age"], "7200");
        assert!(h.get("access-control-allow-credentials").is_none());
    }
    for (origin, path) in [
        ("https://evil.example", format!("/v1/events?key={pk}")),
        (SHOP, "/v1/events".to_string()),
        (SHOP, format!("/v1/events?key={}", s.key)),
    ] {
        let resp = preflight(origin, path.clone()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{origin} {path}");
        assert!(resp.headers().get("access-control-allow-origin").is_none());
    }
    // Only the collection routes answer CORS at all.
    let resp = preflight(SHOP, format!("/v1/settings?key={pk}"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    // The request itself carries the grant for an allowed page, and none for another.
    let (status, headers, _) = send(&s, "/v1/events", pk, Some(SHOP), &page_view("e-1")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["access-control-allow-origin"], SHOP);
    assert!(
        headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("ratelimit-remaining")
    );
    assert!(headers.get("access-control-allow-credentials").is_none());
    let (status, headers, _) = send(
        &s,
        "/v1/events",
        pk,
        Some("https://evil.example"),
        &page_view("e-1"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn beacons_send_text_plain_with_the_key_in_the_url() {
    let s = TestServer::start().await;
    let key = publishable(&s, &[SHOP], json!({})).await;
    let pk = key["secret"].as_str().unwrap();
    let beacon = |content_type: &'static str| {
        s.http
            .post(s.url(&format!("/v1/events/batch?key={pk}")))
            .header("origin", SHOP)
            .header("content-type", content_type)
            .body(json!({"events": [page_view("b-1")]}).to_string())
            .send()
    };
    let resp = beacon("text/plain;charset=UTF-8").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["access-control-allow-origin"], SHOP);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["accepted"], 1, "{body}");
    let stored = s.get("/v1/events/b-1", StatusCode::OK).await;
    assert_eq!(stored["anonymous_id"], "a-1");

    let resp = beacon("text/html").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn publishable_keys_have_their_own_rate_limit() {
    let s = TestServer::start().await;
    let limited = publishable(
        &s,
        &[SHOP],
        json!({"rate_limit_per_minute": 1, "rate_limit_burst": 3}),
    )
    .await;
    let pk = limited["secret"].as_str().unwrap();
    let other = publishable(&s, &[SHOP], json!({})).await;
    let other = other["secret"].as_str().unwrap();

    for i in 0..3 {
        let (status, _, body) = send(
            &s,
            "/v1/events",
            pk,
            Some(SHOP),
            &page_view(&format!("r-{i}")),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, headers, body) = send(&s, "/v1/events", pk, Some(SHOP), &page_view("r-3")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_problem(&body, 429, "rate_limited");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("this key's own rate limit"),
        "{body}"
    );
    assert!(headers.contains_key("retry-after"));
    assert_eq!(
        headers["access-control-allow-origin"], SHOP,
        "a page may read its 429"
    );
    // The tenant's budget and the other keys are untouched.
    let (status, _, _) = send(&s, "/v1/events", other, Some(SHOP), &page_view("r-4")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = send(&s, "/v1/events", &s.key, None, &page_view("r-5")).await;
    assert_eq!(status, StatusCode::CREATED);

    let bad = s
        .post(
            "/v1/keys",
            &json!({"kind": "publishable", "rate_limit_per_minute": 0, "rate_limit_burst": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(
        bad["errors"][0]["pointer"], "/rate_limit_per_minute",
        "{bad}"
    );
}

#[tokio::test]
async fn allowed_origins_must_be_exact_origins() {
    let s = TestServer::start().await;
    let refused = s
        .call(
            Method::PATCH,
            "/v1/settings",
            Some(&s.key),
            Some(&json!({"allowed_origins": [
                "https://Shop.example/", "ftp://files.example", "https://ok.example", "*"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    let pointers: Vec<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        [
            "/allowed_origins/0",
            "/allowed_origins/1",
            "/allowed_origins/3"
        ],
        "{refused}"
    );
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("\"https://shop.example\""),
        "{refused}"
    );
    let changed = s
        .call(
            Method::PATCH,
            "/v1/settings",
            Some(&s.key),
            Some(&json!({"allowed_origins": ["https://shop.example", "http://localhost:3000"]})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        changed["settings"]["allowed_origins"],
        json!(["https://shop.example", "http://localhost:3000"])
    );
}

#[tokio::test]
async fn tally_js_is_cacheable_by_version() {
    let s = TestServer::start().await;
    let resp = s.http.get(s.url("/tally.js")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(h["cache-control"], "public, max-age=300");
    let etag = h["etag"].to_str().unwrap().to_string();
    let version = etag.trim_matches('"').to_string();
    assert_eq!(version.len(), 16, "{etag}");
    let source = resp.text().await.unwrap();
    assert!(source.contains("sendBeacon"));

    let resp = s
        .http
        .get(s.url("/tally.js"))
        .header("if-none-match", HeaderValue::from_str(&etag).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);

    let resp = s
        .http
        .get(s.url(&format!("/tally/{version}.js")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(resp.text().await.unwrap(), source);

    let body = s
        .call(
            Method::GET,
            "/tally/0123456789abcdef.js",
            None,
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(
        body["detail"].as_str().unwrap().contains(&version),
        "{body}"
    );
}
