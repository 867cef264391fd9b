#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::sync::Arc;
use std::time::Duration as StdDuration;

use billing_domain::directory::Role;
use billing_domain::event::EventKind;
use billing_domain::ledger::{ConsumptionRequest, HoldRequest, OverdraftPolicy};
use billing_domain::log::LogOutcome;
use billing_domain::memory::MemoryStore;
use billing_domain::payment::ManualMethod;
use billing_domain::service::{ForcedOutcome, NewInvoice};
use billing_domain::testing::suite::{eur, user, Fixture};
use billing_domain::{BillingError, Currency, IdempotencyKey, InvoiceRow};
use rust_decimal::Decimal;
use time::Duration;

#[tokio::test]
async fn cross_tenant_probe() {
    let fixture = Fixture::new(Arc::new(MemoryStore::new())).await;
    let issued = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&issued).await;
    let hold = fixture.service.adjust_credits(&fixture.staff, 50, "seed").await.unwrap();
    let _ = hold;
    let h = fixture
        .service
        .place_hold(&HoldRequest {
            tenant_id: fixture.tenant,
            module: "m".into(),
            amount: 5,
            idempotency_key: IdempotencyKey::new("h").unwrap(),
            expires_at: fixture.service.now() + Duration::hours(1),
        })
        .await
        .unwrap();
    let (tenant_b, b) = fixture.service.create_tenant("B", user(9), "B", OverdraftPolicy::default()).await.unwrap();
    let inv = issued.invoice.id;
    let p = fixture.provider_name();
    println!("void: {:?}", fixture.service.void_invoice(&b, inv).await);
    println!("terminal: {:?}", fixture.service.start_terminal_payment(&b, inv, &p, "r").await);
    println!("manual: {:?}", fixture.service.record_manual_payment(&b, inv, &p, ManualMethod::Cash, "x").await);
    println!("mint: {:?}", fixture.service.mint_public_link(&b, inv).await);
    println!("note: {:?}", fixture.service.add_internal_note(&b, inv, "x").await);
    println!("receipt: {:?}", fixture.service.attach_receipt(&b, inv, "x", "y").await);
    println!("staff_invoice: {:?}", fixture.service.staff_invoice(&b, inv).await.err());
    println!("invoice_log: {:?}", fixture.service.invoice_log(&b, inv).await.err());
    println!("reconcile: {:?}", fixture.service.reconcile_payment(&b, payment.id).await.err());
    println!("force: {:?}", fixture.service.force_outcome(&b, payment.id, ForcedOutcome::Succeeded, "x").await.err());
    println!("capture: {:?}", fixture.service.capture_hold(tenant_b.id, h.id, 1).await.err());
    println!("release: {:?}", fixture.service.release_hold(tenant_b.id, h.id).await.err());
    println!("project: {:?}", fixture.service.add_project(&b, fixture.customer.company_id(), "x", "y").await.err());
    println!(
        "member: {:?}",
        fixture
            .service
            .add_member(&b, user(10), "x", Role::Customer { company_id: fixture.customer.company_id() })
            .await
            .err()
    );
    let row = InvoiceRow {
        description: "x".into(),
        quantity: Decimal::ONE,
        unit_price: eur("1.00"),
        project: Some(fixture.project.id),
        content: None,
        credits: None,
    };
    let cb = fixture.service.add_company(&b, "cb").await.unwrap();
    println!(
        "invoice w/ foreign project: {:?}",
        fixture
            .service
            .create_invoice(
                &b,
                NewInvoice { company_id: cb.id, number: "n".into(), currency: Currency::EUR, rows: vec![row] }
            )
            .await
            .err()
    );
    let row = InvoiceRow {
        description: "x".into(),
        quantity: Decimal::ONE,
        unit_price: eur("1.00"),
        project: None,
        content: Some(fixture.content.id),
        credits: None,
    };
    println!(
        "invoice w/ foreign content: {:?}",
        fixture
            .service
            .create_invoice(
                &b,
                NewInvoice { company_id: cb.id, number: "n".into(), currency: Currency::EUR, rows: vec![row] }
            )
            .await
            .err()
    );
    println!("stale: {:?}", fixture.service.stale_payments(&b, Duration::ZERO, 10).await);
    println!("unresolved: {:?}", fixture.service.unresolved_log(&b, 10).await);
    println!("company_projects: {:?}", fixture.service.company_projects(&b, fixture.customer.company_id()).await);
}

#[tokio::test]
async fn rollback_probe() {
    let fixture = Fixture::new(Arc::new(MemoryStore::new())).await;
    let max = i64::MAX.unsigned_abs();
    let a = fixture.issued("20.00", max).await;
    let b = fixture.issued("30.00", max).await;
    let pa = fixture.start(&a).await;
    let pb = fixture.start(&b).await;
    assert_eq!(
        fixture.deliver(&fixture.event("e1", &pa, EventKind::Succeeded, Some(eur("20.00")))).await,
        LogOutcome::Applied
    );
    let log_before = fixture.service.store().log_entries(&Default::default()).await.unwrap().len();
    let ev = fixture.event("e2", &pb, EventKind::Succeeded, Some(eur("30.00")));
    let req = fixture.provider.signed_webhook(&ev).unwrap();
    let r = fixture.service.handle_webhook(&fixture.provider_name(), &req).await;
    println!("overflow grant: {r:?}");
    println!(
        "pb {:?} inv {:?} inbox {:?} log {} -> {}",
        fixture.payment(&pb).await.status(),
        fixture.invoice_status(&b).await,
        fixture.service.store().inbox_entry(&ev.key()).await.unwrap().is_some(),
        log_before,
        fixture.service.store().log_entries(&Default::default()).await.unwrap().len()
    );
    fixture.assert_ledger_consistent().await;
    // consume u64::MAX, zero
    for amount in [0, u64::MAX, i64::MAX.unsigned_abs()] {
        let r = fixture
            .service
            .consume_credits(&ConsumptionRequest {
                tenant_id: fixture.tenant,
                module: "m".into(),
                amount,
                idempotency_key: IdempotencyKey::new(format!("k{amount}")).unwrap(),
            })
            .await;
        println!("consume {amount}: {r:?}");
    }
    println!("adjust MIN: {:?}", fixture.service.adjust_credits(&fixture.staff, i64::MIN, "x").await);
    println!("adjust MAX: {:?}", fixture.service.adjust_credits(&fixture.staff, i64::MAX, "x").await);
    println!("balance {:?}", fixture.service.balance(fixture.tenant).await);
    fixture.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_probe() {
    let fixture = Arc::new(Fixture::new(Arc::new(MemoryStore::new())).await);
    fixture.service.adjust_credits(&fixture.staff, 1000, "seed").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..6u64 {
        let f = fixture.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..10u64 {
                let issued = f.issued("20.00", 10).await;
                let p = f.start(&issued).await;
                let _ = f.service.public_entry(issued.token.expose()).await;
                let ev = f.event(&format!("e-{i}-{j}"), &p, EventKind::Succeeded, Some(eur("20.00")));
                let _ = f.deliver(&ev).await;
                let _ = f.deliver(&ev).await;
                let _ = f
                    .service
                    .consume_credits(&ConsumptionRequest {
                        tenant_id: f.tenant,
                        module: "m".into(),
                        amount: 3,
                        idempotency_key: IdempotencyKey::new(format!("c{}", (i * j) % 7)).unwrap(),
                    })
                    .await;
                let h = f
                    .service
                    .place_hold(&HoldRequest {
                        tenant_id: f.tenant,
                        module: "m".into(),
                        amount: 2,
                        idempotency_key: IdempotencyKey::new(format!("h{i}-{j}")).unwrap(),
                        expires_at: f.service.now() + Duration::hours(1),
                    })
                    .await;
                if let Ok(h) = h {
                    let _ = f.service.capture_hold(f.tenant, h.id, 1).await;
                    let _ = f.service.release_hold(f.tenant, h.id).await;
                }
                let _ = f.service.expire_holds(f.tenant).await;
                let _ = f.service.reconcile_payment(&f.staff, p.id).await;
                let _ = f.service.unresolved_log(&f.staff, 10).await;
                let _ = f.service.staff_invoice(&f.staff, issued.invoice.id).await;
                let _ = f.service.force_outcome(&f.staff, p.id, ForcedOutcome::Failed, "x").await;
            }
        }));
    }
    let all = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(StdDuration::from_secs(30), all).await.expect("deadlock");
    fixture.assert_ledger_consistent().await;
    println!("{:?} grants {}", fixture.service.balance(fixture.tenant).await, fixture.grants().await);
}
