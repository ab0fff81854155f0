//! Health, readiness, correlation ids, problem+json for unknown routes, OpenAPI and metrics.

use crate::common::{TestServer, assert_problem};
use reqwest::StatusCode;

#[tokio::test]
async fn health_and_readiness() {
    let s = TestServer::start().await;
    let body = s
        .call(reqwest::Method::GET, "/healthz", None, None, StatusCode::OK)
        .await;
    assert_eq!(body["status"], "ok");
    let body = s
        .call(reqwest::Method::GET, "/readyz", None, None, StatusCode::OK)
        .await;
    assert_eq!(body["status"], "ready");
    // Closing the pool is what a lost database looks like to the server: not ready, 503.
    s.t.db.app_pool().close().await;
    let body = s
        .call(
            reqwest::Method::GET,
            "/readyz",
            None,
            None,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
    crate::common::assert_problem(&body, 503, "unavailable");
}

#[tokio::test]
async fn correlation_id_is_echoed_or_generated() {
    let s = TestServer::start().await;
    let resp = s
        .http
        .get(s.url("/healthz"))
        .header("X-Correlation-ID", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-correlation-id"], "abc-123");
    let resp = s.http.get(s.url("/healthz")).send().await.unwrap();
    let generated = resp.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(generated.len(), 36);
    // An unsafe value is replaced, not echoed.
    let resp = s
        .http
        .get(s.url("/nope"))
        .header("X-Correlation-ID", "bad value\twith tabs")
        .send()
        .await
        .unwrap();
    let echoed = resp.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(echoed, "bad value\twith tabs");
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_problem(&body, 404, "not_found");
    assert_eq!(body["correlation_id"], echoed.as_str());
    assert_eq!(body["instance"], "/nope");
}

#[tokio::test]
async fn openapi_and_metrics_are_served() {
    let s = TestServer::start().await;
    let doc = s
        .call(
            reqwest::Method::GET,
            "/openapi.json",
            None,
            None,
            StatusCode::OK,
        )
        .await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/v1/me", "/v1/keys", "/v1/admin/tenants", "/readyz"] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from OpenAPI"
        );
    }
    s.get("/v1/me", StatusCode::OK).await;
    let text = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("tally_http_request_duration_seconds"),
        "{text}"
    );
}
