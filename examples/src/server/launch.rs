//! Start-up: choose the store and the providers from the settings, assemble
//! the server and seed the demo workspace.
//!
//! This is the binary's whole configuration step, kept in the library so
//! tests start exactly what a user starts.

use std::sync::Arc;

use billing_domain::memory::MemoryStore;
use billing_domain::store::Store;
use billing_domain::BillingError;
use provider_free::{FreeProvider, ManualProvider};
use tokio::net::TcpListener;

use super::settings::Settings;
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
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot read the listener's address: {0}")]
    Address(#[from] std::io::Error),

    #[error("DATABASE_URL is set, but this build has no PostgreSQL store yet; unset DATABASE_URL to use the in-memory store")]
    NoPostgres,

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

    let notes = vec!["Providers: free (zero totals), manual (staff-recorded cash and transfers).".to_owned()];
    let app =
        ServerBuilder::new(store, base_url).free(Arc::new(FreeProvider)).manual(Arc::new(ManualProvider)).build()?;
    let seed = seed_demo(&app, &OsRandom).await.map_err(LaunchError::Seed)?;
    tracing::info!(%address, store = store_description, "workspace server assembled");
    Ok(Launched { app, seed, store_description, notes })
}
