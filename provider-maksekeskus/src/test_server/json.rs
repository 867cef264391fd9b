//! The JSON the fake writes: transaction and refund objects, signed
//! messages and error bodies, with amounts as JSON numbers (`25.0`) the way
//! Maksekeskus writes them, produced from decimal text and never from `f64`.

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{FakeRefund, FakeTransaction, RedirectEntry};
use crate::timestamp::MAKSEKESKUS_FORMAT;

/// A decimal written as a JSON number with at least one fraction digit.
struct JsonNumber(Decimal);

impl Serialize for JsonNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.0.normalize().to_string();
        let text = if text.contains('.') { text } else { format!("{text}.0") };
        let raw = RawValue::from_string(text).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// `2026-11-30T10:10:02+0000`; a time that cannot be written becomes empty.
pub(super) fn timestamp(at: OffsetDateTime) -> String {
    at.format(MAKSEKESKUS_FORMAT).unwrap_or_default()
}

#[derive(Serialize)]
struct TransactionJson<'a> {
    id: &'a str,
    object: &'static str,
    created_at: String,
    status: &'static str,
    amount: JsonNumber,
    currency: &'a str,
    reference: Option<&'a str>,
    merchant_data: Option<&'a str>,
    recurring_required: bool,
    #[serde(rename = "type")]
    kind: Option<&'static str>,
    method: Option<&'static str>,
    channel: Option<&'static str>,
    country: Option<&'static str>,
    customer: Value,
    transaction_url: Option<&'a Value>,
    payment_methods: Value,
    #[serde(rename = "_links")]
    links: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refunded_amount: Option<JsonNumber>,
}

/// Writes a transaction object as create, get and list return it.
pub(super) fn transaction(
    transaction: &FakeTransaction,
    base_url: &str,
    redirect: RedirectEntry,
) -> Result<String, serde_json::Error> {
    serde_json::to_string(&transaction_json(transaction, base_url, redirect))
}

/// Writes a list of transaction objects.
pub(super) fn transactions(
    list: &[&FakeTransaction],
    base_url: &str,
    redirect: RedirectEntry,
) -> Result<String, serde_json::Error> {
    let objects: Vec<TransactionJson<'_>> =
        list.iter().map(|item| transaction_json(item, base_url, redirect)).collect();
    serde_json::to_string(&objects)
}

fn transaction_json<'a>(
    transaction: &'a FakeTransaction,
    base_url: &str,
    redirect: RedirectEntry,
) -> TransactionJson<'a> {
    let id = transaction.id.as_str();
    let paid = transaction.completed_at.is_some();
    let page = |method: Option<&str>| match method {
        Some(method) => format!("{base_url}/pay.html?method={method}&trx={id}"),
        None => format!("{base_url}/pay.html?trx={id}"),
    };
    TransactionJson {
        id,
        object: "transaction",
        created_at: timestamp(transaction.created_at),
        status: transaction.status.as_str(),
        amount: JsonNumber(transaction.amount),
        currency: &transaction.currency,
        reference: transaction.reference.as_deref(),
        merchant_data: transaction.merchant_data.as_deref(),
        recurring_required: false,
        kind: paid.then_some("banklink"),
        method: paid.then_some("swedbank"),
        channel: paid.then_some("Swedbank"),
        country: paid.then_some("ee"),
        customer: json!({
            "id": format!("customer-{id}"),
            "ip": transaction.customer_ip,
            "ip_country": "ee",
            "email": null,
            "name": null,
            "country": "ee",
            "locale": transaction.locale,
        }),
        transaction_url: transaction.transaction_url.as_ref(),
        payment_methods: json!({
            "banklinks": [{ "name": "swedbank", "url": page(Some("EE_SWED")), "country": "ee" }],
            "cards": [{ "name": "visa", "url": page(Some("visa")) }],
            "other": match redirect {
                RedirectEntry::Listed => json!([{ "name": "redirect", "url": page(None) }]),
                RedirectEntry::Omitted => json!([]),
            },
        }),
        links: json!({ "self": { "href": format!("{base_url}/v1/transactions/{id}") } }),
        completed_at: transaction.completed_at.map(timestamp),
        refunded_amount: paid.then_some(JsonNumber(transaction.refunded_amount)),
    }
}

#[derive(Serialize)]
struct RefundJson<'a> {
    id: &'a str,
    object: &'static str,
    transaction: Value,
    amount: JsonNumber,
    comment: &'a str,
    status: &'a str,
    created_at: String,
}

/// Writes a refund object, embedding its transaction's id and status.
pub(super) fn refund(refund: &FakeRefund, transaction: Option<&FakeTransaction>) -> Result<String, serde_json::Error> {
    let status = transaction.map(|transaction| transaction.status.as_str());
    serde_json::to_string(&RefundJson {
        id: &refund.id,
        object: "refund",
        transaction: json!({ "id": refund.transaction_id, "status": status }),
        amount: JsonNumber(refund.amount),
        comment: &refund.comment,
        status: refund.status.as_str(),
        created_at: timestamp(refund.created_at),
    })
}

#[derive(Serialize)]
struct PaymentReturnJson<'a> {
    shop: &'a str,
    amount: JsonNumber,
    currency: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    merchant_data: Option<&'a str>,
    transaction: &'a str,
    status: &'static str,
    signature: &'static str,
    message_time: String,
    message_type: &'static str,
    customer_name: &'static str,
}

/// Writes the `json` parameter of a `payment_return` for the transaction's status.
pub(super) fn payment_return(
    shop_id: &str,
    transaction: &FakeTransaction,
    now: OffsetDateTime,
) -> Result<String, serde_json::Error> {
    serde_json::to_string(&PaymentReturnJson {
        shop: shop_id,
        amount: JsonNumber(transaction.amount),
        currency: &transaction.currency,
        reference: transaction.reference.as_deref(),
        merchant_data: transaction.merchant_data.as_deref(),
        transaction: &transaction.id,
        status: transaction.status.as_str(),
        signature: "",
        message_time: timestamp(now),
        message_type: "payment_return",
        customer_name: "Test Customer",
    })
}

/// Writes the `json` parameter of a card flow's `token_return` for the transaction.
pub(super) fn token_return(transaction: &FakeTransaction, now: OffsetDateTime) -> Result<String, serde_json::Error> {
    let message = json!({
        "transaction": {
            "id": transaction.id,
            "status": transaction.status.as_str(),
            "type": "card",
            "method": "visa",
            "country": "ee",
        },
        "token": {
            "id": format!("tok_{}", transaction.id),
            "multiuse": false,
            "valid_until": timestamp(now + time::Duration::minutes(30)),
        },
        "message_time": timestamp(now),
        "message_type": "token_return",
    });
    serde_json::to_string(&message)
}

/// A field error in an error body.
pub(super) struct FieldProblem {
    pub kind: &'static str,
    pub parameter: &'static str,
    pub expected: &'static str,
}

/// Writes the `{code, message, errors}` body of a failed request.
pub(super) fn error_body(code: u32, message: &str, errors: &[FieldProblem]) -> String {
    let errors: Vec<Value> = errors
        .iter()
        .map(|error| json!({ "type": error.kind, "parameter": error.parameter, "expected": error.expected }))
        .collect();
    json!({ "code": code, "message": message, "errors": errors }).to_string()
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn amounts_written_as_fractional_numbers() {
        for (amount, text) in [(dec!(25.00), "25.0"), (dec!(12.95), "12.95"), (dec!(0.50), "0.5"), (dec!(0), "0.0")] {
            assert_eq!(serde_json::to_string(&JsonNumber(amount)).unwrap(), text);
        }
    }
}
