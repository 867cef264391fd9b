//! The load harness behind `cargo run --release -p billing-benches --bin load`.
//!
//! A run has three parts. Setup creates one tenant per worker, each with
//! invoices issued and hosted-page payments started through the service.
//! The event phase delivers the signed webhooks of every payment's life
//! (success, then refunds of a quarter, a half and three quarters) through
//! [`BillingService::handle_webhook`], each worker owning its tenant's
//! payments so that one payment's events arrive in order. The consumption
//! phase spends credits from one hot account with every worker at once,
//! each consumption under a fresh idempotency key. Afterwards
//! [`check_invariants`] reads the database to prove that every event took
//! effect once and that balances equal the sum of their entries.
//!
//! With `batch` above one, each worker hands the service that many webhooks
//! or consumptions per transaction ([`BillingService::handle_webhook_batch`],
//! [`BillingService::consume_credits_batch`]); every event still claims its
//! own inbox key and every consumption its own idempotency key.
//!
//! The harness measures; it never relaxes a rule to go faster.

pub mod signed;

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use rand::RngCore;
use sqlx::PgPool;
use time::OffsetDateTime;

use billing_domain::event::{EventKind, PaymentMatch};
use billing_domain::ledger::{ConsumptionRequest, OverdraftPolicy};
use billing_domain::log::LogOutcome;
use billing_domain::provider::WebhookRequest;
use billing_domain::service::{NewInvoice, PaymentOptions, PaymentStart};
use billing_domain::{
    BillingError, BillingService, Currency, EventId, IdempotencyKey, InvoiceRow, Money, Payment, ProviderEvent,
    ProviderName, StaffContext, TenantId, Transition, UserId,
};
use billing_examples::{OsRandom, SystemClock};
use storage_postgres::PgStore;

use crate::signed::SignedProvider;

/// Events in one payment's life: success and three cumulative refunds.
pub const EVENTS_PER_PAYMENT: usize = 4;
/// Credits each invoice grants once paid; a quarter refund reverses 25.
const CREDITS_PER_INVOICE: u64 = 100;
const PRICE_MINOR: i64 = 2000;
const PROVIDER: &str = "bench";

/// The shape of one run.
#[derive(Debug, Clone, Copy)]
pub struct LoadConfig {
    pub events: usize,
    pub workers: usize,
    pub consumptions: usize,
    /// Webhooks or consumptions per transaction; 1 takes the single-item path.
    pub batch: usize,
}

/// The figures one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub events: usize,
    pub events_elapsed: StdDuration,
    pub consumptions: usize,
    pub consumptions_elapsed: StdDuration,
}

impl Figures {
    pub fn events_per_second(&self) -> f64 {
        per_second(self.events, self.events_elapsed)
    }

    pub fn consumptions_per_second(&self) -> f64 {
        per_second(self.consumptions, self.consumptions_elapsed)
    }
}

/// Reporting only: throughput is a measurement, not money.
fn per_second(count: usize, elapsed: StdDuration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

/// The ways a run fails.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{step} failed: {source}")]
    Service {
        step: &'static str,
        #[source]
        source: Box<BillingError>,
    },

    #[error("{step} failed in the database: {source}")]
    Database {
        step: &'static str,
        #[source]
        source: sqlx::Error,
    },

    #[error("{step} returned {found} where {expected} was expected")]
    Unexpected { step: String, expected: String, found: String },

    #[error("a worker task failed: {0}")]
    Worker(#[from] tokio::task::JoinError),

    #[error("cannot encode a webhook body: {0}")]
    Encode(#[from] serde_json::Error),
}

/// One worker's tenant and the payments it will settle.
#[derive(Debug)]
struct Lane {
    tenant: TenantId,
    payments: Vec<Payment>,
}

/// A harness over one database.
#[derive(Debug, Clone)]
pub struct Harness {
    service: BillingService,
    provider: Arc<SignedProvider>,
    pool: PgPool,
    /// Random per run, so runs against one database never share event ids or keys.
    run_id: String,
}

impl Harness {
    /// Builds the service over `pool` with the signed provider.
    ///
    /// # Errors
    ///
    /// None in practice: the provider name and secret are constants.
    pub fn new(pool: PgPool) -> Result<Harness, LoadError> {
        let name = provider_name()?;
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let provider = Arc::new(SignedProvider::new(name, &secret).map_err(|error| LoadError::Unexpected {
            step: "keying the provider".into(),
            expected: "a key".into(),
            found: error.to_string(),
        })?);
        let store = Arc::new(PgStore::from_pool(pool.clone()));
        let service =
            BillingService::new(store, Arc::new(SystemClock), Arc::new(OsRandom)).with_provider(provider.clone());
        let mut run = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut run);
        Ok(Harness { service, provider, pool, run_id: hex::encode(run) })
    }

    /// Runs setup, both timed phases and the invariant checks.
    ///
    /// # Errors
    ///
    /// [`LoadError`] for a failed step; [`LoadError::Unexpected`] when an
    /// event or consumption did not have the expected outcome or an
    /// invariant does not hold afterwards.
    pub async fn run(&self, config: LoadConfig) -> Result<Figures, LoadError> {
        let lanes = self.set_up_lanes(config).await?;
        let (events, events_elapsed) = self.deliver_events(&lanes, config.events, config.batch).await?;
        let hot = self.set_up_hot_account(config.consumptions).await?;
        let consumptions_elapsed = self.consume(hot, config).await?;
        check_invariants(&self.pool, &self.run_id, &lanes, events, hot, config.consumptions).await?;
        Ok(Figures { events, events_elapsed, consumptions: config.consumptions, consumptions_elapsed })
    }

    async fn set_up_lanes(&self, config: LoadConfig) -> Result<Vec<Lane>, LoadError> {
        let payments = config.events.div_ceil(EVENTS_PER_PAYMENT);
        let mut tasks = Vec::new();
        for worker in 0..config.workers {
            let harness = self.clone();
            let count = payments / config.workers + usize::from(worker < payments % config.workers);
            tasks.push(tokio::spawn(async move { harness.set_up_lane(worker, count).await }));
        }
        let mut lanes = Vec::new();
        for task in tasks {
            lanes.push(task.await??);
        }
        Ok(lanes)
    }

    async fn set_up_lane(&self, worker: usize, payments: usize) -> Result<Lane, LoadError> {
        let (tenant, staff) = self.tenant(&format!("bench {} lane {worker}", self.run_id)).await?;
        let company = self.service.add_company(&staff, "Load Customer").await.map_err(service_error("add company"))?;
        let mut started = Vec::with_capacity(payments);
        for index in 0..payments {
            let rows = vec![InvoiceRow {
                description: "Credits pack".into(),
                quantity: 1.into(),
                unit_price: eur(PRICE_MINOR)?,
                project: None,
                content: None,
                credits: Some(CREDITS_PER_INVOICE),
            }];
            let new = NewInvoice {
                company_id: company.id,
                number: format!("{}-{worker}-{index}", self.run_id),
                currency: Currency::EUR,
                rows,
            };
            let invoice = self.service.create_invoice(&staff, new).await.map_err(service_error("create invoice"))?;
            let issued =
                self.service.issue_invoice(&staff, invoice.id).await.map_err(service_error("issue invoice"))?;
            let start = self
                .service
                .start_public_payment(issued.token.expose(), &provider_name()?, PaymentOptions::default())
                .await
                .map_err(service_error("start payment"))?;
            let PaymentStart::Redirect { payment_id, .. } = start else {
                return Err(unexpected("start payment", "a redirect", format!("{start:?}")));
            };
            let payment = self
                .service
                .store()
                .payment(payment_id)
                .await
                .map_err(|error| LoadError::Service { step: "read payment", source: Box::new(error.into()) })?;
            started.push(payment.ok_or_else(|| unexpected("read payment", "the started payment", "nothing"))?);
        }
        Ok(Lane { tenant, payments: started })
    }

    async fn tenant(&self, name: &str) -> Result<(TenantId, StaffContext), LoadError> {
        let mut owner = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut owner);
        let (tenant, staff) = self
            .service
            .create_tenant(name, UserId::from_random_bytes(owner), "Load Staff", OverdraftPolicy::default())
            .await
            .map_err(service_error("create tenant"))?;
        Ok((tenant.id, staff))
    }

    /// Delivers the first `limit` events of every lane's payments, one task
    /// per lane, and returns how many were delivered and how long it took.
    async fn deliver_events(
        &self,
        lanes: &[Lane],
        limit: usize,
        batch: usize,
    ) -> Result<(usize, StdDuration), LoadError> {
        let now = OffsetDateTime::now_utc();
        let mut budget = limit;
        let mut signed_lanes = Vec::new();
        for lane in lanes {
            let mut requests = Vec::new();
            for payment in &lane.payments {
                for event in lifecycle(&self.run_id, payment)?.into_iter().take(budget.min(EVENTS_PER_PAYMENT)) {
                    requests.push(self.provider.signed_webhook(&event, now)?);
                    budget -= 1;
                }
            }
            signed_lanes.push(requests);
        }
        let delivered: usize = signed_lanes.iter().map(Vec::len).sum();

        let started = Instant::now();
        let mut tasks = Vec::new();
        let batch = batch.max(1);
        for requests in signed_lanes {
            let harness = self.clone();
            tasks.push(tokio::spawn(async move { harness.deliver_lane(requests, batch).await }));
        }
        for task in tasks {
            task.await??;
        }
        Ok((delivered, started.elapsed()))
    }

    /// Delivers one lane's webhooks in order, `batch` per transaction.
    async fn deliver_lane(&self, requests: Vec<WebhookRequest>, batch: usize) -> Result<(), LoadError> {
        let name = provider_name()?;
        for chunk in requests.chunks(batch.max(1)) {
            let outcomes = if batch <= 1 {
                vec![self.service.handle_webhook(&name, &chunk[0]).await]
            } else {
                self.service.handle_webhook_batch(&name, chunk).await.map_err(service_error("webhook batch"))?
            };
            for outcome in outcomes {
                let reports = outcome.map_err(service_error("webhook"))?;
                match reports.as_slice() {
                    [report] if report.outcome == LogOutcome::Applied => {}
                    other => return Err(unexpected("webhook", "one applied event", format!("{other:?}"))),
                }
            }
        }
        Ok(())
    }

    /// Creates the hot tenant and grants it exactly `credits` by a staff adjustment.
    async fn set_up_hot_account(&self, credits: usize) -> Result<TenantId, LoadError> {
        let (tenant, staff) = self.tenant(&format!("bench {} hot", self.run_id)).await?;
        let amount = i64::try_from(credits).map_err(|_| unexpected("hot account", "a credit count", credits))?;
        self.service
            .adjust_credits(&staff, amount, "load run starting credits")
            .await
            .map_err(service_error("grant hot credits"))?;
        Ok(tenant)
    }

    async fn consume(&self, tenant: TenantId, config: LoadConfig) -> Result<StdDuration, LoadError> {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..config.workers {
            let harness = self.clone();
            let count =
                config.consumptions / config.workers + usize::from(worker < config.consumptions % config.workers);
            let batch = config.batch;
            tasks.push(tokio::spawn(async move { harness.consume_lane(tenant, worker, count, batch).await }));
        }
        for task in tasks {
            task.await??;
        }
        Ok(started.elapsed())
    }

    /// Spends `count` credits one at a time under fresh keys, `batch` per transaction.
    async fn consume_lane(&self, tenant: TenantId, worker: usize, count: usize, batch: usize) -> Result<(), LoadError> {
        let mut requests = Vec::with_capacity(count);
        for index in 0..count {
            let key = IdempotencyKey::new(format!("{}-{worker}-{index}", self.run_id))
                .map_err(|error| unexpected("idempotency key", "a valid key", error))?;
            requests.push(ConsumptionRequest {
                tenant_id: tenant,
                module: "load".into(),
                amount: 1,
                idempotency_key: key,
            });
        }
        for chunk in requests.chunks(batch.max(1)) {
            let receipts = if batch <= 1 {
                vec![self.service.consume_credits(&chunk[0]).await]
            } else {
                self.service.consume_credits_batch(chunk).await.map_err(service_error("consume batch"))?
            };
            for receipt in receipts {
                let receipt = receipt.map_err(service_error("consume"))?;
                if receipt.transition != Transition::Applied {
                    return Err(unexpected("consume", "a new charge", format!("{receipt:?}")));
                }
            }
        }
        Ok(())
    }
}

/// The four events of one payment, in the order they must apply.
fn lifecycle(run_id: &str, payment: &Payment) -> Result<Vec<ProviderEvent>, LoadError> {
    let matches = PaymentMatch {
        tenant_id: Some(payment.tenant_id),
        invoice_id: Some(payment.invoice_id),
        payment_id: Some(payment.id),
        reference: payment.reference.clone(),
    };
    let mut events = Vec::with_capacity(EVENTS_PER_PAYMENT);
    for step in 0..EVENTS_PER_PAYMENT {
        let (kind, amount, provider_type) = match step {
            0 => (EventKind::Succeeded, Some(payment.amount), "payment.succeeded"),
            quarters => {
                let refunded = eur(PRICE_MINOR * i64::try_from(quarters).unwrap_or(0) / 4)?;
                (EventKind::Refunded { total_refunded: refunded }, None, "charge.refunded")
            }
        };
        let event_id = EventId::new(format!("evt_{run_id}_{}_{step}", payment.id))
            .map_err(|error| unexpected("event id", "a valid id", error))?;
        events.push(ProviderEvent {
            provider: provider_name()?,
            event_id,
            occurred_at: OffsetDateTime::now_utc(),
            matches: matches.clone(),
            kind,
            amount,
            provider_type: provider_type.into(),
        });
    }
    Ok(events)
}

/// Reads the database after a run and checks what must hold: every event
/// applied once and done, every balance equal to the sum of its entries,
/// nothing negative, and each account at the value the events imply.
///
/// # Errors
///
/// [`LoadError::Unexpected`] naming the first invariant that fails.
async fn check_invariants(
    pool: &PgPool,
    run_id: &str,
    lanes: &[Lane],
    events: usize,
    hot: TenantId,
    consumptions: usize,
) -> Result<(), LoadError> {
    let pattern = format!("evt\\_{run_id}\\_%");
    let done: i64 = scalar(
        pool,
        "events done once",
        sqlx::query_scalar("SELECT count(*) FROM inbox WHERE event_id LIKE $1 AND state = 'done' AND attempts = 1")
            .bind(&pattern),
    )
    .await?;
    expect_count("inbox entries done after one attempt", events, done)?;

    let applied: i64 = scalar(
        pool,
        "applied log rows",
        sqlx::query_scalar("SELECT count(*) FROM log_entries WHERE event_id LIKE $1 AND outcome = 'applied'")
            .bind(&pattern),
    )
    .await?;
    expect_count("applied log rows, one per event", events, applied)?;

    let tenants: Vec<uuid::Uuid> = lanes.iter().map(|lane| lane.tenant.as_uuid()).chain([hot.as_uuid()]).collect();
    let drifted: i64 = scalar(
        pool,
        "balance equals the sum of entries",
        sqlx::query_scalar(
            "SELECT count(*) FROM accounts a WHERE a.tenant_id = ANY($1) AND a.balance <> \
             (SELECT coalesce(sum(l.amount), 0) FROM ledger_entries l WHERE l.tenant_id = a.tenant_id)",
        )
        .bind(&tenants),
    )
    .await?;
    expect_count("accounts whose balance differs from the sum of entries", 0, drifted)?;

    let negative: i64 = scalar(
        pool,
        "nothing negative",
        sqlx::query_scalar(
            "SELECT count(*) FROM accounts WHERE tenant_id = ANY($1) AND (balance < 0 OR held < 0 OR balance < held)",
        )
        .bind(&tenants),
    )
    .await?;
    expect_count("accounts with a negative balance or held total", 0, negative)?;

    let expected_total = expected_event_credits(lanes, events);
    let total: i64 = scalar(
        pool,
        "credits granted by events",
        sqlx::query_scalar("SELECT coalesce(sum(balance), 0)::bigint FROM accounts WHERE tenant_id = ANY($1)")
            .bind(&tenants[..lanes.len()]),
    )
    .await?;
    if total != expected_total {
        return Err(unexpected("credits left by events", expected_total, total));
    }

    let hot_balance: i64 = scalar(
        pool,
        "hot account balance",
        sqlx::query_scalar("SELECT balance FROM accounts WHERE tenant_id = $1").bind(hot.as_uuid()),
    )
    .await?;
    expect_count("hot account balance after spending every credit", 0, hot_balance)?;
    let charged: i64 = scalar(
        pool,
        "consumption entries",
        sqlx::query_scalar("SELECT count(*) FROM ledger_entries WHERE tenant_id = $1 AND kind = 'consumption'")
            .bind(hot.as_uuid()),
    )
    .await?;
    expect_count("consumption entries, one per request", consumptions, charged)
}

/// Credits the delivered events leave across the lanes: each success grants
/// 100 and each quarter refund reverses 25.
fn expected_event_credits(lanes: &[Lane], events: usize) -> i64 {
    let mut left = events;
    let mut total = 0i64;
    for lane in lanes {
        for _ in &lane.payments {
            let delivered = left.min(EVENTS_PER_PAYMENT);
            left -= delivered;
            if delivered > 0 {
                total += 100 - 25 * i64::try_from(delivered - 1).unwrap_or(0);
            }
        }
    }
    total
}

async fn scalar<'q, T>(
    pool: &PgPool,
    step: &'static str,
    query: sqlx::query::QueryScalar<'q, sqlx::Postgres, T, sqlx::postgres::PgArguments>,
) -> Result<T, LoadError>
where
    T: Send + Unpin,
    (T,): for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    query.fetch_one(pool).await.map_err(|source| LoadError::Database { step, source })
}

fn expect_count(what: &str, expected: usize, found: i64) -> Result<(), LoadError> {
    if i64::try_from(expected).ok() != Some(found) {
        return Err(unexpected(what, expected, found));
    }
    Ok(())
}

fn unexpected(step: impl ToString, expected: impl ToString, found: impl ToString) -> LoadError {
    LoadError::Unexpected { step: step.to_string(), expected: expected.to_string(), found: found.to_string() }
}

fn service_error(step: &'static str) -> impl Fn(BillingError) -> LoadError {
    move |source| LoadError::Service { step, source: Box::new(source) }
}

fn provider_name() -> Result<ProviderName, LoadError> {
    ProviderName::new(PROVIDER).map_err(|error| unexpected("provider name", "a valid name", error))
}

fn eur(minor: i64) -> Result<Money, LoadError> {
    Money::from_minor(minor, Currency::EUR).map_err(|error| unexpected("amount", "a valid amount", error))
}
