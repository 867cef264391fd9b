//! Start-up: choose the store and the providers from the settings, start
//! local stand-ins for providers without keys, assemble the server and seed
//! the demo workspace.
//!
//! This is the binary's whole configuration step, kept in the library so
//! tests start exactly what a user starts. A provider with keys in the
//! environment talks to its real API; a provider without keys runs against
//! its crate's local fake API, with a stand-in hosted page, and the banner
//! and the log say so.

use std::sync::Arc;

use billing_domain::ids::IdError;
use billing_domain::memory::MemoryStore;
use billing_domain::store::Store;
use billing_domain::BillingError;
use provider_free::{FreeProvider, ManualProvider};
use provider_maksekeskus::test_server::{FakeError, FakeMaksekeskus};
use provider_maksekeskus::{ConfigError, Environment, MaksekeskusConfig, MaksekeskusProvider, SecretKey};
use provider_stripe::test_server::FakeStripe;
use provider_stripe::{Secret, StripeConfig, StripeProvider, PROVIDER_NAME as STRIPE};
use storage_postgres::{PgStore, PgStoreError};
use time::OffsetDateTime;
use tokio::net::TcpListener;

use super::settings::{MaksekeskusSettings, Settings, StripeSettings};
use super::standin::maksekeskus::{self, transaction_urls, MaksekeskusStandIn};
use super::standin::stripe::{self, StripeStandIn};
use super::standin::{spawn_stand_in, RunningStandIn, StandInRedirect};
use super::{seed_demo, App, BuildError, DemoSeed, ServerBuilder};
use crate::{OsRandom, SystemClock};

/// The card reader the Stripe stand-in offers to the Terminal button.
pub const STAND_IN_READER: &str = "tmr_stand_in_reader";

/// A server ready to serve, with what the start-up banner prints.
#[derive(Debug)]
pub struct Launched {
    pub app: App,
    pub seed: DemoSeed,
    /// "in-memory store" or "PostgreSQL".
    pub store_description: &'static str,
    /// Lines for the banner: which providers run, and which are stand-ins.
    pub notes: Vec<String>,
    /// Local fakes and stand-in pages; they stop when this is dropped.
    pub stand_ins: StandIns,
}

/// The local fakes and stand-in page servers of providers without keys.
#[derive(Debug, Default)]
pub struct StandIns {
    pub stripe: Option<Arc<FakeStripe>>,
    pub maksekeskus: Option<Arc<FakeMaksekeskus>>,
    pub pages: Vec<RunningStandIn>,
}

/// A start-up failure, by step.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot open a loopback port: {0}")]
    Io(#[from] std::io::Error),

    #[error(transparent)]
    Postgres(#[from] PgStoreError),

    #[error("Stripe settings are invalid: {0}")]
    Stripe(#[from] provider_stripe::ConfigError),

    #[error("Maksekeskus settings are invalid: {0}")]
    Maksekeskus(#[from] ConfigError),

    #[error("the local Maksekeskus stand-in could not start: {0}")]
    MaksekeskusFake(#[from] FakeError),

    #[error("invalid provider name: {0}")]
    ProviderName(#[from] IdError),

    #[error(transparent)]
    Build(#[from] BuildError),

    #[error("seeding the demo workspace failed: {0}")]
    Seed(BillingError),
}

/// Assembles the server for `listener` from `settings` and seeds the demo.
///
/// # Errors
///
/// [`LaunchError`] naming the step that failed.
pub async fn launch(settings: &Settings, listener: &TcpListener) -> Result<Launched, LaunchError> {
    let address = listener.local_addr()?;
    let base_url = settings.base_url.clone().unwrap_or_else(|| format!("http://{address}"));

    let (store, store_description): (Arc<dyn Store>, &'static str) = match &settings.database_url {
        Some(url) => (Arc::new(PgStore::connect(url).await?), "PostgreSQL"),
        None => (Arc::new(MemoryStore::new()), "in-memory store"),
    };

    let mut notes = vec!["Providers: free (zero totals), manual (staff-recorded cash and transfers).".to_owned()];
    let mut stand_ins = StandIns::default();
    let builder =
        ServerBuilder::new(store, base_url.clone()).free(Arc::new(FreeProvider)).manual(Arc::new(ManualProvider));
    let stripe_name = billing_domain::ProviderName::new(STRIPE)?;
    let builder = match &settings.stripe {
        Some(account) => {
            let provider = real_stripe(account, &base_url)?;
            let api = provider.config().api_base().unwrap_or("the Stripe API").to_owned();
            notes.push(format!("Stripe: {api}, Terminal readers {:?}.", account.terminal_readers));
            let builder = builder.hosted_page(Arc::new(provider), "card (Stripe)");
            if account.terminal_readers.is_empty() {
                builder
            } else {
                builder.terminal(stripe_name, account.terminal_readers.clone())
            }
        }
        None => {
            let (provider, note) = stripe_stand_in(&base_url, &mut stand_ins).await?;
            notes.push(note);
            builder
                .hosted_page(provider, "card (Stripe stand-in)")
                .terminal(stripe_name, vec![STAND_IN_READER.to_owned()])
        }
    };
    let builder = match &settings.maksekeskus {
        Some(shop) => {
            let provider = real_maksekeskus(shop, &base_url)?;
            notes.push(format!("Maksekeskus: shop {} at {}.", shop.shop_id, provider.config().api_base()));
            builder.hosted_page(Arc::new(provider), "bank link or card (Maksekeskus)")
        }
        None => {
            let (provider, note) = maksekeskus_stand_in(&base_url, &mut stand_ins).await?;
            notes.push(note);
            builder.hosted_page(provider, "bank link or card (Maksekeskus stand-in)")
        }
    };

    let app = builder.build()?;
    let seed = seed_demo(&app, &OsRandom).await.map_err(LaunchError::Seed)?;
    tracing::info!(%address, store = store_description, "workspace server assembled");
    Ok(Launched { app, seed, store_description, notes, stand_ins })
}

fn real_stripe(account: &StripeSettings, base_url: &str) -> Result<StripeProvider, provider_stripe::ConfigError> {
    let url = stripe::return_url(base_url);
    let mut config = StripeConfig::new(
        Secret::new(account.secret_key.clone()),
        Secret::new(account.webhook_secret.clone()),
        &url,
        &url,
    )?;
    if let Some(api_base) = &account.api_base {
        config = config.with_api_base(api_base.clone())?;
    }
    for (kind, reference) in &account.row_references {
        config = config.with_row_reference(*kind, reference.clone())?;
    }
    StripeProvider::new(config, Arc::new(SystemClock))
}

/// Starts the fake Stripe API and the stand-in page, and returns the real
/// adapter pointed at them. The fakes tag their ids per run, so restarts on
/// one PostgreSQL database do not collide on provider references.
async fn stripe_stand_in(
    base_url: &str,
    stand_ins: &mut StandIns,
) -> Result<(Arc<dyn billing_domain::PaymentProvider>, String), LaunchError> {
    let fake = Arc::new(FakeStripe::start().await?);
    let page_listener = TcpListener::bind("127.0.0.1:0").await?;
    let page_url = format!("http://{}", page_listener.local_addr()?);
    let adapter = stripe::provider_for_fake(&fake, base_url, Arc::new(SystemClock))?;
    let provider = StandInRedirect::new(Arc::new(adapter), page_url.clone());
    let page = spawn_stand_in(Arc::new(StripeStandIn::new(fake.clone())?), page_listener, base_url)?;
    tracing::warn!(api = %fake.base_url(), page = %page_url, "no Stripe keys: using a local stand-in");
    let note = format!(
        "Stripe: LOCAL STAND-IN (no STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET): fake API at {}, \
         payment page at {page_url}, card reader {STAND_IN_READER} at {page_url}/readers/{STAND_IN_READER}. \
         No money moves.",
        fake.base_url()
    );
    stand_ins.stripe = Some(fake);
    stand_ins.pages.push(page);
    Ok((Arc::new(provider), note))
}

fn real_maksekeskus(shop: &MaksekeskusSettings, base_url: &str) -> Result<MaksekeskusProvider, ConfigError> {
    let environment = match shop.api_base.as_deref() {
        None | Some("test") => Environment::Test,
        Some("live") => Environment::Live,
        Some(url) => Environment::Custom { api_base: url.to_owned() },
    };
    let config = MaksekeskusConfig::new(shop.shop_id.clone(), SecretKey::new(shop.secret_key.clone())?, environment)?
        .with_transaction_urls(transaction_urls(base_url)?);
    MaksekeskusProvider::new(config)
}

/// Starts the fake Maksekeskus API and the stand-in page, and returns the
/// real adapter pointed at them.
async fn maksekeskus_stand_in(
    base_url: &str,
    stand_ins: &mut StandIns,
) -> Result<(Arc<dyn billing_domain::PaymentProvider>, String), LaunchError> {
    let fake = Arc::new(FakeMaksekeskus::start_with_test_credentials(OffsetDateTime::now_utc()).await?);
    let page_listener = TcpListener::bind("127.0.0.1:0").await?;
    let page_url = format!("http://{}", page_listener.local_addr()?);
    let provider = StandInRedirect::new(Arc::new(maksekeskus::provider_for_fake(&fake, base_url)?), page_url.clone());
    let page = spawn_stand_in(Arc::new(MaksekeskusStandIn::new(fake.clone())?), page_listener, base_url)?;
    tracing::warn!(api = fake.api_base(), page = %page_url, "no Maksekeskus keys: using a local stand-in");
    let note = format!(
        "Maksekeskus: LOCAL STAND-IN (no MAKSEKESKUS_SHOP_ID and MAKSEKESKUS_SECRET_KEY): fake API at {}, \
         payment page at {page_url}. No money moves.",
        fake.api_base()
    );
    stand_ins.maksekeskus = Some(fake);
    stand_ins.pages.push(page);
    Ok((Arc::new(provider), note))
}
