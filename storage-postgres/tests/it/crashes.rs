//! Transactions cut off mid-way. A trigger on the ledger stops the first
//! transaction that books credits after its payment, invoice and ledger rows
//! are written and before its inbox state, log row and commit. One test kills
//! the transaction's own connection there; the other stalls it so the test
//! can abort the delivering task. Nothing of the event may be visible
//! afterwards, and a redelivery must apply it exactly once.

use std::time::Duration as StdDuration;

use billing_domain::event::EventKind;
use billing_domain::log::LogOutcome;
use billing_domain::provider::WebhookRequest;
use billing_domain::service::IssuedInvoice;
use billing_domain::store::LogFilter;
use billing_domain::testing::suite::{eur, Fixture};
use billing_domain::{InvoiceStatus, Payment, PaymentStatus};

use super::db::TestDatabase;

/// Installs a trigger that runs `action` (SQL) in the first transaction that
/// inserts a ledger entry. The sequence is not transactional, so a rolled
/// back attempt still counts and the redelivery passes.
async fn cut_first_ledger_write(db: &TestDatabase, action: &str) {
    let pool = db.store.pool();
    sqlx::query("CREATE SEQUENCE cut_once").execute(pool).await.unwrap();
    sqlx::query(&format!(
        "CREATE FUNCTION cut_mid_transaction() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF nextval('cut_once') = 1 THEN {action}; END IF; RETURN NEW; END $$"
    ))
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER cut_mid_transaction AFTER INSERT ON ledger_entries \
         FOR EACH ROW EXECUTE FUNCTION cut_mid_transaction()",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Checks that the committed state shows no trace of the paid event.
async fn assert_untouched(fixture: &Fixture, payment: &Payment, webhook_events: usize) {
    let store = fixture.service.store();
    let event = fixture.event("evt-paid", payment, EventKind::Succeeded, Some(eur("20.00")));
    assert_eq!(store.inbox_entry(&event.key()).await.unwrap(), None, "inbox entry survived the cut");
    assert_eq!(fixture.payment(payment).await.status(), PaymentStatus::Pending);
    assert_eq!(fixture.balance().await, 0);
    assert!(fixture.service.history(fixture.tenant).await.unwrap().is_empty(), "ledger entry survived the cut");
    let log = store.log_entries(&LogFilter { payment_id: Some(payment.id), ..LogFilter::default() }).await.unwrap();
    assert_eq!(log.iter().filter(|entry| entry.event.is_some()).count(), webhook_events, "{log:?}");
}

/// Delivers the paid event twice more: once applied, once a duplicate.
async fn assert_redelivery_applies_once(fixture: &Fixture, webhook: &WebhookRequest, issued: &IssuedInvoice) {
    let provider = fixture.provider_name();
    let first = fixture.service.handle_webhook(&provider, webhook).await.unwrap();
    let second = fixture.service.handle_webhook(&provider, webhook).await.unwrap();
    assert_eq!(first[0].outcome, LogOutcome::Applied);
    assert_eq!(second[0].outcome, LogOutcome::Duplicate);
    assert_eq!(fixture.invoice_status(issued).await, InvoiceStatus::Paid);
    assert_eq!(fixture.balance().await, 100);
    assert_eq!(fixture.grants().await, 1);
    fixture.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connection_leaves_no_partial_event() {
    let db = TestDatabase::create(4).await;
    let fixture = Fixture::new(db.store()).await;
    let issued = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&issued).await;
    cut_first_ledger_write(&db, "PERFORM pg_terminate_backend(pg_backend_pid())").await;

    let event = fixture.event("evt-paid", &payment, EventKind::Succeeded, Some(eur("20.00")));
    let webhook = fixture.provider.signed_webhook(&event).unwrap();
    let error = fixture.service.handle_webhook(&fixture.provider_name(), &webhook).await.unwrap_err();

    assert!(error.to_string().contains("store unavailable"), "{error}");
    assert_untouched(&fixture, &payment, 0).await;
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Open);
    assert_redelivery_applies_once(&fixture, &webhook, &issued).await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_task_leaves_no_partial_event() {
    let db = TestDatabase::create(4).await;
    let fixture = std::sync::Arc::new(Fixture::new(db.store()).await);
    let issued = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&issued).await;
    cut_first_ledger_write(&db, "PERFORM pg_sleep(1)").await;

    let event = fixture.event("evt-paid", &payment, EventKind::Succeeded, Some(eur("20.00")));
    let webhook = fixture.provider.signed_webhook(&event).unwrap();
    let delivering = {
        let fixture = fixture.clone();
        let webhook = webhook.clone();
        tokio::spawn(async move { fixture.service.handle_webhook(&fixture.provider_name(), &webhook).await })
    };
    wait_for_stalled_transaction(&db).await;
    delivering.abort();
    assert!(delivering.await.unwrap_err().is_cancelled());

    assert_untouched(&fixture, &payment, 0).await;
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Open);
    assert_redelivery_applies_once(&fixture, &webhook, &issued).await;
    drop(fixture);
    db.drop().await;
}

/// Waits until a backend of this database is sleeping inside the trigger.
async fn wait_for_stalled_transaction(db: &TestDatabase) {
    for _ in 0..200 {
        let stalled: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event = 'PgSleep' AND state = 'active'",
        )
        .fetch_one(db.store.pool())
        .await
        .unwrap();
        if stalled > 0 {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("no transaction reached the stalling trigger within two seconds");
}
