//! API keys: valid, unknown, revoked, missing scope; the operator API.

use crate::common::{ADMIN_TOKEN, TestServer, assert_problem};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn valid_key_by_bearer_or_x_api_key() {
    let s = TestServer::start().await;
    let me = s.get("/v1/me", StatusCode::OK).await;
    assert_eq!(me["tenant_id"], s.tenant_id.as_str());
    let resp = s
        .http
        .get(s.url("/v1/me"))
        .header("X-API-Key", &s.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_unknown_and_revoked_keys_get_401_problems() {
    let s = TestServer::start().await;
    let body = s
        .call(Method::GET, "/v1/me", None, None, StatusCode::UNAUTHORIZED)
        .await;
    assert_problem(&body, 401, "unauthorized");
    let body = s
        .call(
            Method::GET,
            "/v1/me",
            Some("tk_doesnotexist"),
            None,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    assert_problem(&body, 401, "unauthorized");

    let created = s
        .post(
            "/v1/keys",
            &json!({"name": "ci", "scopes": ["ingest"]}),
            StatusCode::CREATED,
        )
        .await;
    let secret = created["secret"].as_str().unwrap().to_string();
    // Warm the cache, then revoke: the key must stop working at once.
    s.call(Method::GET, "/v1/me", Some(&secret), None, StatusCode::OK)
        .await;
    let key_id = created["key_id"].as_str().unwrap();
    s.post(
        &format!("/v1/keys/{key_id}/revoke"),
        &json!({}),
        StatusCode::OK,
    )
    .await;
    let body = s
        .call(
            Method::GET,
            "/v1/me",
            Some(&secret),
            None,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    assert_problem(&body, 401, "unauthorized");
    assert!(body["detail"].as_str().unwrap().contains("revoked"));
    // The original key still works (several keys at once).
    s.get("/v1/me", StatusCode::OK).await;
}

#[tokio::test]
async fn key_without_scope_gets_403() {
    let s = TestServer::start().await;
    let created = s
        .post(
            "/v1/keys",
            &json!({"scopes": ["ingest"]}),
            StatusCode::CREATED,
        )
        .await;
    let ingest_only = created["secret"].as_str().unwrap();
    let body = s
        .call(
            Method::GET,
            "/v1/keys",
            Some(ingest_only),
            None,
            StatusCode::FORBIDDEN,
        )
        .await;
    assert_problem(&body, 403, "forbidden");
    let listed = s.get("/v1/keys", StatusCode::OK).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        listed.to_string().find(ingest_only).is_none(),
        "secrets never listed"
    );
}

#[tokio::test]
async fn invalid_key_requests_are_problems() {
    let s = TestServer::start().await;
    let body = s
        .post(
            "/v1/keys",
            &json!({"scopes": ["ingest", "root"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_problem(&body, 422, "validation_failed");
    assert_eq!(body["errors"][0]["pointer"], "/scopes/1");
    let resp = s
        .http
        .post(s.url("/v1/keys"))
        .bearer_auth(&s.key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = s
        .http
        .post(s.url("/v1/keys"))
        .bearer_auth(&s.key)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn operator_manages_tenants_and_keys() {
    let s = TestServer::start().await;
    let body = s
        .call(
            Method::GET,
            "/v1/admin/tenants",
            Some(&s.key),
            None,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    assert_problem(&body, 401, "unauthorized");
    let created = s
        .call(
            Method::POST,
            "/v1/admin/tenants",
            Some(ADMIN_TOKEN),
            Some(&json!({"name": "Beta"})),
            StatusCode::CREATED,
        )
        .await;
    let tenant = created["tenant"]["tenant_id"].as_str().unwrap().to_string();
    let key = created["api_key"]["secret"].as_str().unwrap().to_string();
    let me = s
        .call(Method::GET, "/v1/me", Some(&key), None, StatusCode::OK)
        .await;
    assert_eq!(me["tenant_id"], tenant.as_str());
    let list = s
        .call(
            Method::GET,
            "/v1/admin/tenants",
            Some(ADMIN_TOKEN),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let keys = s
        .call(
            Method::GET,
            &format!("/v1/admin/tenants/{tenant}/keys"),
            Some(ADMIN_TOKEN),
            None,
            StatusCode::OK,
        )
        .await;
    let key_id = keys[0]["key_id"].as_str().unwrap();
    s.call(
        Method::POST,
        &format!("/v1/admin/tenants/{tenant}/keys/{key_id}/revoke"),
        Some(ADMIN_TOKEN),
        None,
        StatusCode::OK,
    )
    .await;
    s.call(
        Method::GET,
        "/v1/me",
        Some(&key),
        None,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let missing = uuid::Uuid::now_v7();
    s.call(
        Method::GET,
        &format!("/v1/admin/tenants/{missing}/keys"),
        Some(ADMIN_TOKEN),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    // Another tenant's key id cannot be revoked through my tenant.
    s.call(
        Method::POST,
        &format!("/v1/keys/{key_id}/revoke"),
        Some(&s.key.clone()),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
}
