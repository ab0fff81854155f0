//! Member names that mark their value as personal data.

/// Normalised member names whose values are personal data, whatever the value looks like.
///
/// A key is normalised by lowercasing it and then removing every character that is not
/// `a`–`z` or `0`–`9`, so `E-Mail`, `first_name`, `FirstName` and `Card.Number` become `email`,
/// `firstname`, `firstname` and `cardnumber`. The database trigger (the second layer of the PII
/// guard) applies the same rule with
/// `regexp_replace(lower(key), '[^a-z0-9]', '', 'g') = ANY(<this list>)`, so keep the two in step.
///
/// Bare `name` is deliberately absent: it names products, plans and campaigns far more often
/// than people. Postcodes are absent too: on their own they locate a region, which is what
/// revenue-by-region reports want, not a person. E-mail addresses and phone numbers are also
/// caught by their value, under any key (see [`super::classify_str`]).
pub const PII_KEYS: &[&str] = &[
    // e-mail
    "email",
    "emailaddress",
    // phone
    "phone",
    "phonenumber",
    "telephone",
    "telephonenumber",
    "tel",
    "mobile",
    "mobilenumber",
    "mobilephone",
    "cellphone",
    "msisdn",
    // names of people
    "firstname",
    "lastname",
    "fullname",
    "middlename",
    "surname",
    "givenname",
    "familyname",
    "customername",
    // postal address
    "address",
    "streetaddress",
    "street",
    "addressline1",
    "addressline2",
    "homeaddress",
    "billingaddress",
    "shippingaddress",
    "postaladdress",
    "mailingaddress",
    // government identifiers
    "ssn",
    "socialsecuritynumber",
    "nationalid",
    "nationalinsurancenumber",
    "passportnumber",
    "driverslicense",
    "driverslicensenumber",
    // birth date
    "dateofbirth",
    "birthdate",
    "birthday",
    "dob",
    // network
    "ip",
    "ipaddress",
    // payment instruments
    "cardnumber",
    "creditcard",
    "creditcardnumber",
    "ccnumber",
    "pan",
    "cvv",
    "cvc",
    "iban",
];

/// Longest entry of [`PII_KEYS`]; a key that normalises to more characters cannot match, so the
/// normalisation stops early and never allocates.
const MAX_PII_KEY_LEN: usize = {
    let mut max = 0;
    let mut i = 0;
    while i < PII_KEYS.len() {
        if PII_KEYS[i].len() > max {
            max = PII_KEYS[i].len();
        }
        i += 1;
    }
    max
};

/// Whether `key`, normalised as documented on [`PII_KEYS`], is on the list.
///
/// Lowercasing is Unicode-aware (the Kelvin sign `K` becomes `k`), so the app catches at least
/// what the trigger catches whatever the database's locale.
pub fn is_pii_key(key: &str) -> bool {
    let mut buf = [0u8; MAX_PII_KEY_LEN];
    let mut len = 0;
    for c in key.chars() {
        let mut push = |lower: char| {
            if lower.is_ascii_lowercase() || lower.is_ascii_digit() {
                if len == MAX_PII_KEY_LEN {
                    return false;
                }
                buf[len] = lower as u8;
                len += 1;
            }
            true
        };
        let fits = if c.is_ascii() {
            push(c.to_ascii_lowercase())
        } else {
            c.to_lowercase().all(push)
        };
        if !fits {
            return false;
        }
    }
    // Only ASCII letters and digits were written.
    std::str::from_utf8(&buf[..len]).is_ok_and(|normalised| PII_KEYS.contains(&normalised))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_already_normalised_and_unique() {
        for key in PII_KEYS {
            assert!(
                key.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "{key}"
            );
            assert!(is_pii_key(key), "{key}");
        }
        let mut sorted = PII_KEYS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), PII_KEYS.len());
    }

    #[test]
    fn separators_and_case_do_not_hide_a_key() {
        for key in [
            "E-Mail",
            "email",
            "EMAIL",
            "e_mail",
            "first_name",
            "FirstName",
            "first-name",
            "First Name",
            "Card.Number",
            "card_number",
            "IP",
            "ip_address",
            "Date-Of-Birth",
            "address_line_1",
            "National Insurance Number",
            // Unicode punctuation is dropped like ASCII punctuation.
            "E\u{2010}Mail",
            // U+0130 lowercases to `i` plus a combining dot, which is dropped.
            "\u{130}P",
        ] {
            assert!(is_pii_key(key), "{key:?}");
        }
    }

    #[test]
    fn ordinary_keys_pass() {
        for key in [
            "name",
            "product_name",
            "sku",
            "price",
            "emails_sent",
            "phone_model",
            "ip_country",
            "zip",
            "street_view",
            "order_id",
            "",
            // Longer than any listed key once normalised, though it starts with one.
            "national_insurance_numbers",
            "a_very_long_key_name_that_is_certainly_not_on_the_list",
        ] {
            assert!(!is_pii_key(key), "{key:?}");
        }
    }
}
