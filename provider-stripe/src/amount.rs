//! Stripe's integer amounts: conversion between [`Money`] and the minor units
//! Stripe's API expects and reports.
//!
//! Stripe's minor units mostly follow ISO 4217 but not always, so this module
//! keeps Stripe's own table instead of trusting the currency's exponent. The
//! rules, from Stripe's currencies page (docs.stripe.com/currencies, "Zero-decimal
//! currencies", "Three-decimal currencies" and "Special cases"):
//!
//! - BIF, CLP, DJF, GNF, JPY, KMF, KRW, MGA, PYG, RWF, UGX, VND, VUV, XAF, XOF
//!   and XPF are zero-decimal: the amount is in whole units. ISO 4217 gives MGA
//!   two decimals, so an MGA amount with a fraction cannot be charged.
//! - BHD, JOD, KWD, OMR and TND are three-decimal, and the last digit must be 0.
//! - ISK is sent with two decimals, but since 2023-04-14 the amount must be a
//!   multiple of 100 (whole krónur).
//! - Every other currency is sent with two decimals. HUF and TWD are charged
//!   with two decimals too; only their payouts are restricted.
//!
//! This module never rounds: a value Stripe cannot take exactly is an
//! [`AmountError`] naming the value and the rule.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use billing_domain::{Currency, Money};

/// Currencies Stripe takes in whole units.
const ZERO_DECIMAL: &[&str] =
    &["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"];

/// Currencies Stripe takes with three decimals whose last digit must be 0.
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// How Stripe counts one currency: the number of fraction digits in its
/// integer amounts, and the step every amount must be a multiple of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripeUnit {
    pub exponent: u32,
    pub step: i64,
}

/// Stripe's unit for `currency`.
pub fn stripe_unit(currency: Currency) -> StripeUnit {
    let code = currency.code();
    if ZERO_DECIMAL.contains(&code) {
        return StripeUnit { exponent: 0, step: 1 };
    }
    if THREE_DECIMAL.contains(&code) {
        return StripeUnit { exponent: 3, step: 10 };
    }
    if code == "ISK" {
        return StripeUnit { exponent: 2, step: 100 };
    }
    StripeUnit { exponent: 2, step: 1 }
}

/// Converts a positive amount to the integer Stripe expects.
///
/// # Errors
///
/// [`AmountError::NotPositive`] for zero or less,
/// [`AmountError::TooPrecise`] when the amount has fraction digits Stripe does
/// not take for the currency, [`AmountError::NotAStep`] when the integer is not
/// a multiple of the currency's step, [`AmountError::Overflow`] when it does not
/// fit an `i64`.
pub fn to_stripe_amount(money: Money) -> Result<i64, AmountError> {
    if money.is_zero() || money.is_negative() {
        return Err(AmountError::NotPositive { amount: money });
    }

    let unit = stripe_unit(money.currency());
    let scaled = money
        .amount()
        .checked_mul(Decimal::from(10_i64.pow(unit.exponent)))
        .ok_or(AmountError::Overflow { amount: money })?;
    if !scaled.fract().is_zero() {
        return Err(AmountError::TooPrecise { amount: money, exponent: unit.exponent });
    }
    let minor = scaled.trunc().to_i64().ok_or(AmountError::Overflow { amount: money })?;

    if minor % unit.step != 0 {
        return Err(AmountError::NotAStep { amount: money, minor, step: unit.step });
    }
    Ok(minor)
}

/// Converts an integer amount Stripe reported, with its lower-case currency
/// code, back to [`Money`].
///
/// # Errors
///
/// [`AmountError::UnknownCurrency`] for a code that is not an active ISO 4217
/// code, [`AmountError::NotRepresentable`] when the value has fraction digits
/// the currency does not have (150 ISK is 1.50 krónur).
pub fn from_stripe_amount(minor: i64, currency_code: &str) -> Result<Money, AmountError> {
    let currency = Currency::from_code(currency_code)
        .map_err(|_| AmountError::UnknownCurrency { code: currency_code.to_owned() })?;
    let unit = stripe_unit(currency);
    let amount = Decimal::try_from_i128_with_scale(i128::from(minor), unit.exponent)
        .map_err(|_| AmountError::NotRepresentable { minor, currency })?;
    Money::new(amount, currency).map_err(|_| AmountError::NotRepresentable { minor, currency })
}

/// Why an amount cannot cross the boundary to or from Stripe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount {amount} is not positive; Stripe charges only positive amounts")]
    NotPositive { amount: Money },

    #[error(
        "amount {amount} has more fraction digits than Stripe takes for {} ({exponent}); \
         change the invoice total, it is never rounded here",
        amount.currency()
    )]
    TooPrecise { amount: Money, exponent: u32 },

    #[error(
        "amount {amount} is {minor} in Stripe's minor units, but Stripe takes {} only in steps of {step}; \
         change the invoice total to a multiple, it is never rounded here",
        amount.currency()
    )]
    NotAStep { amount: Money, minor: i64, step: i64 },

    #[error("amount {amount} does not fit Stripe's integer amounts")]
    Overflow { amount: Money },

    #[error("Stripe reported currency {code:?}, which is not an active ISO 4217 code")]
    UnknownCurrency { code: String },

    #[error("Stripe reported {minor} minor units of {currency}, which is not an exact {currency} amount")]
    NotRepresentable { minor: i64, currency: Currency },
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    fn money(amount: Decimal, code: &str) -> Money {
        Money::new(amount, Currency::from_code(code).unwrap()).unwrap()
    }

    #[test]
    fn two_decimal_currencies_use_cents() {
        assert_eq!(to_stripe_amount(money(dec!(25.00), "EUR")).unwrap(), 2500);
        assert_eq!(to_stripe_amount(money(dec!(0.01), "USD")).unwrap(), 1);
        assert_eq!(to_stripe_amount(money(dec!(1234.56), "HUF")).unwrap(), 123456);
    }

    #[test]
    fn zero_decimal_currencies_use_whole_units() {
        for code in ["JPY", "KRW", "CLP", "VND", "UGX", "XOF"] {
            assert_eq!(to_stripe_amount(money(dec!(500), code)).unwrap(), 500, "{code}");
        }
    }

    #[test]
    fn mga_is_zero_decimal_at_stripe() {
        assert_eq!(to_stripe_amount(money(dec!(1500), "MGA")).unwrap(), 1500);
        let error = to_stripe_amount(money(dec!(1500.50), "MGA")).unwrap_err();
        assert!(matches!(error, AmountError::TooPrecise { exponent: 0, .. }), "{error}");
    }

    #[test]
    fn isk_is_sent_with_two_decimals() {
        assert_eq!(to_stripe_amount(money(dec!(5), "ISK")).unwrap(), 500);
        assert_eq!(from_stripe_amount(500, "isk").unwrap(), money(dec!(5), "ISK"));
    }

    #[test]
    fn fractional_isk_from_stripe_is_rejected() {
        let error = from_stripe_amount(150, "isk").unwrap_err();
        assert_eq!(error, AmountError::NotRepresentable { minor: 150, currency: Currency::from_code("ISK").unwrap() });
    }

    #[test]
    fn three_decimal_currencies_need_a_trailing_zero() {
        assert_eq!(to_stripe_amount(money(dec!(5.120), "KWD")).unwrap(), 5120);
        assert_eq!(to_stripe_amount(money(dec!(12.5), "BHD")).unwrap(), 12500);
        let error = to_stripe_amount(money(dec!(5.124), "KWD")).unwrap_err();
        assert_eq!(error, AmountError::NotAStep { amount: money(dec!(5.124), "KWD"), minor: 5124, step: 10 });
        assert!(error.to_string().contains("5124"), "{error}");
        assert!(error.to_string().contains("never rounded"), "{error}");
    }

    #[test]
    fn zero_and_negative_amounts_are_rejected() {
        assert!(matches!(to_stripe_amount(money(dec!(0), "EUR")), Err(AmountError::NotPositive { .. })));
        assert!(matches!(to_stripe_amount(money(dec!(-1), "EUR")), Err(AmountError::NotPositive { .. })));
    }

    #[test]
    fn reported_amounts_round_trip() {
        assert_eq!(from_stripe_amount(2500, "eur").unwrap(), money(dec!(25), "EUR"));
        assert_eq!(from_stripe_amount(500, "jpy").unwrap(), money(dec!(500), "JPY"));
        assert_eq!(from_stripe_amount(5120, "kwd").unwrap(), money(dec!(5.12), "KWD"));
    }

    #[test]
    fn unknown_reported_currency_is_rejected() {
        assert_eq!(from_stripe_amount(1, "xyz").unwrap_err(), AmountError::UnknownCurrency { code: "xyz".into() });
    }
}
