//! Tenants and API keys in the store.

use tally_store::tenants::Scope;
use tally_store::testing::{TestDb, begin_for_tenant};

#[tokio::test]
async fn keys_are_shown_once_stored_hashed_and_revocable() {
    let t = TestDb::new().await;
    let (tenant, first) = t.db.create_tenant("Acme").await.unwrap();
    assert!(first.secret.starts_with("tk_") && first.secret.len() == 46);
    assert!(first.secret.starts_with(&first.info.prefix));
    let second =
        t.db.create_api_key(tenant.tenant_id, "ci", &[Scope::Ingest])
            .await
            .unwrap();
    assert_ne!(first.secret, second.secret);

    // Both keys work at once (rotation without downtime).
    for key in [&first, &second] {
        let owner = t.db.find_key_owner(&key.secret).await.unwrap().unwrap();
        assert_eq!(owner.tenant_id, tenant.tenant_id);
        assert!(!owner.revoked);
    }
    assert!(t.db.find_key_owner("tk_unknown").await.unwrap().is_none());

    let listed = t.db.list_api_keys(tenant.tenant_id).await.unwrap();
    assert_eq!(listed.len(), 2);
    let revoked =
        t.db.revoke_api_key(tenant.tenant_id, second.info.key_id)
            .await
            .unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(
        t.db.find_key_owner(&second.secret)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );

    // The secret itself is stored nowhere: only its prefix and hash.
    let mut conn = crate::fixtures::owner(&t).await;
    let mut tx = begin_for_tenant(&mut conn, tenant.tenant_id.0).await;
    let rows: Vec<String> = sqlx::query_scalar("SELECT to_jsonb(k)::text FROM api_keys k")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert!(!row.contains(&first.secret[12..]) && !row.contains(&second.secret[12..]));
    }
}

#[tokio::test]
async fn another_tenant_cannot_revoke_or_list_my_keys() {
    let t = TestDb::new().await;
    let (a, a_key) = t.db.create_tenant("A").await.unwrap();
    let (b, _) = t.db.create_tenant("B").await.unwrap();
    assert!(
        t.db.revoke_api_key(b.tenant_id, a_key.info.key_id)
            .await
            .is_err()
    );
    assert_eq!(t.db.list_api_keys(b.tenant_id).await.unwrap().len(), 1);
    let tenants = t.db.list_tenants().await.unwrap();
    assert_eq!(tenants.len(), 2);
    assert!(tenants.iter().any(|x| x.tenant_id == a.tenant_id));
}

#[tokio::test]
async fn the_database_keeps_publishable_keys_ingest_only() {
    let t = TestDb::new().await;
    let (tenant, _) = t.db.create_tenant("Shop").await.unwrap();
    let key =
        t.db.create_publishable_key(tenant.tenant_id, "web", None)
            .await
            .unwrap();
    assert!(key.secret.starts_with("pk_") && key.secret.len() == 46);
    let owner = t.db.find_key_owner(&key.secret).await.unwrap().unwrap();
    assert_eq!(owner.kind, tally_store::tenants::KeyKind::Publishable);
    assert_eq!(owner.scopes, [Scope::Ingest]);
    assert_eq!(
        owner.rate_limit,
        Some(tally_store::tenants::KeyLimit::PUBLISHABLE_DEFAULT)
    );

    // Even the owner cannot widen it: a page's key must never read or administer.
    let mut conn = crate::fixtures::owner(&t).await;
    let mut tx = begin_for_tenant(&mut conn, tenant.tenant_id.0).await;
    let widened = sqlx::query(
        "UPDATE api_keys SET scopes = ARRAY['ingest', 'read'] WHERE kind = 'publishable'",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(
        widened
            .to_string()
            .contains("api_keys_publishable_ingest_only"),
        "{widened}"
    );
}
