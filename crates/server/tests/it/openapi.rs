//! The served OpenAPI document is complete: every operation lists each error the shared layers
//! can answer on it, as a problem document, and closed sets and bounds are stated, so that
//! generated clients and schemathesis (`crates/cli/tests/contract.rs`) see the real contract.

use crate::common::TestServer;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn openapi_lists_every_error_an_operation_can_answer() {
    let s = TestServer::start().await;
    let doc = s.get("/openapi.json", StatusCode::OK).await;
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["in"].as_str())
                .collect();
            let mut expected = vec!["414"];
            if path != "/healthz" {
                expected.push("503");
            }
            let schemes = op["security"].as_array().cloned().unwrap_or_default();
            if !schemes.is_empty() {
                expected.push("401");
            }
            let scoped = schemes.iter().any(|requirement| {
                requirement["api_key"]
                    .as_array()
                    .is_some_and(|scopes| !scopes.is_empty())
            });
            if scoped {
                expected.push("403");
            }
            if params.contains(&"path") {
                expected.extend(["400", "404"]);
            }
            if params.contains(&"query") {
                expected.push("400");
            }
            if op.get("requestBody").is_some() {
                expected.push("413");
                if !path.starts_with("/v1/webhooks/") {
                    expected.extend(["400", "415", "422"]);
                }
            }
            for status in expected {
                let response = &op["responses"][status];
                let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                if schema != "#/components/schemas/Problem" {
                    missing.push(format!("{method} {path}: {status}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented errors:\n{}",
        missing.join("\n")
    );
}

#[tokio::test]
async fn openapi_states_closed_sets_and_bounds() {
    let s = TestServer::start().await;
    let doc = s.get("/openapi.json", StatusCode::OK).await;
    let param = |path: &str, name: &str| -> Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no parameter {name}"))["schema"]
            .clone()
    };
    // An optional parameter's enum sits in a `oneOf` beside `null`.
    let values = |schema: &Value| -> Vec<String> {
        let listed = std::iter::once(schema)
            .chain(schema["oneOf"].as_array().into_iter().flatten())
            .find(|s| s["enum"].is_array());
        listed
            .map(|s| serde_json::from_value(s["enum"].clone()).unwrap())
            .unwrap_or_default()
    };
    assert!(values(&param("/v1/events", "kind")).contains(&"conversion".into()));
    assert!(values(&param("/v1/events", "type")).contains(&"purchase".into()));
    assert!(values(&param("/v1/attribution/channels", "model")).contains(&"shapley".into()));
    assert_eq!(
        values(&param("/v1/revenue/timeseries", "interval")),
        ["hour", "day"]
    );
    assert_eq!(
        values(&param("/v1/export/revenue", "format")),
        ["csv", "json"]
    );
    assert!(values(&param("/v1/revenue/realtime", "currency")).contains(&"EUR".into()));
    assert!(values(&param("/v1/dead-events", "source")).contains(&"api".into()));
    assert!(values(&param("/v1/ledger", "entry_type")).len() > 1);
    assert!(values(&param("/v1/reconciliation/runs", "trigger")).contains(&"nightly".into()));
    for path in [
        "/v1/events",
        "/v1/ledger",
        "/v1/dead-events",
        "/v1/reconciliation/runs",
    ] {
        let limit = param(path, "limit");
        assert_eq!(
            (&limit["minimum"], &limit["maximum"]),
            (&1.into(), &500.into()),
            "{path}"
        );
    }
    let event = &doc["components"]["schemas"]["EventBody"];
    assert_eq!(event["additionalProperties"], false, "{event}");
    assert!(event["properties"]["type"]["enum"].is_array(), "{event}");
    assert!(
        event["required"]
            .as_array()
            .unwrap()
            .contains(&"session_id".into())
    );
}
