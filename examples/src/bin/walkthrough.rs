//! The whole billing flow, step by step, in plain words.
//!
//! Run it with `cargo run -p billing-examples --bin walkthrough`. It uses the
//! PostgreSQL store when `DATABASE_URL` is set (applying the migrations
//! first) and the in-memory store otherwise, with the same output; the
//! store in use is named on standard error. It uses the system clock and the operating system's random
//! source. It settles invoices through `provider-free` (a bank transfer
//! confirmed by staff and a zero-total invoice), through Stripe Checkout and
//! through Maksekeskus. The Stripe and Maksekeskus APIs are local stand-ins
//! on 127.0.0.1 that the real clients talk to, and their webhooks are signed
//! with test secrets and verified as in production. Every step states what it expects; the program prints `ok`
//! or `FAILED` beside each expectation and exits with status 1 if any failed.

use std::process::ExitCode;
use std::sync::Arc;

use billing_domain::directory::Role;
use billing_domain::ledger::{ConsumptionRequest, OverdraftPolicy};
use billing_domain::log::LogOutcome;
use billing_domain::memory::MemoryStore;
use billing_domain::service::Clock;
use billing_domain::service::{NewInvoice, PaymentOptions, PaymentStart, PublicStatus};
use billing_domain::store::Store;
use billing_domain::{
    BillingError, BillingService, Currency, IdempotencyKey, InvoiceRow, InvoiceStatus, ManualMethod, Money,
    PaymentProvider, ProviderName, StaffContext, TenantId, Transition, UserId,
};
use billing_examples::{OsRandom, SystemClock};
use provider_free::{FreeProvider, ManualProvider, FREE, MANUAL};
use provider_maksekeskus::test_server::FakeMaksekeskus;
use provider_maksekeskus::{MaksekeskusProvider, TransactionStatus};
use provider_stripe::test_server::FakeStripe;
use provider_stripe::StripeProvider;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

/// Counts expectations and prints each one as it is checked.
#[derive(Debug, Default)]
struct Walkthrough {
    step: usize,
    failures: Vec<String>,
}

impl Walkthrough {
    fn step(&mut self, title: &str) {
        self.step += 1;
        println!("\n{}. {title}", self.step);
    }

    fn say(&self, line: impl AsRef<str>) {
        println!("   {}", line.as_ref());
    }

    fn expect(&mut self, holds: bool, what: &str) {
        if holds {
            println!("   ok      {what}");
        } else {
            println!("   FAILED  {what}");
            self.failures.push(format!("step {}: {what}", self.step));
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut walk = Walkthrough::default();
    let store: Arc<dyn Store> = match std::env::var("DATABASE_URL") {
        Ok(url) => match storage_postgres::PgStore::connect(&url).await {
            Ok(store) => {
                eprintln!("store: PostgreSQL (DATABASE_URL)");
                Arc::new(store)
            }
            Err(error) => {
                println!("The walkthrough could not open the PostgreSQL store: {error}");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => {
            eprintln!("store: in memory (set DATABASE_URL to use PostgreSQL)");
            Arc::new(MemoryStore::new())
        }
    };

    match run(&mut walk, store).await {
        Ok(()) if walk.failures.is_empty() => {
            println!("\nEvery expectation held.");
            ExitCode::SUCCESS
        }
        Ok(()) => {
            println!("\n{} expectation(s) failed:", walk.failures.len());
            for failure in &walk.failures {
                println!("  - {failure}");
            }
            ExitCode::FAILURE
        }
        Err(error) => {
            println!("\nThe walkthrough stopped at step {}: {error}", walk.step);
            ExitCode::FAILURE
        }
    }
}

type Failure = Box<dyn std::error::Error>;

async fn run(walk: &mut Walkthrough, store: Arc<dyn Store>) -> Result<(), Failure> {
    let maksekeskus_api = FakeMaksekeskus::start_with_test_credentials(SystemClock.now()).await?;
    let maksekeskus = MaksekeskusProvider::new(maksekeskus_api.config()?)?.with_clock(Arc::new(SystemClock));
    let stripe_api = FakeStripe::start().await?;
    let stripe_config = stripe_api.config(
        "https://workspace.example/pay/return?session={CHECKOUT_SESSION_ID}",
        "https://workspace.example/pay/cancel",
    )?;
    let stripe = StripeProvider::new(stripe_config, Arc::new(SystemClock))?;
    let service = BillingService::new(store, Arc::new(SystemClock), Arc::new(OsRandom))
        .with_provider(Arc::new(ManualProvider))
        .with_provider(Arc::new(FreeProvider))
        .with_provider(Arc::new(stripe))
        .with_provider(Arc::new(maksekeskus));
    let manual = provider(MANUAL)?;
    let free = provider(FREE)?;

    walk.step("A workspace with staff, a customer company, a project and paid content");
    let staff_user = UserId::from_random_bytes([1; 16]);
    let customer_user = UserId::from_random_bytes([2; 16]);
    let (tenant, staff) =
        service.create_tenant("Northwind Studio", staff_user, "Sam (staff)", OverdraftPolicy::default()).await?;
    let company = service.add_company(&staff, "Customer Ltd").await?;
    let project =
        service.add_project(&staff, company.id, "Website redesign", "https://projects.example/website").await?;
    let content = service.add_content(&staff, "Brand guidelines", "https://content.example/brand.pdf").await?;
    service.add_member(&staff, customer_user, "Casey (customer)", Role::Customer { company_id: company.id }).await?;
    let customer = service.customer_context(tenant.id, customer_user).await?;
    walk.say(format!("tenant {:?}, company {:?}, project {:?}", tenant.name, company.name, project.name));
    walk.expect(service.staff_context(tenant.id, customer_user).await.is_err(), "a customer cannot act as staff");

    walk.step("Staff create an invoice with rows and a credit row, then issue it");
    let rows = vec![
        row("Design sprint, 2 days", dec!(2), dec!(20.00), Some(project.id), None, None)?,
        row("Brand guidelines (PDF)", dec!(1), dec!(4.90), None, Some(content.id), None)?,
        row("500 module credits", dec!(1), dec!(5.00), None, None, Some(500))?,
    ];
    let invoice = service
        .create_invoice(
            &staff,
            NewInvoice { company_id: company.id, number: "2026-0012".into(), currency: Currency::EUR, rows },
        )
        .await?;
    let issued = service.issue_invoice(&staff, invoice.id).await?;
    let token = issued.token.expose().to_owned();
    walk.say(format!(
        "invoice {} totals {} and grants {} credits once paid",
        issued.invoice.number,
        issued.invoice.total()?,
        issued.invoice.credits_promised()
    ));
    walk.say(format!("public link: /pay/{}… ({} hex characters, stored only as a hash)", &token[..8], token.len()));
    walk.expect(issued.invoice.status() == InvoiceStatus::Open, "the issued invoice is open");

    walk.step("What the public link shows, with no sign-in");
    let entry = service.public_entry(&token).await?;
    let shown = serde_json::to_string(&entry).unwrap_or_default();
    walk.say(format!("amount {}, status {:?}, \"{}\"", entry.amount, entry.status, entry.sign_in_hint));
    walk.expect(entry.status == PublicStatus::Payable, "the invoice is payable");
    let private = ["Design sprint", "Brand guidelines", "Customer Ltd", "Website", "2026-0012", "projects.example"];
    walk.expect(
        private.iter().all(|text| !shown.contains(text)),
        "no rows, names, projects, content or invoice number",
    );

    walk.step("Before payment, the purchased content stays locked");
    walk.expect(service.open_content(&customer, content.id).await.is_err(), "the customer cannot open the content yet");

    walk.step("Staff record a bank transfer; it completes through provider-free");
    let started = service
        .record_manual_payment(&staff, invoice.id, &manual, ManualMethod::BankTransfer, "RF18 5390 0754")
        .await?;
    let PaymentStart::Completed { payment, events } = started else {
        walk.expect(false, "the manual payment completes at once");
        return Ok(());
    };
    walk.say(format!("payment {} is {}; event outcome: {}", payment.id, payment.status(), events[0].outcome));
    let balance = service.balance(tenant.id).await?;
    walk.say(format!("credit balance: {}", balance.balance));
    walk.expect(balance.balance == 500, "500 credits were granted");

    walk.step("The same completion is delivered again");
    let again = ManualProvider.fetch_payment(&payment).await?;
    let report = service.apply_event(&again[0]).await?;
    let replay = service
        .record_manual_payment(&staff, invoice.id, &manual, ManualMethod::BankTransfer, "RF18 5390 0754")
        .await?;
    walk.say(format!("redelivered event: {}", report.outcome));
    walk.expect(report.outcome == LogOutcome::Duplicate, "the redelivered event is a duplicate");
    walk.expect(
        matches!(replay, PaymentStart::AlreadyRecorded { .. }),
        "recording the same transfer again changes nothing",
    );
    walk.expect(service.balance(tenant.id).await?.balance == 500, "credits were granted once");

    walk.step("The public link is gone for good");
    let gone = service.public_entry(&token).await;
    walk.say(format!("public link answers: {}", describe(&gone)));
    walk.expect(matches!(gone, Err(BillingError::PublicLinkGone { .. })), "the paid invoice's link returns gone");

    walk.step("A zero-total invoice completes at once");
    let gift = service
        .create_invoice(
            &staff,
            NewInvoice {
                company_id: company.id,
                number: "2026-0013".into(),
                currency: Currency::EUR,
                rows: vec![row("Welcome credits", dec!(1), dec!(0), None, None, Some(50))?],
            },
        )
        .await?;
    let gift = service.issue_invoice(&staff, gift.id).await?;
    let started = service.start_public_payment(gift.token.expose(), &free, PaymentOptions::default()).await?;
    let completed = matches!(started, PaymentStart::Completed { .. });
    walk.say(format!("balance after the zero-total invoice: {}", service.balance(tenant.id).await?.balance));
    walk.expect(completed, "the free provider completed it without a payment page");
    walk.expect(service.balance(tenant.id).await?.balance == 550, "its 50 credits were granted");

    walk.step("A module consumes credits with an idempotency key, and retries");
    let usage = ConsumptionRequest {
        tenant_id: tenant.id,
        module: "image-render".into(),
        amount: 120,
        idempotency_key: IdempotencyKey::new("render-job-42")?,
    };
    let first = service.consume_credits(&usage).await?;
    let retry = service.consume_credits(&usage).await?;
    walk.say(format!("first call: {:?}, balance {}", first.transition, first.balance_after));
    walk.say(format!("retry with the same key: {:?}, balance {}", retry.transition, retry.balance_after));
    walk.expect(retry.transition == Transition::AlreadyApplied, "the retry returned the first result");
    walk.expect(service.balance(tenant.id).await?.balance == 430, "the job was charged once");
    let changed = service.consume_credits(&ConsumptionRequest { amount: 121, ..usage.clone() }).await;
    walk.expect(changed.is_err(), "the same key with another amount is rejected");

    walk.step("The customer's workspace view");
    let view = service.customer_invoice(&customer, invoice.id).await?;
    walk.say(format!("invoice {} for {}: {}, total {}", view.number, view.company.name, view.status, view.total));
    for row in &view.rows {
        let project = row.project.as_ref().map(|project| format!(" (project: {})", project.name)).unwrap_or_default();
        walk.say(format!("  {} × {} = {}{project}", row.quantity, row.description, row.line_total));
    }
    let unlocked = service.open_content(&customer, content.id).await;
    walk.say(format!("projects in the tenant portal: {}", service.tenant_projects(&customer).await?.len()));
    walk.expect(view.rows.len() == 3, "the customer sees all three rows");
    walk.expect(unlocked.is_ok(), "the purchased content is unlocked now that the store records the invoice as paid");

    walk.step("The staff view adds internal notes, payments and the log");
    service.add_internal_note(&staff, invoice.id, "Customer asked to split the next invoice").await?;
    let staff_view = service.staff_invoice(&staff, invoice.id).await?;
    let customer_json =
        serde_json::to_string(&service.customer_invoice(&customer, invoice.id).await?).unwrap_or_default();
    walk.say(format!(
        "{} note(s), {} payment(s), {} log entries",
        staff_view.internal_notes.len(),
        staff_view.payments.len(),
        staff_view.log.len()
    ));
    for entry in staff_view.log.iter().rev() {
        walk.say(format!("  log: {:<9} {}", entry.outcome.as_str(), entry.reason));
    }
    walk.expect(staff_view.internal_notes.len() == 1, "staff see the internal note");
    walk.expect(!customer_json.contains("split the next invoice"), "the customer never sees it");
    walk.expect(service.unresolved_log(&staff, 10).await?.is_empty(), "nothing waits for staff");

    pay_through_stripe(walk, &service, &staff, company.id, &stripe_api).await?;
    pay_through_maksekeskus(walk, &service, &staff, company.id, &maksekeskus_api).await?;
    Ok(())
}

/// Pays an invoice through Stripe Checkout (the local stand-in), delivers the
/// signed `checkout.session.completed` twice, confirms the return by fetching,
/// then refunds it in full.
async fn pay_through_stripe(
    walk: &mut Walkthrough,
    service: &BillingService,
    staff: &StaffContext,
    company: billing_domain::CompanyId,
    api: &FakeStripe,
) -> Result<(), Failure> {
    let tenant = staff.tenant_id();
    let provider = provider(provider_stripe::PROVIDER_NAME)?;

    walk.step("A customer pays through Stripe Checkout (a local stand-in of its API)");
    let rows = vec![row("200 module credits", dec!(1), dec!(12.00), None, None, Some(200))?];
    let invoice = service
        .create_invoice(
            staff,
            NewInvoice { company_id: company, number: "2026-0015".into(), currency: Currency::EUR, rows },
        )
        .await?;
    let issued = service.issue_invoice(staff, invoice.id).await?;
    let before = service.balance(tenant).await?.balance;
    let started = service.start_public_payment(issued.token.expose(), &provider, PaymentOptions::default()).await?;
    let PaymentStart::Redirect { payment_id, url } = started else {
        walk.expect(false, "Checkout starts with a redirect to the hosted page");
        return Ok(());
    };
    walk.say(format!("the customer is sent to {url}"));
    let sent = api.requests().into_iter().find(|request| request.path == "/v1/checkout/sessions");
    let Some(sent) = sent else {
        walk.expect(false, "the session was created at Stripe");
        return Ok(());
    };
    let metadata = sent.form_keys_with_prefix("metadata[");
    walk.say(format!(
        "sent: unit_amount {}, metadata {metadata:?}, idempotency key {}",
        sent.form_value("line_items[0][price_data][unit_amount]").unwrap_or("missing"),
        sent.idempotency_key().unwrap_or("missing")
    ));
    walk.expect(
        sent.form_value("line_items[0][price_data][unit_amount]") == Some("1200"),
        "12.00 EUR went out as 1200 minor units",
    );
    walk.expect(
        sent.form_value("line_items[0][price_data][product_data][name]") == Some("Invoice 2026-0015"),
        "the line item is generic",
    );
    walk.expect(
        metadata
            .iter()
            .all(|key| ["metadata[tenant_id]", "metadata[invoice_id]", "metadata[payment_id]"].contains(key)),
        "metadata carries only opaque ids",
    );

    let Some(session_id) = api.session_id_for_payment(payment_id) else {
        walk.expect(false, "the stand-in knows the session");
        return Ok(());
    };
    let session = api.pay_session(&session_id)?;
    let now = service.now().unix_timestamp();
    let completed = api.signed_webhook("evt_walkthrough_completed", "checkout.session.completed", session, now)?;
    let first = service.handle_webhook(&provider, &completed).await?;
    let again = service.handle_webhook(&provider, &completed).await?;
    let reference = billing_domain::ProviderReference::new(session_id.clone())?;
    let returned = service.confirm_return_by_reference(&provider, &reference).await?;
    walk.say(format!(
        "signed completion: {}; delivered again: {}; return page confirmed by fetching: {}",
        first[0].outcome, again[0].outcome, returned.confirmed
    ));
    walk.expect(first[0].outcome == LogOutcome::Applied, "the signed completion applied");
    walk.expect(again[0].outcome == LogOutcome::Duplicate, "the second delivery is a duplicate");
    walk.expect(returned.confirmed, "the return page sees the payment confirmed by the store");
    walk.expect(service.balance(tenant).await?.balance == before + 200, "200 credits were granted once");

    let mut tampered = completed.clone();
    tampered.body = String::from_utf8_lossy(&tampered.body).replacen("1200", "1300", 1).into_bytes();
    walk.expect(
        service.handle_webhook(&provider, &tampered).await.is_err(),
        "a tampered body fails its signature check",
    );

    let payment = service.store().payment(payment_id).await?;
    let intent =
        api.session(&session_id).and_then(|session| session.get("payment_intent")?.as_str().map(str::to_owned));
    let (Some(_), Some(intent)) = (payment, intent) else {
        walk.expect(false, "the paid session has a PaymentIntent");
        return Ok(());
    };
    let charge = api.refund(&intent, 1200)?;
    let refunded = api.signed_webhook("evt_walkthrough_refunded", "charge.refunded", charge, now)?;
    let refund = service.handle_webhook(&provider, &refunded).await?;
    let status = service.store().invoice(invoice.id).await?.map(|invoice| invoice.status());
    walk.say(format!(
        "full refund: {}; invoice is {}",
        refund[0].outcome,
        status.map_or("missing", InvoiceStatus::as_str)
    ));
    walk.expect(status == Some(InvoiceStatus::Refunded), "the refunded invoice is marked refunded");
    walk.expect(service.balance(tenant).await?.balance == before, "the refund took its 200 credits back");
    walk.expect(
        matches!(service.public_entry(issued.token.expose()).await, Err(BillingError::PublicLinkGone { .. })),
        "its public link stays gone",
    );
    Ok(())
}

/// Pays an invoice on the Maksekeskus hosted page (the local stand-in) and
/// delivers its signed `payment_return` twice: as the server notification and
/// as the browser return.
async fn pay_through_maksekeskus(
    walk: &mut Walkthrough,
    service: &BillingService,
    staff: &StaffContext,
    company: billing_domain::CompanyId,
    api: &FakeMaksekeskus,
) -> Result<(), Failure> {
    let tenant: TenantId = staff.tenant_id();
    let provider = provider(provider_maksekeskus::PROVIDER_NAME)?;

    walk.step("A customer pays through Maksekeskus (a local stand-in of its API)");
    let rows = vec![row("1000 module credits", dec!(1), dec!(9.90), None, None, Some(1000))?];
    let invoice = service
        .create_invoice(
            staff,
            NewInvoice { company_id: company, number: "2026-0014".into(), currency: Currency::EUR, rows },
        )
        .await?;
    let issued = service.issue_invoice(staff, invoice.id).await?;
    let options = PaymentOptions { customer_ip: Some("203.0.113.7".into()), locale: Some("et".into()) };
    let before = service.balance(tenant).await?.balance;
    let started = service.start_public_payment(issued.token.expose(), &provider, options).await?;
    let PaymentStart::Redirect { payment_id, url } = started else {
        walk.expect(false, "Maksekeskus starts with a redirect to its payment page");
        return Ok(());
    };
    let sent = api.requests().into_iter().find(|request| request.path == "/v1/transactions");
    walk.say(format!("the customer is sent to {url}"));
    walk.expect(url.starts_with(api.api_base()), "the redirect comes from the Maksekeskus response");
    walk.expect(
        sent.is_some_and(|request| request.body.contains("\"amount\":\"9.90\"")),
        "the amount went out as the string \"9.90\"",
    );

    let Some(transaction) = api.transaction_for_payment(payment_id) else {
        walk.expect(false, "the stand-in recorded the transaction");
        return Ok(());
    };
    let message = api.payment_return(&transaction.id, TransactionStatus::Completed)?;
    let notification = service.handle_webhook(&provider, &message.form_request()).await?;
    let browser_return = service.handle_webhook(&provider, &message.query_request()).await?;
    walk.say(format!(
        "signed notification: {}; the same message as the browser return: {}",
        notification[0].outcome, browser_return[0].outcome
    ));
    walk.expect(notification[0].outcome == LogOutcome::Applied, "the COMPLETED notification applied");
    walk.expect(
        browser_return[0].outcome == LogOutcome::Duplicate,
        "the browser return of the same update is a duplicate",
    );

    let mut forged = message.form_request();
    forged.body = String::from_utf8_lossy(&forged.body).replace("9.9", "0.9").into_bytes();
    let rejected = service.handle_webhook(&provider, &forged).await;
    walk.expect(rejected.is_err(), "a message whose json was altered fails its MAC check");

    let paid = service.store().invoice(invoice.id).await?.map(|invoice| invoice.status());
    walk.say(format!(
        "invoice 2026-0014 is {}, balance {}",
        paid.map_or("missing", InvoiceStatus::as_str),
        service.balance(tenant).await?.balance
    ));
    walk.expect(paid == Some(InvoiceStatus::Paid), "the invoice is paid");
    walk.expect(service.balance(tenant).await?.balance == before + 1000, "1000 credits were granted once");
    walk.expect(
        matches!(service.public_entry(issued.token.expose()).await, Err(BillingError::PublicLinkGone { .. })),
        "its public link is gone",
    );
    Ok(())
}

fn provider(name: &str) -> Result<ProviderName, BillingError> {
    Ok(ProviderName::new(name)?)
}

fn row(
    description: &str,
    quantity: Decimal,
    unit_price: Decimal,
    project: Option<billing_domain::ProjectId>,
    content: Option<billing_domain::ContentId>,
    credits: Option<u64>,
) -> Result<InvoiceRow, BillingError> {
    Ok(InvoiceRow {
        description: description.into(),
        quantity,
        unit_price: Money::new(unit_price, Currency::EUR)?,
        project,
        content,
        credits,
    })
}

fn describe<T>(result: &Result<T, BillingError>) -> String {
    match result {
        Ok(_) => "available".into(),
        Err(error) => error.to_string(),
    }
}
