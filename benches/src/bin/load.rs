//! Load run: signed provider events and hot-account consumption on PostgreSQL.
//!
//! ```text
//! cargo run --release -p billing-benches --bin load -- --events 20000 --workers 8
//! ```
//!
//! Runs against `DATABASE_URL` (or `--database-url`), applying the
//! migrations first. Prints events per second and consumptions per second,
//! then `EVENTS_PER_SECOND=` and `CONSUMPTIONS_PER_SECOND=` lines for
//! scripts, and exits with status 1 when a step fails or an invariant does
//! not hold afterwards. `benches/run-load.sh` wraps it with a throwaway
//! server and PostgreSQL's own pgbench for comparison.

use std::process::ExitCode;

use clap::Parser;
use sqlx::postgres::PgPoolOptions;

use billing_benches::{Harness, LoadConfig};
use storage_postgres::PgStore;

/// Applies signed provider events and consumes credits on PostgreSQL, then checks every invariant.
#[derive(Debug, Parser)]
struct Args {
    /// Distinct provider events to deliver (four per payment).
    #[arg(long, default_value_t = 20_000)]
    events: usize,

    /// Concurrent workers, each with its own database connection.
    #[arg(long, default_value_t = 8)]
    workers: usize,

    /// Webhooks or consumptions per transaction; 1 applies each in its own transaction.
    #[arg(long, default_value_t = 256)]
    batch: usize,

    /// Credit consumptions from the hot account; defaults to the event count.
    #[arg(long)]
    consumptions: Option<usize>,

    /// PostgreSQL URL; defaults to the DATABASE_URL environment variable.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.workers == 0 || args.events == 0 || args.batch == 0 {
        eprintln!("error: --events, --workers and --batch must be at least 1");
        return ExitCode::FAILURE;
    }
    let config = LoadConfig {
        events: args.events,
        workers: args.workers,
        consumptions: args.consumptions.unwrap_or(args.events),
        batch: args.batch,
    };

    let pool = match PgPoolOptions::new()
        .max_connections(u32::try_from(args.workers + 2).unwrap_or(u32::MAX))
        .connect(&args.database_url)
        .await
    {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!("error: cannot connect to the database: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = PgStore::migrate(&pool).await {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }

    let harness = match Harness::new(pool) {
        Ok(harness) => harness,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let figures = match harness.run(config).await {
        Ok(figures) => figures,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };

    println!(
        "events: {} applied in {:.2} s by {} workers, {} per transaction: {:.1} events/s",
        figures.events,
        figures.events_elapsed.as_secs_f64(),
        config.workers,
        config.batch,
        figures.events_per_second()
    );
    println!(
        "consumptions: {} from one account in {:.2} s by {} workers, {} per transaction: {:.1} consumptions/s",
        figures.consumptions,
        figures.consumptions_elapsed.as_secs_f64(),
        config.workers,
        config.batch,
        figures.consumptions_per_second()
    );
    println!("invariants: every event applied once, balances equal their entries, nothing negative");
    println!("EVENTS_PER_SECOND={:.1}", figures.events_per_second());
    println!("CONSUMPTIONS_PER_SECOND={:.1}", figures.consumptions_per_second());
    ExitCode::SUCCESS
}
