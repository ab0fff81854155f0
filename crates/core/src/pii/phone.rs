//! Phone numbers as whole string values.
//!
//! Unlike e-mail addresses, phone numbers have no marker character, and event payloads are full
//! of digit strings that are not phones: order ids, timestamps, prices, versions, zero-padded
//! counters. So a value counts as a phone number only when it *is* one (after trimming) and is
//! written the way people write phone numbers:
//!
//! - international: `+` then 7–15 digits (E.164), with optional spaces, `-`, `.` or one pair
//!   of parentheses: `+44 20 7946 0958`, `+1 (555) 123-4567`, `+15551234567`;
//! - a leading area code in parentheses: `(555) 123-4567`, `(020) 7946 0958`;
//! - national, at least 9 digits in at least two groups, and either the North American shape
//!   (`555-123-4567`, `1-800-555-1234`) or a trunk/international prefix (`020 7946 0958`,
//!   `07700 900123`, `06 12 34 56 78`, `0044 20 7946 0958`).
//!
//! Inside longer text (`"call +1 415 555 0100"`) only the international form is looked for: its
//! `+` at the start of a word is the marker that ordinary digits in text lack. There it needs at
//! least 8 digits, so that `+1234567` ("plus 1.2 million") in a note is not a phone.
//!
//! Consequences, on purpose: a plain digit run (`5551234567`, a JSON number) is never a phone,
//! because it cannot be told from a numeric id; dates (`01-02-2024`), prices (`1234567.89`),
//! thousands groupings (`1 234 567`) and zero-padded ids (`000123-456`) are not phones either.

/// More groups than any real phone number has; the shape rules only look at a few.
const MAX_GROUPS: usize = 8;

pub(crate) fn is_phone_number(s: &str) -> bool {
    let s = s.trim();
    let (international, body) = match s.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    // 7 digits at least; more than ~2.5 characters per digit is not a phone number.
    if !(7..=40).contains(&body.len()) {
        return false;
    }
    let Some(shape) = Shape::scan(body) else {
        return false;
    };
    if !(7..=15).contains(&shape.digits) {
        return false;
    }
    if international {
        return true;
    }
    if shape.parenthesised {
        return shape.leading_parentheses;
    }
    shape.digits >= 9 && shape.group_count >= 2 && !shape.is_date() && shape.is_national()
}

/// Fewest digits of an international number found inside text.
const MIN_DIGITS_IN_TEXT: usize = 8;

/// Whether `s` holds an international phone number inside other text: a `+` that starts a word
/// (at the start or after a character that is not a letter or digit) and precedes a digit, then
/// the longest stretch of
/// digits and separators ending in a digit that [`is_phone_number`] accepts.
pub(crate) fn contains_international_number(s: &str) -> bool {
    let bytes = s.as_bytes();
    plus_signs(bytes).any(|at| {
        let starts_word = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        if !starts_word || !bytes.get(at + 1).is_some_and(u8::is_ascii_digit) {
            return false;
        }
        let run = bytes[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'.' | b'(' | b')'))
            .count();
        // Every way the number could end (after a digit), longest first: text may go on with
        // more digits that are not part of it ("+1 415 555 0100 2 times").
        (1..=run).rev().any(|end| {
            let candidate = &s[at..at + 1 + end];
            bytes[at + end].is_ascii_digit()
                && candidate.bytes().filter(u8::is_ascii_digit).count() >= MIN_DIGITS_IN_TEXT
                && is_phone_number(candidate)
        })
    })
}

/// Positions of `+` in `bytes`.
fn plus_signs(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter_map(|(i, &b)| (b == b'+').then_some(i))
}

/// The digit groups of a candidate, split at separators and parentheses.
struct Shape {
    groups: [u8; MAX_GROUPS],
    group_count: usize,
    digits: usize,
    first_digits: [u8; 3],
    parenthesised: bool,
    /// The parentheses come before any digit, i.e. they hold an area code.
    leading_parentheses: bool,
}

impl Shape {
    /// Splits `body` into digit groups; `None` when a character or a parenthesis is out of place.
    fn scan(body: &str) -> Option<Self> {
        let mut shape = Shape {
            groups: [0; MAX_GROUPS],
            group_count: 0,
            digits: 0,
            first_digits: [0; 3],
            parenthesised: false,
            leading_parentheses: false,
        };
        let mut current = 0u8;
        let mut open = false;
        for b in body.bytes() {
            match b {
                b'0'..=b'9' => {
                    if let Some(slot) = shape.first_digits.get_mut(shape.digits) {
                        *slot = b;
                    }
                    shape.digits += 1;
                    current = current.saturating_add(1);
                }
                b' ' | b'-' | b'.' => shape.close_group(&mut current)?,
                b'(' if !shape.parenthesised && !open => {
                    shape.leading_parentheses = shape.digits == 0;
                    shape.close_group(&mut current)?;
                    open = true;
                }
                b')' if open => {
                    shape.close_group(&mut current)?;
                    open = false;
                    shape.parenthesised = true;
                }
                _ => return None,
            }
        }
        shape.close_group(&mut current)?;
        (!open).then_some(shape)
    }

    fn close_group(&mut self, current: &mut u8) -> Option<()> {
        if *current > 0 {
            *self.groups.get_mut(self.group_count)? = *current;
            self.group_count += 1;
            *current = 0;
        }
        Some(())
    }

    fn group_lengths(&self) -> &[u8] {
        &self.groups[..self.group_count]
    }

    fn is_date(&self) -> bool {
        matches!(self.group_lengths(), [4, 2, 2] | [2, 2, 4])
    }

    fn is_national(&self) -> bool {
        let first_group = self.groups[0];
        let north_american = match self.group_lengths() {
            [3, 3, 4] => true,
            [1, 3, 3, 4] => self.first_digits[0] == b'1',
            _ => false,
        };
        let trunk_prefix =
            first_group >= 2 && self.first_digits[0] == b'0' && self.first_digits[1] != b'0';
        let international_prefix =
            first_group >= 3 && self.first_digits[..2] == *b"00" && self.first_digits[2] != b'0';
        north_american || trunk_prefix || international_prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_phone_numbers_are_found() {
        for s in [
            "+44 20 7946 0958",
            "+1 (555) 123-4567",
            "+15551234567",
            "+49 30 1234567",
            "(555) 123-4567",
            "(020) 7946 0958",
            "555-123-4567",
            "555.123.4567",
            "555 123 4567",
            "1-800-555-1234",
            "020 7946 0958",
            "07700 900123",
            "06 12 34 56 78",
            "0044 20 7946 0958",
            " +33 6 12 34 56 78 ",
        ] {
            assert!(is_phone_number(s), "{s:?}");
        }
    }

    #[test]
    fn international_numbers_inside_text_are_found() {
        for s in [
            "call +1 415 555 0100",
            "call +1 415 555 0100 2 times",
            "support: +44 20 7946 0958.",
            "(+15551234567)",
            "+49 30 1234567 ask for Ann",
        ] {
            assert!(contains_international_number(s), "{s:?}");
        }
        for s in [
            "call me",
            "score +15 points",
            "up +1234567 units",
            "C++ 11 2020 1234",
            "a+1 415 555 0100",
            "+1 2 3",
            "1+1=2",
        ] {
            assert!(!contains_international_number(s), "{s:?}");
        }
    }

    #[test]
    fn other_digit_strings_are_not() {
        for s in [
            "+1",
            "+123456",
            "+1234567890123456",
            "5551234567",
            "07700900123",
            "555-1234",
            "ORD-2024-000123",
            "2024-000123",
            "2024-01-000123",
            "2024-01-15",
            "01-02-2024",
            "15.01.2024",
            "2024-01-15T10:30:00Z",
            "1234567.89",
            "0.123456789",
            "19.99",
            "1 234 567",
            "1.234.567",
            "000123-456",
            "0001-2345-678",
            "10.15.7.1234",
            "192.168.100.200",
            "550e8400-e29b-41d4-a716-446655440000",
            "12345678-1234-1234-1234-123456789012",
            "(555 123-4567",
            "555) 123-4567",
            "(55)(5) 123 4567",
            "123 (555) 4567",
            "1 2 3 4 5 6 7 8 9",
            "",
        ] {
            assert!(!is_phone_number(s), "{s:?}");
        }
    }
}
