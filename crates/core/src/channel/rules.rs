//! Channel rules: data, not code.
//!
//! A rule is a row (global defaults plus per-tenant overrides in `channel_rules`, managed by
//! the admin API), so [`ChannelRule`] is a flat record whose optional columns say what it
//! matches. It matches on exactly one of these shapes:
//!
//! | columns set                  | matches a touch that...                                      |
//! |------------------------------|--------------------------------------------------------------|
//! | `click_id`                   | carries that click id (`gclid`, `fbclid`, ...)               |
//! | `utm_source` + `utm_medium`  | has exactly that source and medium                           |
//! | `utm_source`                 | has that source (any medium)                                 |
//! | `utm_medium`                 | has that medium (any source)                                 |
//! | `referrer_host`              | has **no** utm_source/utm_medium and a referrer on that host |
//!
//! Values compare case-insensitively and exactly (after trimming), except hosts:
//! `example.com` also matches its subdomains, and `google.*` matches any country domain of
//! Google (see [`HostPattern`]). Referrer rules ignore tagged visits because utm tags are the
//! advertiser's explicit statement of where a click came from; the referrer is only a hint.

use super::click_id::ClickIdKind;
use super::host::HostPattern;
use super::taxonomy::taxonomy_entry;
use serde::{Deserialize, Serialize};

/// One channel rule as stored and as the admin API sends it.
///
/// Lower `priority` is tried first; see [`super::ChannelResolver`] for the full precedence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRule {
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    /// `example.com` (and subdomains) or `name.*` (any top-level domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_host: Option<String>,
    /// A click id field name, e.g. `gclid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
    /// A code from [`super::TAXONOMY`].
    pub channel_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{0:?} is not a channel code in the taxonomy")]
    UnknownChannel(String),
    #[error("{0:?} is not a click id the event contract accepts")]
    UnknownClickId(String),
    #[error("{0:?} is not a host pattern (example.com, or name.* for any top-level domain)")]
    BadHostPattern(String),
    #[error(
        "a rule matches on exactly one of: click_id; utm_source and/or utm_medium; referrer_host"
    )]
    Shape,
}

/// What a rule matches, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Matcher {
    ClickId(ClickIdKind),
    SourceMedium { source: String, medium: String },
    Source(String),
    Medium(String),
    Host(HostPattern),
}

/// A checked rule, ready for the resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompiledRule {
    pub(crate) priority: i32,
    pub(crate) matcher: Matcher,
    pub(crate) channel: &'static str,
}

impl ChannelRule {
    /// Checks the rule and returns it in its stored form: trimmed, lowercased, blank columns
    /// dropped, `www.` removed from hosts. The admin API stores what this returns.
    pub fn normalised(&self) -> Result<ChannelRule, RuleError> {
        self.compile().map(ChannelRule::from)
    }

    pub(crate) fn compile(&self) -> Result<CompiledRule, RuleError> {
        let channel = taxonomy_entry(self.channel_code.trim())
            .ok_or_else(|| RuleError::UnknownChannel(self.channel_code.clone()))?
            .code;
        let column = |value: &Option<String>| {
            value
                .as_deref()
                .map(|v| v.trim().to_lowercase())
                .filter(|v| !v.is_empty())
        };
        let matcher = match (
            column(&self.click_id),
            column(&self.utm_source),
            column(&self.utm_medium),
            column(&self.referrer_host),
        ) {
            (Some(click_id), None, None, None) => Matcher::ClickId(
                ClickIdKind::parse(&click_id).ok_or(RuleError::UnknownClickId(click_id))?,
            ),
            (None, Some(source), Some(medium), None) => Matcher::SourceMedium { source, medium },
            (None, Some(source), None, None) => Matcher::Source(source),
            (None, None, Some(medium), None) => Matcher::Medium(medium),
            (None, None, None, Some(host)) => {
                Matcher::Host(HostPattern::parse(&host).ok_or(RuleError::BadHostPattern(host))?)
            }
            _ => return Err(RuleError::Shape),
        };
        Ok(CompiledRule {
            priority: self.priority,
            matcher,
            channel,
        })
    }
}

impl From<CompiledRule> for ChannelRule {
    fn from(compiled: CompiledRule) -> Self {
        let mut rule = ChannelRule {
            priority: compiled.priority,
            utm_source: None,
            utm_medium: None,
            referrer_host: None,
            click_id: None,
            channel_code: compiled.channel.to_owned(),
        };
        match compiled.matcher {
            Matcher::ClickId(kind) => rule.click_id = Some(kind.as_str().to_owned()),
            Matcher::SourceMedium { source, medium } => {
                rule.utm_source = Some(source);
                rule.utm_medium = Some(medium);
            }
            Matcher::Source(source) => rule.utm_source = Some(source),
            Matcher::Medium(medium) => rule.utm_medium = Some(medium),
            Matcher::Host(pattern) => rule.referrer_host = Some(pattern.to_rule_text()),
        }
        rule
    }
}

/// Priority of the default click-id rules: a platform-appended id beats anything else.
pub const PRIORITY_CLICK_ID: i32 = 100;
/// Priority of the default utm source + medium rules.
pub const PRIORITY_UTM_SOURCE_MEDIUM: i32 = 200;
/// Priority of the default medium-only rules, after the pairs so `google`+`cpc` is not just
/// "some paid search".
pub const PRIORITY_UTM_MEDIUM: i32 = 300;
/// Priority of `fbclid`: after utm rules, so a tagged organic post stays organic.
pub const PRIORITY_AMBIGUOUS_CLICK_ID: i32 = 350;
/// Priority of the default referrer rules.
pub const PRIORITY_REFERRER: i32 = 400;

const PAID_SEARCH_MEDIUMS: &[&str] = &[
    "cpc",
    "ppc",
    "paid",
    "paidsearch",
    "paid_search",
    "paid-search",
    "sem",
];
const PAID_SOCIAL_MEDIUMS: &[&str] = &[
    "cpc",
    "ppc",
    "cpm",
    "paid",
    "paidsocial",
    "paid_social",
    "paid-social",
];
const DISPLAY_MEDIUMS: &[&str] = &["display", "banner", "cpm"];

/// (sources, mediums, channel): every source with every medium.
const SOURCE_MEDIUM_DEFAULTS: &[(&[&str], &[&str], &str)] = &[
    (
        &["google", "adwords", "googleads", "google_ads"],
        PAID_SEARCH_MEDIUMS,
        "paid_search_google",
    ),
    (&["google", "dv360"], DISPLAY_MEDIUMS, "display_google"),
    (
        &["bing", "microsoft", "bingads", "microsoft_ads"],
        PAID_SEARCH_MEDIUMS,
        "paid_search_microsoft",
    ),
    (
        &["facebook", "instagram", "fb", "ig", "meta"],
        PAID_SOCIAL_MEDIUMS,
        "paid_social_meta",
    ),
    (&["tiktok"], PAID_SOCIAL_MEDIUMS, "paid_social_tiktok"),
    (&["linkedin"], PAID_SOCIAL_MEDIUMS, "paid_social_linkedin"),
    (
        &["twitter", "x", "snapchat", "pinterest", "reddit"],
        PAID_SOCIAL_MEDIUMS,
        "paid_social_other",
    ),
];

const MEDIUM_DEFAULTS: &[(&[&str], &str)] = &[
    (
        &[
            "cpc",
            "ppc",
            "paidsearch",
            "paid_search",
            "paid-search",
            "sem",
        ],
        "paid_search_other",
    ),
    (
        &["paidsocial", "paid_social", "paid-social"],
        "paid_social_other",
    ),
    (DISPLAY_MEDIUMS, "display_other"),
    (&["email", "e-mail", "e_mail", "newsletter"], "email"),
    (&["sms"], "sms"),
    (&["affiliate", "affiliates"], "affiliate"),
    (&["organic"], "organic_search"),
    (
        &[
            "social",
            "social-network",
            "social_network",
            "social-media",
            "social_media",
            "organic_social",
            "organic-social",
        ],
        "organic_social",
    ),
    (&["referral"], "referral"),
];

const CLICK_ID_DEFAULTS: &[(ClickIdKind, i32, &str)] = &[
    (ClickIdKind::Gclid, PRIORITY_CLICK_ID, "paid_search_google"),
    (ClickIdKind::Gbraid, PRIORITY_CLICK_ID, "paid_search_google"),
    (ClickIdKind::Wbraid, PRIORITY_CLICK_ID, "paid_search_google"),
    (
        ClickIdKind::Msclkid,
        PRIORITY_CLICK_ID,
        "paid_search_microsoft",
    ),
    (ClickIdKind::Ttclid, PRIORITY_CLICK_ID, "paid_social_tiktok"),
    (
        ClickIdKind::LiFatId,
        PRIORITY_CLICK_ID,
        "paid_social_linkedin",
    ),
    (
        ClickIdKind::Fbclid,
        PRIORITY_AMBIGUOUS_CLICK_ID,
        "paid_social_meta",
    ),
];

const REFERRER_DEFAULTS: &[(&[&str], &str)] = &[
    (
        &[
            "google.*",
            "bing.com",
            "duckduckgo.com",
            "yahoo.*",
            "baidu.com",
            "yandex.*",
            "ecosia.org",
            "search.brave.com",
            "startpage.com",
            "qwant.com",
            "naver.com",
        ],
        "organic_search",
    ),
    (
        &[
            "facebook.com",
            "instagram.com",
            "t.co",
            "twitter.com",
            "x.com",
            "linkedin.com",
            "lnkd.in",
            "tiktok.com",
            "reddit.com",
            "pinterest.*",
            "youtube.com",
            "threads.net",
        ],
        "organic_social",
    ),
    // Webmail beats the search-engine patterns above because a domain is more specific than
    // `name.*` (see the resolver's precedence).
    (
        &[
            "mail.google.com",
            "com.google.android.gm",
            "mail.yahoo.com",
            "outlook.live.com",
            "outlook.office.com",
        ],
        "email",
    ),
];

/// The global rules Tally ships with; the migration seeds them into `channel_rules`.
///
/// Notable choices:
/// - `gclid`/`gbraid`/`wbraid`, `msclkid`, `ttclid`, `li_fat_id` win over everything
///   (priority [`PRIORITY_CLICK_ID`]): the ad platform appended them. `gclid` also appears on
///   Google display and YouTube clicks; a tenant that tags those `utm_medium=display` adds an
///   override below priority 100.
/// - `fbclid` → paid social Meta, but only after the utm rules
///   ([`PRIORITY_AMBIGUOUS_CLICK_ID`]): Facebook appends it to organic outbound links too, so
///   a post tagged `utm_medium=social` stays organic, while an untagged `fbclid` click counts as
///   paid, as in Meta's own reporting. A tenant that posts a lot organically without tags can
///   override `fbclid` → `organic_social`.
/// - Source + medium pairs beat medium-only rules, so `google`+`cpc` is Google paid search and
///   `foo`+`cpc` is other paid search; `google`+`cpm` is Google display.
/// - Referrer rules apply to untagged visits only: search engines → organic search, social
///   networks → organic social, webmail → e-mail. Any other referrer falls back to `referral`.
/// - A tenant's own domains should not count as referrals: a tenant override
///   `referrer_host = "myshop.com" → direct` does that without a separate setting.
pub fn default_rules() -> Vec<ChannelRule> {
    let compiled = |priority, matcher, channel| {
        ChannelRule::from(CompiledRule {
            priority,
            matcher,
            channel,
        })
    };
    let mut rules = Vec::new();
    for &(kind, priority, channel) in CLICK_ID_DEFAULTS {
        rules.push(compiled(priority, Matcher::ClickId(kind), channel));
    }
    for &(sources, mediums, channel) in SOURCE_MEDIUM_DEFAULTS {
        for source in sources {
            for medium in mediums {
                let matcher = Matcher::SourceMedium {
                    source: (*source).to_owned(),
                    medium: (*medium).to_owned(),
                };
                rules.push(compiled(PRIORITY_UTM_SOURCE_MEDIUM, matcher, channel));
            }
        }
    }
    for &(mediums, channel) in MEDIUM_DEFAULTS {
        for medium in mediums {
            let matcher = Matcher::Medium((*medium).to_owned());
            rules.push(compiled(PRIORITY_UTM_MEDIUM, matcher, channel));
        }
    }
    for &(hosts, channel) in REFERRER_DEFAULTS {
        for host in hosts {
            let pattern = HostPattern::parse(host).expect("default host patterns are well formed");
            rules.push(compiled(PRIORITY_REFERRER, Matcher::Host(pattern), channel));
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn rule(json: serde_json::Value) -> ChannelRule {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_are_normalised_valid_and_unambiguous() {
        let rules = default_rules();
        let mut seen = HashSet::new();
        for r in &rules {
            assert_eq!(r.normalised().as_ref(), Ok(r));
            let key = (
                r.utm_source.clone(),
                r.utm_medium.clone(),
                r.referrer_host.clone(),
                r.click_id.clone(),
            );
            assert!(seen.insert(key), "two default rules match the same: {r:?}");
        }
        assert!(rules.len() > 100);
    }

    #[test]
    fn normalised_trims_lowercases_and_drops_blank_columns() {
        let raw = rule(serde_json::json!({
            "priority": 10, "utm_source": " Newsletter ", "utm_medium": "  ",
            "channel_code": "email",
        }));
        let stored = raw.normalised().unwrap();
        assert_eq!(stored.utm_source.as_deref(), Some("newsletter"));
        assert_eq!(stored.utm_medium, None);
        let host = rule(serde_json::json!({
            "priority": 1, "referrer_host": "WWW.MyShop.com", "channel_code": "direct",
        }));
        assert_eq!(
            host.normalised().unwrap().referrer_host.as_deref(),
            Some("myshop.com")
        );
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        let cases = [
            (
                serde_json::json!({"priority": 1, "click_id": "gclid", "channel_code": "tv"}),
                RuleError::UnknownChannel("tv".into()),
            ),
            (
                serde_json::json!({"priority": 1, "click_id": "dclid", "channel_code": "email"}),
                RuleError::UnknownClickId("dclid".into()),
            ),
            (
                serde_json::json!({"priority": 1, "referrer_host": "a b", "channel_code": "email"}),
                RuleError::BadHostPattern("a b".into()),
            ),
            (
                serde_json::json!({"priority": 1, "channel_code": "email"}),
                RuleError::Shape,
            ),
            (
                serde_json::json!({"priority": 1, "click_id": "gclid", "utm_medium": "cpc",
                                   "channel_code": "email"}),
                RuleError::Shape,
            ),
            (
                serde_json::json!({"priority": 1, "utm_source": "x", "referrer_host": "x.com",
                                   "channel_code": "email"}),
                RuleError::Shape,
            ),
        ];
        for (json, error) in cases {
            assert_eq!(rule(json).normalised(), Err(error));
        }
        let unknown_column =
            serde_json::json!({"priority": 1, "campaign": "x", "channel_code": "email"});
        assert!(serde_json::from_value::<ChannelRule>(unknown_column).is_err());
    }
}
