//! Marketing channel normalisation: from what a touch carries (utm tags, click ids, referrer)
//! to one code of the shared [`TAXONOMY`].
//!
//! The mapping is data: [`ChannelRule`]s live in the database (global defaults from
//! [`default_rules`] plus per-tenant overrides) and a [`ChannelResolver`] compiles one tenant's
//! set into hash lookups, because this runs for every ingested event.

mod click_id;
mod host;
mod resolver;
mod rules;
mod taxonomy;

pub use click_id::{ClickIdKind, ClickIdSet};
pub use host::referrer_host;
pub use resolver::{ChannelResolver, TouchSignals};
pub use rules::{
    ChannelRule, PRIORITY_AMBIGUOUS_CLICK_ID, PRIORITY_CLICK_ID, PRIORITY_REFERRER,
    PRIORITY_UTM_MEDIUM, PRIORITY_UTM_SOURCE_MEDIUM, RuleError, default_rules,
};
pub use taxonomy::{DIRECT, REFERRAL, TAXONOMY, TaxonomyEntry, UNKNOWN, taxonomy_entry};
