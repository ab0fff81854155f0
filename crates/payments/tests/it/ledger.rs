//! The property behind the ledger: senders retry, duplicate and reorder deliveries, and none of
//! that may change the money. Any interleaving, with any duplicates, of the deliveries describing
//! a set of sales folds (by posting key, first wins) into the same facts and the same net.

use crate::fixtures::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use tally_core::money::CurrencyCode;
use tally_payments::testing::Ledger;
use tally_payments::{EntryType, Outcome, Source};

/// One payment and the partial refunds made against it, in the order they happened.
#[derive(Debug, Clone)]
struct Sale {
    source: Source,
    currency: &'static str,
    amount: i64,
    refunds: Vec<i64>,
}

fn sale() -> impl Strategy<Value = Sale> {
    (
        prop::sample::select(Source::ALL.to_vec()),
        prop::sample::select(vec!["USD", "JPY", "KWD"]),
        100i64..5_000_000,
    )
        .prop_flat_map(|(source, currency, amount)| {
            prop::collection::vec(1..=amount / 4, 0..=3).prop_map(move |refunds| Sale {
                source,
                currency,
                amount,
                refunds,
            })
        })
}

type Fact = (Source, String, EntryType, i64);

/// Every delivery the vendor would send for sale `n`, and the facts they must add up to.
fn deliveries(n: usize, sale: &Sale) -> (Vec<Request>, Vec<Fact>) {
    let currency = CurrencyCode::parse(sale.currency).unwrap();
    let decimal = |minor: i64| currency.format_amount(minor);
    let order = 1_000 + n as u64;
    let mut requests = Vec::new();
    let mut facts = Vec::new();
    let mut fact = |external_id: String, entry_type, amount| {
        facts.push((sale.source, external_id, entry_type, amount));
    };
    match sale.source {
        Source::Shopify => {
            let body = shopify_order(order, &decimal(sale.amount), sale.currency, "paid");
            requests.push(signed(
                Source::Shopify,
                "orders/create",
                &format!("e{n}c"),
                body.clone(),
            ));
            requests.push(signed(
                Source::Shopify,
                "orders/paid",
                &format!("e{n}p"),
                body,
            ));
            fact(order.to_string(), EntryType::Payment, sale.amount);
            for (j, refund) in sale.refunds.iter().enumerate() {
                let id = order * 10 + j as u64;
                let body = shopify_refund(
                    id,
                    order,
                    sale.currency,
                    &[("refund", "success", &decimal(*refund))],
                );
                requests.push(signed(
                    Source::Shopify,
                    "refunds/create",
                    &format!("e{n}r{j}"),
                    body,
                ));
                fact(id.to_string(), EntryType::Refund, -refund);
            }
        }
        Source::Stripe => {
            let intent = format!("pi_{n}");
            let charge = format!("ch_{n}");
            let code = sale.currency.to_ascii_lowercase();
            let object = stripe_payment_intent(&intent, sale.amount, &code, "o");
            requests.push(signed(
                Source::Stripe,
                "",
                "",
                stripe_event(
                    &format!("evt_{n}_pi"),
                    "payment_intent.succeeded",
                    object,
                    None,
                ),
            ));
            let object = stripe_charge(&charge, &intent, sale.amount, &code, None, &[]);
            requests.push(signed(
                Source::Stripe,
                "",
                "",
                stripe_event(&format!("evt_{n}_ch"), "charge.succeeded", object, None),
            ));
            fact(intent.clone(), EntryType::Payment, sale.amount);
            let ids: Vec<String> = (0..sale.refunds.len())
                .map(|j| format!("re_{n}_{j}"))
                .collect();
            let refunds: Vec<(&str, i64)> = ids
                .iter()
                .map(String::as_str)
                .zip(sale.refunds.iter().copied())
                .collect();
            for k in 1..=refunds.len() {
                // Each charge.refunded repeats every refund so far.
                let object =
                    stripe_charge(&charge, &intent, sale.amount, &code, None, &refunds[..k]);
                requests.push(signed(
                    Source::Stripe,
                    "",
                    "",
                    stripe_event(&format!("evt_{n}_r{k}"), "charge.refunded", object, None),
                ));
                fact(ids[k - 1].clone(), EntryType::Refund, -refunds[k - 1].1);
            }
        }
        Source::PayPal => {
            let capture = format!("CAP{n}");
            let resource =
                paypal_resource(&capture, &decimal(sale.amount), sale.currency, Some("o"));
            requests.push(signed(
                Source::PayPal,
                "",
                &format!("t{n}"),
                paypal_event(&format!("WH-{n}"), "PAYMENT.CAPTURE.COMPLETED", resource),
            ));
            fact(capture, EntryType::Payment, sale.amount);
            for (j, refund) in sale.refunds.iter().enumerate() {
                let id = format!("REF{n}x{j}");
                let resource = paypal_resource(&id, &decimal(*refund), sale.currency, Some("o"));
                requests.push(signed(
                    Source::PayPal,
                    "",
                    &format!("t{n}r{j}"),
                    paypal_event(&format!("WH-{n}-{j}"), "PAYMENT.CAPTURE.REFUNDED", resource),
                ));
                fact(id, EntryType::Refund, -refund);
            }
        }
        Source::WooCommerce => {
            let refunds: Vec<(u64, String)> = sale
                .refunds
                .iter()
                .enumerate()
                .map(|(j, refund)| (order * 10 + j as u64, format!("-{}", decimal(*refund))))
                .collect();
            fact(order.to_string(), EntryType::Payment, sale.amount);
            // One snapshot per state: paid, then after each refund.
            for k in 0..=refunds.len() {
                let listed: Vec<(u64, &str)> = refunds[..k]
                    .iter()
                    .map(|(id, total)| (*id, total.as_str()))
                    .collect();
                let modified = format!("2026-11-2{k}T10:00:00");
                let body = woo_order(
                    order,
                    "processing",
                    &decimal(sale.amount),
                    sale.currency,
                    &modified,
                    &listed,
                );
                requests.push(signed(Source::WooCommerce, "order.updated", "", body));
            }
            for ((id, _), refund) in refunds.iter().zip(&sale.refunds) {
                fact(id.to_string(), EntryType::Refund, -refund);
            }
        }
    }
    (requests, facts)
}

fn fold<'a>(requests: impl IntoIterator<Item = &'a Request>) -> Ledger {
    let mut ledger = Ledger::default();
    for request in requests {
        if let Outcome::Post(postings) = ingest(request).unwrap().outcome {
            for posting in postings {
                ledger.apply(posting);
            }
        }
    }
    ledger
}

fn facts(ledger: &Ledger) -> BTreeSet<Fact> {
    ledger
        .postings()
        .map(|p| {
            (
                p.source,
                p.external_id.clone(),
                p.entry_type,
                p.amount_minor,
            )
        })
        .collect()
}

/// How many deliveries [`deliveries`] makes for `sale`: the strategy needs it before signing.
fn delivery_count(sale: &Sale) -> usize {
    let payment = match sale.source {
        // Two topics report the same payment.
        Source::Shopify | Source::Stripe => 2,
        Source::PayPal | Source::WooCommerce => 1,
    };
    payment + sale.refunds.len()
}

/// Sales, and the order to deliver their requests in: every delivery at least once, some more
/// than once, shuffled.
fn scenario() -> impl Strategy<Value = (Vec<Sale>, Vec<usize>)> {
    prop::collection::vec(sale(), 1..6)
        .prop_flat_map(|sales| {
            let count: usize = sales.iter().map(delivery_count).sum();
            (Just(sales), prop::collection::vec(0..count, 0..=count))
        })
        .prop_flat_map(|(sales, duplicates)| {
            let count: usize = sales.iter().map(delivery_count).sum();
            let order: Vec<usize> = (0..count).chain(duplicates).collect();
            (Just(sales), Just(order).prop_shuffle())
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_interleaving_and_duplication_yields_the_same_ledger((sales, order) in scenario()) {
        let mut requests = Vec::new();
        let mut expected = BTreeSet::new();
        let mut net: BTreeMap<&str, i64> = BTreeMap::new();
        for (n, sale) in sales.iter().enumerate() {
            let (more, facts) = deliveries(n, sale);
            prop_assert_eq!(more.len(), delivery_count(sale));
            requests.extend(more);
            expected.extend(facts);
            *net.entry(sale.currency).or_default() += sale.amount - sale.refunds.iter().sum::<i64>();
        }

        let in_order = fold(&requests);
        let shuffled = fold(order.iter().map(|&i| &requests[i]));
        prop_assert_eq!(&facts(&in_order), &expected);
        prop_assert_eq!(&facts(&shuffled), &expected);
        for (currency, net) in net {
            prop_assert_eq!(in_order.net(currency), net);
            prop_assert_eq!(shuffled.net(currency), net);
        }
    }
}
