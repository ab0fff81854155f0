//! Webhook signing secrets at rest: sealed under the process's key, secrets stored before
//! sealing are sealed at start-up, a wrong key is refused with both key ids named, and a key
//! is replaced by starting once with the old one as the previous key.

use tally_store::secrets::{SecretKey, SecretKeys};
use tally_store::testing::TestDb;
use tally_store::webhooks::NewEndpoint;
use tally_store::{Database, DbConfig, TenantId};
use uuid::Uuid;

const SECRET: &str = "whsec_0123456789abcdefghij";

fn key() -> SecretKey {
    SecretKey::parse(&SecretKey::generate()).unwrap()
}

/// Another process on the test database, holding `secrets`.
async fn process(t: &TestDb, secrets: SecretKeys) -> Database {
    Database::connect(&DbConfig {
        secrets,
        ..t.cfg.clone()
    })
    .await
    .unwrap()
}

/// The column as a database dump shows it.
async fn stored(t: &TestDb, tenant: TenantId, endpoint: Uuid) -> String {
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE endpoint_id = $1")
        .bind(endpoint)
        .fetch_one(&mut *tx)
        .await
        .unwrap()
}

#[tokio::test]
async fn secrets_are_sealed_opened_and_resealed_under_a_new_key() {
    let t = TestDb::new().await;
    let (tenant, _) = t.db.create_tenant("Sealed shop").await.unwrap();
    // Stored by a process without a key, as before this release.
    let unsealed = process(&t, SecretKeys::default()).await;
    let created = unsealed
        .create_webhook_endpoint(
            tenant.tenant_id,
            NewEndpoint {
                source: "stripe".into(),
                description: String::new(),
                secret: Some(SECRET.into()),
                paypal_webhook_id: None,
                paypal_certificate_pem: None,
                order_id_prefix: None,
            },
        )
        .await
        .unwrap();
    let endpoint = created.endpoint.endpoint_id;
    assert_eq!(stored(&t, tenant.tenant_id, endpoint).await, SECRET);

    let old = key();
    let first = process(&t, SecretKeys::new(Some(old.clone()), None)).await;
    assert_eq!(first.seal_webhook_secrets().await.unwrap(), 1);
    let sealed = stored(&t, tenant.tenant_id, endpoint).await;
    assert!(
        sealed.starts_with(&format!("tally-sealed:v1:{}:", old.id())),
        "{sealed}"
    );
    assert!(!sealed.contains(SECRET));
    let found = first
        .find_webhook_endpoint(endpoint)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.secret.as_deref(), Some(SECRET));
    assert_eq!(
        first.seal_webhook_secrets().await.unwrap(),
        0,
        "nothing left to seal"
    );

    // A process with another key refuses to start, naming both keys.
    let new = key();
    let wrong = process(&t, SecretKeys::new(Some(new.clone()), None)).await;
    let refused = wrong.seal_webhook_secrets().await.unwrap_err().to_string();
    assert!(
        refused.contains(old.id()) && refused.contains(new.id()),
        "{refused}"
    );

    // Replacing the key: one start with the old key as the previous one reseals everything.
    let rotating = process(&t, SecretKeys::new(Some(new.clone()), Some(old))).await;
    assert_eq!(rotating.seal_webhook_secrets().await.unwrap(), 1);
    assert!(
        stored(&t, tenant.tenant_id, endpoint)
            .await
            .starts_with(&format!("tally-sealed:v1:{}:", new.id()))
    );
    let found = wrong
        .find_webhook_endpoint(endpoint)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found.secret.as_deref(),
        Some(SECRET),
        "the new key alone opens it now"
    );
}
