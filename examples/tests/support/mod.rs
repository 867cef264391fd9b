//! Shared set-up of the HTTP tests: the reference server with the demo seed
//! in-process on 127.0.0.1, a scripted provider with signed webhooks as its
//! hosted-page and Terminal provider, a clock the tests move, and a store
//! that can be told to fail.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use billing_domain::directory::{Company, Content, Membership, Project, Tenant};
use billing_domain::event::EventKey;
use billing_domain::invoice::Invoice;
use billing_domain::ledger::{AccountSnapshot, Hold, LedgerEntry};
use billing_domain::log::{InboxEntry, LogEntry};
use billing_domain::memory::MemoryStore;
use billing_domain::store::{LogFilter, Store, StoreError, StoreTx};
use billing_domain::testing::{ManualClock, ScriptedProvider, SeededRandom};
use billing_domain::token::TokenHash;
use billing_domain::{
    CompanyId, ContentId, EventKind, InvoiceId, Money, Payment, PaymentId, ProjectId, ProviderName, ProviderReference,
    TenantId, UserId,
};
use billing_examples::server::{seed_demo, App, DemoSeed, RunningServer, ServerBuilder};
use billing_examples::OsRandom;
use provider_free::{FreeProvider, ManualProvider};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{RequestBuilder, Response, StatusCode};
use time::OffsetDateTime;
use tokio::net::TcpListener;

/// The scripted provider's name and webhook secret.
pub const SCRIPTED: &str = "scripted";
pub const SCRIPTED_SECRET: &str = "whsec_scripted_test";
/// The one card reader the test server offers.
pub const READER: &str = "tmr_test_reader";

/// Text of the demo workspace that must never appear on the public side.
pub const PRIVATE_TEXTS: &[&str] = &[
    "Design sprint",
    "Brand guidelines",
    "module credits",
    "Customer Ltd",
    "Other Company",
    "Website redesign",
    "projects.example",
    "content.example",
    "2026-0012",
    "split the next invoice",
    "Casey",
    "Sam (staff)",
    "Northwind",
];

pub struct Harness {
    pub server: RunningServer,
    pub app: App,
    pub seed: DemoSeed,
    pub scripted: Arc<ScriptedProvider>,
    pub clock: Arc<ManualClock>,
    pub store: Arc<FailingStore>,
    pub base: String,
    /// Follows no redirects, so tests see each 303.
    pub client: reqwest::Client,
}

impl Harness {
    pub async fn start() -> Harness {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let store = Arc::new(FailingStore::default());
        let scripted = Arc::new(ScriptedProvider::new(SCRIPTED, SCRIPTED_SECRET).unwrap());

        let app = ServerBuilder::new(store.clone(), base.clone())
            .clock(clock.clone())
            .random(Arc::new(SeededRandom::new(42)))
            .hosted_page(scripted.clone(), "card (scripted)")
            .free(Arc::new(FreeProvider))
            .manual(Arc::new(ManualProvider))
            .terminal(ProviderName::new(SCRIPTED).unwrap(), vec![READER.to_owned()])
            .build()
            .unwrap();
        let seed = seed_demo(&app, &OsRandom).await.unwrap();
        let server = app.spawn(listener).unwrap();
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Harness { server, app, seed, scripted, clock, store, base, client }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn public_path(&self) -> String {
        self.seed.public_url.strip_prefix(&self.base).unwrap().to_owned()
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path))
    }

    /// A request with `token` as a bearer token.
    pub fn get_as(&self, token: &str, path: &str) -> RequestBuilder {
        self.get(path).header(AUTHORIZATION, format!("Bearer {token}"))
    }

    pub fn post_as(&self, token: &str, path: &str) -> RequestBuilder {
        self.post(path).header(AUTHORIZATION, format!("Bearer {token}"))
    }

    pub fn staff(&self) -> &str {
        &self.seed.staff.token
    }

    pub fn customer(&self) -> &str {
        &self.seed.customer.token
    }

    pub fn other_customer(&self) -> &str {
        &self.seed.other_customer.token
    }

    /// Presses the scripted Pay button and returns the new payment's id.
    pub async fn start_scripted_payment(&self) -> PaymentId {
        let response = self.post(&self.public_path()).form(&[("provider", SCRIPTED)]).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = location(&response);
        let reference = location.rsplit('/').next().unwrap();
        reference.strip_prefix("ref-").unwrap().parse().unwrap()
    }

    pub async fn payment(&self, payment_id: PaymentId) -> Payment {
        self.app.service().store().payment(payment_id).await.unwrap().unwrap()
    }

    pub async fn invoice(&self) -> Invoice {
        self.app.service().store().invoice(self.seed.invoice_id).await.unwrap().unwrap()
    }

    /// A signed scripted webhook reporting `kind` for `payment_id`.
    pub async fn webhook(&self, event_id: &str, payment_id: PaymentId, kind: EventKind) -> (HeaderMap, Vec<u8>) {
        let payment = self.payment(payment_id).await;
        let amount: Option<Money> = Some(payment.amount);
        let event = self.scripted.event(event_id, &payment, kind, amount).unwrap();
        let request = self.scripted.signed_webhook(&event).unwrap();
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        (headers, request.body)
    }

    pub async fn deliver(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        self.post(&format!("/webhooks/{SCRIPTED}")).headers(headers.clone()).body(body.to_vec()).send().await.unwrap()
    }

    /// Starts a payment and delivers a signed success for it.
    pub async fn pay_demo_invoice(&self) -> PaymentId {
        let payment_id = self.start_scripted_payment().await;
        self.pay_demo_invoice_with(payment_id).await;
        payment_id
    }

    /// Delivers a signed success for `payment_id`.
    pub async fn pay_demo_invoice_with(&self, payment_id: PaymentId) {
        let (headers, body) = self.webhook("evt_paid", payment_id, EventKind::Succeeded).await;
        let response = self.deliver(&headers, &body).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    pub fn scripted_reference(payment_id: PaymentId) -> ProviderReference {
        ScriptedProvider::reference_for(payment_id).unwrap()
    }
}

pub fn location(response: &Response) -> String {
    response.headers().get(reqwest::header::LOCATION).unwrap().to_str().unwrap().to_owned()
}

pub fn json_accept() -> (reqwest::header::HeaderName, HeaderValue) {
    (ACCEPT, HeaderValue::from_static("application/json"))
}

pub fn assert_no_private_text(what: &str, text: &str) {
    for private in PRIVATE_TEXTS {
        assert!(!text.contains(private), "{what} leaks {private:?}:\n{text}");
    }
}

/// The in-memory store, with a switch that makes every new transaction fail
/// as if the database were down.
#[derive(Default)]
pub struct FailingStore {
    inner: MemoryStore,
    down: AtomicBool,
}

impl FailingStore {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for FailingStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable { reason: "the test switched the store off".into() });
        }
        self.inner.begin().await
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        self.inner.tenant(id).await
    }

    async fn company(&self, id: CompanyId) -> Result<Option<Company>, StoreError> {
        self.inner.company(id).await
    }

    async fn membership(&self, tenant: TenantId, user: UserId) -> Result<Option<Membership>, StoreError> {
        self.inner.membership(tenant, user).await
    }

    async fn projects_for_company(&self, tenant: TenantId, company: CompanyId) -> Result<Vec<Project>, StoreError> {
        self.inner.projects_for_company(tenant, company).await
    }

    async fn project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        self.inner.project(id).await
    }

    async fn content(&self, id: ContentId) -> Result<Option<Content>, StoreError> {
        self.inner.content(id).await
    }

    async fn invoice(&self, id: InvoiceId) -> Result<Option<Invoice>, StoreError> {
        self.inner.invoice(id).await
    }

    async fn invoice_by_token(&self, hash: &TokenHash) -> Result<Option<Invoice>, StoreError> {
        self.inner.invoice_by_token(hash).await
    }

    async fn invoices_for_company(&self, tenant: TenantId, company: CompanyId) -> Result<Vec<Invoice>, StoreError> {
        self.inner.invoices_for_company(tenant, company).await
    }

    async fn payment(&self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        self.inner.payment(id).await
    }

    async fn payment_by_reference(
        &self,
        provider: &ProviderName,
        reference: &ProviderReference,
    ) -> Result<Option<Payment>, StoreError> {
        self.inner.payment_by_reference(provider, reference).await
    }

    async fn payments_for_invoice(&self, invoice: InvoiceId) -> Result<Vec<Payment>, StoreError> {
        self.inner.payments_for_invoice(invoice).await
    }

    async fn stale_payments(
        &self,
        tenant: Option<TenantId>,
        updated_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        self.inner.stale_payments(tenant, updated_before, limit).await
    }

    async fn account(&self, tenant: TenantId) -> Result<AccountSnapshot, StoreError> {
        self.inner.account(tenant).await
    }

    async fn ledger_entries(&self, tenant: TenantId) -> Result<Vec<LedgerEntry>, StoreError> {
        self.inner.ledger_entries(tenant).await
    }

    async fn holds(&self, tenant: TenantId) -> Result<Vec<Hold>, StoreError> {
        self.inner.holds(tenant).await
    }

    async fn inbox_entry(&self, key: &EventKey) -> Result<Option<InboxEntry>, StoreError> {
        self.inner.inbox_entry(key).await
    }

    async fn unresolved_events_for_payment(&self, payment: PaymentId) -> Result<Vec<InboxEntry>, StoreError> {
        self.inner.unresolved_events_for_payment(payment).await
    }

    async fn log_entries(&self, filter: &LogFilter) -> Result<Vec<LogEntry>, StoreError> {
        self.inner.log_entries(filter).await
    }
}
