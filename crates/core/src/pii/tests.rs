use super::*;
use proptest::prelude::*;
use serde_json::json;

fn pointers(value: &Value) -> Vec<(String, PiiReason)> {
    find_pii(value)
        .into_iter()
        .map(|f| (f.pointer, f.reason))
        .collect()
}

fn found(pointer: &str, reason: PiiReason) -> (String, PiiReason) {
    (pointer.to_owned(), reason)
}

#[test]
fn keys_are_found_at_depth_five_in_objects_and_arrays() {
    let value = json!({
        "a": {"b": {"c": {"d": {"E-Mail": "hidden", "sku": "A1"}}}},
        "items": [{"x": [{"y": {"first_name": "Ann"}}]}],
        "deep": [[[[{"Card.Number": 4111111111111111u64}]]]],
    });
    assert_eq!(
        pointers(&value),
        vec![
            found("/a/b/c/d/E-Mail", PiiReason::Key),
            found("/items/0/x/0/y/first_name", PiiReason::Key),
            found("/deep/0/0/0/0/Card.Number", PiiReason::Key),
        ]
    );
}

#[test]
fn values_are_found_under_any_key() {
    let value = json!({
        "note": "write to bob@example.com",
        "contacts": ["ok", {"primary": "+44 20 7946 0958"}],
        "landing": "https://shop.test/?email=bob%40example.com",
        "a": {"b": {"c": {"d": {"e": "(555) 123-4567"}}}},
    });
    assert_eq!(
        pointers(&value),
        vec![
            found("/note", PiiReason::EmailValue),
            found("/contacts/1/primary", PiiReason::PhoneValue),
            found("/landing", PiiReason::EmailValue),
            found("/a/b/c/d/e", PiiReason::PhoneValue),
        ]
    );
}

#[test]
fn a_listed_key_is_reported_once_not_searched() {
    let value = json!({"address": {"line": "1 High St", "email": "bob@example.com"}});
    assert_eq!(pointers(&value), vec![found("/address", PiiReason::Key)]);
}

#[test]
fn a_member_named_by_personal_data_does_not_leak_through_the_pointer() {
    let value = json!({"by_user": {"bob@example.com": 3, "+1 (555) 123-4567": 1, "anon": 2}});
    let findings = pointers(&value);
    assert_eq!(
        findings,
        vec![
            found("/by_user/[redacted]", PiiReason::EmailValue),
            found("/by_user/[redacted]", PiiReason::PhoneValue),
        ]
    );
}

#[test]
fn pointers_escape_member_names() {
    let value = json!({"a/b": {"m~n": {"email": "x"}}});
    assert_eq!(
        pointers(&value),
        vec![found("/a~1b/m~0n/email", PiiReason::Key)]
    );
}

#[test]
fn ordinary_commerce_data_is_not_flagged() {
    let value = json!({
        "name": "Blue Mug",
        "product_name": "Blue Mug",
        "order_id": "ORD-2024-000123",
        "ordered_at": "2024-01-15T10:30:00+01:00",
        "date": "2024-01-15",
        "price": "19.99",
        "total": 1999,
        "amount": 19.99,
        "id": "018f3a2b-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
        "count": "5551234567",
        "delta": "+1",
        "handle": "@tally",
        "asset": "logo@2x.png",
        "version": "lodash@4.17.21",
        "tags": ["sale", "+1", 12345678901u64],
        "phone_model": "Pixel 8",
    });
    assert_eq!(pointers(&value), vec![]);
}

#[test]
fn redact_removes_personal_members_and_replaces_personal_array_elements() {
    let mut value = json!({
        "sku": "A1",
        "email": "bob@example.com",
        "user_id": "bob@example.com",
        "customer": {"FirstName": "Ann", "segment": "vip", "note": "call +44 20 7946 0958"},
        "lines": ["bob@example.com", 3, {"tel": "x"}, "+44 20 7946 0958"],
        "by_user": {"bob@example.com": 1},
        "support": "+44 20 7946 0958",
    });
    redact(&mut value);
    assert_eq!(
        value,
        json!({
            "sku": "A1",
            // An international number inside free text is found too.
            "customer": {"segment": "vip"},
            "lines": ["[redacted]", 3, {}, "[redacted]"],
            "by_user": {},
        })
    );
    assert!(find_pii(&value).is_empty());
    let mut root = json!("bob@example.com");
    redact(&mut root);
    assert_eq!(root, json!(REDACTED));
}

/// Key spellings of listed keys, in the variants clients actually send.
fn pii_key() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "email",
            "e_mail",
            "first_name",
            "lastName",
            "Card.Number",
            "ip",
            "Phone Number",
            "SSN",
            "date-of-birth",
        ]),
        any::<bool>(),
    )
        .prop_map(|(k, upper)| {
            if upper {
                k.to_uppercase()
            } else {
                k.to_owned()
            }
        })
}

fn ordinary_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "name", "sku", "price", "items", "meta", "a/b", "m~n", "tags", "qty",
    ])
    .prop_map(str::to_owned)
}

fn email() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9._+]{0,10}",
        "[a-z][a-z0-9-]{0,8}[a-z0-9]",
        "(com|org|co\\.uk|de|io)",
    )
        .prop_map(|(local, domain, tld)| format!("{local}@{domain}.{tld}"))
}

fn phone() -> impl Strategy<Value = String> {
    prop_oneof![
        ("[1-9][0-9]{0,2}", "[1-9][0-9]{6,10}").prop_map(|(cc, n)| format!("+{cc} {n}")),
        ("[2-9][0-9]{2}", "[0-9]{3}", "[0-9]{4}").prop_map(|(a, b, c)| format!("({a}) {b}-{c}")),
        ("[2-9][0-9]{2}", "[0-9]{3}", "[0-9]{4}").prop_map(|(a, b, c)| format!("{a}-{b}-{c}")),
        ("[1-9][0-9]{1,3}", "[0-9]{6,8}").prop_map(|(a, b)| format!("0{a} {b}")),
    ]
}

/// Strings from real payloads that must never be mistaken for personal data.
fn not_pii() -> impl Strategy<Value = String> {
    prop_oneof![
        "ORD-[0-9]{4}-[0-9]{6}",
        "[0-9]{1,18}",
        "([1-9][0-9]{0,6}|0)\\.[0-9]{2}",
        (2000u32..2100, 1u32..13, 1u32..29, 0u32..24, 0u32..60)
            .prop_map(|(y, mo, d, h, mi)| format!("{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:00Z")),
        (2000u32..2100, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y}-{m:02}-{d:02}")),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        "[a-z ]{0,20}",
        Just("+1".to_owned()),
    ]
}

fn json_with_pii() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        email().prop_map(Value::from),
        phone().prop_map(Value::from),
        not_pii().prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (prop_oneof![pii_key(), ordinary_key(), email()], inner),
                0..5
            )
            .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn redact_leaves_nothing_to_find(mut value in json_with_pii()) {
        redact(&mut value);
        prop_assert_eq!(find_pii(&value), vec![]);
        let text = value.to_string();
        prop_assert!(!text.contains('@'), "{}", text);
    }

    #[test]
    fn listed_keys_are_found_at_depth_five(key in pii_key(), path in prop::collection::vec(ordinary_key(), 4)) {
        let mut value = json!({ key.clone(): "x" });
        for segment in path.iter().rev() {
            value = json!({ segment.clone(): [value] });
        }
        let findings = find_pii(&value);
        prop_assert_eq!(findings.len(), 1);
        prop_assert_eq!(findings[0].reason, PiiReason::Key);
        let expected: String = path
            .iter()
            .map(|s| format!("/{}/0", s.replace('~', "~0").replace('/', "~1")))
            .chain([format!("/{key}")])
            .collect();
        prop_assert_eq!(&findings[0].pointer, &expected);
    }

    #[test]
    fn addresses_and_phone_numbers_are_flagged(e in email(), p in phone()) {
        prop_assert_eq!(classify_str(&e), Some(PiiReason::EmailValue));
        prop_assert_eq!(classify_str(&p), Some(PiiReason::PhoneValue));
    }

    #[test]
    fn everyday_values_are_not_flagged(s in not_pii()) {
        prop_assert_eq!(classify_str(&s), None);
    }
}
