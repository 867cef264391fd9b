//! The reference workspace server.
//!
//! Run it with `cargo run -p billing-examples --bin workspace-server`. It
//! listens on 127.0.0.1 (port 8080, or `--port N`, or `WORKSPACE_PORT`),
//! seeds a demo workspace, and prints the demo invoice's public link and the
//! demo users' access tokens. Logs go to stderr (`RUST_LOG` filters them);
//! the printed links and tokens go to stdout and never into the log.
//! Everything else lives in `billing_examples::server`.

use std::io::Write;
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

/// Prints the links and tokens to stdout. A closed stdout must not stop the
/// server, so write errors are ignored here.
fn print_banner(launched: &Launched) {
    let seed = &launched.seed;
    let base = launched.app.base_url();
    let mut banner = format!("\nWorkspace server on {base} ({})\n", launched.store_description);
    for line in &launched.notes {
        banner.push_str(&format!("  {line}\n"));
    }
    banner.push_str(&format!(
        "\nDemo invoice {}: public payment link (no sign-in needed):\n  {}\n\n",
        seed.invoice_number, seed.public_url
    ));
    banner.push_str(&format!(
        "Demo users: paste a token at {base}/signin, or send it as `Authorization: Bearer <token>`:\n"
    ));
    for user in [&seed.staff, &seed.customer, &seed.other_customer] {
        banner.push_str(&format!("  {:<24} {}\n", user.name, user.token));
    }
    banner.push_str(&format!("\nStaff dashboard: {base}/staff   Customer workspace: {base}/workspace\n"));
    banner.push_str("Press Ctrl-C to stop.\n\n");
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(banner.as_bytes()).and_then(|()| stdout.flush());
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
