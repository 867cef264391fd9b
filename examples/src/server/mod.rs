//! The reference workspace server: the public payment page, webhooks, the
//! signed-in workspace and the staff tools over HTTP.
//!
//! [`ServerBuilder`] is the one place where a store and payment providers
//! are plugged in; everything else reaches them through
//! [`billing_domain::BillingService`]. The server keeps no billing state of
//! its own, so any number of copies can share one PostgreSQL.
//!
//! Handlers are thin: they authenticate, call one service use case and
//! render what it returns. They never decide that something is paid or
//! granted; the service does, when the store says so. Request logs name the
//! matched route (`/pay/{token}`), never the path itself, so a public link
//! token or a query string never reaches a log line.

mod auth;
mod credits;
mod error;
mod html;
mod i18n;
pub mod launch;
mod public;
mod routes;
mod seed;
pub mod settings;
mod signin;
mod staff_api;
mod staff_pages;
pub mod standin;
mod state;
mod webhooks;
mod workspace;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use billing_domain::service::{Clock, RandomSource};
use billing_domain::store::Store;
use billing_domain::{BillingService, PaymentProvider, ProviderName};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{OsRandom, SystemClock};

pub use auth::{Principal, SessionError, SessionKey, Sessions, SESSION_COOKIE};
pub use i18n::Lang;
pub use seed::{seed_demo, DemoSeed, DemoUser, DEMO_INVOICE_NUMBER};
pub use staff_api::{InvoiceDraft, RowDraft};
pub use state::{HostedOffer, Offers, TerminalOffer};

/// An invalid server assembly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error(
        "{role} names provider {provider}, which is not registered; register it with ServerBuilder::provider first"
    )]
    UnregisteredProvider { role: &'static str, provider: ProviderName },

    #[error("the Terminal offer of provider {provider} lists no reader; name at least one reader id")]
    NoReaders { provider: ProviderName },

    #[error("base URL {url:?} must start with http:// or https:// and must not end with '/'")]
    BadBaseUrl { url: String },
}

/// Assembles a server from a store, providers and what the pages offer.
#[derive(Clone)]
pub struct ServerBuilder {
    store: Arc<dyn Store>,
    base_url: String,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
    providers: Vec<Arc<dyn PaymentProvider>>,
    offers: Offers,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let providers: Vec<ProviderName> = self.providers.iter().map(|provider| provider.name()).collect();
        f.debug_struct("ServerBuilder")
            .field("base_url", &self.base_url)
            .field("providers", &providers)
            .field("offers", &self.offers)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// A server over `store`, reached by browsers at `base_url`
    /// (`http://127.0.0.1:8080`), with the system clock and the operating
    /// system's random source.
    pub fn new(store: Arc<dyn Store>, base_url: impl Into<String>) -> ServerBuilder {
        ServerBuilder {
            store,
            base_url: base_url.into(),
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
            providers: Vec::new(),
            offers: Offers::default(),
        }
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> ServerBuilder {
        self.clock = clock;
        self
    }

    pub fn random(mut self, random: Arc<dyn RandomSource>) -> ServerBuilder {
        self.random = random;
        self
    }

    /// Registers a provider for webhooks, return pages and reconciliation.
    pub fn provider(mut self, provider: Arc<dyn PaymentProvider>) -> ServerBuilder {
        self.providers.push(provider);
        self
    }

    /// Registers a provider and offers it as a Pay button on the public page.
    pub fn hosted_page(mut self, provider: Arc<dyn PaymentProvider>, label: impl Into<String>) -> ServerBuilder {
        self.offers.hosted.push(HostedOffer { provider: provider.name(), label: label.into() });
        self.provider(provider)
    }

    /// Registers the provider that completes zero-total invoices.
    pub fn free(mut self, provider: Arc<dyn PaymentProvider>) -> ServerBuilder {
        self.offers.free = Some(provider.name());
        self.provider(provider)
    }

    /// Registers the provider that records staff-confirmed cash and transfers.
    pub fn manual(mut self, provider: Arc<dyn PaymentProvider>) -> ServerBuilder {
        self.offers.manual = Some(provider.name());
        self.provider(provider)
    }

    /// Offers Terminal payments through a registered provider on these readers.
    pub fn terminal(mut self, provider: ProviderName, readers: Vec<String>) -> ServerBuilder {
        self.offers.terminal = Some(TerminalOffer { provider, readers });
        self
    }

    /// Checks the offers and builds the service, with a fresh session key.
    ///
    /// # Errors
    ///
    /// [`BuildError`] naming the offer or URL that does not fit.
    pub fn build(self) -> Result<App, BuildError> {
        let base_ok = self.base_url.starts_with("http://") || self.base_url.starts_with("https://");
        if !base_ok || self.base_url.ends_with('/') {
            return Err(BuildError::BadBaseUrl { url: self.base_url });
        }
        let registered: Vec<ProviderName> = self.providers.iter().map(|provider| provider.name()).collect();
        let check = |role: &'static str, provider: &ProviderName| {
            if registered.contains(provider) {
                Ok(())
            } else {
                Err(BuildError::UnregisteredProvider { role, provider: provider.clone() })
            }
        };
        if let Some(terminal) = &self.offers.terminal {
            check("the Terminal offer", &terminal.provider)?;
            if terminal.readers.is_empty() {
                return Err(BuildError::NoReaders { provider: terminal.provider.clone() });
            }
        }

        let mut service = BillingService::new(self.store, self.clock.clone(), self.random.clone());
        for provider in self.providers {
            service = service.with_provider(provider);
        }
        let sessions = Sessions::new(SessionKey::generate(self.random.as_ref()), self.clock);
        Ok(App { state: state::AppState::new(service, sessions, self.offers, self.base_url) })
    }
}

/// An assembled server, ready to serve.
#[derive(Debug, Clone)]
pub struct App {
    state: state::AppState,
}

impl App {
    pub fn service(&self) -> &BillingService {
        self.state.service()
    }

    pub fn sessions(&self) -> &Sessions {
        self.state.sessions()
    }

    pub fn base_url(&self) -> &str {
        self.state.base_url()
    }

    /// Every route, with request logging.
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` completes, then finishes open requests.
    ///
    /// # Errors
    ///
    /// The listener's I/O errors.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let address = listener.local_addr()?;
        tracing::info!(%address, providers = ?self.service().provider_names(), "workspace server listening");
        let service = self.router().into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).with_graceful_shutdown(shutdown).await?;
        tracing::info!(%address, "workspace server stopped");
        Ok(())
    }

    /// Serves in a background task, for tests and for stand-ins that need
    /// the server's address before it runs.
    pub fn spawn(&self, listener: TcpListener) -> std::io::Result<RunningServer> {
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = self.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                // A dropped sender also stops the server.
                let _ = stopped.await;
            };
            if let Err(error) = app.serve(listener, shutdown).await {
                tracing::error!(%error, "workspace server failed");
            }
        });
        Ok(RunningServer { address, stop: Some(stop), task })
    }
}

/// A server serving in the background; dropping it stops the server.
#[derive(Debug)]
pub struct RunningServer {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningServer {
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops accepting requests and waits for open ones to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = task.await;
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
