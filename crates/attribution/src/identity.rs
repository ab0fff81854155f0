//! The identity graph's fold: links between ids merge shoppers (connected components), up to a
//! size cap.
//!
//! Ids are typed strings (`s:` session, `a:` anonymous, `u:` user; see [`IdKind`]) so that a
//! session and a user that happen to share a string stay two ids. A component is named by its
//! smallest id, so the name (and with it every journey key) depends only on which ids are
//! linked, never on the order the links came in: reruns and replays give the same keys.
//!
//! Hand-written rather than a union-find crate: the fold needs each component's member list
//! (the cap counts it, and every member whose name changes is a row to rewrite), and the graph
//! lives in PostgreSQL between folds, so a fold only ever holds the few components its new links
//! touch. Explicit member lists, merged smaller into larger, do that in a few lines.

use std::collections::{BTreeSet, HashMap};

/// Which kind of id a typed id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Session,
    Anonymous,
    User,
}

impl IdKind {
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Session => "s:",
            IdKind::Anonymous => "a:",
            IdKind::User => "u:",
        }
    }

    /// `raw` as a typed id.
    pub fn id(self, raw: &str) -> String {
        format!("{}{raw}", self.prefix())
    }
}

/// What one link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Both ids were already one shopper.
    Same,
    /// Two shoppers became one, named `component`.
    Merged { component: String },
    /// The merged shopper would have had more than the cap's ids; nothing changed.
    Refused { sizes: (usize, usize) },
}

/// The components a fold works on: those of the ids its links name, as stored, plus what the
/// links do to them.
#[derive(Debug, Default)]
pub struct Components {
    component_of: HashMap<String, String>,
    members: HashMap<String, BTreeSet<String>>,
    /// Ids whose component changed (or that are new), to write back.
    changed: BTreeSet<String>,
}

impl Components {
    /// Starts from stored (id, component) rows; every member of each component must be there.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut c = Components::default();
        for (id, component) in rows {
            c.members
                .entry(component.clone())
                .or_default()
                .insert(id.clone());
            c.component_of.insert(id, component);
        }
        c
    }

    /// The component of `id`: itself when it was never linked.
    pub fn component<'a>(&'a self, id: &'a str) -> &'a str {
        self.component_of.get(id).map_or(id, String::as_str)
    }

    fn size(&self, component: &str) -> usize {
        self.members.get(component).map_or(1, BTreeSet::len)
    }

    /// Links `a` and `b` unless the merged shopper would have more than `max_ids` ids.
    pub fn link(&mut self, a: &str, b: &str, max_ids: usize) -> LinkOutcome {
        let (ca, cb) = (self.component(a).to_owned(), self.component(b).to_owned());
        if ca == cb {
            return LinkOutcome::Same;
        }
        let sizes = (self.size(&ca), self.size(&cb));
        if sizes.0 + sizes.1 > max_ids {
            return LinkOutcome::Refused { sizes };
        }
        let take = |c: &mut Components, component: &str| {
            c.members
                .remove(component)
                .unwrap_or_else(|| BTreeSet::from([component.to_owned()]))
        };
        let mut merged = take(self, &ca);
        merged.append(&mut take(self, &cb));
        let name = merged.first().expect("two members at least").clone();
        for id in &merged {
            if self.component_of.get(id) != Some(&name) {
                self.component_of.insert(id.clone(), name.clone());
                self.changed.insert(id.clone());
            }
        }
        self.members.insert(name.clone(), merged);
        LinkOutcome::Merged { component: name }
    }

    /// (id, component) of every id whose component changed, in id order.
    pub fn changed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.changed
            .iter()
            .map(|id| (id.as_str(), self.component(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(c: &Components, of: &str) -> Vec<String> {
        c.members[of].iter().cloned().collect()
    }

    #[test]
    fn merges_are_named_by_the_smallest_id_whatever_the_order() {
        let mut one = Components::default();
        one.link("s:2", "a:9", 10);
        one.link("u:1", "a:9", 10);
        let mut two = Components::default();
        two.link("u:1", "a:9", 10);
        two.link("a:9", "s:2", 10);
        for c in [&one, &two] {
            assert_eq!(c.component("u:1"), "a:9");
            assert_eq!(c.component("s:2"), "a:9");
            assert_eq!(ids(c, "a:9"), ["a:9", "s:2", "u:1"]);
        }
        assert_eq!(
            one.changed().collect::<Vec<_>>(),
            two.changed().collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_link_past_the_cap_is_refused_and_changes_nothing() {
        let mut c = Components::default();
        assert_eq!(
            c.link("a:1", "s:1", 3),
            LinkOutcome::Merged {
                component: "a:1".into()
            }
        );
        c.link("a:1", "s:2", 3);
        assert_eq!(
            c.link("s:2", "u:7", 3),
            LinkOutcome::Refused { sizes: (3, 1) }
        );
        assert_eq!(c.component("u:7"), "u:7");
        assert_eq!(c.link("s:1", "s:2", 3), LinkOutcome::Same);
    }

    #[test]
    fn stored_components_are_extended_and_only_moved_ids_are_rewritten() {
        let mut c = Components::from_rows([
            ("a:5".to_string(), "a:5".to_string()),
            ("s:5".to_string(), "a:5".to_string()),
        ]);
        c.link("s:5", "a:1", 10);
        let changed: Vec<_> = c.changed().collect();
        assert_eq!(changed, [("a:1", "a:1"), ("a:5", "a:1"), ("s:5", "a:1")]);
        let mut d = Components::from_rows([
            ("a:5".to_string(), "a:5".to_string()),
            ("s:5".to_string(), "a:5".to_string()),
        ]);
        d.link("s:5", "u:1", 10);
        assert_eq!(d.changed().collect::<Vec<_>>(), [("u:1", "a:5")]);
    }
}
