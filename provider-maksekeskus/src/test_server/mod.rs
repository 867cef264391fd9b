//! A stand-in for the Maksekeskus API on 127.0.0.1, for tests, the
//! walkthrough and the example server (cargo feature `test-server`).
//!
//! [`FakeMaksekeskus`] serves `POST /v1/transactions`, `GET
//! /v1/transactions`, `GET /v1/transactions/{id}`, `POST
//! /v1/transactions/{id}/refunds` and `GET /v1/refunds/{id}` in the shapes
//! Maksekeskus documents: amounts in as strings and out as JSON numbers,
//! `application/hal+json` for single resources, `X-Total-Count` on lists, and
//! `{code, message, errors}` on failures. It checks HTTP Basic auth, records
//! every request, and signs `payment_return` and `token_return` messages with
//! the shop's secret key.
//!
//! It binds only to the loopback address and never opens a connection
//! itself. It is a test double, not a simulator: transactions change status
//! only when a test says so (there is no 30-minute expiry), and `/pay.html`
//! is a placeholder page, not a payment flow.
//!
//! A whole payment against the fake, as the walkthrough runs it:
//!
//! ```
//! # use std::sync::Arc;
//! # use billing_domain::ledger::OverdraftPolicy;
//! # use billing_domain::memory::MemoryStore;
//! # use billing_domain::service::{NewInvoice, PaymentOptions, PaymentStart};
//! # use billing_domain::testing::{ManualClock, SeededRandom};
//! # use billing_domain::{BillingService, Currency, InvoiceRow, InvoiceStatus, Money, ProviderName, UserId};
//! # use provider_maksekeskus::test_server::FakeMaksekeskus;
//! # use provider_maksekeskus::{MaksekeskusProvider, TransactionStatus, PROVIDER_NAME};
//! # use rust_decimal::Decimal;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let now = time::macros::datetime!(2026-11-30 10:00 UTC);
//! let clock = Arc::new(ManualClock::new(now));
//! let fake = FakeMaksekeskus::start_with_test_credentials(now).await?;
//! let provider = MaksekeskusProvider::new(fake.config()?)?.with_clock(clock.clone());
//! let service = BillingService::new(Arc::new(MemoryStore::new()), clock, Arc::new(SeededRandom::new(1)))
//!     .with_provider(Arc::new(provider));
//! # let (_, staff) = service.create_tenant("Shop", UserId::from_random_bytes([1; 16]), "Owner", OverdraftPolicy { limit: 0 }).await?;
//! # let company = service.add_company(&staff, "Customer").await?;
//! # let row = InvoiceRow { description: "Credits".into(), quantity: Decimal::ONE, unit_price: Money::new(Decimal::new(2500, 2), Currency::EUR)?, project: None, content: None, credits: Some(100) };
//! # let invoice = service.create_invoice(&staff, NewInvoice { company_id: company.id, number: "INV-1".into(), currency: Currency::EUR, rows: vec![row] }).await?;
//! # let token = service.issue_invoice(&staff, invoice.id).await?.token.expose().to_owned();
//!
//! // The customer starts paying from the public link; Maksekeskus needs their IP.
//! let maksekeskus = ProviderName::new(PROVIDER_NAME)?;
//! let options = PaymentOptions { customer_ip: Some("203.0.113.7".into()), locale: Some("et".into()) };
//! let PaymentStart::Redirect { payment_id, url } = service.start_public_payment(&token, &maksekeskus, options).await?
//! else {
//!     panic!("Maksekeskus payments start with a redirect");
//! };
//! assert!(url.starts_with(fake.api_base()));
//!
//! // Maksekeskus reports COMPLETED: a signed notification, then the browser return.
//! let transaction = fake.transaction_for_payment(payment_id).expect("created").id;
//! let message = fake.payment_return(&transaction, TransactionStatus::Completed)?;
//! service.handle_webhook(&maksekeskus, &message.form_request()).await?;
//! service.handle_webhook(&maksekeskus, &message.query_request()).await?;
//!
//! let invoice = service.store().invoice(invoice.id).await?.expect("stored");
//! assert_eq!(invoice.status(), InvoiceStatus::Paid);
//! assert_eq!(service.balance(staff.tenant_id()).await?.balance, 100);
//! # Ok(())
//! # }
//! ```

mod http;
mod json;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use billing_domain::{PaymentId, WebhookRequest};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, Environment, MaksekeskusConfig, SecretKey};
use crate::mac;
use crate::status::{RefundStatus, TransactionStatus};

/// The shop id the signed fixtures under `testdata/maksekeskus` name.
pub const TEST_SHOP_ID: &str = "3c1e5b2a-0d4f-4c7e-9a51-6f2b8e0d1a77";

/// The local secret key the signed fixtures under `testdata/maksekeskus` use.
/// It is not a Maksekeskus credential.
pub const TEST_SECRET_KEY: &str = "local-test-secret-0001";

/// A running fake Maksekeskus API. The server stops when this is dropped.
pub struct FakeMaksekeskus {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

/// What the HTTP handlers and the test-facing methods share.
struct Shared {
    shop_id: String,
    secret_key: SecretKey,
    base_url: String,
    state: Mutex<FakeState>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct FakeState {
    now: OffsetDateTime,
    /// Distinguishes this server's ids from those of earlier runs.
    run_tag: u32,
    /// The last number used in a transaction or refund id.
    last_id: u64,
    transactions: Vec<FakeTransaction>,
    refunds: Vec<FakeRefund>,
    requests: Vec<RecordedRequest>,
    create_delay: Option<Duration>,
    refund_outcome: RefundStatus,
    redirect_entry: RedirectEntry,
}

/// Whether transaction objects list the `redirect` payment page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedirectEntry {
    Listed,
    /// Left out, as in a malformed response.
    Omitted,
}

impl FakeState {
    fn transaction_mut(&mut self, id: &str) -> Result<&mut FakeTransaction, FakeError> {
        self.transactions
            .iter_mut()
            .find(|transaction| transaction.id == id)
            .ok_or_else(|| FakeError::UnknownTransaction { id: id.to_owned() })
    }

    /// Mints a UUID-shaped id, unique within this server and, through the
    /// run tag, across servers sharing one database (two walkthrough runs).
    fn next_id(&mut self, kind: u16) -> String {
        self.last_id += 1;
        format!("{:08x}-0000-4000-{kind:04x}-{:012x}", self.run_tag, self.last_id)
    }
}

/// A transaction held by the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTransaction {
    pub id: String,
    pub status: TransactionStatus,
    pub amount: Decimal,
    pub currency: String,
    pub reference: Option<String>,
    pub merchant_data: Option<String>,
    pub customer_ip: String,
    pub locale: Option<String>,
    /// The `transaction_url` object as the create request sent it.
    pub transaction_url: Option<serde_json::Value>,
    pub created_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
    /// Sum of the settled refunds.
    pub refunded_amount: Decimal,
}

impl FakeTransaction {
    /// Creates a transaction in status CREATED, for inserting one with a chosen id.
    pub fn new(id: &str, amount: Decimal, merchant_data: Option<&str>, created_at: OffsetDateTime) -> FakeTransaction {
        FakeTransaction {
            id: id.to_owned(),
            status: TransactionStatus::Created,
            amount,
            currency: "EUR".to_owned(),
            reference: None,
            merchant_data: merchant_data.map(str::to_owned),
            customer_ip: "127.0.0.1".to_owned(),
            locale: None,
            transaction_url: None,
            created_at,
            completed_at: None,
            refunded_amount: Decimal::ZERO,
        }
    }

    /// Moves to `status` as Maksekeskus would: COMPLETED gets a completion
    /// time and REFUNDED refunds the whole amount.
    fn move_to(&mut self, status: TransactionStatus, now: OffsetDateTime) {
        self.status = status;
        if status == TransactionStatus::Completed && self.completed_at.is_none() {
            self.completed_at = Some(now);
        }
        if status == TransactionStatus::Refunded {
            self.refunded_amount = self.amount;
        }
    }

    /// Books a settled refund.
    fn apply_refund(&mut self, amount: Decimal) {
        self.refunded_amount += amount;
        self.status = if self.refunded_amount >= self.amount {
            TransactionStatus::Refunded
        } else {
            TransactionStatus::PartRefunded
        };
    }
}

/// A refund held by the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRefund {
    pub id: String,
    pub transaction_id: String,
    pub amount: Decimal,
    pub comment: String,
    pub status: RefundStatus,
    pub created_at: OffsetDateTime,
}

/// One request the fake received, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The `Authorization` header, verbatim.
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

impl RecordedRequest {
    /// Parses the body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A message's `json` and `mac` parameters, ready to deliver the ways
/// Maksekeskus does.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedMessage {
    pub json: String,
    pub mac: String,
}

impl fmt::Debug for SignedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedMessage").field("json_bytes", &self.json.len()).field("mac", &self.mac).finish()
    }
}

impl SignedMessage {
    /// Signs `json` exactly as given.
    pub fn sign(json: impl Into<String>, secret_key: &SecretKey) -> SignedMessage {
        let json = json.into();
        let mac = mac::sign(&json, secret_key);
        SignedMessage { json, mac }
    }

    /// `json=...&mac=...`, form-urlencoded.
    pub fn encoded(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("json", &self.json)
            .append_pair("mac", &self.mac)
            .finish()
    }

    /// The message as a GET return: parameters in the query string.
    pub fn query_request(&self) -> WebhookRequest {
        WebhookRequest { headers: Vec::new(), query: Some(self.encoded()), body: Vec::new() }
    }

    /// The message as a POST return or notification: form fields in the body.
    pub fn form_request(&self) -> WebhookRequest {
        WebhookRequest {
            headers: vec![("Content-Type".into(), "application/x-www-form-urlencoded".into())],
            query: None,
            body: self.encoded().into_bytes(),
        }
    }

    /// The message as a JSON body that contains `json` and `mac`.
    pub fn json_request(&self) -> WebhookRequest {
        let body = serde_json::json!({ "json": self.json, "mac": self.mac });
        WebhookRequest {
            headers: vec![("Content-Type".into(), "application/json".into())],
            query: None,
            body: body.to_string().into_bytes(),
        }
    }
}

impl fmt::Debug for FakeMaksekeskus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeMaksekeskus").field("address", &self.address).finish_non_exhaustive()
    }
}

impl FakeMaksekeskus {
    /// Starts a fake for one shop on an ephemeral port of 127.0.0.1. Its
    /// clock is fixed at `now` until [`FakeMaksekeskus::set_now`] moves it.
    ///
    /// # Errors
    ///
    /// [`FakeError::Bind`] when no loopback port can be opened.
    pub async fn start(
        shop_id: &str,
        secret_key: SecretKey,
        now: OffsetDateTime,
    ) -> Result<FakeMaksekeskus, FakeError> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.map_err(FakeError::Bind)?;
        let address = listener.local_addr().map_err(FakeError::Bind)?;
        let shared = Arc::new(Shared {
            shop_id: shop_id.to_owned(),
            secret_key,
            base_url: format!("http://{address}"),
            state: Mutex::new(FakeState {
                now,
                run_tag: run_tag(),
                last_id: 0,
                transactions: Vec::new(),
                refunds: Vec::new(),
                requests: Vec::new(),
                create_delay: None,
                refund_outcome: RefundStatus::Settled,
                redirect_entry: RedirectEntry::Listed,
            }),
        });
        let app = http::router(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "fake Maksekeskus server stopped");
            }
        });
        Ok(FakeMaksekeskus { address, shared, server })
    }

    /// Starts a fake with [`TEST_SHOP_ID`] and [`TEST_SECRET_KEY`], the
    /// credentials of the signed fixtures.
    ///
    /// # Errors
    ///
    /// As [`FakeMaksekeskus::start`].
    pub async fn start_with_test_credentials(now: OffsetDateTime) -> Result<FakeMaksekeskus, FakeError> {
        let secret_key = SecretKey::new(TEST_SECRET_KEY).map_err(FakeError::Config)?;
        FakeMaksekeskus::start(TEST_SHOP_ID, secret_key, now).await
    }

    /// The API base URL to configure (`http://127.0.0.1:{port}`), without `/v1`.
    pub fn api_base(&self) -> &str {
        &self.shared.base_url
    }

    /// Builds a provider configuration for this fake's shop and address.
    ///
    /// # Errors
    ///
    /// Configuration errors, which a running fake does not cause.
    pub fn config(&self) -> Result<MaksekeskusConfig, ConfigError> {
        let environment = Environment::Custom { api_base: self.shared.base_url.clone() };
        MaksekeskusConfig::new(self.shared.shop_id.clone(), self.shared.secret_key.clone(), environment)
    }

    pub fn shop_id(&self) -> &str {
        &self.shared.shop_id
    }

    pub fn secret_key(&self) -> &SecretKey {
        &self.shared.secret_key
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    pub fn transactions(&self) -> Vec<FakeTransaction> {
        self.shared.state().transactions.clone()
    }

    pub fn transaction(&self, id: &str) -> Option<FakeTransaction> {
        self.shared.state().transactions.iter().find(|transaction| transaction.id == id).cloned()
    }

    /// The transaction created for a payment: the one whose `merchant_data`
    /// is the payment id, as the provider sends it.
    pub fn transaction_for_payment(&self, payment_id: PaymentId) -> Option<FakeTransaction> {
        let merchant_data = payment_id.to_string();
        let state = self.shared.state();
        state
            .transactions
            .iter()
            .find(|transaction| transaction.merchant_data.as_deref() == Some(&merchant_data))
            .cloned()
    }

    pub fn refunds(&self) -> Vec<FakeRefund> {
        self.shared.state().refunds.clone()
    }

    /// Moves the fake's clock, used for new timestamps.
    pub fn set_now(&self, now: OffsetDateTime) {
        self.shared.state().now = now;
    }

    /// Makes `POST /v1/transactions` store the transaction and then wait
    /// `delay` before responding, as when the response is lost on the way.
    pub fn set_create_delay(&self, delay: Option<Duration>) {
        self.shared.state().create_delay = delay;
    }

    /// Leaves the `payment_methods.other` entry named `redirect` out of
    /// transaction objects (`true`), as a malformed response would.
    pub fn omit_redirect(&self, omit: bool) {
        self.shared.state().redirect_entry = if omit { RedirectEntry::Omitted } else { RedirectEntry::Listed };
    }

    /// The status new refunds get (SETTLED unless changed).
    pub fn set_refund_outcome(&self, status: RefundStatus) {
        self.shared.state().refund_outcome = status;
    }

    /// Adds a transaction with a chosen id, such as a fixture's.
    pub fn insert_transaction(&self, transaction: FakeTransaction) {
        self.shared.state().transactions.push(transaction);
    }

    /// Moves a transaction to `status` without sending a message.
    ///
    /// # Errors
    ///
    /// [`FakeError::UnknownTransaction`].
    pub fn set_status(&self, transaction_id: &str, status: TransactionStatus) -> Result<(), FakeError> {
        let mut state = self.shared.state();
        let now = state.now;
        state.transaction_mut(transaction_id)?.move_to(status, now);
        Ok(())
    }

    /// Moves a refund to `status`; a refund that becomes SETTLED is booked on its transaction.
    ///
    /// # Errors
    ///
    /// [`FakeError::UnknownRefund`], or [`FakeError::RefundAlreadySettled`]
    /// for a settled refund, which cannot change again.
    pub fn set_refund_status(&self, refund_id: &str, status: RefundStatus) -> Result<(), FakeError> {
        let mut state = self.shared.state();
        let Some(refund) = state.refunds.iter_mut().find(|refund| refund.id == refund_id) else {
            return Err(FakeError::UnknownRefund { id: refund_id.to_owned() });
        };
        if refund.status == RefundStatus::Settled {
            return Err(FakeError::RefundAlreadySettled { id: refund_id.to_owned() });
        }
        refund.status = status.clone();
        let (transaction_id, amount) = (refund.transaction_id.clone(), refund.amount);
        if status == RefundStatus::Settled {
            state.transaction_mut(&transaction_id)?.apply_refund(amount);
        }
        Ok(())
    }

    /// Moves a transaction to `status` and returns the `payment_return`
    /// message Maksekeskus would send for it, signed with the shop's key.
    ///
    /// # Errors
    ///
    /// [`FakeError::UnknownTransaction`].
    pub fn payment_return(&self, transaction_id: &str, status: TransactionStatus) -> Result<SignedMessage, FakeError> {
        let mut state = self.shared.state();
        let now = state.now;
        let transaction = state.transaction_mut(transaction_id)?;
        transaction.move_to(status, now);
        let json = json::payment_return(&self.shared.shop_id, transaction, now).map_err(FakeError::Json)?;
        Ok(SignedMessage::sign(json, &self.shared.secret_key))
    }

    /// The `token_return` message of a card flow for a transaction at its
    /// current status, signed with the shop's key.
    ///
    /// # Errors
    ///
    /// [`FakeError::UnknownTransaction`].
    pub fn token_return(&self, transaction_id: &str) -> Result<SignedMessage, FakeError> {
        let mut state = self.shared.state();
        let now = state.now;
        let transaction = state.transaction_mut(transaction_id)?;
        let json = json::token_return(transaction, now).map_err(FakeError::Json)?;
        Ok(SignedMessage::sign(json, &self.shared.secret_key))
    }

    /// Signs any message text with the shop's key.
    pub fn sign(&self, json: impl Into<String>) -> SignedMessage {
        SignedMessage::sign(json, &self.shared.secret_key)
    }
}

impl Drop for FakeMaksekeskus {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A request the fake cannot carry out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeError {
    #[error("the fake Maksekeskus server could not listen on 127.0.0.1")]
    Bind(#[source] std::io::Error),

    #[error("the fake Maksekeskus server could not be configured")]
    Config(#[source] ConfigError),

    #[error("the fake holds no transaction {id}")]
    UnknownTransaction { id: String },

    #[error("the fake holds no refund {id}")]
    UnknownRefund { id: String },

    #[error("refund {id} is settled and cannot change status")]
    RefundAlreadySettled { id: String },

    #[error("the fake could not write a message")]
    Json(#[source] serde_json::Error),
}

/// A tag that differs between fake servers: the process id mixed with the
/// wall clock's nanoseconds.
fn run_tag() -> u32 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.subsec_nanos());
    std::process::id().rotate_left(16) ^ nanos
}
