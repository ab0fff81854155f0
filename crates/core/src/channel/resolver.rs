//! Resolving a touch to a channel with precomputed lookup tables.

use super::click_id::{ClickIdKind, ClickIdSet};
use super::host::{HostPattern, any_tld_stems, domain_suffixes};
use super::rules::{ChannelRule, CompiledRule, Matcher, RuleError};
use super::taxonomy::{DIRECT, REFERRAL, UNKNOWN};
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// What a touch tells about where it came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct TouchSignals<'a> {
    /// As sent; the resolver trims and lowercases.
    pub utm_source: Option<&'a str>,
    pub utm_medium: Option<&'a str>,
    /// As returned by [`super::referrer_host`].
    pub referrer_host: Option<&'a str>,
    pub click_ids: ClickIdSet,
}

/// A tenant's channel rules (global defaults plus its overrides), compiled for lookup.
///
/// Precedence, as if every rule were tried in this order and the first match won:
///
/// 1. lower `priority` first;
/// 2. at equal priority, the tenant's overrides before global rules;
/// 3. then the more specific kind of evidence: click id, utm source + medium, utm source,
///    utm medium, referrer domain, referrer `name.*`;
/// 4. then, between host patterns, the longer pattern (`mail.google.com` before `google.com`);
/// 5. then channel code, alphabetically, so identical rules resolve the same on every node.
///
/// When nothing matches: a tagged visit (utm source or medium) or one with a click id is
/// `unknown`, an untagged visit with a referrer is `referral`, anything else is `direct`.
///
/// Resolving does one hash lookup per kind of evidence present (a few more for a referrer's
/// parent domains) and allocates only for utm values that are not already lowercase, so it
/// stays cheap on the ingestion path. Build one per tenant and reuse it until its rules change.
#[derive(Debug, Clone)]
pub struct ChannelResolver {
    click_ids: [Option<Candidate>; ClickIdKind::ALL.len()],
    source_medium: HashMap<String, HashMap<String, Candidate>>,
    source: HashMap<String, Candidate>,
    medium: HashMap<String, Candidate>,
    domain: HashMap<String, Candidate>,
    any_tld: HashMap<String, Candidate>,
}

/// A rule's verdict together with its place in the precedence order; smaller wins. Field order
/// is the order of the precedence list on [`ChannelResolver`], which the derived `Ord` relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    priority: i32,
    scope: Scope,
    evidence: Evidence,
    specificity: Reverse<usize>,
    channel: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Tenant,
    Global,
}

/// Kinds of evidence, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Evidence {
    ClickId,
    SourceMedium,
    Source,
    Medium,
    Domain,
    AnyTld,
}

fn keep_best(slot: &mut Option<Candidate>, candidate: Candidate) {
    if slot.is_none_or(|current| candidate < current) {
        *slot = Some(candidate);
    }
}

fn keep_best_in(map: &mut HashMap<String, Candidate>, key: String, candidate: Candidate) {
    match map.entry(key) {
        Entry::Occupied(mut current) => {
            if candidate < *current.get() {
                current.insert(candidate);
            }
        }
        Entry::Vacant(slot) => {
            slot.insert(candidate);
        }
    }
}

impl ChannelResolver {
    /// Compiles `global` and `tenant` rules; fails on the first invalid rule.
    pub fn new(global: &[ChannelRule], tenant: &[ChannelRule]) -> Result<Self, RuleError> {
        let mut resolver = ChannelResolver {
            click_ids: [None; ClickIdKind::ALL.len()],
            source_medium: HashMap::new(),
            source: HashMap::new(),
            medium: HashMap::new(),
            domain: HashMap::new(),
            any_tld: HashMap::new(),
        };
        let scoped = global
            .iter()
            .map(|rule| (Scope::Global, rule))
            .chain(tenant.iter().map(|rule| (Scope::Tenant, rule)));
        for (scope, rule) in scoped {
            resolver.add(scope, rule.compile()?);
        }
        Ok(resolver)
    }

    fn add(&mut self, scope: Scope, rule: CompiledRule) {
        let candidate = |evidence, specificity| Candidate {
            priority: rule.priority,
            scope,
            evidence,
            specificity: Reverse(specificity),
            channel: rule.channel,
        };
        match rule.matcher {
            Matcher::ClickId(id) => keep_best(
                &mut self.click_ids[id.index()],
                candidate(Evidence::ClickId, 0),
            ),
            Matcher::SourceMedium { source, medium } => keep_best_in(
                self.source_medium.entry(source).or_default(),
                medium,
                candidate(Evidence::SourceMedium, 0),
            ),
            Matcher::Source(source) => {
                keep_best_in(&mut self.source, source, candidate(Evidence::Source, 0));
            }
            Matcher::Medium(medium) => {
                keep_best_in(&mut self.medium, medium, candidate(Evidence::Medium, 0));
            }
            Matcher::Host(HostPattern::Domain(name)) => {
                let c = candidate(Evidence::Domain, name.len());
                keep_best_in(&mut self.domain, name, c);
            }
            Matcher::Host(HostPattern::AnyTld(name)) => {
                let c = candidate(Evidence::AnyTld, name.len());
                keep_best_in(&mut self.any_tld, name, c);
            }
        }
    }

    /// The taxonomy code for a touch.
    pub fn resolve(&self, signals: &TouchSignals<'_>) -> &'static str {
        let source = signals.utm_source.and_then(normalise);
        let medium = signals.utm_medium.and_then(normalise);
        let mut best = None;
        let mut consider = |candidate: Option<&Candidate>| {
            if let Some(&candidate) = candidate {
                keep_best(&mut best, candidate);
            }
        };

        for id in signals.click_ids.iter() {
            consider(self.click_ids[id.index()].as_ref());
        }
        if let Some(source) = &source {
            if let Some(medium) = &medium {
                let by_medium = self.source_medium.get(source.as_ref());
                consider(by_medium.and_then(|m| m.get(medium.as_ref())));
            }
            consider(self.source.get(source.as_ref()));
        }
        if let Some(medium) = &medium {
            consider(self.medium.get(medium.as_ref()));
        }
        let tagged = source.is_some() || medium.is_some();
        let host = signals.referrer_host.and_then(normalise);
        if !tagged && let Some(host) = &host {
            for suffix in domain_suffixes(host) {
                consider(self.domain.get(suffix));
            }
            for stem in any_tld_stems(host) {
                consider(self.any_tld.get(stem));
            }
        }

        match best {
            Some(candidate) => candidate.channel,
            None if tagged || !signals.click_ids.is_empty() => UNKNOWN,
            None if host.is_some() => REFERRAL,
            None => DIRECT,
        }
    }
}

/// Trims and lowercases, borrowing when the value already is; `None` when blank.
fn normalise(value: &str) -> Option<Cow<'_, str>> {
    let value = value.trim();
    if value.is_empty() {
        None
    } else if value
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        Some(Cow::Owned(value.to_lowercase()))
    } else {
        Some(Cow::Borrowed(value))
    }
}

#[cfg(test)]
mod tests;
