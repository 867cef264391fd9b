//! The line items of a Checkout Session.
//!
//! Without row references the session charges the invoice total as one
//! generic line. Once the configuration maps a [`RowKind`] to a Price or
//! Product, the session shows one line per invoice row, each pointing at its
//! kind's catalogue entry. Whatever the plan, the lines add up to the
//! payment's amount to the minor unit: a reference names what is sold and
//! never changes what is charged. An invoice Checkout cannot show row by row
//! (a negative discount row, more than 100 rows) is charged as one line.
//!
//! Planning is pure. The Prices it checks are retrieved beforehand by
//! `checkout`, which also logs the warnings a plan returns.

use std::collections::HashMap;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use billing_domain::{RowKind, StartLine, StartRequest};

use crate::amount::{to_stripe_amount, AmountError};
use crate::config::{LineItemLabel, RowReference, StripeConfig};

/// Checkout takes at most this many line items in payment mode.
pub(crate) const MAX_LINE_ITEMS: usize = 100;

/// The fields of a retrieved Stripe Price that decide whether a row can use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CatalogPrice {
    pub id: String,
    pub product: String,
    /// Lower-case ISO code, as Stripe writes it.
    pub currency: String,
    pub unit_amount: Option<i64>,
    pub active: bool,
    pub one_time: bool,
    /// Per-unit billing with no quantity transform or customer-chosen amount.
    pub plain_per_unit: bool,
}

/// One Checkout line item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// A catalogue Price, charged at its own unit amount.
    Price { price: String, quantity: u64, unit_amount: i64 },
    /// An amount given inline (`price_data`).
    Inline { unit_amount: i64, quantity: u64, label: Label },
}

impl Item {
    /// Returns the amount this line charges, in Stripe's minor units.
    fn amount(&self) -> Option<i64> {
        let (Item::Price { unit_amount, quantity, .. } | Item::Inline { unit_amount, quantity, .. }) = self;
        unit_amount.checked_mul(i64::try_from(*quantity).ok()?)
    }
}

/// The label of an inline line item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Label {
    Product(String),
    Name(String),
}

/// The line items for one session, with what the customer would not see
/// but the integrator should: rows that could not use their reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub items: Vec<Item>,
    pub warnings: Vec<String>,
}

/// Returns the Price ids the request's rows would use, each once, and none
/// for rows that will be charged as one line anyway.
pub(crate) fn prices_to_check(request: &StartRequest, config: &StripeConfig) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let charged = || request.lines.iter().filter(|line| !line.total.is_zero());
    if !config.itemises_rows() || charged().any(|line| line.total.is_negative()) || charged().count() > MAX_LINE_ITEMS {
        return ids;
    }
    for line in charged() {
        if let Some(RowReference::Price(id)) = config.row_reference(line.kind) {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
    }
    ids
}

/// Plans the session's line items.
///
/// # Errors
///
/// [`AmountError`] when the payment's amount cannot be charged in Stripe's
/// minor units.
pub(crate) fn plan(
    request: &StartRequest,
    config: &StripeConfig,
    prices: &HashMap<String, CatalogPrice>,
) -> Result<Plan, AmountError> {
    let total = to_stripe_amount(request.amount)?;
    let single = |warnings: Vec<String>| Plan {
        items: vec![Item::Inline { unit_amount: total, quantity: 1, label: generic_label(config, request, None) }],
        warnings,
    };
    if !config.itemises_rows() {
        return Ok(single(Vec::new()));
    }

    match itemise(request, config, prices, total) {
        Ok(plan) => Ok(plan),
        Err(reason) => Ok(single(vec![format!("charged as one line item: {reason}")])),
    }
}

/// Plans one line item per row with a non-zero amount, or returns why it cannot.
fn itemise(
    request: &StartRequest,
    config: &StripeConfig,
    prices: &HashMap<String, CatalogPrice>,
    total: i64,
) -> Result<Plan, String> {
    let mut plan = Plan { items: Vec::new(), warnings: Vec::new() };
    for (index, line) in request.lines.iter().enumerate() {
        if line.total.currency() != request.amount.currency() {
            return Err(format!(
                "row {index} is in {}, the payment in {}",
                line.total.currency(),
                request.amount.currency()
            ));
        }
        if line.total.is_zero() {
            continue;
        }
        if line.total.is_negative() {
            return Err(format!(
                "row {index} ({} row) is {}, and Checkout line items cannot be negative",
                line.kind, line.total
            ));
        }
        plan.items.push(plan_row(index, line, request, config, prices, &mut plan.warnings)?);
    }

    if plan.items.is_empty() {
        return Err("no row has an amount to charge".to_owned());
    }
    if plan.items.len() > MAX_LINE_ITEMS {
        return Err(format!("{} rows exceed Checkout's {MAX_LINE_ITEMS} line items", plan.items.len()));
    }
    let sum = plan.items.iter().try_fold(0_i64, |sum, item| item.amount().and_then(|amount| sum.checked_add(amount)));
    if sum != Some(total) {
        return Err(format!("the rows add up to {sum:?} minor units, the payment to {total}"));
    }
    Ok(plan)
}

fn plan_row(
    index: usize,
    line: &StartLine,
    request: &StartRequest,
    config: &StripeConfig,
    prices: &HashMap<String, CatalogPrice>,
    warnings: &mut Vec<String>,
) -> Result<Item, String> {
    let quantity = whole_quantity(line.quantity);
    let unit_amount = quantity.and_then(|_| to_stripe_amount(line.unit_price).ok());

    let label = match config.row_reference(line.kind) {
        Some(RowReference::Price(id)) => {
            let Some(price) = prices.get(id) else {
                return Err(format!("Price {id} for {} rows was not retrieved", line.kind));
            };
            // A quantity Stripe cannot take rules the Price out whatever its unit amount.
            let mismatch = match quantity {
                Some(_) => price_mismatch(price, line, unit_amount),
                None => Some(format!("its quantity {} is not whole", line.quantity)),
            };
            match (quantity, unit_amount, mismatch) {
                (Some(quantity), Some(unit_amount), None) => {
                    return Ok(Item::Price { price: id.clone(), quantity, unit_amount });
                }
                (_, _, mismatch) => {
                    let reason = mismatch.unwrap_or_else(|| "the row cannot use it".to_owned());
                    warnings.push(format!(
                        "row {index} ({} row) cannot use Price {id}: {reason}; it is charged at its own \
                         amounts against the Price's Product {}",
                        line.kind, price.product
                    ));
                    Label::Product(price.product.clone())
                }
            }
        }
        Some(RowReference::Product(id)) => Label::Product(id.clone()),
        None => generic_label(config, request, Some(line.kind)),
    };

    match (quantity, unit_amount) {
        (Some(quantity), Some(unit_amount)) => Ok(Item::Inline { unit_amount, quantity, label }),
        _ => {
            let line_total = to_stripe_amount(line.total).map_err(|error| format!("row {index}: {error}"))?;
            Ok(Item::Inline { unit_amount: line_total, quantity: 1, label })
        }
    }
}

/// Returns why `price` does not charge the row's unit amount, or `None` when it does.
fn price_mismatch(price: &CatalogPrice, line: &StartLine, unit_amount: Option<i64>) -> Option<String> {
    let currency = line.unit_price.currency().code().to_ascii_lowercase();
    if !price.active {
        return Some("the Price is archived".to_owned());
    }
    if !price.one_time {
        return Some("the Price is recurring, and a payment-mode session takes one-time Prices only".to_owned());
    }
    if !price.plain_per_unit {
        return Some("the Price is tiered, transforms quantities or lets the customer choose".to_owned());
    }
    if price.currency != currency {
        return Some(format!("the Price is in {}, the row in {currency}", price.currency));
    }
    match (price.unit_amount, unit_amount) {
        (Some(price_unit), Some(row_unit)) if price_unit == row_unit => None,
        (price_unit, row_unit) => Some(format!(
            "the Price's unit amount is {} and the row's {}",
            price_unit.map_or_else(|| "unset".to_owned(), |amount| format!("{amount} minor units")),
            row_unit.map_or_else(
                || "cannot be charged in Stripe's minor units".to_owned(),
                |amount| format!("is {amount}")
            ),
        )),
    }
}

/// Returns the configured generic label, naming `kind` for one row of an itemised session.
fn generic_label(config: &StripeConfig, request: &StartRequest, kind: Option<RowKind>) -> Label {
    match (config.line_item(), kind) {
        (LineItemLabel::Product(product), _) => Label::Product(product.clone()),
        (LineItemLabel::InvoiceNumber, None) => Label::Name(format!("Invoice {}", request.invoice_number)),
        (LineItemLabel::InvoiceNumber, Some(kind)) => {
            Label::Name(format!("Invoice {} ({kind})", request.invoice_number))
        }
    }
}

/// Returns the quantity as Stripe's whole number, if it is one.
fn whole_quantity(quantity: Decimal) -> Option<u64> {
    if quantity <= Decimal::ZERO || !quantity.fract().is_zero() {
        return None;
    }
    quantity.to_u64()
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use time::OffsetDateTime;

    use billing_domain::{Channel, Currency, InvoiceId, Money, PaymentId, TenantId};

    use super::*;
    use crate::config::Secret;

    fn eur(amount: Decimal) -> Money {
        Money::new(amount, Currency::EUR).unwrap()
    }

    fn line(kind: RowKind, quantity: Decimal, unit: Decimal) -> StartLine {
        StartLine { kind, quantity, unit_price: eur(unit), total: eur(unit * quantity) }
    }

    fn request(lines: Vec<StartLine>) -> StartRequest {
        let total = lines.iter().fold(Decimal::ZERO, |sum, line| sum + line.total.amount());
        StartRequest {
            tenant_id: TenantId::from_random_bytes([1; 16]),
            invoice_id: InvoiceId::from_random_bytes([2; 16]),
            payment_id: PaymentId::from_random_bytes([3; 16]),
            invoice_number: "2026-0012".into(),
            amount: eur(total),
            lines,
            channel: Channel::HostedPage,
            customer_ip: None,
            locale: None,
            requested_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn config() -> StripeConfig {
        StripeConfig::new(
            Secret::new("sk_test_1"),
            Secret::new("whsec_1"),
            "https://a/{CHECKOUT_SESSION_ID}",
            "https://a",
        )
        .unwrap()
    }

    fn itemising() -> StripeConfig {
        config()
            .with_row_reference(RowKind::Credits, RowReference::Price("price_credits".into()))
            .unwrap()
            .with_row_reference(RowKind::Content, RowReference::Product("prod_content".into()))
            .unwrap()
    }

    fn credits_price(unit_amount: i64) -> HashMap<String, CatalogPrice> {
        let price = CatalogPrice {
            id: "price_credits".into(),
            product: "prod_credits".into(),
            currency: "eur".into(),
            unit_amount: Some(unit_amount),
            active: true,
            one_time: true,
            plain_per_unit: true,
        };
        HashMap::from([(price.id.clone(), price)])
    }

    fn name(text: &str) -> Label {
        Label::Name(text.to_owned())
    }

    #[test]
    fn without_references_the_total_is_one_generic_line() {
        let request = request(vec![line(RowKind::Credits, dec!(2), dec!(5)), line(RowKind::Other, dec!(1), dec!(2.5))]);
        let planned = plan(&request, &config(), &HashMap::new()).unwrap();
        assert_eq!(
            planned.items,
            vec![Item::Inline { unit_amount: 1250, quantity: 1, label: name("Invoice 2026-0012") }]
        );
        assert!(planned.warnings.is_empty());
        assert!(prices_to_check(&request, &config()).is_empty());
    }

    #[test]
    fn references_give_each_row_its_catalogue_entry() {
        let request = request(vec![
            line(RowKind::Credits, dec!(3), dec!(10)),
            line(RowKind::Content, dec!(1), dec!(4.99)),
            line(RowKind::ProjectWork, dec!(2), dec!(60)),
        ]);
        assert_eq!(prices_to_check(&request, &itemising()), vec!["price_credits".to_owned()]);

        let planned = plan(&request, &itemising(), &credits_price(1000)).unwrap();
        assert_eq!(
            planned.items,
            vec![
                Item::Price { price: "price_credits".into(), quantity: 3, unit_amount: 1000 },
                Item::Inline { unit_amount: 499, quantity: 1, label: Label::Product("prod_content".into()) },
                Item::Inline { unit_amount: 6000, quantity: 2, label: name("Invoice 2026-0012 (project work)") },
            ]
        );
        assert!(planned.warnings.is_empty(), "{:?}", planned.warnings);
    }

    #[test]
    fn price_mismatch_uses_its_product() {
        let request = request(vec![line(RowKind::Credits, dec!(3), dec!(12))]);
        let planned = plan(&request, &itemising(), &credits_price(1000)).unwrap();
        assert_eq!(
            planned.items,
            vec![Item::Inline { unit_amount: 1200, quantity: 3, label: Label::Product("prod_credits".into()) }]
        );
        assert_eq!(planned.warnings.len(), 1);
        assert!(
            planned.warnings[0].contains("price_credits") && planned.warnings[0].contains("1000"),
            "{:?}",
            planned.warnings
        );
    }

    #[test]
    fn price_unusable_when_fractional_or_recurring() {
        let fractional = request(vec![line(RowKind::Credits, dec!(1.5), dec!(10))]);
        let planned = plan(&fractional, &itemising(), &credits_price(1000)).unwrap();
        assert_eq!(
            planned.items,
            vec![Item::Inline { unit_amount: 1500, quantity: 1, label: Label::Product("prod_credits".into()) }]
        );
        assert!(planned.warnings[0].contains("not whole"), "{:?}", planned.warnings);

        let mut prices = credits_price(1000);
        for price in prices.values_mut() {
            price.one_time = false;
        }
        let whole = request(vec![line(RowKind::Credits, dec!(1), dec!(10))]);
        let planned = plan(&whole, &itemising(), &prices).unwrap();
        assert!(matches!(planned.items[0], Item::Inline { unit_amount: 1000, quantity: 1, .. }));
        assert!(planned.warnings[0].contains("recurring"), "{:?}", planned.warnings);
    }

    #[test]
    fn fractional_quantity_warning_names_the_quantity() {
        let request = request(vec![line(RowKind::Credits, dec!(1.5), dec!(10))]);
        let planned = plan(&request, &itemising(), &credits_price(1000)).unwrap();
        assert_eq!(planned.warnings.len(), 1);
        assert!(planned.warnings[0].contains("quantity 1.5 is not whole"), "{:?}", planned.warnings);
        assert!(!planned.warnings[0].contains("unit amount"), "{:?}", planned.warnings);
    }

    #[test]
    fn negative_discount_row_falls_back_to_one_line() {
        let discounted =
            request(vec![line(RowKind::Content, dec!(1), dec!(20)), line(RowKind::Other, dec!(1), dec!(-5))]);
        let planned = plan(&discounted, &itemising(), &HashMap::new()).unwrap();
        assert_eq!(
            planned.items,
            vec![Item::Inline { unit_amount: 1500, quantity: 1, label: name("Invoice 2026-0012") }]
        );
        assert!(planned.warnings[0].contains("cannot be negative"), "{:?}", planned.warnings);

        let with_price =
            request(vec![line(RowKind::Credits, dec!(1), dec!(20)), line(RowKind::Other, dec!(1), dec!(-5))]);
        assert!(prices_to_check(&with_price, &itemising()).is_empty(), "no Price lookup for a single line");
    }

    #[test]
    fn zero_and_excess_rows_handled() {
        let request_with_zero =
            request(vec![line(RowKind::Content, dec!(1), dec!(20)), line(RowKind::Other, dec!(1), dec!(0))]);
        let planned = plan(&request_with_zero, &itemising(), &HashMap::new()).unwrap();
        assert_eq!(planned.items.len(), 1);

        let many = request(vec![line(RowKind::Content, dec!(1), dec!(1)); MAX_LINE_ITEMS + 1]);
        let planned = plan(&many, &itemising(), &HashMap::new()).unwrap();
        assert_eq!(
            planned.items,
            vec![Item::Inline { unit_amount: 10100, quantity: 1, label: name("Invoice 2026-0012") }]
        );
        assert!(planned.warnings[0].contains("100 line items"), "{:?}", planned.warnings);
    }

    #[test]
    fn mismatched_sum_falls_back() {
        let mut request = request(vec![line(RowKind::Content, dec!(1), dec!(20))]);
        request.amount = eur(dec!(25));
        let planned = plan(&request, &itemising(), &HashMap::new()).unwrap();
        assert_eq!(
            planned.items,
            vec![Item::Inline { unit_amount: 2500, quantity: 1, label: name("Invoice 2026-0012") }]
        );
        assert!(planned.warnings[0].contains("add up"), "{:?}", planned.warnings);
    }

    #[test]
    fn configured_product_labels_rows_without_their_own_reference() {
        let config = itemising().with_line_item(LineItemLabel::Product("prod_general".into())).unwrap();
        let request = request(vec![line(RowKind::Other, dec!(1), dec!(3))]);
        let planned = plan(&request, &config, &HashMap::new()).unwrap();
        assert_eq!(
            planned.items,
            vec![Item::Inline { unit_amount: 300, quantity: 1, label: Label::Product("prod_general".into()) }]
        );
    }

    fn any_line() -> impl proptest::strategy::Strategy<Value = StartLine> {
        use proptest::prelude::*;
        let kinds = prop_oneof![
            Just(RowKind::Credits),
            Just(RowKind::Content),
            Just(RowKind::ProjectWork),
            Just(RowKind::Other)
        ];
        // Quantities with up to two decimals, unit prices from -50.00 to 500.00
        // EUR, and only rows whose total fits the cent.
        (kinds, 1_i64..=400, -5_000_i64..=50_000).prop_filter_map("total has sub-cent digits", |(kind, q, cents)| {
            let quantity = Decimal::new(q, 2);
            let unit = Decimal::new(cents, 2);
            let total = unit * quantity;
            total.fract().round_dp(2).eq(&total.fract()).then(|| line(kind, quantity, unit))
        })
    }

    proptest::proptest! {
        #[test]
        fn plan_always_charges_exactly_the_payment_amount(
            lines in proptest::collection::vec(any_line(), 1..8),
            price_unit in 1_i64..=2_000,
        ) {
            let request = request(lines);
            proptest::prop_assume!(!request.amount.is_zero() && !request.amount.is_negative());

            let planned = plan(&request, &itemising(), &credits_price(price_unit)).unwrap();

            let sum: i64 = planned
                .items
                .iter()
                .map(|item| item.amount().unwrap())
                .sum();
            proptest::prop_assert_eq!(sum, to_stripe_amount(request.amount).unwrap());
            for item in &planned.items {
                let (Item::Price { unit_amount, quantity, .. } | Item::Inline { unit_amount, quantity, .. }) = item;
                proptest::prop_assert!(*unit_amount > 0 && *quantity > 0, "{item:?}");
            }
        }
    }
}
