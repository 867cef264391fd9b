//! Who is calling: signed session tokens, and the membership checks behind
//! every workspace and staff route.
//!
//! A session token names a tenant, a user and an expiry, and carries an
//! HMAC-SHA256 over them with a key drawn from the operating system's random
//! source at start-up. Callers present it as `Authorization: Bearer <token>`
//! or in the `billing_session` cookie that `/signin` sets. A valid token only
//! says who the caller is; what they may do is decided by the service's
//! membership check (`staff_context`, `customer_context`) on every request.
//!
//! Without a valid token a route answers 401; with a token of the wrong role
//! or company it answers 403. A cookie-authenticated request that changes
//! state must come from this site's own pages (`Sec-Fetch-Site`), so another
//! site cannot post a form with the customer's cookie. This module never
//! logs a token.

use std::fmt;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use billing_domain::service::{AccessError, Clock, RandomSource};
use billing_domain::{BillingError, CustomerContext, StaffContext, TenantId, UserId};
use hmac::digest::generic_array::GenericArray;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

use super::error::{AppError, Format};
use super::state::AppState;

/// The cookie that carries the session token for browsers.
pub const SESSION_COOKIE: &str = "billing_session";

/// How long an issued token is accepted.
pub const SESSION_LIFETIME: Duration = Duration::days(7);

/// Domain separation for the MAC, so these tokens cannot be confused with other signatures.
const TOKEN_CONTEXT: &[u8] = b"billing-examples session v1\n";

/// The key that signs session tokens, one SHA-256 block long. `Debug` never prints it.
#[derive(Clone)]
pub struct SessionKey([u8; 64]);

impl SessionKey {
    /// A fresh key from `random`; every token signed with an earlier key stops working.
    pub fn generate(random: &dyn RandomSource) -> SessionKey {
        let mut key = [0u8; 64];
        random.fill_bytes(&mut key);
        SessionKey(key)
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(redacted)")
    }
}

/// The tenant and user a valid token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub user_id: UserId,
}

/// Why a presented token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session token is malformed; sign in again")]
    Malformed,

    #[error("the session token's signature does not match; sign in again")]
    BadSignature,

    #[error("the session expired at {expired_at}; sign in again")]
    Expired { expired_at: OffsetDateTime },
}

/// Issues and verifies session tokens.
#[derive(Clone)]
pub struct Sessions {
    key: SessionKey,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions").field("key", &self.key).finish_non_exhaustive()
    }
}

impl Sessions {
    pub fn new(key: SessionKey, clock: Arc<dyn Clock>) -> Sessions {
        Sessions { key, clock }
    }

    /// A token for `principal`, valid for [`SESSION_LIFETIME`].
    pub fn issue(&self, principal: Principal) -> String {
        let expires = (self.clock.now() + SESSION_LIFETIME).unix_timestamp();
        let claims = format!("{}.{}.{expires}", principal.tenant_id, principal.user_id);
        format!("{claims}.{}", hex::encode(self.mac(&claims).finalize().into_bytes()))
    }

    /// The principal a token names, once its signature and expiry check out.
    ///
    /// # Errors
    ///
    /// [`SessionError`] naming what was wrong.
    pub fn verify(&self, token: &str) -> Result<Principal, SessionError> {
        let (claims, signature) = token.rsplit_once('.').ok_or(SessionError::Malformed)?;
        let signature = hex::decode(signature).map_err(|_| SessionError::Malformed)?;
        self.mac(claims).verify_slice(&signature).map_err(|_| SessionError::BadSignature)?;

        let mut parts = claims.split('.');
        let (Some(tenant), Some(user), Some(expires), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionError::Malformed);
        };
        let tenant_id: TenantId = tenant.parse().map_err(|_| SessionError::Malformed)?;
        let user_id: UserId = user.parse().map_err(|_| SessionError::Malformed)?;
        let expires: i64 = expires.parse().map_err(|_| SessionError::Malformed)?;
        let expired_at = OffsetDateTime::from_unix_timestamp(expires).map_err(|_| SessionError::Malformed)?;
        if expired_at <= self.clock.now() {
            return Err(SessionError::Expired { expired_at });
        }
        Ok(Principal { tenant_id, user_id })
    }

    fn mac(&self, claims: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new(GenericArray::from_slice(&self.key.0));
        mac.update(TOKEN_CONTEXT);
        mac.update(claims.as_bytes());
        mac
    }
}

/// The `Set-Cookie` value that stores `token` in the browser.
pub fn session_cookie(token: &str) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}", SESSION_LIFETIME.whole_seconds())
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// How a request presented its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Bearer,
    Cookie,
}

/// A caller with a valid session token; membership is not checked yet.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn {
    pub principal: Principal,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<SignedIn, AppError> {
        let format = Format::of(parts);
        let (token, credential) = match presented_token(&parts.headers) {
            Some(found) => found,
            None => return Err(AppError::unauthenticated(format, "no session token was presented; sign in first")),
        };
        let principal = state.sessions().verify(&token).map_err(|error| {
            tracing::info!(%error, "session token refused");
            AppError::unauthenticated(format, &error.to_string())
        })?;
        if credential == Credential::Cookie && changes_state(&parts.method) && !same_site(&parts.headers) {
            tracing::warn!(user_id = %principal.user_id, "cross-site request with a session cookie refused");
            return Err(AppError::new(
                format,
                StatusCode::FORBIDDEN,
                "cross-site requests cannot use the session cookie",
            ));
        }
        Ok(SignedIn { principal })
    }
}

/// A signed-in staff member of the token's tenant.
#[derive(Debug, Clone)]
pub struct Staff(pub StaffContext);

impl FromRequestParts<AppState> for Staff {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Staff, AppError> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        let Principal { tenant_id, user_id } = signed_in.principal;
        match state.service().staff_context(tenant_id, user_id).await {
            Ok(staff) => Ok(Staff(staff)),
            Err(error) => Err(membership_refused(Format::of(parts), &error)),
        }
    }
}

/// A signed-in member of one customer company of the token's tenant.
#[derive(Debug, Clone)]
pub struct Customer(pub CustomerContext);

impl FromRequestParts<AppState> for Customer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Customer, AppError> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        let Principal { tenant_id, user_id } = signed_in.principal;
        match state.service().customer_context(tenant_id, user_id).await {
            Ok(customer) => Ok(Customer(customer)),
            Err(error) => Err(membership_refused(Format::of(parts), &error)),
        }
    }
}

/// Any signed-in member of the token's tenant, staff or customer.
#[derive(Debug, Clone)]
pub enum Member {
    Staff(StaffContext),
    Customer(CustomerContext),
}

impl Member {
    pub fn tenant_id(&self) -> TenantId {
        match self {
            Member::Staff(staff) => staff.tenant_id(),
            Member::Customer(customer) => customer.tenant_id(),
        }
    }

    pub fn user_id(&self) -> UserId {
        match self {
            Member::Staff(staff) => staff.user_id(),
            Member::Customer(customer) => customer.user_id(),
        }
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Member, AppError> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        let Principal { tenant_id, user_id } = signed_in.principal;
        let service = state.service();
        match service.staff_context(tenant_id, user_id).await {
            Ok(staff) => return Ok(Member::Staff(staff)),
            Err(BillingError::Access(AccessError::NotStaff { .. })) => {}
            Err(error) => return Err(membership_refused(Format::of(parts), &error)),
        }
        match service.customer_context(tenant_id, user_id).await {
            Ok(customer) => Ok(Member::Customer(customer)),
            Err(error) => Err(membership_refused(Format::of(parts), &error)),
        }
    }
}

fn membership_refused(format: Format, error: &BillingError) -> AppError {
    match error {
        BillingError::Access(access) => {
            tracing::info!(%access, "membership check refused the caller");
            AppError::new(format, StatusCode::FORBIDDEN, &access.to_string())
        }
        other => AppError::from_billing(format, other),
    }
}

/// The bearer token, else the session cookie.
fn presented_token(headers: &HeaderMap) -> Option<(String, Credential)> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| (token.trim().to_owned(), Credential::Bearer));
    bearer.or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, token)| (token.to_owned(), Credential::Cookie))
    })
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the browser says the request came from this site's own pages.
/// Clients that send no `Sec-Fetch-Site` (older browsers, scripts) pass;
/// their cross-site form posts carry no `SameSite=Lax` cookie anyway.
fn same_site(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-site").and_then(|value| value.to_str().ok()) {
        None => true,
        Some(site) => site == "same-origin" || site == "none",
    }
}

#[cfg(test)]
mod tests {
    use billing_domain::testing::{ManualClock, SeededRandom};

    use super::*;

    fn sessions(clock: Arc<ManualClock>) -> Sessions {
        Sessions::new(SessionKey::generate(&SeededRandom::new(7)), clock)
    }

    fn principal() -> Principal {
        Principal { tenant_id: TenantId::from_random_bytes([1; 16]), user_id: UserId::from_random_bytes([2; 16]) }
    }

    #[test]
    fn issued_token_verifies_to_its_principal() {
        let sessions = sessions(Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)));
        let token = sessions.issue(principal());

        assert_eq!(sessions.verify(&token), Ok(principal()));
    }

    #[test]
    fn changed_claims_fail_the_signature() {
        let sessions = sessions(Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)));
        let token = sessions.issue(principal());
        let other_user = UserId::from_random_bytes([3; 16]);
        let forged = token.replacen(&principal().user_id.to_string(), &other_user.to_string(), 1);

        assert_eq!(sessions.verify(&forged), Err(SessionError::BadSignature));
    }

    #[test]
    fn token_of_another_key_is_refused() {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH));
        let token = sessions(clock.clone()).issue(principal());
        let other = Sessions::new(SessionKey::generate(&SeededRandom::new(8)), clock);

        assert_eq!(other.verify(&token), Err(SessionError::BadSignature));
    }

    #[test]
    fn expired_token_is_refused() {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH));
        let sessions = sessions(clock.clone());
        let token = sessions.issue(principal());
        clock.advance(SESSION_LIFETIME);

        assert!(matches!(sessions.verify(&token), Err(SessionError::Expired { .. })));
    }

    #[test]
    fn garbage_is_malformed() {
        let sessions = sessions(Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)));

        assert_eq!(sessions.verify("nothing"), Err(SessionError::Malformed));
        assert_eq!(sessions.verify("a.b.c.zz"), Err(SessionError::Malformed));
    }

    #[test]
    fn debug_redacts_the_key() {
        let key = SessionKey::generate(&SeededRandom::new(7));

        assert_eq!(format!("{key:?}"), "SessionKey(redacted)");
    }
}
