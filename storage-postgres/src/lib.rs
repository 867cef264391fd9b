//! The billing store on PostgreSQL.
//!
//! [`PgStore`] implements the domain's [`Store`](billing_domain::store::Store)
//! and [`StoreTx`](billing_domain::store::StoreTx) ports with sqlx. Every
//! store transaction is one database transaction at PostgreSQL's default
//! READ COMMITTED isolation: the `load_*` methods take row locks
//! (`SELECT ... FOR NO KEY UPDATE`), so concurrent writers to one invoice,
//! payment or account wait for each other, and every write re-checks the
//! version it read. A deadlock or serialisation failure becomes
//! [`StoreError::Conflict`](billing_domain::store::StoreError::Conflict),
//! which the service retries from the start; dropping a transaction
//! without committing rolls it back.
//!
//! The schema lives in `migrations/` and is embedded in the crate;
//! [`PgStore::migrate`] applies it, and [`PgStore::connect`] connects and
//! migrates in one call.
//!
//! **Architecture invariant:** this crate decides nothing. Every rule is the
//! domain's; the schema's constraints only refuse what the domain would
//! never write, as a last line of defence.

mod batch;
mod codec;
mod error;
mod read;
mod rows;
mod tx;

use std::fmt;

use sqlx::postgres::{PgPool, PgPoolOptions};

pub use tx::PgTx;

/// Connections a pool opens at most when the caller does not say.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// Why connecting to or migrating the database failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgStoreError {
    #[error("cannot connect to PostgreSQL; check DATABASE_URL and that the server runs: {source}")]
    Connect {
        #[source]
        source: sqlx::Error,
    },

    #[error("applying the billing schema migrations failed: {source}")]
    Migrate {
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

/// The billing store on a PostgreSQL connection pool. Cloning shares the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl fmt::Debug for PgStore {
    /// Prints pool sizes only: the connect options hold the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore").field("connections", &self.pool.size()).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` with a pool of [`DEFAULT_MAX_CONNECTIONS`] and applies
    /// the migrations that are missing.
    ///
    /// `url` is a libpq-style URL; a Unix socket directory goes in the `host`
    /// query parameter (`postgres://user@localhost/billing?host=/run/postgresql`).
    ///
    /// # Errors
    ///
    /// [`PgStoreError::Connect`] when the server cannot be reached,
    /// [`PgStoreError::Migrate`] when the schema cannot be brought up to date.
    pub async fn connect(url: &str) -> Result<PgStore, PgStoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(DEFAULT_MAX_CONNECTIONS)
            .connect(url)
            .await
            .map_err(|source| PgStoreError::Connect { source })?;
        PgStore::migrate(&pool).await?;
        Ok(PgStore::from_pool(pool))
    }

    /// Wraps a pool whose database already has the schema.
    pub fn from_pool(pool: PgPool) -> PgStore {
        PgStore { pool }
    }

    /// Applies the embedded migrations that `pool`'s database lacks.
    ///
    /// # Errors
    ///
    /// [`PgStoreError::Migrate`], for example when the database holds a
    /// migration this build does not know.
    pub async fn migrate(pool: &PgPool) -> Result<(), PgStoreError> {
        sqlx::migrate!("./migrations").run(pool).await.map_err(|source| PgStoreError::Migrate { source })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
