//! JSON Pointers (RFC 6901) for error locations.
//!
//! Walkers keep a stack of borrowed [`Segment`]s and render a pointer string only when they have
//! something to report, so a clean payload costs no allocation.

use std::fmt::Write as _;

/// One step of a path into a JSON document.
#[derive(Debug, Clone, Copy)]
pub enum Segment<'a> {
    Key(&'a str),
    Index(usize),
    /// A member whose *name* is personal data: the pointer must not repeat it, because pointers
    /// end up in stored error lists.
    Redacted,
}

/// Renders `prefix` followed by `path` as a JSON Pointer, escaping `~` and `/` in member names.
pub fn render(prefix: &str, path: &[Segment<'_>]) -> String {
    let mut out = String::with_capacity(prefix.len() + path.len() * 8);
    out.push_str(prefix);
    for segment in path {
        out.push('/');
        match segment {
            Segment::Key(key) => push_escaped(&mut out, key),
            Segment::Index(i) => {
                // Writing into a String cannot fail.
                let _ = write!(out, "{i}");
            }
            Segment::Redacted => out.push_str(crate::pii::REDACTED),
        }
    }
    out
}

fn push_escaped(out: &mut String, key: &str) {
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_tilde_before_slash_per_rfc_6901() {
        let path = [
            Segment::Key("a/b"),
            Segment::Index(3),
            Segment::Key("m~n"),
            Segment::Key("~1"),
        ];
        assert_eq!(render("/properties", &path), "/properties/a~1b/3/m~0n/~01");
    }

    #[test]
    fn empty_path_is_the_prefix() {
        assert_eq!(render("", &[]), "");
        assert_eq!(render("", &[Segment::Key("")]), "/");
        assert_eq!(render("", &[Segment::Redacted]), "/[redacted]");
    }
}
