//! Amounts of money in ISO 4217 currencies, exact to the currency's minor unit.
//!
//! `Money` is a `rust_decimal::Decimal` plus a [`Currency`] that knows its
//! minor-unit exponent. Every constructor and conversion is checked: a value
//! with more fraction digits than the currency allows, an unknown code, or
//! arithmetic across currencies is a [`MoneyError`]. This module never rounds
//! and never touches floating point.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 4217 currency with its minor-unit exponent (EUR 2, JPY 0, KWD 3).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    exponent: u32,
}

/// ISO 4217 active codes and their minor units. Codes with no minor unit
/// defined by ISO (XAU and other metals, XXX) are left out on purpose.
#[rustfmt::skip]
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2),
    ("AUD", 2), ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2),
    ("BHD", 3), ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2), ("BRL", 2), ("BSD", 2),
    ("BTN", 2), ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHF", 2),
    ("CLP", 0), ("CNY", 2), ("COP", 2), ("CRC", 2), ("CUP", 2), ("CVE", 2), ("CZK", 2),
    ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2),
    ("EUR", 2), ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2),
    ("GMD", 2), ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2),
    ("HUF", 2), ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0),
    ("JMD", 2), ("JOD", 3), ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0),
    ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2),
    ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2),
    ("MKD", 2), ("MMK", 2), ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2),
    ("MWK", 2), ("MXN", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2),
    ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2),
    ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2),
    ("RUB", 2), ("RWF", 0), ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2),
    ("SGD", 2), ("SHP", 2), ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2),
    ("SVC", 2), ("SYP", 2), ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3),
    ("TOP", 2), ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0),
    ("USD", 2), ("UYU", 2), ("UZS", 2), ("VES", 2), ("VND", 0), ("VUV", 0), ("WST", 2),
    ("XAF", 0), ("XCD", 2), ("XOF", 0), ("XPF", 0), ("YER", 2), ("ZAR", 2), ("ZMW", 2),
    ("ZWG", 2),
];

impl Currency {
    pub const EUR: Currency = Currency { code: "EUR", exponent: 2 };
    pub const USD: Currency = Currency { code: "USD", exponent: 2 };
    pub const GBP: Currency = Currency { code: "GBP", exponent: 2 };
    pub const SEK: Currency = Currency { code: "SEK", exponent: 2 };
    pub const JPY: Currency = Currency { code: "JPY", exponent: 0 };
    pub const KWD: Currency = Currency { code: "KWD", exponent: 3 };

    /// Looks a currency up by its ISO 4217 alphabetic code, in any letter case.
    ///
    /// # Errors
    ///
    /// [`MoneyError::UnknownCurrency`] when the code is not an active ISO 4217 code.
    pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
        let upper = code.to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(known, _)| *known == upper)
            .map(|&(code, exponent)| Currency { code, exponent })
            .ok_or_else(|| MoneyError::UnknownCurrency { code: code.to_owned() })
    }

    /// The upper-case ISO 4217 code, for example `"EUR"`.
    pub fn code(self) -> &'static str {
        self.code
    }

    /// Number of fraction digits of the minor unit: 2 for EUR, 0 for JPY, 3 for KWD.
    pub fn exponent(self) -> u32 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::from_code(&code).map_err(serde::de::Error::custom)
    }
}

/// An exact amount in one currency. Its scale is always the currency's exponent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyRepr", into = "MoneyRepr")]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

#[derive(Serialize, Deserialize)]
struct MoneyRepr {
    amount: Decimal,
    currency: Currency,
}

impl TryFrom<MoneyRepr> for Money {
    type Error = MoneyError;

    fn try_from(repr: MoneyRepr) -> Result<Money, MoneyError> {
        Money::new(repr.amount, repr.currency)
    }
}

impl From<Money> for MoneyRepr {
    fn from(money: Money) -> MoneyRepr {
        MoneyRepr { amount: money.amount, currency: money.currency }
    }
}

impl Money {
    /// Creates an amount, rejecting fraction digits the currency does not have.
    ///
    /// Trailing zeros beyond the exponent are accepted (`12.500` EUR is `12.50` EUR);
    /// a significant digit beyond it is an error, never rounded away.
    ///
    /// # Errors
    ///
    /// [`MoneyError::ExcessPrecision`] when `amount` has more significant fraction
    /// digits than `currency` allows.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        let normalized = amount.normalize();
        if normalized.scale() > currency.exponent {
            return Err(MoneyError::ExcessPrecision { amount, currency });
        }

        let mut exact = normalized;
        exact.rescale(currency.exponent);
        Ok(Money { amount: exact, currency })
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Money {
        let mut amount = Decimal::ZERO;
        amount.rescale(currency.exponent);
        Money { amount, currency }
    }

    /// Creates an amount from an integer count of minor units (cents, öre, fils).
    ///
    /// # Errors
    ///
    /// [`MoneyError::Overflow`] when the value does not fit a decimal of that scale.
    pub fn from_minor(minor: i64, currency: Currency) -> Result<Money, MoneyError> {
        let amount = Decimal::try_from_i128_with_scale(i128::from(minor), currency.exponent)
            .map_err(|_| MoneyError::Overflow { operation: "from_minor", currency })?;
        Ok(Money { amount, currency })
    }

    /// Converts to an integer count of minor units.
    ///
    /// # Errors
    ///
    /// [`MoneyError::Overflow`] when the count does not fit an `i64`.
    pub fn to_minor(&self) -> Result<i64, MoneyError> {
        let mut scaled = self.amount;
        scaled.rescale(self.currency.exponent);
        i64::try_from(scaled.mantissa())
            .map_err(|_| MoneyError::Overflow { operation: "to_minor", currency: self.currency })
    }

    /// The decimal amount, at the currency's scale.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    pub fn is_negative(&self) -> bool {
        self.amount.is_sign_negative() && !self.amount.is_zero()
    }

    /// Adds two amounts of the same currency.
    ///
    /// # Errors
    ///
    /// [`MoneyError::CurrencyMismatch`] for different currencies,
    /// [`MoneyError::Overflow`] when the sum does not fit.
    pub fn checked_add(&self, other: Money) -> Result<Money, MoneyError> {
        self.ensure_same_currency(other)?;
        let sum = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow { operation: "add", currency: self.currency })?;
        Money::new(sum, self.currency)
    }

    /// Subtracts an amount of the same currency.
    ///
    /// # Errors
    ///
    /// [`MoneyError::CurrencyMismatch`] for different currencies,
    /// [`MoneyError::Overflow`] when the difference does not fit.
    pub fn checked_sub(&self, other: Money) -> Result<Money, MoneyError> {
        self.ensure_same_currency(other)?;
        let difference = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow { operation: "subtract", currency: self.currency })?;
        Money::new(difference, self.currency)
    }

    /// Multiplies by a quantity; the product must still fit the minor unit.
    ///
    /// # Errors
    ///
    /// [`MoneyError::ExcessPrecision`] when the product has fraction digits the
    /// currency does not have (a unit price of 0.05 EUR times 0.5),
    /// [`MoneyError::Overflow`] when it does not fit.
    pub fn checked_mul(&self, quantity: Decimal) -> Result<Money, MoneyError> {
        let product = self
            .amount
            .checked_mul(quantity)
            .ok_or(MoneyError::Overflow { operation: "multiply", currency: self.currency })?;
        Money::new(product, self.currency)
    }

    fn ensure_same_currency(&self, other: Money) -> Result<(), MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch { left: self.currency, right: other.currency });
        }
        Ok(())
    }
}

impl PartialOrd for Money {
    /// Amounts compare only within one currency; across currencies there is no order.
    fn partial_cmp(&self, other: &Money) -> Option<std::cmp::Ordering> {
        if self.currency != other.currency {
            return None;
        }
        self.amount.partial_cmp(&other.amount)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// An amount that could not be built or combined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    #[error("unknown currency code {code:?}: use an active ISO 4217 code such as EUR or USD")]
    UnknownCurrency { code: String },

    #[error("amount {amount} has more fraction digits than {currency} allows ({}); round it explicitly before passing it in", currency.exponent)]
    ExcessPrecision { amount: Decimal, currency: Currency },

    #[error("cannot combine {left} with {right}: amounts must share one currency")]
    CurrencyMismatch { left: Currency, right: Currency },

    #[error("{operation} overflowed for an amount in {currency}")]
    Overflow { operation: &'static str, currency: Currency },
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn currency_lookup_ignores_case() {
        assert_eq!(Currency::from_code("eur").unwrap(), Currency::EUR);
        assert_eq!(Currency::from_code("Jpy").unwrap().exponent(), 0);
    }

    #[test]
    fn currency_exponents_follow_iso_4217() {
        for code in ["BHD", "JOD", "KWD", "OMR", "TND"] {
            assert_eq!(Currency::from_code(code).unwrap().exponent(), 3, "{code}");
        }
        for code in ["JPY", "KRW", "CLP", "VND", "XOF", "XAF", "XPF", "BIF", "DJF", "GNF"] {
            assert_eq!(Currency::from_code(code).unwrap().exponent(), 0, "{code}");
        }
        for code in ["EUR", "USD", "GBP", "SEK"] {
            assert_eq!(Currency::from_code(code).unwrap().exponent(), 2, "{code}");
        }
    }

    #[test]
    fn unknown_currency_is_an_error() {
        let error = Currency::from_code("EUX").unwrap_err();
        assert_eq!(error, MoneyError::UnknownCurrency { code: "EUX".into() });
        assert!(error.to_string().contains("EUX"));
    }

    #[test]
    fn excess_fraction_digits_are_rejected() {
        let error = Money::new(dec!(10.005), Currency::EUR).unwrap_err();
        assert!(matches!(error, MoneyError::ExcessPrecision { .. }));
        assert!(Money::new(dec!(1.5), Currency::JPY).is_err());
        assert!(Money::new(dec!(1.0005), Currency::KWD).is_err());
    }

    #[test]
    fn trailing_zeros_are_not_excess() {
        let money = Money::new(dec!(12.500), Currency::EUR).unwrap();
        assert_eq!(money.amount().to_string(), "12.50");
        assert_eq!(Money::new(dec!(100.00), Currency::JPY).unwrap().to_minor().unwrap(), 100);
    }

    #[test]
    fn minor_units_follow_the_exponent() {
        assert_eq!(Money::new(dec!(12.34), Currency::EUR).unwrap().to_minor().unwrap(), 1234);
        assert_eq!(Money::new(dec!(1234), Currency::JPY).unwrap().to_minor().unwrap(), 1234);
        assert_eq!(Money::new(dec!(5.124), Currency::KWD).unwrap().to_minor().unwrap(), 5124);
        assert_eq!(Money::from_minor(1234, Currency::EUR).unwrap().amount(), dec!(12.34));
    }

    #[test]
    fn mixed_currencies_do_not_add() {
        let eur = Money::new(dec!(1), Currency::EUR).unwrap();
        let usd = Money::new(dec!(1), Currency::USD).unwrap();
        assert_eq!(
            eur.checked_add(usd).unwrap_err(),
            MoneyError::CurrencyMismatch { left: Currency::EUR, right: Currency::USD }
        );
        assert!(eur.checked_sub(usd).is_err());
        assert_eq!(eur.partial_cmp(&usd), None);
    }

    #[test]
    fn overflow_is_an_error() {
        let huge = Money::new(Decimal::MAX, Currency::JPY).unwrap();
        assert!(matches!(huge.checked_add(huge), Err(MoneyError::Overflow { .. })));
        assert!(matches!(huge.to_minor(), Err(MoneyError::Overflow { .. })));
    }

    #[test]
    fn multiplication_keeps_precision_checked() {
        let unit = Money::new(dec!(0.05), Currency::EUR).unwrap();
        assert_eq!(unit.checked_mul(dec!(3)).unwrap().amount(), dec!(0.15));
        assert!(unit.checked_mul(dec!(0.5)).is_err());
    }

    #[test]
    fn serde_round_trip_rejects_bad_values() {
        let money = Money::new(dec!(9.90), Currency::SEK).unwrap();
        let json = serde_json::to_string(&money).unwrap();
        assert_eq!(json, r#"{"amount":"9.90","currency":"SEK"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
        assert!(serde_json::from_str::<Money>(r#"{"amount":"9.999","currency":"SEK"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount":"9","currency":"XYZ"}"#).is_err());
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        prop::sample::select(CURRENCIES.to_vec()).prop_map(|(code, exponent)| Currency { code, exponent })
    }

    proptest! {
        #[test]
        fn minor_units_round_trip(minor in -1_000_000_000_000i64..1_000_000_000_000, currency in any_currency()) {
            let money = Money::from_minor(minor, currency).unwrap();
            prop_assert_eq!(money.to_minor().unwrap(), minor);
            prop_assert_eq!(Money::new(money.amount(), currency).unwrap(), money);
        }

        #[test]
        fn addition_is_exact(a in -1_000_000_000i64..1_000_000_000, b in -1_000_000_000i64..1_000_000_000, currency in any_currency()) {
            let left = Money::from_minor(a, currency).unwrap();
            let right = Money::from_minor(b, currency).unwrap();
            prop_assert_eq!(left.checked_add(right).unwrap().to_minor().unwrap(), a + b);
            prop_assert_eq!(left.checked_add(right).unwrap().checked_sub(right).unwrap(), left);
        }

        #[test]
        fn arbitrary_input_never_panics(mantissa in any::<i64>(), scale in 0u32..28, code in "[A-Za-z]{0,4}") {
            let amount = Decimal::new(mantissa, scale);
            if let Ok(currency) = Currency::from_code(&code) {
                if let Ok(money) = Money::new(amount, currency) {
                    let _ = money.to_minor();
                    let _ = money.checked_add(money);
                    let _ = money.checked_mul(amount);
                }
            }
        }

        #[test]
        fn one_digit_too_many_is_rejected(minor in 1i64..1_000_000, extra in 1i64..10, currency in any_currency()) {
            let scale = currency.exponent() + 1;
            let amount = Decimal::new(minor * 10 + extra, scale);
            prop_assert!(Money::new(amount, currency).is_err());
        }
    }
}
