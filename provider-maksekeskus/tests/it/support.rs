//! Shared setup: fixtures, a provider pointed at a fake, and a billing
//! service with one issued invoice.

use std::sync::Arc;

use billing_domain::ledger::OverdraftPolicy;
use billing_domain::memory::MemoryStore;
use billing_domain::service::{NewInvoice, PaymentOptions, PaymentStart};
use billing_domain::testing::{ManualClock, SeededRandom};
use billing_domain::{
    BillingService, Channel, Currency, InvoiceId, InvoiceRow, Money, Payment, PaymentId, ProviderName, StaffContext,
    StartRequest, TenantId, UserId,
};
use provider_maksekeskus::test_server::FakeMaksekeskus;
use provider_maksekeskus::{CallbackMethod, CallbackUrl, MaksekeskusProvider, SecretKey, TransactionUrls};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use time::macros::datetime;
use time::OffsetDateTime;

/// The clock reading of every test, the fixtures' day.
pub const NOW: OffsetDateTime = datetime!(2026-11-30 10:00 UTC);

pub const RETURN_URL: &str = "https://workspace.example/pay/return";
pub const CANCEL_URL: &str = "https://workspace.example/pay/cancel";
pub const NOTIFICATION_URL: &str = "https://workspace.example/hooks/maksekeskus";

/// Credits the invoice of [`World`] grants once paid.
pub const CREDITS: u64 = 100;

/// One signed fixture from `testdata/maksekeskus`.
pub struct Fixture {
    pub secret: SecretKey,
    pub json: String,
    pub mac: String,
}

pub fn fixture(name: &str) -> Fixture {
    let path = format!("{}/../testdata/maksekeskus/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    Fixture {
        secret: SecretKey::new(value["secret"].as_str().unwrap()).unwrap(),
        json: value["json"].as_str().unwrap().to_owned(),
        mac: value["mac"].as_str().unwrap().to_owned(),
    }
}

pub fn eur(amount: Decimal) -> Money {
    Money::new(amount, Currency::EUR).unwrap()
}

pub async fn fake() -> FakeMaksekeskus {
    FakeMaksekeskus::start_with_test_credentials(NOW).await.unwrap()
}

pub fn transaction_urls() -> TransactionUrls {
    TransactionUrls {
        return_url: CallbackUrl::new(RETURN_URL, CallbackMethod::Post).unwrap(),
        cancel_url: CallbackUrl::new(CANCEL_URL, CallbackMethod::Post).unwrap(),
        notification_url: CallbackUrl::new(NOTIFICATION_URL, CallbackMethod::Post).unwrap(),
    }
}

/// A provider for the fake's shop, with callback URLs, locale `et` and a fixed clock.
pub fn provider(fake: &FakeMaksekeskus) -> MaksekeskusProvider {
    let config = fake.config().unwrap().with_transaction_urls(transaction_urls()).with_locale("et").unwrap();
    MaksekeskusProvider::new(config).unwrap().with_clock(Arc::new(ManualClock::new(NOW)))
}

/// Builds a start request for 25.00 EUR as the service would send it.
pub fn start_request() -> StartRequest {
    StartRequest {
        tenant_id: TenantId::from_random_bytes([1; 16]),
        invoice_id: InvoiceId::from_random_bytes([2; 16]),
        payment_id: PaymentId::from_random_bytes([3; 16]),
        invoice_number: "INV-2026-0042".into(),
        amount: eur(dec!(25)),
        lines: Vec::new(),
        channel: Channel::HostedPage,
        customer_ip: Some("203.0.113.7".into()),
        locale: Some("et".into()),
        requested_at: NOW,
    }
}

/// A billing service with the Maksekeskus provider, one tenant and one
/// issued 25.00 EUR invoice that grants [`CREDITS`] credits.
pub struct World {
    pub service: BillingService,
    pub fake: FakeMaksekeskus,
    pub provider: Arc<MaksekeskusProvider>,
    pub name: ProviderName,
    pub staff: StaffContext,
    pub invoice_id: InvoiceId,
    pub token: String,
}

impl World {
    pub async fn new() -> World {
        let fake = fake().await;
        World::with_provider(fake, provider).await
    }

    pub async fn with_provider(
        fake: FakeMaksekeskus,
        build: impl FnOnce(&FakeMaksekeskus) -> MaksekeskusProvider,
    ) -> World {
        let provider = Arc::new(build(&fake));
        let name = ProviderName::new("maksekeskus").unwrap();
        let service = BillingService::new(
            Arc::new(MemoryStore::new()),
            Arc::new(ManualClock::new(NOW)),
            Arc::new(SeededRandom::new(7)),
        )
        .with_provider(provider.clone());

        let owner = UserId::from_random_bytes([4; 16]);
        let (_, staff) =
            service.create_tenant("Workspace", owner, "Owner", OverdraftPolicy { limit: 0 }).await.unwrap();
        let company = service.add_company(&staff, "Customer OÜ").await.unwrap();
        let row = InvoiceRow {
            description: "Credit pack".into(),
            quantity: dec!(1),
            unit_price: eur(dec!(25)),
            project: None,
            content: None,
            credits: Some(CREDITS),
        };
        let invoice = service
            .create_invoice(
                &staff,
                NewInvoice {
                    company_id: company.id,
                    number: "INV-2026-0042".into(),
                    currency: Currency::EUR,
                    rows: vec![row],
                },
            )
            .await
            .unwrap();
        let issued = service.issue_invoice(&staff, invoice.id).await.unwrap();
        let token = issued.token.expose().to_owned();
        World { service, fake, provider, name, staff, invoice_id: invoice.id, token }
    }

    /// Starts a payment from the public link; returns its id and transaction id.
    pub async fn start_payment(&self) -> (PaymentId, String) {
        let options = PaymentOptions { customer_ip: Some("203.0.113.7".into()), locale: Some("et".into()) };
        let start = self.service.start_public_payment(&self.token, &self.name, options).await.unwrap();
        let PaymentStart::Redirect { payment_id, .. } = start else {
            panic!("expected a redirect, got {start:?}");
        };
        let payment = self.payment(payment_id).await;
        (payment_id, payment.reference.expect("transaction id recorded").as_str().to_owned())
    }

    pub async fn payment(&self, payment_id: PaymentId) -> Payment {
        self.service.store().payment(payment_id).await.unwrap().expect("payment stored")
    }

    pub async fn balance(&self) -> i64 {
        self.service.balance(self.staff.tenant_id()).await.unwrap().balance
    }
}
