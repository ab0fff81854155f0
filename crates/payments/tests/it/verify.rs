use crate::fixtures::{OLD_SECRET, PAYPAL_WEBHOOK_ID, SECRET, now, shopify_order, signed};
use chrono::TimeDelta;
use tally_payments::testing::{
    PAYPAL_CERT_URL, PayPalSigner, base64_hmac, shopify_headers, stripe_headers, stripe_signature,
    woocommerce_headers,
};
use tally_payments::{
    Source, Verified, VerifyError, VerifyingKeys, paypal_cert_url, validate_cert_url, verify,
};

const SIGNED: Verified = Verified::Signed { key_index: 0 };

fn check(
    source: Source,
    headers: &[(&'static str, String)],
    body: &[u8],
    secrets: &[&[u8]],
) -> Result<Verified, VerifyError> {
    verify(
        source,
        &headers.to_vec(),
        body,
        VerifyingKeys::Secrets(secrets),
        now(),
    )
}

fn tampered(body: &[u8]) -> Vec<u8> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .replace("59.99", "5999.00")
        .into_bytes()
}

#[test]
fn shopify_signature_over_raw_body() {
    let body = shopify_order(1, "59.99", "USD", "paid");
    let headers = shopify_headers(SECRET, "orders/paid", "evt-1", &body);
    assert_eq!(
        check(Source::Shopify, &headers, &body, &[SECRET]),
        Ok(SIGNED)
    );
    assert_eq!(
        check(Source::Shopify, &headers, &tampered(&body), &[SECRET]),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        check(Source::Shopify, &headers, &body, &[b"another secret"]),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn shopify_previous_secret_still_verifies_during_rotation() {
    let body = shopify_order(1, "59.99", "USD", "paid");
    let signed_with_old = shopify_headers(OLD_SECRET, "orders/paid", "evt-1", &body);
    assert_eq!(
        check(
            Source::Shopify,
            &signed_with_old,
            &body,
            &[SECRET, OLD_SECRET]
        ),
        Ok(Verified::Signed { key_index: 1 })
    );
    // Once the grace period is over and the old secret is gone, it no longer does.
    assert_eq!(
        check(Source::Shopify, &signed_with_old, &body, &[SECRET]),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn shopify_header_problems() {
    let body = shopify_order(1, "59.99", "USD", "paid");
    assert_eq!(
        check(Source::Shopify, &[], &body, &[SECRET]),
        Err(VerifyError::MissingHeader("X-Shopify-Hmac-Sha256"))
    );
    let not_base64 = [("x-shopify-hmac-sha256", "%%%".to_string())];
    assert_eq!(
        check(Source::Shopify, &not_base64, &body, &[SECRET])
            .unwrap_err()
            .code(),
        "malformed_header"
    );
}

#[test]
fn verifies_against_an_http_header_map_as_axum_gives_it() {
    let body = shopify_order(1, "59.99", "USD", "paid");
    let mut map = http::HeaderMap::new();
    for (name, value) in shopify_headers(SECRET, "orders/paid", "evt-1", &body) {
        map.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    assert_eq!(
        verify(
            Source::Shopify,
            &map,
            &body,
            VerifyingKeys::Secrets(&[SECRET]),
            now()
        ),
        Ok(SIGNED)
    );
}

#[test]
fn stripe_signature_over_timestamp_and_body() {
    let body = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
    let t = now().timestamp();
    let headers = stripe_headers(SECRET, t, body);
    assert_eq!(check(Source::Stripe, &headers, body, &[SECRET]), Ok(SIGNED));
    assert_eq!(
        check(Source::Stripe, &headers, b"{\"id\":\"evt_2\"}", &[SECRET]),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        check(Source::Stripe, &headers, body, &[OLD_SECRET]),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn stripe_signs_the_timestamp_too() {
    let body = br#"{"id":"evt_1"}"#;
    let t = now().timestamp();
    let genuine = stripe_signature(&[SECRET], t, body);
    let v1 = genuine.split_once(',').unwrap().1;
    let moved = [("Stripe-Signature", format!("t={},{v1}", t - 1))];
    assert_eq!(
        check(Source::Stripe, &moved, body, &[SECRET]),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn stripe_timestamp_tolerance() {
    let body = br#"{"id":"evt_1"}"#;
    let at = |offset: i64| stripe_headers(SECRET, now().timestamp() + offset, body);
    assert_eq!(
        check(Source::Stripe, &at(-300), body, &[SECRET]),
        Ok(SIGNED)
    );
    assert_eq!(check(Source::Stripe, &at(300), body, &[SECRET]), Ok(SIGNED));
    assert_eq!(
        check(Source::Stripe, &at(-301), body, &[SECRET]),
        Err(VerifyError::StaleTimestamp { skew_secs: 301 })
    );
    assert_eq!(
        check(Source::Stripe, &at(3600), body, &[SECRET])
            .unwrap_err()
            .code(),
        "stale_timestamp"
    );
    // A stale request with a bad signature is reported as the forgery it is.
    assert_eq!(
        check(Source::Stripe, &at(-3600), body, &[OLD_SECRET]),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(tally_payments::STRIPE_TOLERANCE, TimeDelta::seconds(300));
}

#[test]
fn stripe_accepts_any_of_several_v1_values() {
    let body = br#"{"id":"evt_1"}"#;
    let t = now().timestamp();
    // Stripe signs with every live secret during a rotation.
    let both = [(
        "Stripe-Signature",
        stripe_signature(&[OLD_SECRET, SECRET], t, body),
    )];
    assert_eq!(check(Source::Stripe, &both, body, &[SECRET]), Ok(SIGNED));
    assert_eq!(
        check(Source::Stripe, &both, body, &[OLD_SECRET]),
        Ok(SIGNED)
    );
    assert_eq!(
        check(Source::Stripe, &both, body, &[b"unrelated", SECRET]),
        Ok(Verified::Signed { key_index: 1 })
    );
    let only_v0 = [("Stripe-Signature", format!("t={t},v0=abcd"))];
    assert_eq!(
        check(Source::Stripe, &only_v0, body, &[SECRET])
            .unwrap_err()
            .code(),
        "malformed_header"
    );
}

#[test]
fn woocommerce_signature_and_ping() {
    let body = br#"{"id":727,"status":"processing"}"#;
    let headers = woocommerce_headers(SECRET, "order.updated", body);
    assert_eq!(
        check(Source::WooCommerce, &headers, body, &[SECRET]),
        Ok(SIGNED)
    );
    assert_eq!(
        check(
            Source::WooCommerce,
            &headers,
            br#"{"id":727,"status":"completed"}"#,
            &[SECRET]
        ),
        Err(VerifyError::BadSignature)
    );

    let ping = [(
        "X-WC-Webhook-Topic",
        "action.woocommerce_webhook_ping".to_string(),
    )];
    assert_eq!(
        check(Source::WooCommerce, &ping, b"webhook_id=15", &[SECRET]),
        Ok(Verified::WooCommercePing { webhook_id: 15 })
    );
    // Unsigned and not a ping: refused.
    assert_eq!(
        check(Source::WooCommerce, &[], body, &[SECRET]),
        Err(VerifyError::MissingHeader("X-WC-Webhook-Signature"))
    );
    // A ping-shaped body with a wrong signature is not waved through as a ping.
    let forged = [(
        "X-WC-Webhook-Signature",
        base64_hmac(b"guess", b"webhook_id=15"),
    )];
    assert_eq!(
        check(Source::WooCommerce, &forged, b"webhook_id=15", &[SECRET]),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn endpoint_key_misconfiguration() {
    let body = shopify_order(1, "59.99", "USD", "paid");
    let headers = shopify_headers(SECRET, "orders/paid", "evt-1", &body);
    assert_eq!(
        check(Source::Shopify, &headers, &body, &[]),
        Err(VerifyError::NoKeys)
    );
    let paypal_keys = VerifyingKeys::PayPal {
        webhook_id: PAYPAL_WEBHOOK_ID,
        certificate_pem: PayPalSigner::shared().certificate_pem(),
    };
    assert_eq!(
        verify(Source::Shopify, &headers, &body, paypal_keys, now()),
        Err(VerifyError::KeysMismatch(Source::Shopify))
    );
    assert_eq!(
        check(Source::PayPal, &headers, &body, &[SECRET])
            .unwrap_err()
            .code(),
        "keys_mismatch"
    );
}

fn paypal(
    headers: &[(&'static str, String)],
    body: &[u8],
    webhook_id: &str,
    pem: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Verified, VerifyError> {
    verify(
        Source::PayPal,
        &headers.to_vec(),
        body,
        VerifyingKeys::PayPal {
            webhook_id,
            certificate_pem: pem,
        },
        at,
    )
}

#[test]
fn paypal_signature() {
    let signer = PayPalSigner::shared();
    let pem = signer.certificate_pem();
    let body = br#"{"id":"WH-1","event_type":"PAYMENT.CAPTURE.COMPLETED"}"#;
    let request = signed(Source::PayPal, "", "b2384410-f8d2-11e8-a38e", body.to_vec());
    let headers = &request.headers;
    assert_eq!(
        paypal(headers, body, PAYPAL_WEBHOOK_ID, pem, now()),
        Ok(SIGNED)
    );
    assert_eq!(
        paypal(headers, b"{\"id\":\"WH-2\"}", PAYPAL_WEBHOOK_ID, pem, now()),
        Err(VerifyError::BadSignature)
    );
    // Signed for another merchant's webhook subscription.
    assert_eq!(
        paypal(headers, body, "OTHERWEBHOOK", pem, now()),
        Err(VerifyError::BadSignature)
    );
    // The transmission id and time are signed too.
    let mut retimed = headers.clone();
    retimed[1].1 = "2026-11-20T11:59:59Z".into();
    assert_eq!(
        paypal(&retimed, body, PAYPAL_WEBHOOK_ID, pem, now()),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn paypal_rejects_other_keys_and_bad_certificates() {
    let body = br#"{"id":"WH-1"}"#;
    let impostor = PayPalSigner::generate();
    let headers = impostor.headers(PAYPAL_WEBHOOK_ID, "t-1", "2026-11-20T11:59:58Z", body);
    let genuine_pem = PayPalSigner::shared().certificate_pem();
    assert_eq!(
        paypal(&headers, body, PAYPAL_WEBHOOK_ID, genuine_pem, now()),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(
        paypal(
            &headers,
            body,
            PAYPAL_WEBHOOK_ID,
            impostor.certificate_pem(),
            now()
        ),
        Ok(SIGNED)
    );
    assert_eq!(
        paypal(
            &headers,
            body,
            PAYPAL_WEBHOOK_ID,
            "not a certificate",
            now()
        )
        .unwrap_err()
        .code(),
        "bad_certificate"
    );
    let in_2050 = now() + TimeDelta::days(365 * 25);
    assert_eq!(
        paypal(
            &headers,
            body,
            PAYPAL_WEBHOOK_ID,
            impostor.certificate_pem(),
            in_2050
        ),
        Err(VerifyError::CertificateExpired)
    );
}

#[test]
fn paypal_header_problems() {
    let body = br#"{"id":"WH-1"}"#;
    let pem = PayPalSigner::shared().certificate_pem();
    let headers = signed(Source::PayPal, "", "t-1", body.to_vec()).headers;
    let with = |name: &str, value: Option<&str>| -> Vec<(&'static str, String)> {
        let mut changed: Vec<_> = headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
            .cloned()
            .collect();
        if let Some(value) = value {
            let static_name = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .unwrap()
                .0;
            changed.push((static_name, value.to_string()));
        }
        changed
    };
    assert_eq!(
        paypal(
            &with("PAYPAL-AUTH-ALGO", Some("SHA1withRSA")),
            body,
            PAYPAL_WEBHOOK_ID,
            pem,
            now()
        ),
        Err(VerifyError::UnsupportedAlgorithm("SHA1withRSA".into()))
    );
    for missing in [
        "PAYPAL-AUTH-ALGO",
        "PAYPAL-TRANSMISSION-ID",
        "PAYPAL-TRANSMISSION-TIME",
        "PAYPAL-TRANSMISSION-SIG",
    ] {
        assert_eq!(
            paypal(&with(missing, None), body, PAYPAL_WEBHOOK_ID, pem, now()),
            Err(VerifyError::MissingHeader(missing)),
        );
    }
    assert_eq!(
        paypal(
            &with("PAYPAL-TRANSMISSION-SIG", Some("***")),
            body,
            PAYPAL_WEBHOOK_ID,
            pem,
            now()
        )
        .unwrap_err()
        .code(),
        "malformed_header"
    );
    assert_eq!(
        paypal(
            &with("PAYPAL-TRANSMISSION-SIG", Some("AAAA")),
            body,
            PAYPAL_WEBHOOK_ID,
            pem,
            now()
        ),
        Err(VerifyError::BadSignature)
    );
    assert_eq!(paypal_cert_url(&headers).unwrap().as_str(), PAYPAL_CERT_URL);
    assert_eq!(
        paypal_cert_url(&with("PAYPAL-CERT-URL", None)),
        Err(VerifyError::MissingHeader("PAYPAL-CERT-URL"))
    );
    assert_eq!(
        paypal_cert_url(&with(
            "PAYPAL-CERT-URL",
            Some("https://evil.example/cert.pem")
        ))
        .unwrap_err()
        .code(),
        "cert_url_not_allowed"
    );
}

#[test]
fn paypal_cert_url_allow_list() {
    for allowed in [
        "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
        "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://api-m.paypal.com/v1/notifications/certs/CERT-1",
        "https://paypal.com/cert.pem",
        "https://API.PayPal.COM/cert.pem",
        "https://api.paypal.com:443/cert.pem",
    ] {
        assert!(
            validate_cert_url(allowed).is_ok(),
            "{allowed} should be allowed"
        );
    }
    for refused in [
        "http://api.paypal.com/v1/notifications/certs/CERT-1",
        "https://paypal.com.evil.com/cert.pem",
        "https://api.paypal.com.evil.com/cert.pem",
        "https://evilpaypal.com/cert.pem",
        "https://paypal.com@evil.com/cert.pem",
        "https://api.paypal.com:x@evil.com/cert.pem",
        "https://evil.com@api.paypal.com/cert.pem",
        "https://evil.com/paypal.com",
        "https://evil.com/?host=api.paypal.com",
        "https://evil.com#api.paypal.com",
        "https://api.paypal.com:8443/cert.pem",
        "https://api.paypal.com./cert.pem",
        "https://paypal.com%2Eevil.com/cert.pem",
        "https://64.4.250.36/cert.pem",
        "ftp://api.paypal.com/cert.pem",
        "file:///etc/paypal.com",
        "//api.paypal.com/cert.pem",
        "api.paypal.com/cert.pem",
        "",
    ] {
        assert_eq!(
            validate_cert_url(refused),
            Err(VerifyError::CertUrlNotAllowed(refused.to_string())),
            "{refused} should be refused"
        );
    }
}

#[test]
fn error_codes_are_stable() {
    let codes: Vec<&str> = [
        VerifyError::MissingHeader("X"),
        VerifyError::MalformedHeader {
            header: "X",
            reason: "r",
        },
        VerifyError::BadSignature,
        VerifyError::StaleTimestamp { skew_secs: 1 },
        VerifyError::UnsupportedAlgorithm("a".into()),
        VerifyError::BadCertificate("c".into()),
        VerifyError::CertificateExpired,
        VerifyError::CertUrlNotAllowed("u".into()),
        VerifyError::NoKeys,
        VerifyError::KeysMismatch(Source::Stripe),
    ]
    .iter()
    .map(VerifyError::code)
    .collect();
    assert_eq!(
        codes,
        [
            "missing_header",
            "malformed_header",
            "bad_signature",
            "stale_timestamp",
            "unsupported_algorithm",
            "bad_certificate",
            "certificate_expired",
            "cert_url_not_allowed",
            "no_keys_configured",
            "keys_mismatch",
        ]
    );
}
