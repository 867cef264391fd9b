//! Amounts on the wire: two-decimal strings out, numbers or strings in.
//!
//! Maksekeskus wants request amounts as decimal strings (`"25.00"`) but
//! responds with JSON numbers (`25.0`) and sometimes strings. [`WireDecimal`]
//! reads either from the exact JSON text, so no amount ever passes through
//! `f64`, and turning it into [`Money`] rejects fraction digits the currency
//! does not have instead of rounding them.

use billing_domain::{Currency, Money, MoneyError};
use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A decimal read from the exact text of a JSON number or string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireDecimal(pub Decimal);

impl<'de> Deserialize<'de> for WireDecimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<WireDecimal, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let text = raw.get();
        let number_text = if text.starts_with('"') {
            serde_json::from_str::<String>(text).map_err(D::Error::custom)?
        } else {
            text.to_owned()
        };
        parse_decimal(&number_text).map(WireDecimal).map_err(D::Error::custom)
    }
}

/// Parses a plain decimal (`25`, `25.0`, `-0.5`) or a JSON exponent form (`2.5e1`).
pub(crate) fn parse_decimal(text: &str) -> Result<Decimal, AmountError> {
    let malformed = || AmountError::Malformed { value: text.to_owned() };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(index) => (&text[..index], Some(&text[index + 1..])),
        None => (text, None),
    };
    if !is_plain_decimal(mantissa) {
        return Err(malformed());
    }
    match exponent {
        None => Decimal::from_str_exact(mantissa).map_err(|_| malformed()),
        Some(exponent) => {
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(malformed());
            }
            Decimal::from_scientific(text).map_err(|_| malformed())
        }
    }
}

/// Whether `text` is an optional minus sign, digits, and optionally a dot and more digits.
fn is_plain_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    all_digits(whole) && fraction.is_none_or(all_digits)
}

/// Builds a positive or zero amount in `currency_code` from a wire decimal.
pub(crate) fn money_from_wire(amount: Decimal, currency_code: &str) -> Result<Money, AmountError> {
    let currency = Currency::from_code(currency_code).map_err(AmountError::Currency)?;
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(AmountError::Negative { value: amount, currency });
    }
    Money::new(amount, currency).map_err(AmountError::Currency)
}

/// Formats an amount the way the create-transaction and refund requests
/// expect it: a decimal string with exactly the currency's fraction digits.
pub(crate) fn format_amount(money: Money) -> String {
    // `Money` keeps its decimal at the currency's scale, so 25 EUR prints as "25.00".
    money.amount().to_string()
}

/// A rejected amount from the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    #[error("amount {value:?} is not a decimal number")]
    Malformed { value: String },

    #[error("amount {value} {currency} is negative")]
    Negative { value: Decimal, currency: Currency },

    #[error(transparent)]
    Currency(MoneyError),
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn numbers_and_strings_parse_exactly() {
        for (json, expected) in [
            ("25.0", dec!(25.0)),
            ("\"25.00\"", dec!(25.00)),
            ("0.5", dec!(0.5)),
            ("12.95", dec!(12.95)),
            ("20", dec!(20)),
            ("2.5e1", dec!(25)),
            ("0.1", dec!(0.1)),
        ] {
            let parsed: WireDecimal = serde_json::from_str(json).unwrap();
            assert_eq!(parsed.0, expected, "{json}");
        }
    }

    #[test]
    fn malformed_amounts_are_rejected() {
        for json in ["\"\"", "\"12,5\"", "\"1_000\"", "\" 5\"", "\"5.\"", "\".5\"", "true", "\"NaN\"", "\"1e\""] {
            assert!(serde_json::from_str::<WireDecimal>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn excess_fraction_digits_are_an_error() {
        let error = money_from_wire(dec!(25.001), "EUR").unwrap_err();
        assert!(matches!(error, AmountError::Currency(MoneyError::ExcessPrecision { .. })), "{error}");
        assert_eq!(money_from_wire(dec!(25.0), "eur").unwrap().amount(), dec!(25.00));
    }

    #[test]
    fn negative_and_unknown_currency_are_errors() {
        assert!(matches!(money_from_wire(dec!(-1), "EUR"), Err(AmountError::Negative { .. })));
        assert!(matches!(money_from_wire(dec!(1), "EUX"), Err(AmountError::Currency(_))));
    }

    #[test]
    fn format_uses_two_decimals_for_eur() {
        let money = Money::new(dec!(25), Currency::EUR).unwrap();
        assert_eq!(format_amount(money), "25.00");
        let money = Money::new(dec!(0.5), Currency::EUR).unwrap();
        assert_eq!(format_amount(money), "0.50");
    }
}
