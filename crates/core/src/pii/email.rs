//! E-mail addresses inside strings.
//!
//! The check looks for an address anywhere in the string, not only for a string that is one:
//! the classic leak is a page URL or campaign tag like `?email=bob%40example.com`, so a
//! percent-encoded `@` (`%40`) counts as an `@` too. It is deliberately loose on the local part
//! and strict on the domain (at least two labels and an alphabetic top-level label), which is
//! what separates addresses from handles (`@tally`), package specs (`lodash@4.17.21`) and
//! `user@localhost`.

/// Top-level labels that are file extensions, not domains: `logo@2x.png` is a retina asset name.
/// None of these is a delegated TLD, so no real address is lost.
const FILE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "gif", "svg", "webp", "avif"];

/// Whether `s` contains something shaped like an e-mail address.
///
/// Linear in the length of `s`: the backward scan stops at the first alphanumeric character and
/// the forward scan stops at the next `@` or `%`, so many `@`s cannot make it quadratic.
pub(crate) fn contains_email(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(offset) = bytes[from..].iter().position(|&b| b == b'@' || b == b'%') {
        let at = from + offset;
        let sign_len = if bytes[at] == b'@' {
            1
        } else if bytes[at + 1..].starts_with(b"40") {
            3
        } else {
            from = at + 1;
            continue;
        };
        if ends_with_local_part(&s[..at]) && starts_with_domain(&s[at + sign_len..]) {
            return true;
        }
        from = at + sign_len;
    }
    false
}

fn is_local_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-' | '\'')
}

fn is_domain_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '-')
}

/// The text before an `@` ends in something that can be a local part: a run of local-part
/// characters containing at least one letter or digit.
fn ends_with_local_part(before: &str) -> bool {
    for c in before.chars().rev() {
        if c.is_alphanumeric() {
            return true;
        }
        if !is_local_char(c) {
            return false;
        }
    }
    false
}

/// The text after an `@` starts with a domain: dot-separated labels, at least two, the last one
/// alphabetic and at least two characters long. A trailing `.` (end of a sentence) is ignored.
fn starts_with_domain(after: &str) -> bool {
    let end = after
        .char_indices()
        .find(|&(_, c)| !is_domain_char(c))
        .map_or(after.len(), |(i, _)| i);
    let domain = after[..end].trim_end_matches(['.', '-']);
    let Some((labels, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    let labels_ok = labels
        .split('.')
        .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    let tld_ok = tld.chars().count() >= 2
        && tld.chars().all(char::is_alphabetic)
        && !FILE_EXTENSIONS
            .iter()
            .any(|ext| ext.eq_ignore_ascii_case(tld));
    labels_ok && tld_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_addresses_alone_and_embedded() {
        for s in [
            "bob@example.com",
            "Bob.Smith+tag@Mail.Example.CO.UK",
            "  bob@example.com  ",
            "mailto:bob@example.com",
            "contact bob@example.com.",
            "https://shop.test/welcome?email=bob%40example.com&x=1",
            "o'neil@example.ie",
            "jörg@bücher.de",
            "a@b.co",
        ] {
            assert!(contains_email(s), "{s:?}");
        }
    }

    #[test]
    fn leaves_look_alikes_alone() {
        for s in [
            "@tally",
            "lodash@4.17.21",
            "user@localhost",
            "a@b.c",
            "logo@2x.png",
            "icon@3X.WEBP",
            "100%",
            "50%off",
            "%4",
            "x%",
            "@",
            "@@@@",
            "%40%40",
            "bob@-example.com",
            "bob@example..com",
            ".@example.com",
            "ORD-2024-000123",
            "",
        ] {
            assert!(!contains_email(s), "{s:?}");
        }
    }
}
