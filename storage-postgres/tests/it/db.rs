//! A fresh database per test on the server in `DATABASE_URL`.
//!
//! Each test creates `billing_test_<pid>_<n>`, migrates it and works only
//! there, so tests run in parallel without seeing each other's rows. A test
//! that finishes drops its database; one that fails leaves it for
//! inspection, and the next test run drops the databases of test processes
//! that are no longer alive.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::OnceCell;

use billing_domain::store::Store;
use storage_postgres::PgStore;

const PREFIX: &str = "billing_test_";

static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);
static SWEPT: OnceCell<()> = OnceCell::const_new();

/// A migrated database that only this test uses.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    server: PgConnectOptions,
    pub store: PgStore,
}

impl TestDatabase {
    /// Creates a database whose pool opens at most `max_connections`.
    pub async fn create(max_connections: u32) -> TestDatabase {
        let server = server_options();
        SWEPT.get_or_init(|| sweep_abandoned(server.clone())).await;

        let name = format!("{PREFIX}{}_{}", std::process::id(), NEXT_DATABASE.fetch_add(1, Ordering::Relaxed));
        let mut admin = server.connect().await.expect("connect to the server in DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create a test database");
        admin.close().await.expect("close the admin connection");

        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(server.clone().database(&name))
            .await
            .expect("connect to the test database");
        PgStore::migrate(&pool).await.expect("migrate the test database");
        TestDatabase { name, server, store: PgStore::from_pool(pool) }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }

    /// Deletes every row, keeping the schema.
    pub async fn empty(&self) {
        sqlx::query(
            "TRUNCATE tenants, companies, projects, contents, memberships, invoices, payments, payment_references, \
             accounts, ledger_entries, idempotency_keys, holds, inbox, log_entries RESTART IDENTITY CASCADE",
        )
        .execute(self.store.pool())
        .await
        .expect("empty the test database");
    }

    /// Closes the pool and drops the database. Every transaction of the test
    /// must have ended: closing waits for connections in use.
    pub async fn drop(self) {
        self.store.pool().close().await;
        let mut admin = self.server.connect().await.expect("connect to the server in DATABASE_URL");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .execute(&mut admin)
            .await
            .expect("drop the test database");
    }
}

/// A fresh store for one behaviour-suite case. The suite gives no teardown
/// hook, so these databases are left to the sweep of the next run.
pub async fn suite_store() -> Arc<dyn Store> {
    TestDatabase::create(10).await.store()
}

fn server_options() -> PgConnectOptions {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "DATABASE_URL is not set. These tests need a PostgreSQL server: run them with `bash scripts/test` \
             (it starts a throwaway server), or set DATABASE_URL to a server where you may create databases"
        )
    });
    url.parse::<PgConnectOptions>().unwrap_or_else(|error| panic!("DATABASE_URL is not a PostgreSQL URL: {error}"))
}

/// Drops the test databases of earlier test processes that have exited.
async fn sweep_abandoned(server: PgConnectOptions) {
    let mut admin = server.connect().await.expect("connect to the server in DATABASE_URL");
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
        .bind(format!("{PREFIX}%"))
        .fetch_all(&mut admin)
        .await
        .expect("list test databases");
    for name in names {
        let pid = name.trim_start_matches(PREFIX).split('_').next().unwrap_or_default();
        let alive = std::path::Path::new("/proc").join(pid).exists();
        if !alive {
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .expect("drop an abandoned test database");
        }
    }
}
