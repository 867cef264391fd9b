//! What every handler shares: the service, the session signer and which
//! providers the pages offer for what.

use std::sync::Arc;

use billing_domain::{BillingService, ProviderName};

use super::auth::Sessions;

/// A Pay button on the public page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedOffer {
    pub provider: ProviderName,
    /// What the button says after "Pay with", such as "card (Stripe)".
    pub label: String,
}

/// The card readers staff can start a Terminal payment on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalOffer {
    pub provider: ProviderName,
    pub readers: Vec<String>,
}

/// Which registered provider serves which way of paying.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offers {
    pub hosted: Vec<HostedOffer>,
    /// Completes zero-total invoices from the public page.
    pub free: Option<ProviderName>,
    /// Records cash and bank transfers that staff confirm.
    pub manual: Option<ProviderName>,
    pub terminal: Option<TerminalOffer>,
}

/// Cheap to clone; handlers receive it through axum's `State`.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    service: BillingService,
    sessions: Sessions,
    offers: Offers,
    base_url: String,
}

impl AppState {
    pub fn new(service: BillingService, sessions: Sessions, offers: Offers, base_url: String) -> AppState {
        AppState(Arc::new(Inner { service, sessions, offers, base_url }))
    }

    pub fn service(&self) -> &BillingService {
        &self.0.service
    }

    pub fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }

    pub fn offers(&self) -> &Offers {
        &self.0.offers
    }

    /// Where browsers reach this server, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.0.base_url
    }

    /// The public payment link for `token`.
    pub fn public_link(&self, token: &str) -> String {
        format!("{}/pay/{token}", self.base_url())
    }
}
