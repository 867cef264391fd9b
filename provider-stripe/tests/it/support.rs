//! Shared set-up: a fake Stripe, a provider pointed at it, and a billing
//! service over the in-memory store with a manual clock.

use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::Value;
use time::OffsetDateTime;

use billing_domain::ledger::OverdraftPolicy;
use billing_domain::memory::MemoryStore;
use billing_domain::service::{EventReport, IssuedInvoice, NewInvoice, PaymentOptions, PaymentStart};
use billing_domain::testing::{ManualClock, SeededRandom};
use billing_domain::{
    BillingError, BillingService, Channel, CompanyId, Currency, InvoiceId, InvoiceRow, Money, Payment, PaymentId,
    ProviderName, StaffContext, StartRequest, TenantId, UserId, WebhookRequest,
};
use provider_stripe::test_server::{event_envelope, signed_event, FakeStripe};
use provider_stripe::{Secret, StripeConfig, StripeProvider};

pub const SECRET_KEY: &str = "sk_test_fake_key";
pub const WEBHOOK_SECRET: &str = "whsec_test_primary";
pub const SUCCESS_URL: &str = "https://shop.example/billing/return?session={CHECKOUT_SESSION_ID}";
pub const CANCEL_URL: &str = "https://shop.example/billing/cancel";

/// The clock reading every test starts at, in Unix seconds.
pub const START: i64 = 1_800_000_000;

pub fn start_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(START).unwrap()
}

pub fn money(amount: Decimal, code: &str) -> Money {
    Money::new(amount, Currency::from_code(code).unwrap()).unwrap()
}

pub fn stripe_name() -> ProviderName {
    ProviderName::new("stripe").unwrap()
}

pub async fn fake() -> FakeStripe {
    let fake = FakeStripe::start().await.unwrap();
    fake.set_time(START);
    fake
}

pub fn config(fake: &FakeStripe) -> StripeConfig {
    StripeConfig::new(Secret::new(SECRET_KEY), Secret::new(WEBHOOK_SECRET), SUCCESS_URL, CANCEL_URL)
        .unwrap()
        .with_api_base(fake.base_url())
        .unwrap()
        .with_request_timeout(Duration::from_secs(5))
}

pub fn provider(config: StripeConfig) -> StripeProvider {
    StripeProvider::new(config, Arc::new(ManualClock::new(start_time()))).unwrap()
}

/// A start request for `amount` with fresh ids.
pub fn start_request(amount: Money, channel: Channel) -> StartRequest {
    StartRequest {
        tenant_id: TenantId::from_random_bytes([1; 16]),
        invoice_id: InvoiceId::from_random_bytes([2; 16]),
        payment_id: PaymentId::from_random_bytes([3; 16]),
        invoice_number: "2026-0012".into(),
        amount,
        lines: Vec::new(),
        channel,
        customer_ip: Some("203.0.113.9".into()),
        locale: None,
        requested_at: start_time(),
    }
}

/// A payment as the service would store it, with a provider reference.
pub fn payment_with_reference(reference: &str, amount: Money) -> Payment {
    let mut payment = Payment::new(
        PaymentId::from_random_bytes([3; 16]),
        TenantId::from_random_bytes([1; 16]),
        InvoiceId::from_random_bytes([2; 16]),
        stripe_name(),
        Channel::HostedPage,
        amount,
        start_time(),
    );
    payment.reference = Some(billing_domain::ProviderReference::new(reference).unwrap());
    payment
}

/// A signed webhook for `object`, stamped with `timestamp` as its signing time.
pub fn webhook(event_id: &str, event_type: &str, object: Value, timestamp: i64) -> WebhookRequest {
    signed_event(&event_envelope(event_id, event_type, timestamp, object), WEBHOOK_SECRET, timestamp).unwrap()
}

/// The service, its clock, the Stripe provider and the fake behind it, with
/// one tenant and one company.
pub struct World {
    pub service: BillingService,
    pub clock: Arc<ManualClock>,
    pub provider: Arc<StripeProvider>,
    pub fake: FakeStripe,
    pub staff: StaffContext,
    pub tenant: TenantId,
    pub company: CompanyId,
}

impl World {
    pub async fn new() -> World {
        World::with_config(|config| config).await
    }

    pub async fn with_config(adjust: impl FnOnce(StripeConfig) -> StripeConfig) -> World {
        let fake = fake().await;
        let clock = Arc::new(ManualClock::new(start_time()));
        let provider = Arc::new(StripeProvider::new(adjust(config(&fake)), clock.clone()).unwrap());
        let service = BillingService::new(Arc::new(MemoryStore::new()), clock.clone(), Arc::new(SeededRandom::new(7)))
            .with_provider(provider.clone());
        let owner = UserId::from_random_bytes([9; 16]);
        let (tenant, staff) =
            service.create_tenant("Acme Studio", owner, "Owner", OverdraftPolicy { limit: 0 }).await.unwrap();
        let company = service.add_company(&staff, "Customer Ltd").await.unwrap();
        World { service, clock, provider, fake, staff, tenant: tenant.id, company: company.id }
    }

    /// Creates and issues an invoice of one row granting `credits`.
    pub async fn issue_invoice(&self, unit_price: Money, credits: u64) -> IssuedInvoice {
        let row = InvoiceRow {
            description: "Translation module, 100 credits".into(),
            quantity: Decimal::ONE,
            unit_price,
            project: None,
            content: None,
            credits: Some(credits),
        };
        let new = NewInvoice {
            company_id: self.company,
            number: "2026-0012".into(),
            currency: unit_price.currency(),
            rows: vec![row],
        };
        let invoice = self.service.create_invoice(&self.staff, new).await.unwrap();
        self.service.issue_invoice(&self.staff, invoice.id).await.unwrap()
    }

    /// Starts a Checkout payment from the public link and returns the payment
    /// id and the Checkout Session id.
    pub async fn start_checkout(&self, token: &str) -> (PaymentId, String) {
        let start = self.service.start_public_payment(token, &stripe_name(), PaymentOptions::default()).await.unwrap();
        let PaymentStart::Redirect { payment_id, .. } = start else {
            panic!("expected a redirect, got {start:?}");
        };
        let reference = self.payment(payment_id).await.reference.unwrap();
        (payment_id, reference.as_str().to_owned())
    }

    /// Issues an invoice of one row granting `credits`, pays it through
    /// Checkout and delivers the signed completion. Returns the issued
    /// invoice, the payment id and the PaymentIntent id.
    pub async fn paid_checkout(&self, unit_price: Money, credits: u64) -> (IssuedInvoice, PaymentId, String) {
        let issued = self.issue_invoice(unit_price, credits).await;
        let (payment_id, session_id) = self.start_checkout(issued.token.expose()).await;
        let session = self.fake.pay_session(&session_id).unwrap();
        let intent_id = session["payment_intent"].as_str().unwrap().to_owned();
        self.deliver("evt_test_completed", "checkout.session.completed", session).await.unwrap();
        (issued, payment_id, intent_id)
    }

    /// Signs `object` as event `event_id` at the clock's reading and hands it to the service.
    pub async fn deliver(
        &self,
        event_id: &str,
        event_type: &str,
        object: Value,
    ) -> Result<Vec<EventReport>, BillingError> {
        let now = self.service.now().unix_timestamp();
        self.service.handle_webhook(&stripe_name(), &webhook(event_id, event_type, object, now)).await
    }

    pub async fn payment(&self, payment_id: PaymentId) -> Payment {
        self.service.store().payment(payment_id).await.unwrap().unwrap()
    }
}
