//! The credit ledger: one account per tenant, append-only entries, holds.
//!
//! The balance is the sum of entries. Consumption and holds never take the
//! available balance (balance minus open holds) below the account's overdraft
//! limit, which is zero unless the tenant's policy sets another. Every
//! retryable operation carries an idempotency key stored with a fingerprint
//! of its request: the same key with the same request replays the first
//! result, the same key with a different request is rejected.
//!
//! This module only decides. The service loads an [`AccountSnapshot`] inside a
//! store transaction, asks these functions what to append, and writes it.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::ids::{HoldId, IdempotencyKey, InvoiceId, LedgerEntryId, PaymentId, TenantId, UserId};
use crate::Transition;

/// How far below zero an account's available balance may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OverdraftPolicy {
    /// Credits the account may owe; zero means the balance never goes negative.
    pub limit: u64,
}

/// The cause of a credit reversal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReversalReason {
    Refund,
    DisputeLost,
}

/// The kind of event a ledger entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryKind {
    /// Credits bought by a paid invoice.
    Grant { invoice_id: InvoiceId, payment_id: PaymentId },
    /// Credits used by a module, once per idempotency key.
    Consumption { module: String, idempotency_key: IdempotencyKey },
    /// Credits taken by capturing a hold.
    Capture { hold_id: HoldId, module: String },
    /// Credits taken back after a refund or a lost dispute.
    Reversal { invoice_id: InvoiceId, payment_id: PaymentId, reason: ReversalReason },
    /// A staff correction with its reason.
    Adjustment { staff: UserId, reason: String },
}

/// One append-only ledger row. `amount` is signed: grants are positive,
/// consumption, captures and reversals negative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub id: LedgerEntryId,
    pub tenant_id: TenantId,
    pub amount: i64,
    pub kind: EntryKind,
    pub created_at: OffsetDateTime,
}

/// The state of an account that a decision needs, read under the account's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    pub tenant_id: TenantId,
    /// Sum of all entries.
    pub balance: i64,
    /// Sum of open holds.
    pub held: i64,
    pub policy: OverdraftPolicy,
}

impl AccountSnapshot {
    pub fn empty(tenant_id: TenantId, policy: OverdraftPolicy) -> AccountSnapshot {
        AccountSnapshot { tenant_id, balance: 0, held: 0, policy }
    }

    /// Balance minus open holds.
    pub fn available(&self) -> i64 {
        self.balance.saturating_sub(self.held)
    }

    /// Credits that may still be taken without breaking the overdraft policy.
    pub fn spendable(&self) -> i64 {
        self.available().saturating_add(i64::try_from(self.policy.limit).unwrap_or(i64::MAX))
    }
}

/// A request fingerprint: SHA-256 over the fields that define a request.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn of(parts: &[&str]) -> Fingerprint {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        Fingerprint(hex::encode(hasher.finalize()))
    }

    pub fn from_stored(hex: String) -> Fingerprint {
        Fingerprint(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A stored value may hold any text, so cut at a character boundary.
        let end = self.0.char_indices().nth(12).map_or(self.0.len(), |(index, _)| index);
        write!(f, "Fingerprint({})", &self.0[..end])
    }
}

/// A module's request to use credits now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumptionRequest {
    pub tenant_id: TenantId,
    pub module: String,
    pub amount: u64,
    pub idempotency_key: IdempotencyKey,
}

impl ConsumptionRequest {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&["consume", &self.module, &self.amount.to_string()])
    }
}

/// What an idempotency key produced the first time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IdempotentResult {
    Consumed { entry_id: LedgerEntryId, balance_after: i64 },
    HoldPlaced { hold_id: HoldId },
}

/// A stored idempotency key with its request fingerprint and first result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub tenant_id: TenantId,
    pub key: IdempotencyKey,
    pub fingerprint: Fingerprint,
    pub result: IdempotentResult,
    pub created_at: OffsetDateTime,
}

/// The result of a consumption, first time or replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumptionReceipt {
    pub entry_id: LedgerEntryId,
    pub amount: u64,
    pub balance_after: i64,
    /// `AlreadyApplied` when this key was used before with the same request.
    pub transition: Transition,
}

/// A reservation of credits for long-running module work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: HoldId,
    pub tenant_id: TenantId,
    pub module: String,
    pub amount: u64,
    pub status: HoldStatus,
    pub idempotency_key: IdempotencyKey,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Where a hold is; every status but `Open` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum HoldStatus {
    Open,
    Captured { amount: u64 },
    Released,
    Expired,
}

impl fmt::Display for HoldStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoldStatus::Open => f.write_str("open"),
            HoldStatus::Captured { amount } => write!(f, "captured ({amount} credits)"),
            HoldStatus::Released => f.write_str("released"),
            HoldStatus::Expired => f.write_str("expired"),
        }
    }
}

/// A request to reserve credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRequest {
    pub tenant_id: TenantId,
    pub module: String,
    pub amount: u64,
    pub idempotency_key: IdempotencyKey,
    pub expires_at: OffsetDateTime,
}

impl HoldRequest {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&[
            "hold",
            &self.module,
            &self.amount.to_string(),
            &self.expires_at.unix_timestamp().to_string(),
        ])
    }
}

/// What to do with a consumption or hold request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyedDecision {
    /// First use of the key: go ahead.
    Proceed,
    /// The key was used before for this same request: return its result.
    Replay(IdempotentResult),
}

/// Checks an idempotency key against its stored record.
///
/// # Errors
///
/// [`LedgerError::IdempotencyKeyReused`] when the key was used for a different request.
pub fn check_idempotency(
    existing: Option<&IdempotencyRecord>,
    key: &IdempotencyKey,
    fingerprint: &Fingerprint,
) -> Result<KeyedDecision, LedgerError> {
    let Some(record) = existing else {
        return Ok(KeyedDecision::Proceed);
    };
    if &record.fingerprint != fingerprint {
        return Err(LedgerError::IdempotencyKeyReused { key: key.clone() });
    }
    Ok(KeyedDecision::Replay(record.result.clone()))
}

/// Checks that `amount` credits may be taken from the account now.
///
/// # Errors
///
/// [`LedgerError::AmountNotPositive`], [`LedgerError::AmountTooLarge`],
/// [`LedgerError::InsufficientCredits`].
pub fn check_spend(account: &AccountSnapshot, amount: u64) -> Result<i64, LedgerError> {
    if amount == 0 {
        return Err(LedgerError::AmountNotPositive);
    }
    let signed = i64::try_from(amount).map_err(|_| LedgerError::AmountTooLarge { amount })?;
    if account.spendable() < signed {
        return Err(LedgerError::InsufficientCredits {
            tenant: account.tenant_id,
            requested: amount,
            available: account.available(),
        });
    }
    Ok(signed)
}

/// Moves an open hold to captured, returning the credits to take.
///
/// Capturing more than was held is refused; capturing less frees the rest.
///
/// # Errors
///
/// [`LedgerError::HoldNotOpen`] when the hold already ended in another way,
/// [`LedgerError::CaptureExceedsHold`], [`LedgerError::HoldExpired`] past its expiry.
pub fn capture_hold(hold: &mut Hold, amount: u64, now: OffsetDateTime) -> Result<Transition, LedgerError> {
    match hold.status {
        HoldStatus::Captured { amount: captured } if captured == amount => return Ok(Transition::AlreadyApplied),
        HoldStatus::Open => {}
        status => return Err(LedgerError::HoldNotOpen { hold: hold.id, status }),
    }
    if now >= hold.expires_at {
        return Err(LedgerError::HoldExpired { hold: hold.id, expired_at: hold.expires_at });
    }
    if amount > hold.amount {
        return Err(LedgerError::CaptureExceedsHold { hold: hold.id, requested: amount, held: hold.amount });
    }
    hold.status = HoldStatus::Captured { amount };
    Ok(Transition::Applied)
}

/// Frees an open hold without taking credits.
///
/// # Errors
///
/// [`LedgerError::HoldNotOpen`] when the hold was captured or expired.
pub fn release_hold(hold: &mut Hold) -> Result<Transition, LedgerError> {
    match hold.status {
        HoldStatus::Released => Ok(Transition::AlreadyApplied),
        HoldStatus::Open => {
            hold.status = HoldStatus::Released;
            Ok(Transition::Applied)
        }
        status => Err(LedgerError::HoldNotOpen { hold: hold.id, status }),
    }
}

/// Ends an open hold whose expiry has passed.
///
/// Returns `None` when the hold is not open or has not expired yet.
pub fn expire_hold(hold: &mut Hold, now: OffsetDateTime) -> Option<Transition> {
    if hold.status != HoldStatus::Open || now < hold.expires_at {
        return None;
    }
    hold.status = HoldStatus::Expired;
    Some(Transition::Applied)
}

/// Credits still to take back for an invoice after a refund or lost dispute.
///
/// `granted` is what the invoice's grant added and `reversed` what earlier
/// reversals already took. The share to reverse is `granted × refunded / paid`,
/// rounded up to a whole credit so that a refunded customer never keeps a
/// fraction of a credit they no longer paid for.
pub fn reversal_due(granted: u64, reversed: u64, refunded_minor: i64, paid_minor: i64) -> u64 {
    if paid_minor <= 0 || refunded_minor <= 0 {
        return 0;
    }
    let refunded = u128::try_from(refunded_minor.min(paid_minor)).unwrap_or(0);
    let paid = u128::try_from(paid_minor).unwrap_or(1);
    let share = (u128::from(granted) * refunded).div_ceil(paid);
    let share = u64::try_from(share).unwrap_or(granted).min(granted);
    share.saturating_sub(reversed)
}

/// A rejected ledger operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    #[error("credit amount must be at least 1")]
    AmountNotPositive,

    #[error("credit amount {amount} is too large for the ledger")]
    AmountTooLarge { amount: u64 },

    #[error("tenant {tenant} has {available} credits available but {requested} were requested; buy credits or ask staff for an adjustment")]
    InsufficientCredits { tenant: TenantId, requested: u64, available: i64 },

    #[error("idempotency key {key} was already used for a different request; use a new key for a new request")]
    IdempotencyKeyReused { key: IdempotencyKey },

    #[error("hold {hold} is {status}, not open")]
    HoldNotOpen { hold: HoldId, status: HoldStatus },

    #[error("hold {hold} expired at {expired_at}; place a new hold")]
    HoldExpired { hold: HoldId, expired_at: OffsetDateTime },

    #[error("cannot capture {requested} credits from hold {hold}, which reserves {held}")]
    CaptureExceedsHold { hold: HoldId, requested: u64, held: u64 },

    #[error("hold {hold} not found")]
    HoldNotFound { hold: HoldId },

    #[error("an adjustment needs a non-empty reason and a non-zero amount")]
    InvalidAdjustment,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::from_random_bytes([1; 16])
    }

    fn account(balance: i64, held: i64, limit: u64) -> AccountSnapshot {
        AccountSnapshot { tenant_id: tenant(), balance, held, policy: OverdraftPolicy { limit } }
    }

    fn key(text: &str) -> IdempotencyKey {
        IdempotencyKey::new(text).unwrap()
    }

    fn hold(amount: u64) -> Hold {
        Hold {
            id: HoldId::from_random_bytes([2; 16]),
            tenant_id: tenant(),
            module: "render".into(),
            amount,
            status: HoldStatus::Open,
            idempotency_key: key("h"),
            created_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1),
        }
    }

    #[test]
    fn spend_within_available() {
        assert_eq!(check_spend(&account(10, 0, 0), 10).unwrap(), 10);
    }

    #[test]
    fn spend_beyond_available_is_rejected() {
        let error = check_spend(&account(10, 4, 0), 7).unwrap_err();
        assert_eq!(error, LedgerError::InsufficientCredits { tenant: tenant(), requested: 7, available: 6 });
    }

    #[test]
    fn overdraft_policy_allows_negative() {
        assert!(check_spend(&account(0, 0, 5), 5).is_ok());
        assert!(check_spend(&account(0, 0, 5), 6).is_err());
    }

    #[test]
    fn zero_and_huge_amounts_are_rejected() {
        assert_eq!(check_spend(&account(10, 0, 0), 0).unwrap_err(), LedgerError::AmountNotPositive);
        assert!(matches!(check_spend(&account(10, 0, 0), u64::MAX), Err(LedgerError::AmountTooLarge { .. })));
    }

    #[test]
    fn same_key_same_request_replays() {
        let request =
            ConsumptionRequest { tenant_id: tenant(), module: "m".into(), amount: 3, idempotency_key: key("k") };
        let record = IdempotencyRecord {
            tenant_id: tenant(),
            key: key("k"),
            fingerprint: request.fingerprint(),
            result: IdempotentResult::Consumed {
                entry_id: LedgerEntryId::from_random_bytes([3; 16]),
                balance_after: 7,
            },
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let decision = check_idempotency(Some(&record), &key("k"), &request.fingerprint()).unwrap();
        assert_eq!(decision, KeyedDecision::Replay(record.result.clone()));
        assert_eq!(check_idempotency(None, &key("k"), &request.fingerprint()).unwrap(), KeyedDecision::Proceed);
    }

    #[test]
    fn same_key_other_amount_is_rejected() {
        let first =
            ConsumptionRequest { tenant_id: tenant(), module: "m".into(), amount: 3, idempotency_key: key("k") };
        let second = ConsumptionRequest { amount: 4, ..first.clone() };
        let record = IdempotencyRecord {
            tenant_id: tenant(),
            key: key("k"),
            fingerprint: first.fingerprint(),
            result: IdempotentResult::Consumed {
                entry_id: LedgerEntryId::from_random_bytes([3; 16]),
                balance_after: 7,
            },
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let error = check_idempotency(Some(&record), &key("k"), &second.fingerprint()).unwrap_err();
        assert_eq!(error, LedgerError::IdempotencyKeyReused { key: key("k") });
    }

    #[test]
    fn hold_captures_once() {
        let mut hold = hold(10);
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(capture_hold(&mut hold, 6, now).unwrap(), Transition::Applied);
        assert_eq!(capture_hold(&mut hold, 6, now).unwrap(), Transition::AlreadyApplied);
        assert!(matches!(capture_hold(&mut hold, 7, now), Err(LedgerError::HoldNotOpen { .. })));
        assert!(matches!(release_hold(&mut hold), Err(LedgerError::HoldNotOpen { .. })));
    }

    #[test]
    fn capture_above_hold_is_rejected() {
        let mut hold = hold(10);
        let error = capture_hold(&mut hold, 11, OffsetDateTime::UNIX_EPOCH).unwrap_err();
        assert!(matches!(error, LedgerError::CaptureExceedsHold { requested: 11, held: 10, .. }));
        assert_eq!(hold.status, HoldStatus::Open);
    }

    #[test]
    fn hold_releases_once() {
        let mut hold = hold(10);
        assert_eq!(release_hold(&mut hold).unwrap(), Transition::Applied);
        assert_eq!(release_hold(&mut hold).unwrap(), Transition::AlreadyApplied);
    }

    #[test]
    fn hold_expires_once_and_blocks_capture() {
        let mut hold = hold(10);
        let later = hold.expires_at;
        assert!(matches!(capture_hold(&mut hold, 1, later), Err(LedgerError::HoldExpired { .. })));
        assert_eq!(expire_hold(&mut hold, later - time::Duration::SECOND), None);
        assert_eq!(expire_hold(&mut hold, later), Some(Transition::Applied));
        assert_eq!(expire_hold(&mut hold, later), None);
        assert!(matches!(capture_hold(&mut hold, 1, later), Err(LedgerError::HoldNotOpen { .. })));
    }

    #[test]
    fn reversal_is_proportional_and_rounded_up() {
        assert_eq!(reversal_due(100, 0, 2000, 2000), 100);
        assert_eq!(reversal_due(100, 0, 1000, 2000), 50);
        assert_eq!(reversal_due(100, 0, 1, 3), 34);
        assert_eq!(reversal_due(100, 50, 2000, 2000), 50);
        assert_eq!(reversal_due(100, 100, 2000, 2000), 0);
        assert_eq!(reversal_due(0, 0, 2000, 2000), 0);
        assert_eq!(reversal_due(100, 0, 5000, 2000), 100);
    }

    #[test]
    fn fingerprint_debug_of_stored_text_is_cut() {
        let stored = Fingerprint::from_stored("aéééééééééééééé".into());

        assert_eq!(format!("{stored:?}"), "Fingerprint(aééééééééééé)");
        assert_eq!(format!("{:?}", Fingerprint::from_stored("ab".into())), "Fingerprint(ab)");
    }

    #[test]
    fn fingerprint_separates_fields() {
        assert_ne!(Fingerprint::of(&["ab", "c"]), Fingerprint::of(&["a", "bc"]));
    }
}
