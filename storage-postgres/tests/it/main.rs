//! Integration tests of the PostgreSQL store, each on a database of its own.
//!
//! - `behaviour`: the domain's behaviour suite, the same cases the in-memory store passes.
//! - `model`: random operation sequences on both stores must look the same.
//! - `ports`: store-level semantics the service relies on (versions, inbox claims, constraints).
//! - `races`: many tasks delivering the same events and consuming from one account.
//! - `crashes`: transactions cut off mid-way leave nothing behind.
//!
//! The tests need a PostgreSQL server in `DATABASE_URL`; `bash scripts/test`
//! starts a throwaway one when the variable is unset.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod behaviour;
mod crashes;
mod db;
mod model;
mod ports;
mod races;
