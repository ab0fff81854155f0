use super::*;
use crate::channel::{PRIORITY_CLICK_ID, TAXONOMY, default_rules, referrer_host};
use proptest::prelude::*;
use std::sync::LazyLock;

static DEFAULTS: LazyLock<ChannelResolver> =
    LazyLock::new(|| ChannelResolver::new(&default_rules(), &[]).unwrap());

fn utm(source: &str, medium: &str) -> &'static str {
    DEFAULTS.resolve(&TouchSignals {
        utm_source: Some(source),
        utm_medium: Some(medium),
        ..TouchSignals::default()
    })
}

fn referred_by(url: &str) -> &'static str {
    let host = referrer_host(url).unwrap();
    DEFAULTS.resolve(&TouchSignals {
        referrer_host: Some(&host),
        ..TouchSignals::default()
    })
}

fn clicked(ids: &[ClickIdKind]) -> &'static str {
    DEFAULTS.resolve(&TouchSignals {
        click_ids: ids.iter().copied().collect(),
        ..TouchSignals::default()
    })
}

fn rule(priority: i32, column: &str, value: &str, channel: &str) -> ChannelRule {
    serde_json::from_value(serde_json::json!({
        "priority": priority, column: value, "channel_code": channel,
    }))
    .unwrap()
}

#[test]
fn click_ids() {
    use ClickIdKind::*;
    for (id, channel) in [
        (Gclid, "paid_search_google"),
        (Gbraid, "paid_search_google"),
        (Wbraid, "paid_search_google"),
        (Msclkid, "paid_search_microsoft"),
        (Fbclid, "paid_social_meta"),
        (Ttclid, "paid_social_tiktok"),
        (LiFatId, "paid_social_linkedin"),
    ] {
        assert_eq!(clicked(&[id]), channel, "{id:?}");
    }
    // A platform-appended id outranks fbclid, which is the weakest click id.
    assert_eq!(clicked(&[Fbclid, Gclid]), "paid_search_google");
}

#[test]
fn utm_pairs_and_mediums_case_insensitively() {
    for (source, medium, channel) in [
        ("google", "cpc", "paid_search_google"),
        ("Google", "CPC", "paid_search_google"),
        (" google ", "PPC", "paid_search_google"),
        ("adwords", "paid", "paid_search_google"),
        ("bing", "cpc", "paid_search_microsoft"),
        ("facebook", "paid", "paid_social_meta"),
        ("Instagram", "Paid_Social", "paid_social_meta"),
        ("fb", "cpc", "paid_social_meta"),
        ("ig", "paidsocial", "paid_social_meta"),
        ("meta", "paid", "paid_social_meta"),
        ("tiktok", "paid", "paid_social_tiktok"),
        ("linkedin", "paid", "paid_social_linkedin"),
        ("reddit", "cpc", "paid_social_other"),
        ("google", "display", "display_google"),
        ("google", "banner", "display_google"),
        ("google", "cpm", "display_google"),
        ("duckduckgo", "cpc", "paid_search_other"),
        ("somesite", "display", "display_other"),
        ("mailchimp", "email", "email"),
        ("weekly", "Newsletter", "email"),
        ("twilio", "sms", "sms"),
        ("partner42", "affiliate", "affiliate"),
        ("google", "organic", "organic_search"),
        ("facebook", "social", "organic_social"),
        ("linkedin", "social-network", "organic_social"),
        ("x", "organic_social", "organic_social"),
        ("google", "carrier-pigeon", "unknown"),
        ("facebook", "paid-ish", "unknown"),
    ] {
        assert_eq!(utm(source, medium), channel, "{source}/{medium}");
    }
}

#[test]
fn utm_tags_outrank_fbclid_but_not_other_click_ids() {
    let with = |source, medium, id| {
        DEFAULTS.resolve(&TouchSignals {
            utm_source: Some(source),
            utm_medium: Some(medium),
            click_ids: [id].into_iter().collect(),
            referrer_host: None,
        })
    };
    assert_eq!(
        with("facebook", "social", ClickIdKind::Fbclid),
        "organic_social"
    );
    assert_eq!(
        with("facebook", "paid", ClickIdKind::Fbclid),
        "paid_social_meta"
    );
    assert_eq!(
        with("newsletter", "email", ClickIdKind::Gclid),
        "paid_search_google"
    );
}

#[test]
fn untagged_referrers() {
    for (url, channel) in [
        ("https://www.google.com/", "organic_search"),
        ("https://www.google.co.uk/search?q=mugs", "organic_search"),
        ("https://google.de/", "organic_search"),
        ("https://www.google.com.au/", "organic_search"),
        ("https://www.bing.com/search", "organic_search"),
        ("https://cn.bing.com/", "organic_search"),
        ("https://duckduckgo.com/", "organic_search"),
        ("https://search.yahoo.com/", "organic_search"),
        ("https://search.yahoo.co.jp/", "organic_search"),
        ("https://www.baidu.com/", "organic_search"),
        ("https://yandex.ru/", "organic_search"),
        ("https://www.ecosia.org/", "organic_search"),
        ("https://facebook.com/", "organic_social"),
        ("https://m.facebook.com/", "organic_social"),
        ("https://l.instagram.com/?u=x", "organic_social"),
        ("https://t.co/abc", "organic_social"),
        ("https://twitter.com/", "organic_social"),
        ("https://x.com/", "organic_social"),
        ("https://www.linkedin.com/", "organic_social"),
        ("https://www.tiktok.com/", "organic_social"),
        ("https://old.reddit.com/r/mugs", "organic_social"),
        ("https://pinterest.co.uk/", "organic_social"),
        ("https://mail.google.com/mail/u/0/", "email"),
        ("android-app://com.google.android.gm", "email"),
        ("https://blog.example.org/post", "referral"),
        ("https://google.evil.com/", "referral"),
        ("https://notgoogle.com/", "referral"),
        ("https://mybox.com/", "referral"),
        ("https://googleusercontent.com/", "referral"),
    ] {
        assert_eq!(referred_by(url), channel, "{url}");
    }
}

#[test]
fn referrers_are_ignored_on_tagged_visits() {
    let tagged = |source: Option<&str>, medium: Option<&str>| {
        DEFAULTS.resolve(&TouchSignals {
            utm_source: source,
            utm_medium: medium,
            referrer_host: Some("google.com"),
            ..TouchSignals::default()
        })
    };
    assert_eq!(tagged(Some("foo"), Some("bar")), "unknown");
    assert_eq!(tagged(Some("foo"), None), "unknown");
    assert_eq!(tagged(None, Some("email")), "email");
    // Blank tags are no tags.
    assert_eq!(tagged(Some(" "), Some("")), "organic_search");
}

#[test]
fn fallbacks() {
    assert_eq!(DEFAULTS.resolve(&TouchSignals::default()), "direct");
    assert_eq!(
        DEFAULTS.resolve(&TouchSignals {
            referrer_host: Some("  "),
            ..TouchSignals::default()
        }),
        "direct"
    );
    let none = ChannelResolver::new(&[], &[]).unwrap();
    assert_eq!(clicked_with(&none, ClickIdKind::Gclid), "unknown");
    assert_eq!(
        none.resolve(&TouchSignals {
            referrer_host: Some("google.com"),
            ..TouchSignals::default()
        }),
        "referral"
    );
}

fn clicked_with(resolver: &ChannelResolver, id: ClickIdKind) -> &'static str {
    resolver.resolve(&TouchSignals {
        click_ids: [id].into_iter().collect(),
        ..TouchSignals::default()
    })
}

#[test]
fn tenant_overrides_win_at_equal_priority_and_lose_to_lower_numbers() {
    let global = default_rules();
    let at = |priority| {
        let tenant = [rule(priority, "click_id", "gclid", "display_google")];
        let resolver = ChannelResolver::new(&global, &tenant).unwrap();
        clicked_with(&resolver, ClickIdKind::Gclid)
    };
    assert_eq!(at(PRIORITY_CLICK_ID - 1), "display_google");
    assert_eq!(at(PRIORITY_CLICK_ID), "display_google");
    assert_eq!(at(PRIORITY_CLICK_ID + 1), "paid_search_google");
    // The same override as a global rule does not beat the shipped one: the tie goes to the
    // alphabetically first code, whatever order the rows came in.
    let mut both = global.clone();
    both.push(rule(
        PRIORITY_CLICK_ID,
        "click_id",
        "gclid",
        "display_google",
    ));
    let forward = ChannelResolver::new(&both, &[]).unwrap();
    both.reverse();
    let backward = ChannelResolver::new(&both, &[]).unwrap();
    assert_eq!(clicked_with(&forward, ClickIdKind::Gclid), "display_google");
    assert_eq!(
        clicked_with(&backward, ClickIdKind::Gclid),
        "display_google"
    );
}

#[test]
fn tenant_rules_cover_own_domains_sources_and_click_id_reinterpretation() {
    let tenant = [
        rule(1, "referrer_host", "MyShop.com", "direct"),
        rule(150, "utm_source", "PartnerX", "affiliate"),
        rule(1, "click_id", "fbclid", "organic_social"),
    ];
    let resolver = ChannelResolver::new(&default_rules(), &tenant).unwrap();
    let host = |h| {
        resolver.resolve(&TouchSignals {
            referrer_host: Some(h),
            ..TouchSignals::default()
        })
    };
    assert_eq!(host("myshop.com"), "direct");
    assert_eq!(host("checkout.myshop.com"), "direct");
    assert_eq!(host("notmyshop.com"), "referral");
    let source = resolver.resolve(&TouchSignals {
        utm_source: Some("partnerx"),
        utm_medium: Some("cpc"),
        ..TouchSignals::default()
    });
    assert_eq!(source, "affiliate");
    assert_eq!(
        clicked_with(&resolver, ClickIdKind::Fbclid),
        "organic_social"
    );
    // Other tenants keep the defaults.
    assert_eq!(clicked(&[ClickIdKind::Fbclid]), "paid_social_meta");
}

#[test]
fn a_longer_host_pattern_beats_a_shorter_one_at_equal_priority() {
    let global = [
        rule(10, "referrer_host", "example.com", "referral"),
        rule(10, "referrer_host", "news.example.com", "organic_social"),
    ];
    let resolver = ChannelResolver::new(&global, &[]).unwrap();
    let host = |h| {
        resolver.resolve(&TouchSignals {
            referrer_host: Some(h),
            ..TouchSignals::default()
        })
    };
    assert_eq!(host("a.news.example.com"), "organic_social");
    assert_eq!(host("shop.example.com"), "referral");
}

#[test]
fn an_invalid_rule_refuses_the_whole_set() {
    let bad = [rule(1, "click_id", "gclid", "television")];
    assert_eq!(
        ChannelResolver::new(&default_rules(), &bad).unwrap_err(),
        RuleError::UnknownChannel("television".into())
    );
}

fn random_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn every_default_pair_resolves_the_same_in_any_case(
        index in any::<prop::sample::Index>(),
        mask in any::<u64>(),
    ) {
        let rules: Vec<_> = default_rules()
            .into_iter()
            .filter(|r| r.utm_source.is_some() && r.utm_medium.is_some())
            .collect();
        let r = index.get(&rules);
        let (source, medium) = (r.utm_source.as_deref().unwrap(), r.utm_medium.as_deref().unwrap());
        prop_assert_eq!(utm(&random_case(source, mask), &random_case(medium, !mask)), r.channel_code.as_str());
    }

    #[test]
    fn any_signals_resolve_to_a_taxonomy_code(
        source in proptest::option::of("[A-Za-z _-]{0,12}"),
        medium in proptest::option::of("[A-Za-z _-]{0,12}"),
        host in proptest::option::of("[a-z]{1,8}(\\.[a-z]{1,8}){0,3}"),
        ids in any::<u8>(),
    ) {
        let click_ids = ClickIdKind::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| ids >> i & 1 == 1)
            .map(|(_, k)| k)
            .collect();
        let code = DEFAULTS.resolve(&TouchSignals {
            utm_source: source.as_deref(),
            utm_medium: medium.as_deref(),
            referrer_host: host.as_deref(),
            click_ids,
        });
        prop_assert!(TAXONOMY.iter().any(|e| e.code == code));
    }
}
