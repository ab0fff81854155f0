//! The OpenAPI document as served: what the handlers' annotations say, completed with the
//! errors that the shared layers (authentication, extractors, body limits, idempotency, the
//! database) answer on every route they run on.
//!
//! Those layers answer the same way on every route, so their statuses are added here from each
//! operation's shape rather than repeated (and forgotten) in fifty annotations: a route that
//! takes a body can answer 413/415, a route behind a scoped key 401/403, and so on. The test
//! `openapi_lists_every_error_an_operation_can_answer` walks the result.

use crate::idempotency;
use serde_json::{Map, Value, json};
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Routes whose body is the vendor's raw bytes (verified by signature, never parsed as the
/// request's JSON), so they answer no 400/415/422 for it.
const RAW_BODY_ROUTES: &[&str] = &["/v1/webhooks/{source}/{endpoint_id}"];

/// Routes that never touch the database.
const STATIC_ROUTES: &[&str] = &["/healthz"];

pub fn document(mut doc: OpenApi) -> Value {
    doc.info.title = "Tally".into();
    // The workspace's version, which `tally --version` prints too: one number for one release.
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description =
        Some("Multi-tenant revenue attribution. Errors are RFC 7807 problem documents.".into());
    let components = doc.components.get_or_insert_with(Default::default);
    let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
    components.add_security_scheme("api_key", bearer());
    components.add_security_scheme("operator_token", bearer());
    // Segment's webhook destinations send the key as the Basic user name (empty password).
    components.add_security_scheme(
        "basic",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
    );

    let mut doc = serde_json::to_value(doc).expect("an OpenAPI document is JSON");
    if let Some(Value::Object(paths)) = doc.get_mut("paths") {
        for (path, item) in paths.iter_mut() {
            let Value::Object(item) = item else { continue };
            for (method, operation) in item.iter_mut() {
                if let Value::Object(operation) = operation {
                    complete(path, method, operation);
                }
            }
        }
    }
    doc
}

fn complete(path: &str, method: &str, operation: &mut Map<String, Value>) {
    let mut errors: Vec<(&str, &str)> = Vec::new();
    let security = operation.get("security").cloned().unwrap_or(Value::Null);
    let schemes: Vec<(&str, bool)> = security
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|requirement| {
            requirement.iter().map(|(name, scopes)| {
                let scoped = scopes.as_array().is_some_and(|s| !s.is_empty());
                (name.as_str(), scoped)
            })
        })
        .collect();
    if !schemes.is_empty() {
        errors.push((
            "401",
            "no key, an unknown or revoked key, or a wrong operator token",
        ));
    }
    if schemes.iter().any(|(_, scoped)| *scoped) {
        errors.push(("403", "the key lacks the scope this operation requires"));
    }
    let params: Vec<&str> = operation
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("in").and_then(Value::as_str))
        .collect();
    if params.contains(&"path") {
        errors.push(("400", "a path parameter is malformed (e.g. not a UUID)"));
        errors.push(("404", "no such resource for this tenant"));
    }
    if params.contains(&"query") {
        errors.push((
            "400",
            "a query parameter is malformed or outside its allowed values",
        ));
    }
    if has_cursor(operation) {
        errors.push(("422", "the cursor is not one this API issued"));
    }
    if operation.contains_key("requestBody") {
        errors.push(("413", "the body is larger than this operation accepts"));
        if !RAW_BODY_ROUTES.contains(&path) {
            errors.push(("400", "the body is not valid JSON"));
            errors.push(("415", "the body is not sent as `application/json`"));
            errors.push(("422", "the body is valid JSON but not a valid request"));
        }
    }
    if method == "post" && idempotency::ROUTES.contains(&path) {
        errors.push(("400", "the Idempotency-Key header is malformed"));
        errors.push((
            "409",
            "the Idempotency-Key was used before with a different body",
        ));
        add_idempotency_header(operation);
    }
    errors.push((
        "414",
        "the request target (path and query) is longer than 8 KiB",
    ));
    if !STATIC_ROUTES.contains(&path) {
        errors.push((
            "503",
            "the database is unavailable; nothing was written, retry after `Retry-After`",
        ));
    }

    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    for (status, description) in errors {
        responses
            .entry(status)
            .or_insert_with(|| problem(description));
    }
}

fn has_cursor(operation: &Map<String, Value>) -> bool {
    operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|params| params.iter().any(|p| p["name"] == "cursor"))
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "application/problem+json": {
                "schema": { "$ref": "#/components/schemas/Problem" }
            }
        }
    })
}

fn add_idempotency_header(operation: &mut Map<String, Value>) {
    let parameters = operation
        .entry("parameters")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("parameters is an array");
    parameters.push(json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Makes a retry safe: the same key and body within 24 hours get the first answer again; the same key with another body gets 409.",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": idempotency::MAX_KEY_CHARS,
            "pattern": "^[!-~]+$"
        }
    }));
}
