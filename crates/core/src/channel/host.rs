//! Referrer hosts and the host patterns rules match them with.

use url::Url;

/// The host a referrer URL points at: lowercased, without a leading `www.` or a trailing dot.
///
/// Any scheme with a host works, so Android app referrers (`android-app://com.google.android.gm`)
/// yield the app id as a host and rules can name it. `None` for text that is not an absolute URL
/// or has no host (`mailto:`, `about:blank`).
pub fn referrer_host(referrer_url: &str) -> Option<String> {
    let url = Url::parse(referrer_url.trim()).ok()?;
    // Special schemes (http, https) come back lowercased and punycoded; opaque hosts of other
    // schemes keep their case.
    let host = url.host_str()?.trim_end_matches('.').to_lowercase();
    let host = match host.strip_prefix("www.") {
        Some(rest) => rest.to_owned(),
        None => host,
    };
    (!host.is_empty()).then_some(host)
}

/// A referrer-host pattern, as written in a rule's `referrer_host` column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// `example.com`: that host and every subdomain of it.
    Domain(String),
    /// `google.*`: the name under any one-label top-level domain (`google.de`) or any two-label
    /// one whose first label has at most three characters (`google.co.uk`, `google.com.au`),
    /// and its subdomains. Not `google.evil.com`.
    AnyTld(String),
}

impl HostPattern {
    /// Parses a pattern already trimmed and lowercased; `None` if it is not host-shaped.
    pub(crate) fn parse(pattern: &str) -> Option<Self> {
        let pattern = pattern.strip_prefix("www.").unwrap_or(pattern);
        let (name, any_tld) = match pattern.strip_suffix(".*") {
            Some(name) => (name, true),
            None => (pattern, false),
        };
        let well_formed = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
            });
        if !well_formed {
            return None;
        }
        Some(if any_tld {
            HostPattern::AnyTld(name.to_owned())
        } else {
            HostPattern::Domain(name.to_owned())
        })
    }

    /// The pattern as written in a rule.
    pub(crate) fn to_rule_text(&self) -> String {
        match self {
            HostPattern::Domain(name) => name.clone(),
            HostPattern::AnyTld(name) => format!("{name}.*"),
        }
    }
}

/// `host` and each parent domain of it, longest first: `a.b.c` → `a.b.c`, `b.c`, `c`.
/// A [`HostPattern::Domain`] matches when one of these equals its name.
pub(crate) fn domain_suffixes(host: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(host), |h| h.split_once('.').map(|(_, rest)| rest))
}

/// The candidate names for [`HostPattern::AnyTld`]: `host` with its top-level domain removed
/// (one label, or two when the first is three characters or fewer), and each parent of those.
pub(crate) fn any_tld_stems(host: &str) -> impl Iterator<Item = &str> {
    let one_label = host.rsplit_once('.').map(|(stem, _)| stem);
    let two_labels = one_label
        .and_then(|stem| stem.rsplit_once('.'))
        .filter(|(_, second_level)| second_level.len() <= 3)
        .map(|(stem, _)| stem);
    one_label
        .into_iter()
        .chain(two_labels)
        .flat_map(domain_suffixes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrer_host_normalises() {
        let cases = [
            (
                "https://www.Google.co.uk/search?q=mugs",
                Some("google.co.uk"),
            ),
            ("http://News.Example.com:8080/a", Some("news.example.com")),
            ("https://example.com./", Some("example.com")),
            ("https://user:pw@shop.test/", Some("shop.test")),
            (
                "android-app://com.Google.android.gm",
                Some("com.google.android.gm"),
            ),
            ("  https://t.co/abc  ", Some("t.co")),
            ("https://[::1]:8080/", Some("[::1]")),
            ("google.com", None),
            ("/relative/path", None),
            ("mailto:bob@example.com", None),
            ("about:blank", None),
            ("", None),
        ];
        for (url, host) in cases {
            assert_eq!(referrer_host(url).as_deref(), host, "{url:?}");
        }
    }

    #[test]
    fn patterns_parse_and_print_back() {
        assert_eq!(
            HostPattern::parse("google.*"),
            Some(HostPattern::AnyTld("google".into()))
        );
        assert_eq!(
            HostPattern::parse("www.bing.com"),
            Some(HostPattern::Domain("bing.com".into()))
        );
        for text in [
            "google.*",
            "search.yahoo.*",
            "t.co",
            "com.google.android.gm",
        ] {
            assert_eq!(HostPattern::parse(text).unwrap().to_rule_text(), text);
        }
        for bad in [
            "",
            "*",
            ".*",
            "a..b",
            ".com",
            "example.com/",
            "a b.com",
            "*.example.com",
        ] {
            assert_eq!(HostPattern::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn suffixes_walk_up_label_boundaries() {
        assert_eq!(
            domain_suffixes("mail.google.com").collect::<Vec<_>>(),
            ["mail.google.com", "google.com", "com"]
        );
        assert_eq!(
            any_tld_stems("news.google.co.uk").collect::<Vec<_>>(),
            ["news.google.co", "google.co", "co", "news.google", "google"]
        );
        assert_eq!(
            any_tld_stems("google.evil.com").collect::<Vec<_>>(),
            ["google.evil", "evil"]
        );
        assert_eq!(any_tld_stems("localhost").count(), 0);
    }
}
