//! The channel taxonomy: every code a touch can be attributed to.
//!
//! This list is the source of truth for the `channel_taxonomy` reference table (the migration
//! seeds it and a test compares the two), so every rule, fallback and allocation refers to a code
//! that exists and the foreign key always holds. Adding a channel is a code change plus a
//! migration, on purpose: reports across tenants only mean something if the codes are shared.

/// One taxonomy code and how reports group it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaxonomyEntry {
    /// Stable identifier stored on events and allocations.
    pub code: &'static str,
    /// Reporting group: `paid_search`, `paid_social`, `display`, or the code itself for
    /// single-channel families.
    pub family: &'static str,
    /// Whether traffic in this channel is bought (media spend or commission).
    pub is_paid: bool,
    pub display_name: &'static str,
}

const fn entry(
    code: &'static str,
    family: &'static str,
    is_paid: bool,
    display_name: &'static str,
) -> TaxonomyEntry {
    TaxonomyEntry {
        code,
        family,
        is_paid,
        display_name,
    }
}

pub const TAXONOMY: &[TaxonomyEntry] = &[
    entry(
        "paid_search_google",
        "paid_search",
        true,
        "Paid search: Google",
    ),
    entry(
        "paid_search_microsoft",
        "paid_search",
        true,
        "Paid search: Microsoft",
    ),
    entry(
        "paid_search_other",
        "paid_search",
        true,
        "Paid search: other",
    ),
    entry("paid_social_meta", "paid_social", true, "Paid social: Meta"),
    entry(
        "paid_social_tiktok",
        "paid_social",
        true,
        "Paid social: TikTok",
    ),
    entry(
        "paid_social_linkedin",
        "paid_social",
        true,
        "Paid social: LinkedIn",
    ),
    entry(
        "paid_social_other",
        "paid_social",
        true,
        "Paid social: other",
    ),
    entry("display_google", "display", true, "Display: Google"),
    entry("display_other", "display", true, "Display: other"),
    entry("affiliate", "affiliate", true, "Affiliate"),
    entry("organic_search", "organic_search", false, "Organic search"),
    entry("organic_social", "organic_social", false, "Organic social"),
    entry("email", "email", false, "E-mail"),
    entry("sms", "sms", false, "SMS"),
    entry("referral", "referral", false, "Referral"),
    entry("direct", "direct", false, "Direct"),
    entry("unknown", "unknown", false, "Unknown"),
];

/// Untagged visits with no referrer and no click id.
pub const DIRECT: &str = "direct";
/// Visits from another site that no rule names.
pub const REFERRAL: &str = "referral";
/// Tagged visits (or click ids) that no rule recognises.
pub const UNKNOWN: &str = "unknown";

/// The taxonomy entry for `code`, if it exists.
pub fn taxonomy_entry(code: &str) -> Option<&'static TaxonomyEntry> {
    TAXONOMY.iter().find(|entry| entry.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_the_fallbacks_exist() {
        for (i, entry) in TAXONOMY.iter().enumerate() {
            assert!(
                entry
                    .code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                entry.code
            );
            assert!(
                entry.code.starts_with(entry.family),
                "{} is filed under {}",
                entry.code,
                entry.family
            );
            assert!(
                TAXONOMY[..i].iter().all(|other| other.code != entry.code),
                "{} twice",
                entry.code
            );
        }
        for code in [DIRECT, REFERRAL, UNKNOWN] {
            assert!(!taxonomy_entry(code).unwrap().is_paid);
        }
        assert_eq!(taxonomy_entry("nope"), None);
    }
}
