//! The reference workspace server.
//!
//! Run it with `cargo run -p billing-examples --bin workspace-server`. It
//! listens on 127.0.0.1 (port 8080, or `--port N`, or `WORKSPACE_PORT`),
//! seeds a demo workspace, and prints the demo invoice's public link and the
//! demo users' access tokens. Logs go to stderr (`RUST_LOG` filters them);
//! the printed links and tokens go to stdout and never into the log.
//! Everything else lives in `billing_examples::server`.

use std::process::ExitCode;

use billing_examples::server::launch::{launch, Launched};
use billing_examples::server::settings::Settings;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let settings = match Settings::from_process() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("workspace-server: {error}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", settings.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "workspace-server: cannot listen on 127.0.0.1:{}: {error}; choose another with --port N",
                settings.port
            );
            return ExitCode::FAILURE;
        }
    };
    let launched = match launch(&settings, &listener).await {
        Ok(launched) => launched,
        Err(error) => {
            eprintln!("workspace-server: {error}");
            return ExitCode::FAILURE;
        }
    };
    print_banner(&launched);

    match launched.app.serve(listener, stop_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("workspace-server: {error}");
            ExitCode::FAILURE
        }
    }
}

fn print_banner(launched: &Launched) {
    let seed = &launched.seed;
    let base = launched.app.base_url();
    println!();
    println!("Workspace server on {base} ({})", launched.store_description);
    for line in &launched.notes {
        println!("  {line}");
    }
    println!();
    println!("Demo invoice {}: public payment link (no sign-in needed):", seed.invoice_number);
    println!("  {}", seed.public_url);
    println!();
    println!("Demo users: paste a token at {base}/signin, or send it as `Authorization: Bearer <token>`:");
    for user in [&seed.staff, &seed.customer, &seed.other_customer] {
        println!("  {:<24} {}", user.name, user.token);
    }
    println!();
    println!("Staff dashboard: {base}/staff   Customer workspace: {base}/workspace");
    println!("Press Ctrl-C to stop.");
    println!();
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn stop_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("Ctrl-C received; stopping"),
        () = terminate => tracing::info!("SIGTERM received; stopping"),
    }
}
