//! Regression tests from an adversarial review of the service: each pins one
//! way a caller could break a promise of the library through the public API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use billing_domain::memory::MemoryStore;
use billing_domain::testing::suite::Fixture;
use billing_domain::BillingError;
use time::Duration;

async fn fixture() -> Fixture {
    Fixture::new(Arc::new(MemoryStore::new())).await
}

#[tokio::test]
async fn stale_age_out_of_range_is_rejected() {
    let fixture = fixture().await;

    let listed = fixture.service.stale_payments(&fixture.staff, Duration::MAX, 10).await;
    let janitor = fixture.service.reconcile_stale(Duration::MIN, 10).await;

    assert!(matches!(listed, Err(BillingError::InvalidInput { .. })), "{listed:?}");
    assert!(matches!(janitor, Err(BillingError::InvalidInput { .. })), "{janitor:?}");
}
