//! The stand-in's objects and the slice of Stripe behaviour it imitates:
//! routing, authentication, idempotent replays, form parsing, expansion, and
//! the state changes a customer or a reader causes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::webhooks::Fixture;
use super::RecordedRequest;

/// Why a simulation step could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FakeError {
    #[error("the fake Stripe has no {kind} {id}")]
    UnknownObject { kind: &'static str, id: String },

    #[error("{kind} {id} is {state}; {expected}")]
    WrongState { kind: &'static str, id: String, state: String, expected: &'static str },

    #[error("refunding {requested} would take charge {charge} above its amount {amount}")]
    RefundTooLarge { charge: String, requested: i64, amount: i64 },

    #[error("fixture {name} is not valid JSON: {reason}")]
    Fixture { name: &'static str, reason: String },

    #[error("the event cannot be serialised: {reason}")]
    Serialise { reason: String },
}

/// A successful reply.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Json(Value),
    /// The stand-in's hosted Checkout page.
    Html(String),
}

/// A Stripe error response.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    kind: &'static str,
    code: String,
    message: String,
}

impl ApiError {
    pub fn new(status: u16, kind: &'static str, code: &str, message: &str) -> ApiError {
        ApiError { status, kind, code: code.to_owned(), message: message.to_owned() }
    }

    fn invalid(code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status: 400, kind: "invalid_request_error", code: code.to_owned(), message: message.into() }
    }

    fn missing(kind: &str, id: &str) -> ApiError {
        ApiError {
            status: 404,
            kind: "invalid_request_error",
            code: "resource_missing".to_owned(),
            message: format!("No such {kind}: '{id}'"),
        }
    }

    pub fn body(&self) -> Value {
        json!({ "error": { "type": self.kind, "code": self.code, "message": self.message } })
    }
}

impl From<FakeError> for ApiError {
    fn from(error: FakeError) -> ApiError {
        ApiError::new(500, "api_error", "fake_stripe", &error.to_string())
    }
}

/// Everything the stand-in stores. Objects are kept as Stripe's JSON.
#[derive(Debug)]
pub(crate) struct FakeState {
    pub requests: Vec<RecordedRequest>,
    pub sessions: BTreeMap<String, Value>,
    pub intents: BTreeMap<String, Value>,
    pub charges: BTreeMap<String, Value>,
    pub prices: BTreeMap<String, Value>,
    /// At most one per charge, as on Stripe.
    disputes: BTreeMap<String, Value>,
    readers: BTreeMap<String, Value>,
    /// `payment_intent_data[metadata]` per session, for the PaymentIntent
    /// created when the customer pays.
    session_intent_metadata: HashMap<String, Value>,
    /// Stored replies per idempotency key, with the request each one replied to.
    idempotent: HashMap<String, (String, Reply)>,
    pub delay: Duration,
    /// Errors to answer with instead, each for the next request whose path
    /// contains its filter (any request when there is none).
    pub failures: VecDeque<(Option<String>, ApiError)>,
    /// The stand-in's clock, in Unix seconds.
    pub now: i64,
    next_id: u64,
    /// Distinguishes this server's ids from those of earlier runs, so runs
    /// that share one database (two walkthroughs) never reuse a session id.
    run_tag: u32,
    base_url: String,
}

impl FakeState {
    pub fn new(base_url: String) -> FakeState {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
        FakeState {
            requests: Vec::new(),
            sessions: BTreeMap::new(),
            intents: BTreeMap::new(),
            charges: BTreeMap::new(),
            prices: BTreeMap::new(),
            disputes: BTreeMap::new(),
            readers: BTreeMap::new(),
            session_intent_metadata: HashMap::new(),
            idempotent: HashMap::new(),
            delay: Duration::ZERO,
            failures: VecDeque::new(),
            now: i64::try_from(now).unwrap_or(i64::MAX),
            next_id: 0,
            run_tag: std::process::id().rotate_left(16)
                ^ SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.subsec_nanos()),
            base_url,
        }
    }

    /// Replies to one request as Stripe would.
    pub fn handle(&mut self, request: &RecordedRequest) -> Result<Reply, ApiError> {
        if let Some(session_id) = request.path.strip_prefix("/c/pay/") {
            return self.checkout_page(session_id);
        }
        if !request.header("authorization").is_some_and(|value| value.starts_with("Bearer ")) {
            return Err(ApiError::new(
                401,
                "invalid_request_error",
                "api_key_missing",
                "You did not provide an API key.",
            ));
        }
        let failing = self
            .failures
            .iter()
            .position(|(filter, _)| filter.as_deref().is_none_or(|path| request.path.contains(path)));
        if let Some((_, failure)) = failing.and_then(|index| self.failures.remove(index)) {
            return Err(failure);
        }

        let Some(key) = request.idempotency_key().map(str::to_owned) else {
            return self.route(request);
        };
        // Stripe compares the parameters, not their order; async-stripe
        // writes metadata maps in hash order, which differs between calls.
        let mut parameters = request.form.clone();
        parameters.sort();
        let fingerprint = format!("{} {} {parameters:?}", request.method, request.path);
        if let Some((first, reply)) = self.idempotent.get(&key) {
            if *first != fingerprint {
                return Err(ApiError::new(
                    400,
                    "idempotency_error",
                    "idempotency_key_in_use",
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                ));
            }
            return Ok(reply.clone());
        }
        let reply = self.route(request)?;
        self.idempotent.insert(key, (fingerprint, reply.clone()));
        Ok(reply)
    }

    fn route(&mut self, request: &RecordedRequest) -> Result<Reply, ApiError> {
        let form = Form(&request.form);
        let expand = expansions(request.query.as_deref());
        let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
        let object = match (request.method.as_str(), segments.as_slice()) {
            ("POST", ["v1", "checkout", "sessions"]) => self.create_session(&form)?,
            ("GET", ["v1", "checkout", "sessions", id]) => self.retrieve_session(id, &expand)?,
            ("POST", ["v1", "payment_intents"]) => self.create_intent(&form)?,
            ("GET", ["v1", "payment_intents", id]) => {
                self.retrieve_intent(id, expand.iter().any(|e| e == "latest_charge"))?
            }
            ("GET", ["v1", "prices", id]) => {
                self.prices.get(*id).cloned().ok_or_else(|| ApiError::missing("price", id))?
            }
            ("GET", ["v1", "disputes"]) => self.list_disputes(request.query.as_deref()),
            ("POST", ["v1", "payment_intents", id, "cancel"]) => self.cancel_intent(id, &form)?,
            ("POST", ["v1", "terminal", "readers", id, "process_payment_intent"]) => self.process_intent(id, &form)?,
            ("POST", ["v1", "terminal", "readers", id, "cancel_action"]) => self.cancel_action(id)?,
            (method, _) => {
                return Err(ApiError {
                    status: 404,
                    kind: "invalid_request_error",
                    code: "url_invalid".to_owned(),
                    message: format!("Unrecognized request URL ({method}: {}).", request.path),
                })
            }
        };
        Ok(Reply::Json(object))
    }

    fn checkout_page(&self, session_id: &str) -> Result<Reply, ApiError> {
        if !self.sessions.contains_key(session_id) {
            return Err(ApiError::missing("checkout.session", session_id));
        }
        // The id is one the stand-in minted, so it needs no HTML escaping.
        Ok(Reply::Html(format!(
            "<!doctype html><title>Stand-in Checkout</title>\
             <p>Stand-in Checkout page for session {session_id}. Nothing here takes a payment.</p>"
        )))
    }

    fn create_session(&mut self, form: &Form<'_>) -> Result<Value, ApiError> {
        if form.get("mode") != Some("payment") {
            return Err(ApiError::invalid("parameter_invalid", "the stand-in supports mode=payment only"));
        }
        let success_url = form.require("success_url")?;
        let (currency, amount_total) = line_item_total(form, &self.prices)?;
        if form.get("currency").is_some_and(|named| named != currency) {
            return Err(ApiError::invalid("parameter_invalid", "currency must match the line items' currency"));
        }

        let id = self.mint("cs_test_fake");
        let expires_at = match form.get("expires_at") {
            Some(value) => parse_integer("expires_at", value)?,
            None => self.now + 24 * 60 * 60,
        };
        let mut session = Fixture::CheckoutSession.load()?;
        set(&mut session, "id", json!(id));
        set(&mut session, "created", json!(self.now));
        set(&mut session, "expires_at", json!(expires_at));
        set(&mut session, "amount_subtotal", json!(amount_total));
        set(&mut session, "amount_total", json!(amount_total));
        set(&mut session, "currency", json!(currency));
        set(&mut session, "metadata", Value::Object(form.nested("metadata")));
        set(&mut session, "client_reference_id", json!(form.get("client_reference_id")));
        set(&mut session, "success_url", json!(success_url));
        set(&mut session, "cancel_url", json!(form.get("cancel_url")));
        set(&mut session, "locale", json!(form.get("locale")));
        set(&mut session, "url", json!(format!("{}c/pay/{id}", self.base_url)));
        set(&mut session, "status", json!("open"));
        set(&mut session, "payment_status", json!("unpaid"));
        set(&mut session, "payment_intent", Value::Null);
        set(&mut session, "customer_details", Value::Null);
        set(&mut session, "currency_conversion", Value::Null);

        self.session_intent_metadata.insert(id.clone(), Value::Object(form.nested("payment_intent_data[metadata]")));
        self.sessions.insert(id, session.clone());
        Ok(session)
    }

    fn retrieve_session(&self, id: &str, expand: &[String]) -> Result<Value, ApiError> {
        let mut session = self.sessions.get(id).cloned().ok_or_else(|| ApiError::missing("checkout session", id))?;
        if expand.iter().any(|path| path == "payment_intent") {
            if let Some(intent_id) = session.get("payment_intent").and_then(Value::as_str).map(str::to_owned) {
                let with_charge = expand.iter().any(|path| path == "payment_intent.latest_charge");
                set(&mut session, "payment_intent", self.retrieve_intent(&intent_id, with_charge)?);
            }
        }
        Ok(session)
    }

    fn create_intent(&mut self, form: &Form<'_>) -> Result<Value, ApiError> {
        let amount = parse_integer("amount", form.require("amount")?)?;
        let currency = form.require("currency")?;
        let allowed: Vec<&str> = form.values_with_prefix("allowed_payment_method_types");
        let intent = self.new_intent(amount, currency, Value::Object(form.nested("metadata")), &allowed)?;
        let id = string_field(&intent, "id");
        if let Some(capture) = form.get("capture_method") {
            self.update_intent(&id, |intent| set(intent, "capture_method", json!(capture)))?;
        }
        self.intents.get(&id).cloned().ok_or_else(|| ApiError::missing("payment_intent", &id))
    }

    fn retrieve_intent(&self, id: &str, with_charge: bool) -> Result<Value, ApiError> {
        let mut intent = self.intents.get(id).cloned().ok_or_else(|| ApiError::missing("payment_intent", id))?;
        if with_charge {
            if let Some(charge) =
                intent.get("latest_charge").and_then(Value::as_str).and_then(|id| self.charges.get(id))
            {
                let charge = charge.clone();
                set(&mut intent, "latest_charge", charge);
            }
        }
        Ok(intent)
    }

    fn cancel_intent(&mut self, id: &str, form: &Form<'_>) -> Result<Value, ApiError> {
        let intent = self.intents.get_mut(id).ok_or_else(|| ApiError::missing("payment_intent", id))?;
        let status = intent.get("status").and_then(Value::as_str).unwrap_or_default();
        if matches!(status, "succeeded" | "canceled") {
            return Err(ApiError::invalid(
                "payment_intent_unexpected_state",
                format!("You cannot cancel this PaymentIntent because it has a status of {status}."),
            ));
        }
        set(intent, "status", json!("canceled"));
        set(intent, "canceled_at", json!(self.now));
        set(intent, "cancellation_reason", json!(form.get("cancellation_reason")));
        Ok(intent.clone())
    }

    fn process_intent(&mut self, reader_id: &str, form: &Form<'_>) -> Result<Value, ApiError> {
        if !reader_id.starts_with("tmr_") {
            return Err(ApiError::missing("terminal.reader", reader_id));
        }
        let intent_id = form.require("payment_intent")?;
        let intent = self.intents.get(intent_id).ok_or_else(|| ApiError::missing("payment_intent", intent_id))?;
        if intent.get("status").and_then(Value::as_str) != Some("requires_payment_method") {
            return Err(ApiError::invalid(
                "payment_intent_unexpected_state",
                "the PaymentIntent cannot be processed now",
            ));
        }
        let busy =
            self.readers.get(reader_id).and_then(|reader| reader.pointer("/action/status")).and_then(Value::as_str);
        if busy == Some("in_progress") {
            return Err(ApiError::invalid("terminal_reader_busy", "the reader is busy with another action"));
        }

        let mut reader = Fixture::TerminalReader.load()?;
        set(&mut reader, "id", json!(reader_id));
        set(
            &mut reader,
            "action",
            json!({
                "type": "process_payment_intent",
                "status": "in_progress",
                "failure_code": null,
                "failure_message": null,
                "process_payment_intent": { "payment_intent": intent_id },
            }),
        );
        self.readers.insert(reader_id.to_owned(), reader.clone());
        Ok(reader)
    }

    fn cancel_action(&mut self, reader_id: &str) -> Result<Value, ApiError> {
        let reader = self.readers.get_mut(reader_id).ok_or_else(|| ApiError::missing("terminal.reader", reader_id))?;
        set(reader, "action", Value::Null);
        Ok(reader.clone())
    }

    pub fn pay_session(&mut self, session_id: &str) -> Result<Value, FakeError> {
        let (amount, currency) = self.open_session(session_id)?;
        let metadata = self.session_intent_metadata.get(session_id).cloned().unwrap_or_else(|| json!({}));
        let intent = self.new_intent(amount, &currency, metadata, &[]).map_err(api_to_fake)?;
        let intent_id = string_field(&intent, "id");
        self.succeed_intent(&intent_id)?;
        self.update_session(session_id, |session| {
            set(session, "status", json!("complete"));
            set(session, "payment_status", json!("paid"));
            set(session, "payment_intent", json!(intent_id));
        })
    }

    pub fn complete_session_unpaid(&mut self, session_id: &str) -> Result<Value, FakeError> {
        let (amount, currency) = self.open_session(session_id)?;
        let metadata = self.session_intent_metadata.get(session_id).cloned().unwrap_or_else(|| json!({}));
        let intent = self.new_intent(amount, &currency, metadata, &["sepa_debit"]).map_err(api_to_fake)?;
        let intent_id = string_field(&intent, "id");
        self.update_intent(&intent_id, |intent| set(intent, "status", json!("processing"))).map_err(api_to_fake)?;
        self.update_session(session_id, |session| {
            set(session, "status", json!("complete"));
            set(session, "payment_status", json!("unpaid"));
            set(session, "payment_intent", json!(intent_id));
        })
    }

    pub fn settle_async_payment(&mut self, session_id: &str) -> Result<Value, FakeError> {
        let intent_id = self.unpaid_session_intent(session_id)?;
        self.succeed_intent(&intent_id)?;
        self.update_session(session_id, |session| set(session, "payment_status", json!("paid")))
    }

    pub fn fail_async_payment(&mut self, session_id: &str) -> Result<Value, FakeError> {
        let intent_id = self.unpaid_session_intent(session_id)?;
        self.update_intent(&intent_id, |intent| {
            set(intent, "status", json!("requires_payment_method"));
            set(
                intent,
                "last_payment_error",
                json!({ "type": "invalid_request_error", "code": "payment_method_provider_decline" }),
            );
        })
        .map_err(api_to_fake)?;
        self.sessions.get(session_id).cloned().ok_or_else(|| unknown("checkout.session", session_id))
    }

    pub fn expire_session(&mut self, session_id: &str) -> Result<Value, FakeError> {
        self.open_session(session_id)?;
        self.update_session(session_id, |session| set(session, "status", json!("expired")))
    }

    pub fn refund(&mut self, intent_id: &str, amount_minor: i64) -> Result<Value, FakeError> {
        let charge_id = self.charge_of(intent_id)?;
        let charge = self.charges.get_mut(&charge_id).ok_or_else(|| unknown("charge", &charge_id))?;
        let amount = charge.get("amount").and_then(Value::as_i64).unwrap_or(0);
        let refunded = charge.get("amount_refunded").and_then(Value::as_i64).unwrap_or(0) + amount_minor;
        if refunded > amount {
            return Err(FakeError::RefundTooLarge { charge: charge_id, requested: amount_minor, amount });
        }
        set(charge, "amount_refunded", json!(refunded));
        set(charge, "refunded", json!(refunded == amount));
        Ok(charge.clone())
    }

    /// Stores a one-time, per-unit Price as the Dashboard would create it.
    pub fn add_price(&mut self, id: &str, product: &str, currency: &str, unit_amount: i64) -> Value {
        let price = json!({
            "id": id,
            "object": "price",
            "active": true,
            "billing_scheme": "per_unit",
            "created": self.now,
            "currency": currency,
            "custom_unit_amount": null,
            "livemode": false,
            "lookup_key": null,
            "metadata": {},
            "nickname": null,
            "product": product,
            "recurring": null,
            "tax_behavior": "unspecified",
            "tiers_mode": null,
            "transform_quantity": null,
            "type": "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": unit_amount.to_string(),
        });
        self.prices.insert(id.to_owned(), price.clone());
        price
    }

    /// `GET /v1/disputes`, filtered by `charge` or `payment_intent` as Stripe does.
    fn list_disputes(&self, query: Option<&str>) -> Value {
        let filters: Vec<(String, String)> =
            query.map(|query| form_urlencoded::parse(query.as_bytes()).into_owned().collect()).unwrap_or_default();
        let data: Vec<&Value> = self
            .disputes
            .values()
            .filter(|dispute| {
                filters
                    .iter()
                    .filter(|(name, _)| name == "charge" || name == "payment_intent")
                    .all(|(name, value)| dispute.get(name.as_str()).and_then(Value::as_str) == Some(value.as_str()))
            })
            .collect();
        json!({ "object": "list", "data": data, "has_more": false, "url": "/v1/disputes" })
    }

    pub fn dispute(&mut self, intent_id: &str, status: &str) -> Result<Value, FakeError> {
        let charge_id = self.charge_of(intent_id)?;
        let existing = self.disputes.values_mut().find(|dispute| dispute.get("charge") == Some(&json!(charge_id)));
        if let Some(dispute) = existing {
            set(dispute, "status", json!(status));
            return Ok(dispute.clone());
        }
        let id = self.mint("dp_test_fake");
        let charge = self.charges.get_mut(&charge_id).ok_or_else(|| unknown("charge", &charge_id))?;
        set(charge, "disputed", json!(true));
        let (amount, currency) = (charge.get("amount").cloned(), charge.get("currency").cloned());

        let mut dispute = Fixture::Dispute.load()?;
        set(&mut dispute, "id", json!(id));
        set(&mut dispute, "amount", amount.unwrap_or(Value::Null));
        set(&mut dispute, "currency", currency.unwrap_or(Value::Null));
        set(&mut dispute, "charge", json!(charge_id));
        set(&mut dispute, "payment_intent", json!(intent_id));
        set(&mut dispute, "status", json!(status));
        set(&mut dispute, "created", json!(self.now));
        self.disputes.insert(id, dispute.clone());
        Ok(dispute)
    }

    pub fn finish_reader_action(&mut self, reader_id: &str, approved: bool) -> Result<Value, FakeError> {
        let reader = self.readers.get(reader_id).ok_or_else(|| unknown("terminal.reader", reader_id))?;
        let action_status = reader.pointer("/action/status").and_then(Value::as_str).unwrap_or("none");
        let Some(intent_id) = reader.pointer("/action/process_payment_intent/payment_intent").and_then(Value::as_str)
        else {
            return Err(wrong_state("terminal.reader", reader_id, action_status, "it is processing no PaymentIntent"));
        };
        if action_status != "in_progress" {
            return Err(wrong_state("terminal.reader", reader_id, action_status, "its action is not in progress"));
        }
        let intent_id = intent_id.to_owned();

        if approved {
            self.succeed_intent(&intent_id)?;
        } else {
            self.update_intent(&intent_id, |intent| {
                set(intent, "last_payment_error", json!({ "type": "card_error", "code": "card_declined" }));
            })
            .map_err(api_to_fake)?;
        }
        let reader = self.readers.get_mut(reader_id).ok_or_else(|| unknown("terminal.reader", reader_id))?;
        let action = reader.get_mut("action").ok_or_else(|| unknown("terminal.reader action", reader_id))?;
        if approved {
            set(action, "status", json!("succeeded"));
        } else {
            set(action, "status", json!("failed"));
            set(action, "failure_code", json!("card_declined"));
            set(action, "failure_message", json!("Your card was declined."));
        }
        Ok(reader.clone())
    }

    /// Creates and stores a PaymentIntent in `requires_payment_method`.
    fn new_intent(
        &mut self,
        amount: i64,
        currency: &str,
        metadata: Value,
        allowed: &[&str],
    ) -> Result<Value, ApiError> {
        let id = self.mint("pi_test_fake");
        let types: Vec<&str> = if allowed.is_empty() { vec!["card"] } else { allowed.to_vec() };
        let mut intent = Fixture::PaymentIntent.load()?;
        set(&mut intent, "id", json!(id));
        set(&mut intent, "amount", json!(amount));
        set(&mut intent, "amount_received", json!(0));
        set(&mut intent, "currency", json!(currency));
        set(&mut intent, "metadata", metadata);
        set(&mut intent, "status", json!("requires_payment_method"));
        set(&mut intent, "payment_method_types", json!(types));
        set(&mut intent, "allowed_payment_method_types", if allowed.is_empty() { Value::Null } else { json!(allowed) });
        set(
            &mut intent,
            "automatic_payment_methods",
            if allowed.is_empty() { json!({ "enabled": true }) } else { Value::Null },
        );
        set(&mut intent, "client_secret", json!(format!("{id}_secret_fake")));
        set(&mut intent, "created", json!(self.now));
        for field in
            ["canceled_at", "last_payment_error", "latest_charge", "next_action", "processing", "transfer_data"]
        {
            set(&mut intent, field, Value::Null);
        }
        self.intents.insert(id, intent.clone());
        Ok(intent)
    }

    /// Moves a PaymentIntent to `succeeded` with a captured charge.
    fn succeed_intent(&mut self, intent_id: &str) -> Result<(), FakeError> {
        let intent = self.intents.get(intent_id).ok_or_else(|| unknown("payment_intent", intent_id))?;
        let amount = intent.get("amount").cloned().unwrap_or(Value::Null);
        let currency = intent.get("currency").cloned().unwrap_or(Value::Null);
        let metadata = intent.get("metadata").cloned().unwrap_or_else(|| json!({}));

        let charge_id = self.mint("ch_test_fake");
        let mut charge = Fixture::Charge.load()?;
        set(&mut charge, "id", json!(charge_id));
        set(&mut charge, "amount", amount.clone());
        set(&mut charge, "amount_captured", amount.clone());
        set(&mut charge, "amount_refunded", json!(0));
        set(&mut charge, "currency", currency);
        // Stripe copies the PaymentIntent's metadata to the charge it creates.
        set(&mut charge, "metadata", metadata);
        set(&mut charge, "payment_intent", json!(intent_id));
        set(&mut charge, "captured", json!(true));
        set(&mut charge, "created", json!(self.now));
        set(&mut charge, "description", Value::Null);
        set(&mut charge, "receipt_url", Value::Null);
        set(&mut charge, "source", Value::Null);
        if let Some(billing) = charge.get_mut("billing_details") {
            set(billing, "name", Value::Null);
        }
        if let Some(refunds) = charge.get_mut("refunds") {
            set(refunds, "url", json!(format!("/v1/charges/{charge_id}/refunds")));
        }
        self.charges.insert(charge_id.clone(), charge);

        self.update_intent(intent_id, |intent| {
            set(intent, "status", json!("succeeded"));
            set(intent, "amount_received", amount);
            set(intent, "latest_charge", json!(charge_id));
            set(intent, "last_payment_error", Value::Null);
        })
        .map_err(api_to_fake)
    }

    fn open_session(&self, session_id: &str) -> Result<(i64, String), FakeError> {
        let session = self.sessions.get(session_id).ok_or_else(|| unknown("checkout.session", session_id))?;
        let status = session.get("status").and_then(Value::as_str).unwrap_or("unknown");
        if status != "open" {
            return Err(wrong_state(
                "checkout.session",
                session_id,
                status,
                "only an open session can change this way",
            ));
        }
        let amount = session.get("amount_total").and_then(Value::as_i64).unwrap_or(0);
        let currency = session.get("currency").and_then(Value::as_str).unwrap_or("usd").to_owned();
        Ok((amount, currency))
    }

    fn unpaid_session_intent(&self, session_id: &str) -> Result<String, FakeError> {
        let session = self.sessions.get(session_id).ok_or_else(|| unknown("checkout.session", session_id))?;
        let state = format!(
            "{}/{}",
            session.get("status").and_then(Value::as_str).unwrap_or("unknown"),
            session.get("payment_status").and_then(Value::as_str).unwrap_or("unknown")
        );
        if state != "complete/unpaid" {
            return Err(wrong_state(
                "checkout.session",
                session_id,
                &state,
                "only a complete, unpaid session awaits its payment",
            ));
        }
        Ok(string_field(session, "payment_intent"))
    }

    fn charge_of(&self, intent_id: &str) -> Result<String, FakeError> {
        let intent = self.intents.get(intent_id).ok_or_else(|| unknown("payment_intent", intent_id))?;
        match intent.get("latest_charge").and_then(Value::as_str) {
            Some(charge) => Ok(charge.to_owned()),
            None => Err(wrong_state("payment_intent", intent_id, "without a charge", "pay it first")),
        }
    }

    fn update_session(&mut self, id: &str, change: impl FnOnce(&mut Value)) -> Result<Value, FakeError> {
        let session = self.sessions.get_mut(id).ok_or_else(|| unknown("checkout.session", id))?;
        change(session);
        Ok(session.clone())
    }

    fn update_intent(&mut self, id: &str, change: impl FnOnce(&mut Value)) -> Result<(), ApiError> {
        let intent = self.intents.get_mut(id).ok_or_else(|| ApiError::missing("payment_intent", id))?;
        change(intent);
        Ok(())
    }

    fn mint(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{:08x}{:06}", self.run_tag, self.next_id)
    }
}

/// The decoded form body of one request.
struct Form<'a>(&'a [(String, String)]);

impl Form<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str())
    }

    fn require(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key).ok_or_else(|| ApiError::invalid("parameter_missing", format!("Missing required param: {key}.")))
    }

    /// `prefix[key]=value` pairs as a JSON object of strings.
    fn nested(&self, prefix: &str) -> Map<String, Value> {
        let opening = format!("{prefix}[");
        self.0
            .iter()
            .filter_map(|(name, value)| {
                let key = name.strip_prefix(&opening)?.strip_suffix(']')?;
                (!key.contains('[')).then(|| (key.to_owned(), json!(value)))
            })
            .collect()
    }

    /// Values of `prefix[0]`, `prefix[1]`, ... in order.
    fn values_with_prefix(&self, prefix: &str) -> Vec<&str> {
        self.0.iter().filter(|(name, _)| name.starts_with(prefix)).map(|(_, value)| value.as_str()).collect()
    }
}

/// Returns the currency and total of a session's line items, each a stored
/// Price or `price_data`.
fn line_item_total(form: &Form<'_>, prices: &BTreeMap<String, Value>) -> Result<(String, i64), ApiError> {
    let mut currency: Option<String> = None;
    let mut total = 0_i64;
    let mut index = 0;
    while form.0.iter().any(|(name, _)| name.starts_with(&format!("line_items[{index}]"))) {
        let item = |field: &str| format!("line_items[{index}]{field}");
        let (item_currency, unit_amount) = match form.get(&item("[price]")) {
            Some(price_id) => stored_price(prices, price_id)?,
            None => inline_price(form, &item)?,
        };
        if currency.as_deref().is_some_and(|first| first != item_currency) {
            return Err(ApiError::invalid("parameter_invalid", "line items must share one currency"));
        }
        currency = Some(item_currency);
        let quantity = parse_integer("quantity", form.require(&item("[quantity]"))?)?;
        if quantity < 1 {
            return Err(ApiError::invalid("parameter_invalid_integer", "quantity must be at least 1"));
        }
        total = unit_amount
            .checked_mul(quantity)
            .and_then(|line| total.checked_add(line))
            .ok_or_else(|| ApiError::invalid("amount_too_large", "the total is too large"))?;
        index += 1;
    }
    match currency {
        Some(currency) => Ok((currency, total)),
        None => Err(ApiError::invalid("parameter_missing", "Missing required param: line_items.")),
    }
}

/// Returns the currency and unit amount of a stored Price a line item names.
fn stored_price(prices: &BTreeMap<String, Value>, id: &str) -> Result<(String, i64), ApiError> {
    let price = prices.get(id).ok_or_else(|| ApiError::missing("price", id))?;
    if price.get("active") != Some(&json!(true)) {
        return Err(ApiError::invalid("price_inactive", format!("The price {id} is not active.")));
    }
    if price.get("type").and_then(Value::as_str) != Some("one_time") {
        return Err(ApiError::invalid(
            "parameter_invalid",
            "You must provide at least one recurring price in `subscription` mode when using prices.",
        ));
    }
    let currency = price.get("currency").and_then(Value::as_str).unwrap_or_default().to_owned();
    let unit_amount = price.get("unit_amount").and_then(Value::as_i64).ok_or_else(|| {
        ApiError::invalid("parameter_invalid", format!("The price {id} has no unit_amount the stand-in can charge."))
    })?;
    Ok((currency, unit_amount))
}

/// Returns the currency and unit amount of a `price_data` line item.
fn inline_price(form: &Form<'_>, item: &dyn Fn(&str) -> String) -> Result<(String, i64), ApiError> {
    if form.get(&item("[price_data][product]")).is_none()
        && form.get(&item("[price_data][product_data][name]")).is_none()
    {
        return Err(ApiError::invalid(
            "parameter_missing",
            format!("Missing required param: {}.", item("[price_data][product_data]")),
        ));
    }
    let currency = form.require(&item("[price_data][currency]"))?.to_owned();
    let unit_amount = parse_integer("unit_amount", form.require(&item("[price_data][unit_amount]"))?)?;
    Ok((currency, unit_amount))
}

fn expansions(query: Option<&str>) -> Vec<String> {
    let Some(query) = query else {
        return Vec::new();
    };
    form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name.starts_with("expand"))
        .map(|(_, value)| value.into_owned())
        .collect()
}

fn parse_integer(field: &str, value: &str) -> Result<i64, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::invalid("parameter_invalid_integer", format!("Invalid integer: {field}={value}")))
}

fn set(object: &mut Value, field: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(field.to_owned(), value);
    }
}

fn string_field(object: &Value, field: &str) -> String {
    object.get(field).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn unknown(kind: &'static str, id: &str) -> FakeError {
    FakeError::UnknownObject { kind, id: id.to_owned() }
}

fn wrong_state(kind: &'static str, id: &str, state: &str, expected: &'static str) -> FakeError {
    FakeError::WrongState { kind, id: id.to_owned(), state: state.to_owned(), expected }
}

fn api_to_fake(error: ApiError) -> FakeError {
    FakeError::WrongState { kind: "request", id: error.code, state: error.message, expected: "a valid simulation step" }
}
