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
use time::OffsetDateTime;
use tokio::net::TcpListener;

use super::settings::{MaksekeskusSettings, Settings};
use super::standin::maksekeskus::{provider_for_fake, transaction_urls, MaksekeskusStandIn};
use super::standin::{spawn_stand_in, RunningStandIn, StandInRedirect};
use super::{seed_demo, App, BuildError, DemoSeed, ServerBuilder};
use crate::OsRandom;

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
    pub maksekeskus: Option<Arc<FakeMaksekeskus>>,
    pub pages: Vec<RunningStandIn>,
}

/// A start-up failure, by step.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot open a loopback port: {0}")]
    Io(#[from] std::io::Error),

    #[error("DATABASE_URL is set, but this build has no PostgreSQL store yet; unset DATABASE_URL to use the in-memory store")]
    NoPostgres,

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

    // FIXME: PostgreSQL is wired once storage-postgres lands; until then a
    // set DATABASE_URL stops the server instead of silently using memory.
    if settings.database_url.is_some() {
        return Err(LaunchError::NoPostgres);
    }
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let store_description = "in-memory store";

    let mut notes = vec!["Providers: free (zero totals), manual (staff-recorded cash and transfers).".to_owned()];
    let mut stand_ins = StandIns::default();
    let builder =
        ServerBuilder::new(store, base_url.clone()).free(Arc::new(FreeProvider)).manual(Arc::new(ManualProvider));
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
    let provider = StandInRedirect::new(Arc::new(provider_for_fake(&fake, base_url)?), page_url.clone());
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
