//! Sends a [`Month`] through Tally's public HTTP API, as a shop's tracker and its payment
//! vendors would: events through the batch endpoint, payments as signed webhooks to endpoints
//! configured through the API. Then waits until the workers have recomputed attribution and
//! reconciled every window, so the dashboard is complete when its URL is printed.

use super::month::{Delivery, Month};
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tally_payments::Source;
use tally_payments::testing::{
    PayPalSigner, TestHeaders, shopify_headers, stripe_headers, woocommerce_headers,
};

/// The id PayPal would show for the demo's webhook subscription (it is part of what PayPal
/// signs).
const PAYPAL_WEBHOOK_ID: &str = "DEMO-WEBHOOK-0001";
/// The demo plays PayPal with a key derived from this constant, so the certificate pinned on
/// the first run still verifies on every rerun and in every process.
const PAYPAL_KEY_SEED: u64 = 0x7a11_de30;
const BATCH_EVENTS: usize = 1000;
/// Concurrent batch requests: enough to keep both cores busy while one batch commits.
const BATCH_CLIENTS: usize = 4;
/// Concurrent orders whose deliveries are in flight (each order's deliveries go in sequence).
const WEBHOOK_CLIENTS: usize = 16;

/// An HTTP client holding the loader's key.
pub struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

/// What the events' batches answered, summed.
#[derive(Debug, Default, Clone, Copy)]
pub struct EventCounts {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

/// What the webhook endpoints answered, per delivery.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeliveryCounts {
    pub new: u64,
    pub duplicates: u64,
}

impl Api {
    pub fn new(base: &str, key: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
        })
    }

    /// A JSON request with the loader's key; anything but 2xx is an error carrying the problem.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// One batch; a 429 is waited out (its `Retry-After`) and the batch sent again, since
    /// nothing of a refused batch was written.
    async fn batch(&self, events: &[Value]) -> anyhow::Result<EventCounts> {
        let body = json!({ "events": events });
        loop {
            let response = self
                .http
                .post(format!("{}/v1/events/batch", self.base))
                .bearer_auth(&self.key)
                .json(&body)
                .send()
                .await
                .context("POST /v1/events/batch")?;
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            let status = response.status();
            let text = response.text().await?;
            if status != StatusCode::OK {
                bail!("POST /v1/events/batch: {status}: {text}");
            }
            let answer: Value = serde_json::from_str(&text)?;
            let count = |field: &str| answer[field].as_u64().unwrap_or(0);
            return Ok(EventCounts {
                accepted: count("accepted"),
                duplicates: count("duplicates"),
                rejected: count("rejected") + count("conflicts"),
            });
        }
    }
}

/// Runs `work` on every item with `clients` concurrent workers, worker `w` taking items `w`,
/// `w + clients`, ... in turn. Plain futures rather than a buffered stream: a stream of
/// closures over borrowed items trips the compiler's `Send` check in `tokio::spawn` (the
/// closure is not general over the items' lifetime, rust-lang/rust#102211).
async fn spread<'a, T, R, F, Fut>(items: &'a [T], clients: usize, work: F) -> anyhow::Result<Vec<R>>
where
    F: Fn(&'a T) -> Fut,
    Fut: Future<Output = anyhow::Result<R>>,
{
    let work = &work;
    let shares = try_join_all((0..clients).map(|w| async move {
        let mut out = Vec::new();
        for item in items.iter().skip(w).step_by(clients) {
            out.push(work(item).await?);
        }
        anyhow::Ok(out)
    }))
    .await?;
    Ok(shares.into_iter().flatten().collect())
}

/// Sends every valid event in batches, advancing `progress` per event.
pub async fn send_events(
    api: &Api,
    events: &[Value],
    progress: &ProgressBar,
) -> anyhow::Result<EventCounts> {
    let chunks: Vec<&[Value]> = events.chunks(BATCH_EVENTS).collect();
    let batches = spread(&chunks, BATCH_CLIENTS, |chunk| async move {
        let counts = api.batch(chunk).await?;
        progress.inc(chunk.len() as u64);
        anyhow::Ok(counts)
    })
    .await?;
    Ok(batches
        .into_iter()
        .fold(EventCounts::default(), |sum, c| EventCounts {
            accepted: sum.accepted + c.accepted,
            duplicates: sum.duplicates + c.duplicates,
            rejected: sum.rejected + c.rejected,
        }))
}

/// Sends the invalid events that are not dead letters yet: Tally keeps every refused submission
/// (a dead letter is a record of what arrived, not deduplicated), so a rerun checks the queue
/// first to change nothing. Returns how many dead letters the demo's events now have.
pub async fn send_invalid(api: &Api, invalid: &[Value]) -> anyhow::Result<usize> {
    let listed = api.get("/v1/dead-events?source=api&limit=500").await?;
    let known: Vec<&str> = listed["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|d| d["event_id"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let missing: Vec<Value> = invalid
        .iter()
        .filter(|e| !known.contains(&e["event_id"].as_str().unwrap_or_default()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        let counts = api.batch(&missing).await?;
        anyhow::ensure!(
            counts.rejected == missing.len() as u64,
            "expected {} invalid events to be refused, {} were",
            missing.len(),
            counts.rejected
        );
    }
    Ok(invalid.len())
}

/// A configured endpoint: where to post and how to sign.
struct Hook {
    source: Source,
    path: String,
    secret: String,
}

/// One endpoint per vendor: created on the first run; on a rerun the existing one is reused
/// (its deliveries' history and its id stay) and its secret rotated, because listings never
/// show a secret again. PayPal has no secret: the pinned certificate is the same every run.
async fn configure_hooks(api: &Api, paypal: &PayPalSigner) -> anyhow::Result<Vec<Hook>> {
    let existing = api.get("/v1/webhook-endpoints").await?;
    let mut hooks = Vec::new();
    for source in Source::ALL {
        let found = existing.as_array().and_then(|list| {
            list.iter()
                .find(|e| e["source"] == source.as_str() && e["status"] == "active")
        });
        let answer = match (found, source) {
            (Some(endpoint), Source::PayPal) => endpoint.clone(),
            (Some(endpoint), _) => {
                let id = endpoint["endpoint_id"].as_str().unwrap_or_default();
                api.call(
                    Method::POST,
                    &format!("/v1/webhook-endpoints/{id}/rotate"),
                    Some(&json!({"grace_period_seconds": 0})),
                )
                .await?
            }
            (None, Source::PayPal) => {
                api.call(
                    Method::POST,
                    "/v1/webhook-endpoints",
                    Some(&json!({
                        "source": "paypal",
                        "description": "Demo Shop",
                        "paypal_webhook_id": PAYPAL_WEBHOOK_ID,
                        "paypal_certificate_pem": paypal.certificate_pem(),
                    })),
                )
                .await?
            }
            (None, _) => {
                api.call(
                    Method::POST,
                    "/v1/webhook-endpoints",
                    Some(&json!({"source": source.as_str(), "description": "Demo Shop"})),
                )
                .await?
            }
        };
        hooks.push(Hook {
            source,
            path: answer["url_path"]
                .as_str()
                .context("an endpoint has a url_path")?
                .to_string(),
            secret: answer["secret"].as_str().unwrap_or_default().to_string(),
        });
    }
    Ok(hooks)
}

/// Configures the endpoints, then sends each order's deliveries in order, many orders at once.
pub async fn send_deliveries(
    api: &Api,
    month: &Month,
    progress: &ProgressBar,
) -> anyhow::Result<DeliveryCounts> {
    let paypal = tokio::task::spawn_blocking(|| PayPalSigner::from_seed(PAYPAL_KEY_SEED)).await?;
    let hooks = configure_hooks(api, &paypal).await?;
    let (hooks, paypal) = (&hooks, &paypal);
    let per_order = spread(
        &month.deliveries,
        WEBHOOK_CLIENTS,
        |deliveries| async move {
            let mut counts = DeliveryCounts::default();
            for delivery in deliveries {
                let hook = hooks
                    .iter()
                    .find(|h| h.source == delivery.source)
                    .expect("a hook per source");
                match deliver(api, hook, paypal, delivery).await?.as_str() {
                    "duplicate" => counts.duplicates += 1,
                    _ => counts.new += 1,
                }
                progress.inc(1);
            }
            anyhow::Ok(counts)
        },
    )
    .await?;
    Ok(per_order
        .into_iter()
        .fold(DeliveryCounts::default(), |sum, c| DeliveryCounts {
            new: sum.new + c.new,
            duplicates: sum.duplicates + c.duplicates,
        }))
}

/// Signs `delivery` as its vendor would, now, and posts it; returns Tally's `status`.
async fn deliver(
    api: &Api,
    hook: &Hook,
    paypal: &PayPalSigner,
    delivery: &Delivery,
) -> anyhow::Result<String> {
    let secret = hook.secret.as_bytes();
    let body = &delivery.body;
    let headers: TestHeaders = match hook.source {
        Source::Shopify => shopify_headers(secret, delivery.topic, &delivery.id, body),
        Source::Stripe => stripe_headers(secret, Utc::now().timestamp(), body),
        Source::PayPal => paypal.headers(
            PAYPAL_WEBHOOK_ID,
            &delivery.id,
            &Utc::now().to_rfc3339(),
            body,
        ),
        Source::WooCommerce => woocommerce_headers(secret, delivery.topic, body),
    };
    let mut request = api
        .http
        .post(format!("{}{}", api.base, hook.path))
        .header("content-type", "application/json")
        .body(body.clone());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.context("posting a webhook")?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!(
            "webhook {} {}: {status}: {text}",
            hook.source.as_str(),
            delivery.id
        );
    }
    let answer: Value = serde_json::from_str(&text).unwrap_or_default();
    Ok(answer["status"].as_str().unwrap_or_default().to_string())
}

/// Polls until no recompute is pending for the window and reconciliation has a settled status
/// for it (or `timeout` passes).
pub async fn settle(
    api: &Api,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let window = format!(
        "from={}&to={}",
        from.format("%Y-%m-%dT%H:00:00Z"),
        to.format("%Y-%m-%dT%H:00:00Z")
    );
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let channels = api
            .get(&format!("/v1/attribution/channels?{window}"))
            .await?;
        let recomputing = channels["models"]
            .as_array()
            .is_none_or(|models| models.iter().any(|m| m["recompute_pending"] == true));
        let status = api
            .get(&format!("/v1/reconciliation/status?{window}"))
            .await?;
        let reconciling = status["overall_status"] == "pending";
        if !recomputing && !reconciling {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("attribution or reconciliation still pending after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}
