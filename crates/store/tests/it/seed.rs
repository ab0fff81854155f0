//! The database's reference data is the code's: PII keys, taxonomy, default channel rules.

use crate::fixtures::owner;
use tally_core::channel::{ChannelRule, TAXONOMY, default_rules};
use tally_core::pii::PII_KEYS;
use tally_store::testing::TestDb;

/// priority, utm_source, utm_medium, referrer_host, click_id, channel_code
type RuleRow = (
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

#[tokio::test]
async fn pii_keys_taxonomy_and_rules_match_the_code() {
    let t = TestDb::new().await;
    let mut conn = owner(&t).await;
    let keys: Vec<String> = sqlx::query_scalar("SELECT unnest(tally_pii_key_list())")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        keys,
        PII_KEYS.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );

    let codes: Vec<(String, String, bool, String)> = sqlx::query_as(
        "SELECT code, family, is_paid, display_name FROM channel_taxonomy ORDER BY code",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut expected: Vec<_> = TAXONOMY
        .iter()
        .map(|e| {
            (
                e.code.to_string(),
                e.family.to_string(),
                e.is_paid,
                e.display_name.to_string(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(codes, expected);

    let rows: Vec<RuleRow> =
        sqlx::query_as(
            "SELECT priority, utm_source, utm_medium, referrer_host, click_id, channel_code FROM channel_rules",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let mut in_db: Vec<ChannelRule> = rows
        .into_iter()
        .map(
            |(priority, utm_source, utm_medium, referrer_host, click_id, channel_code)| {
                ChannelRule {
                    priority,
                    utm_source,
                    utm_medium,
                    referrer_host,
                    click_id,
                    channel_code,
                }
            },
        )
        .collect();
    let mut code = default_rules();
    let key = |r: &ChannelRule| format!("{r:?}");
    in_db.sort_by_key(key);
    code.sort_by_key(key);
    assert_eq!(in_db, code);
}
