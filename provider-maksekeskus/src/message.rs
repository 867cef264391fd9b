//! Return and notification messages: where the `json` and `mac` parameters
//! arrive, and what a verified `json` contains.
//!
//! Maksekeskus calls the return, cancel and notification URLs by GET (query
//! parameters) or POST (form fields); one SDK documents a JSON body holding
//! both. [`signed_parameters`] accepts all three. [`verify_message`] checks
//! the MAC over the `json` text exactly as received and only then parses it,
//! branching on `message_type`: `transaction` is a string in
//! `payment_return` and an object in `token_return`.

use std::fmt;

use billing_domain::{Money, WebhookRequest};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::amount::{money_from_wire, AmountError, WireDecimal};
use crate::config::SecretKey;
use crate::mac::{self, MacError};
use crate::status::{TransactionStatus, UnknownStatus};
use crate::timestamp::{self, TimestampError};

/// The two parameters of a message, as received.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedParameters {
    /// The message text, exactly as received after URL or form decoding.
    pub json: String,
    pub mac: String,
}

impl fmt::Debug for SignedParameters {
    /// Prints sizes only: the message carries customer data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedParameters")
            .field("json_bytes", &self.json.len())
            .field("mac_chars", &self.mac.len())
            .finish()
    }
}

/// A verified message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    PaymentReturn(PaymentReturn),
    TokenReturn(TokenReturn),
    /// A verified message of a type this adapter does not act on.
    Other {
        message_type: String,
    },
}

/// A `payment_return` message: the same shape arrives on the browser return
/// and on the server notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReturn {
    pub shop: Option<String>,
    pub transaction_id: String,
    pub status: TransactionStatus,
    /// The transaction amount, when the message carries one.
    pub amount: Option<Money>,
    pub reference: Option<String>,
    /// The `merchant_data` the shop sent: here, the opaque payment id.
    pub merchant_data: Option<String>,
    pub message_time: Option<OffsetDateTime>,
}

/// A `token_return` message from a card flow. It names the transaction but
/// carries no amount, so its state is fetched before anything is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenReturn {
    pub transaction_id: String,
    /// The status the message claims, kept for logs; the fetched state wins.
    pub status: Option<String>,
    pub error: Option<TokenError>,
    pub message_time: Option<OffsetDateTime>,
}

/// The `error` object of a `token_return` (code 1064 is "Token expired").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub code: Option<String>,
    pub message: Option<String>,
}

/// Finds `json` and `mac` in the query string, a form-urlencoded body, or a
/// JSON body that contains both as strings.
///
/// # Errors
///
/// [`WebhookError::MissingParameter`], [`WebhookError::DuplicateParameter`],
/// [`WebhookError::AmbiguousSource`] or [`WebhookError::InvalidJsonBody`].
pub fn signed_parameters(request: &WebhookRequest) -> Result<SignedParameters, WebhookError> {
    let from_query = match request.query.as_deref() {
        Some(query) if !query.is_empty() => form_parameters(query.as_bytes())?,
        _ => Found::default(),
    };
    if from_query.any() {
        if !request.body.is_empty() && body_parameters(request).is_ok_and(|found| found.any()) {
            return Err(WebhookError::AmbiguousSource);
        }
        return from_query.complete();
    }
    body_parameters(request)?.complete()
}

/// Checks the MAC of `parameters` with `secret_key`, then parses the message.
///
/// # Errors
///
/// [`WebhookError::Mac`] before anything is parsed; afterwards
/// [`WebhookError::InvalidMessage`], [`WebhookError::MissingField`],
/// [`WebhookError::UnknownStatus`], [`WebhookError::InvalidAmount`] or
/// [`WebhookError::InvalidTime`].
pub fn verify_message(parameters: &SignedParameters, secret_key: &SecretKey) -> Result<Message, WebhookError> {
    mac::verify(&parameters.json, &parameters.mac, secret_key)?;
    parse_verified(&parameters.json)
}

fn parse_verified(json: &str) -> Result<Message, WebhookError> {
    let head: MessageHead = serde_json::from_str(json)
        .map_err(|source| WebhookError::InvalidMessage { message_type: "Maksekeskus".into(), source })?;
    let Some(message_type) = head.message_type else {
        return Err(WebhookError::MissingField { field: "message_type" });
    };
    match message_type.as_str() {
        "payment_return" => parse_payment_return(json).map(Message::PaymentReturn),
        "token_return" => parse_token_return(json).map(Message::TokenReturn),
        _ => Ok(Message::Other { message_type }),
    }
}

fn parse_payment_return(json: &str) -> Result<PaymentReturn, WebhookError> {
    let wire: PaymentReturnWire = serde_json::from_str(json)
        .map_err(|source| WebhookError::InvalidMessage { message_type: "payment_return".into(), source })?;
    let transaction = wire.transaction;
    let status = wire
        .status
        .parse::<TransactionStatus>()
        .map_err(|source| WebhookError::UnknownStatus { transaction: transaction.clone(), source })?;
    let amount = match (wire.amount, wire.currency) {
        (Some(WireDecimal(amount)), Some(currency)) => Some(
            money_from_wire(amount, &currency)
                .map_err(|source| WebhookError::InvalidAmount { transaction: transaction.clone(), source })?,
        ),
        (Some(_), None) => return Err(WebhookError::MissingField { field: "currency" }),
        (None, _) => None,
    };
    Ok(PaymentReturn {
        shop: wire.shop,
        transaction_id: transaction,
        status,
        amount,
        reference: wire.reference,
        merchant_data: wire.merchant_data.filter(|text| !text.is_empty()),
        message_time: wire.message_time.as_deref().map(timestamp::parse).transpose()?,
    })
}

fn parse_token_return(json: &str) -> Result<TokenReturn, WebhookError> {
    let wire: TokenReturnWire = serde_json::from_str(json)
        .map_err(|source| WebhookError::InvalidMessage { message_type: "token_return".into(), source })?;
    let error = wire.error.map(|error| TokenError {
        code: error.code.map(|code| match code {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        }),
        message: error.message,
    });
    Ok(TokenReturn {
        transaction_id: wire.transaction.id,
        status: wire.transaction.status,
        error,
        message_time: wire.message_time.as_deref().map(timestamp::parse).transpose()?,
    })
}

#[derive(Deserialize)]
struct MessageHead {
    message_type: Option<String>,
}

#[derive(Deserialize)]
struct PaymentReturnWire {
    shop: Option<String>,
    amount: Option<WireDecimal>,
    currency: Option<String>,
    reference: Option<String>,
    merchant_data: Option<String>,
    transaction: String,
    status: String,
    message_time: Option<String>,
}

#[derive(Deserialize)]
struct TokenReturnWire {
    transaction: TokenTransactionWire,
    error: Option<TokenErrorWire>,
    message_time: Option<String>,
}

#[derive(Deserialize)]
struct TokenTransactionWire {
    id: String,
    status: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorWire {
    code: Option<serde_json::Value>,
    message: Option<String>,
}

/// The parameters found in one place, each at most once.
#[derive(Default)]
struct Found {
    json: Option<String>,
    mac: Option<String>,
}

impl Found {
    fn any(&self) -> bool {
        self.json.is_some() || self.mac.is_some()
    }

    fn complete(self) -> Result<SignedParameters, WebhookError> {
        let json = self.json.ok_or(WebhookError::MissingParameter { name: "json" })?;
        let mac = self.mac.ok_or(WebhookError::MissingParameter { name: "mac" })?;
        Ok(SignedParameters { json, mac })
    }

    fn set(&mut self, name: &str, value: String) -> Result<(), WebhookError> {
        let (slot, name) = match name {
            "json" => (&mut self.json, "json"),
            "mac" => (&mut self.mac, "mac"),
            _ => return Ok(()),
        };
        if slot.is_some() {
            return Err(WebhookError::DuplicateParameter { name });
        }
        *slot = Some(value);
        Ok(())
    }
}

fn form_parameters(encoded: &[u8]) -> Result<Found, WebhookError> {
    let mut found = Found::default();
    for (name, value) in form_urlencoded::parse(encoded) {
        found.set(&name, value.into_owned())?;
    }
    Ok(found)
}

fn body_parameters(request: &WebhookRequest) -> Result<Found, WebhookError> {
    let content_type = request.header("content-type").unwrap_or_default().to_ascii_lowercase();
    let looks_like_json = request.body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
    if content_type.contains("json") || (!content_type.contains("form") && looks_like_json) {
        return json_body_parameters(&request.body);
    }
    form_parameters(&request.body)
}

fn json_body_parameters(body: &[u8]) -> Result<Found, WebhookError> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|source| WebhookError::InvalidJsonBody { source })?;
    let mut found = Found::default();
    for name in ["json", "mac"] {
        match object.get(name) {
            None => {}
            Some(serde_json::Value::String(text)) => found.set(name, text.clone())?,
            Some(_) => return Err(WebhookError::ParameterNotString { name }),
        }
    }
    Ok(found)
}

/// A rejected return or notification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    #[error(
        "the {name} parameter is missing; Maksekeskus sends json and mac as query parameters, form fields or a \
         JSON body"
    )]
    MissingParameter { name: &'static str },

    #[error("the {name} parameter appears more than once")]
    DuplicateParameter { name: &'static str },

    #[error("json and mac arrive in both the query string and the body; expected them in one place")]
    AmbiguousSource,

    #[error("the body is not a JSON object holding json and mac")]
    InvalidJsonBody {
        #[source]
        source: serde_json::Error,
    },

    #[error("the {name} field of the JSON body must be a string holding the exact signed text")]
    ParameterNotString { name: &'static str },

    #[error(transparent)]
    Mac(#[from] MacError),

    #[error("the verified json parameter is not a valid {message_type} message")]
    InvalidMessage {
        message_type: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("the verified message has no {field} field")]
    MissingField { field: &'static str },

    #[error("message is for shop {received:?}, but this provider is configured for shop {expected:?}")]
    WrongShop { expected: String, received: String },

    #[error("message for transaction {transaction} has a status this adapter does not know")]
    UnknownStatus {
        transaction: String,
        #[source]
        source: UnknownStatus,
    },

    #[error("message for transaction {transaction} has an invalid amount")]
    InvalidAmount {
        transaction: String,
        #[source]
        source: AmountError,
    },

    #[error("message_time is invalid")]
    InvalidTime(#[from] TimestampError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: Option<&str>, content_type: Option<&str>, body: &str) -> WebhookRequest {
        WebhookRequest {
            headers: content_type.map(|value| ("Content-Type".to_owned(), value.to_owned())).into_iter().collect(),
            query: query.map(str::to_owned),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn parameters_from_query() {
        let found = signed_parameters(&request(Some("json=%7B%22a%22%3A1%7D&mac=AB"), None, "")).unwrap();
        assert_eq!(found.json, r#"{"a":1}"#);
        assert_eq!(found.mac, "AB");
    }

    #[test]
    fn parameters_from_form_body() {
        let body = "json=%7B%22a%22%3A%22x+y%22%7D&mac=AB";
        let found = signed_parameters(&request(None, Some("application/x-www-form-urlencoded"), body)).unwrap();
        assert_eq!(found.json, r#"{"a":"x y"}"#);
    }

    #[test]
    fn parameters_from_json_body() {
        let body = r#"{"json":"{\"a\":1.0}","mac":"AB"}"#;
        let found = signed_parameters(&request(None, Some("application/json"), body)).unwrap();
        assert_eq!(found.json, r#"{"a":1.0}"#);
        let sniffed = signed_parameters(&request(None, None, body)).unwrap();
        assert_eq!(sniffed, found);
    }

    #[test]
    fn missing_duplicate_and_ambiguous_parameters() {
        let missing = signed_parameters(&request(Some("json=x"), None, "")).unwrap_err();
        assert!(matches!(missing, WebhookError::MissingParameter { name: "mac" }), "{missing}");
        let duplicate = signed_parameters(&request(Some("json=x&json=y&mac=A"), None, "")).unwrap_err();
        assert!(matches!(duplicate, WebhookError::DuplicateParameter { name: "json" }), "{duplicate}");
        let both = signed_parameters(&request(Some("json=x&mac=A"), None, "json=x&mac=A")).unwrap_err();
        assert!(matches!(both, WebhookError::AmbiguousSource), "{both}");
        let nothing = signed_parameters(&request(None, None, "")).unwrap_err();
        assert!(matches!(nothing, WebhookError::MissingParameter { name: "json" }), "{nothing}");
    }

    #[test]
    fn json_body_with_object_json_is_rejected() {
        let body = r#"{"json":{"a":1},"mac":"AB"}"#;
        let error = signed_parameters(&request(None, Some("application/json"), body)).unwrap_err();
        assert!(matches!(error, WebhookError::ParameterNotString { name: "json" }), "{error}");
    }

    #[test]
    fn message_without_type_is_rejected() {
        let error = parse_verified(r#"{"transaction":"t","status":"COMPLETED"}"#).unwrap_err();
        assert!(matches!(error, WebhookError::MissingField { field: "message_type" }), "{error}");
    }

    #[test]
    fn unknown_message_type_is_other() {
        let message = parse_verified(r#"{"message_type":"shipping_return"}"#).unwrap();
        assert_eq!(message, Message::Other { message_type: "shipping_return".into() });
    }

    #[test]
    fn amount_without_currency_is_rejected() {
        let json = r#"{"message_type":"payment_return","transaction":"t","status":"COMPLETED","amount":1.0}"#;
        let error = parse_verified(json).unwrap_err();
        assert!(matches!(error, WebhookError::MissingField { field: "currency" }), "{error}");
    }
}
