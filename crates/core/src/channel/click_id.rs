//! Ad-platform click identifiers: the strongest evidence of a paid click, because the platform
//! appends them itself.

/// A click identifier the event contract accepts, named by its URL parameter / event field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClickIdKind {
    /// Google Ads.
    Gclid,
    /// Google Ads, iOS app-to-web (privacy-preserving).
    Gbraid,
    /// Google Ads, iOS web-to-app (privacy-preserving).
    Wbraid,
    /// Microsoft Advertising.
    Msclkid,
    /// Meta. Facebook also appends it to organic outbound links; see the default rules.
    Fbclid,
    /// TikTok Ads.
    Ttclid,
    /// LinkedIn Ads.
    LiFatId,
}

impl ClickIdKind {
    pub const ALL: [ClickIdKind; 7] = [
        ClickIdKind::Gclid,
        ClickIdKind::Gbraid,
        ClickIdKind::Wbraid,
        ClickIdKind::Msclkid,
        ClickIdKind::Fbclid,
        ClickIdKind::Ttclid,
        ClickIdKind::LiFatId,
    ];

    /// The field / URL parameter name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClickIdKind::Gclid => "gclid",
            ClickIdKind::Gbraid => "gbraid",
            ClickIdKind::Wbraid => "wbraid",
            ClickIdKind::Msclkid => "msclkid",
            ClickIdKind::Fbclid => "fbclid",
            ClickIdKind::Ttclid => "ttclid",
            ClickIdKind::LiFatId => "li_fat_id",
        }
    }

    /// Parses a field name, exactly (field names are case-sensitive in the event contract).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Which click ids a touch carries; a bit set, so building one per event is free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClickIdSet(u8);

impl ClickIdSet {
    pub fn insert(&mut self, kind: ClickIdKind) {
        self.0 |= 1 << kind.index();
    }

    pub fn contains(self, kind: ClickIdKind) -> bool {
        self.0 & (1 << kind.index()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = ClickIdKind> {
        ClickIdKind::ALL
            .into_iter()
            .filter(move |&kind| self.contains(kind))
    }
}

impl FromIterator<ClickIdKind> for ClickIdSet {
    fn from_iter<I: IntoIterator<Item = ClickIdKind>>(iter: I) -> Self {
        let mut set = ClickIdSet::default();
        for kind in iter {
            set.insert(kind);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_the_set() {
        for (i, kind) in ClickIdKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), i);
            assert_eq!(ClickIdKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ClickIdKind::parse("GCLID"), None);
        assert_eq!(ClickIdKind::parse("dclid"), None);
    }

    #[test]
    fn set_holds_exactly_what_was_inserted() {
        let set: ClickIdSet = [ClickIdKind::LiFatId, ClickIdKind::Gclid]
            .into_iter()
            .collect();
        assert!(!set.is_empty());
        assert!(set.contains(ClickIdKind::Gclid) && set.contains(ClickIdKind::LiFatId));
        assert!(!set.contains(ClickIdKind::Fbclid));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [ClickIdKind::Gclid, ClickIdKind::LiFatId]
        );
        assert!(ClickIdSet::default().is_empty());
    }
}
