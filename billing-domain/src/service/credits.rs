//! Credit use by modules: consumption, holds, staff adjustments, balance and history.
//!
//! Every operation locks the tenant's account in its transaction, so two
//! consumers of one account are serialised and the idempotency check and the
//! balance check see the same state as the write.

use serde::Serialize;
use time::OffsetDateTime;

use crate::ids::{HoldId, IdempotencyKey, LedgerEntryId, TenantId};
use crate::ledger::{
    capture_hold, check_idempotency, check_spend, expire_hold, release_hold, ConsumptionReceipt, ConsumptionRequest,
    EntryKind, Fingerprint, Hold, HoldRequest, HoldStatus, IdempotencyRecord, IdempotentResult, KeyedDecision,
    LedgerEntry, LedgerError,
};
use crate::store::StoreTx;
use crate::Transition;

use super::{BillingError, BillingService, StaffContext};

/// A tenant's credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// Sum of all ledger entries.
    pub balance: i64,
    /// Reserved by open holds.
    pub held: i64,
    /// `balance - held`: what a module may still consume.
    pub available: i64,
}

/// The result of capturing a hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureReceipt {
    pub hold_id: HoldId,
    pub captured: u64,
    pub balance_after: i64,
    pub transition: Transition,
}

impl BillingService {
    /// Takes credits for module usage. A retry with the same idempotency key
    /// and request returns the first receipt instead of charging again.
    ///
    /// # Errors
    ///
    /// [`LedgerError::InsufficientCredits`], [`LedgerError::IdempotencyKeyReused`],
    /// [`LedgerError::AmountNotPositive`].
    pub async fn consume_credits(&self, request: &ConsumptionRequest) -> Result<ConsumptionReceipt, BillingError> {
        require_module(&request.module)?;
        let receipt = self.with_retries(|| self.consume_once(request)).await?;
        tracing::info!(
            tenant_id = %request.tenant_id,
            module = %request.module,
            amount = request.amount,
            replay = receipt.transition == Transition::AlreadyApplied,
            "credits consumed"
        );
        Ok(receipt)
    }

    async fn consume_once(&self, request: &ConsumptionRequest) -> Result<ConsumptionReceipt, BillingError> {
        let now = self.clock.now();
        let fingerprint = request.fingerprint();
        let mut tx = self.store.begin().await?;
        let account = tx.load_account(request.tenant_id).await?;
        let existing = tx.idempotency_record(request.tenant_id, &request.idempotency_key).await?;
        if let KeyedDecision::Replay(result) =
            check_idempotency(existing.as_ref(), &request.idempotency_key, &fingerprint)?
        {
            let IdempotentResult::Consumed { entry_id, balance_after } = result else {
                return Err(LedgerError::IdempotencyKeyReused { key: request.idempotency_key.clone() }.into());
            };
            return Ok(ConsumptionReceipt {
                entry_id,
                amount: request.amount,
                balance_after,
                transition: Transition::AlreadyApplied,
            });
        }

        let amount = check_spend(&account, request.amount)?;
        let entry = LedgerEntry {
            id: LedgerEntryId::from_random_bytes(self.random_16()),
            tenant_id: request.tenant_id,
            amount: -amount,
            kind: EntryKind::Consumption {
                module: request.module.clone(),
                idempotency_key: request.idempotency_key.clone(),
            },
            created_at: now,
        };
        let balance_after = account.balance - amount;
        tx.append_ledger(&entry).await?;
        let result = IdempotentResult::Consumed { entry_id: entry.id, balance_after };
        self.remember_key(tx.as_mut(), request.tenant_id, &request.idempotency_key, fingerprint, result, now).await?;
        tx.commit().await?;
        Ok(ConsumptionReceipt {
            entry_id: entry.id,
            amount: request.amount,
            balance_after,
            transition: Transition::Applied,
        })
    }

    /// Reserves credits for long-running work. A retry with the same key and
    /// request returns the same hold.
    ///
    /// # Errors
    ///
    /// As [`BillingService::consume_credits`], plus [`BillingError::InvalidInput`]
    /// for an expiry that is not in the future.
    pub async fn place_hold(&self, request: &HoldRequest) -> Result<Hold, BillingError> {
        require_module(&request.module)?;
        if request.expires_at <= self.clock.now() {
            return Err(BillingError::InvalidInput {
                reason: format!("hold expiry {} is not in the future", request.expires_at),
            });
        }
        self.with_retries(|| self.place_hold_once(request)).await
    }

    async fn place_hold_once(&self, request: &HoldRequest) -> Result<Hold, BillingError> {
        let now = self.clock.now();
        let fingerprint = request.fingerprint();
        let mut tx = self.store.begin().await?;
        let account = tx.load_account(request.tenant_id).await?;
        let existing = tx.idempotency_record(request.tenant_id, &request.idempotency_key).await?;
        if let KeyedDecision::Replay(result) =
            check_idempotency(existing.as_ref(), &request.idempotency_key, &fingerprint)?
        {
            let IdempotentResult::HoldPlaced { hold_id } = result else {
                return Err(LedgerError::IdempotencyKeyReused { key: request.idempotency_key.clone() }.into());
            };
            return match tx.load_hold(hold_id).await? {
                Some(hold) => Ok(hold),
                None => Err(LedgerError::HoldNotFound { hold: hold_id }.into()),
            };
        }

        check_spend(&account, request.amount)?;
        let hold = Hold {
            id: HoldId::from_random_bytes(self.random_16()),
            tenant_id: request.tenant_id,
            module: request.module.clone(),
            amount: request.amount,
            status: HoldStatus::Open,
            idempotency_key: request.idempotency_key.clone(),
            created_at: now,
            expires_at: request.expires_at,
        };
        tx.save_hold(&hold).await?;
        let result = IdempotentResult::HoldPlaced { hold_id: hold.id };
        self.remember_key(tx.as_mut(), request.tenant_id, &request.idempotency_key, fingerprint, result, now).await?;
        tx.commit().await?;
        tracing::info!(tenant_id = %hold.tenant_id, hold_id = %hold.id, amount = hold.amount, "credits held");
        Ok(hold)
    }

    /// Takes `amount` (at most the held amount) from an open hold and frees the rest.
    /// Capturing the same amount again returns `AlreadyApplied`.
    ///
    /// # Errors
    ///
    /// [`LedgerError::HoldNotFound`], [`LedgerError::HoldNotOpen`],
    /// [`LedgerError::HoldExpired`], [`LedgerError::CaptureExceedsHold`].
    pub async fn capture_hold(
        &self,
        tenant: TenantId,
        hold_id: HoldId,
        amount: u64,
    ) -> Result<CaptureReceipt, BillingError> {
        self.with_retries(|| async {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let account = tx.load_account(tenant).await?;
            let mut hold = load_tenant_hold(tx.as_mut(), tenant, hold_id).await?;
            let transition = capture_hold(&mut hold, amount, now)?;
            if transition == Transition::AlreadyApplied {
                return Ok(CaptureReceipt { hold_id, captured: amount, balance_after: account.balance, transition });
            }
            tx.save_hold(&hold).await?;
            let signed = i64::try_from(amount).map_err(|_| LedgerError::AmountTooLarge { amount })?;
            if signed > 0 {
                let entry = LedgerEntry {
                    id: LedgerEntryId::from_random_bytes(self.random_16()),
                    tenant_id: tenant,
                    amount: -signed,
                    kind: EntryKind::Capture { hold_id, module: hold.module.clone() },
                    created_at: now,
                };
                tx.append_ledger(&entry).await?;
            }
            tx.commit().await?;
            Ok(CaptureReceipt { hold_id, captured: amount, balance_after: account.balance - signed, transition })
        })
        .await
    }

    /// Frees an open hold without taking credits.
    ///
    /// # Errors
    ///
    /// [`LedgerError::HoldNotFound`], [`LedgerError::HoldNotOpen`].
    pub async fn release_hold(&self, tenant: TenantId, hold_id: HoldId) -> Result<Transition, BillingError> {
        self.with_retries(|| async {
            let mut tx = self.store.begin().await?;
            tx.load_account(tenant).await?;
            let mut hold = load_tenant_hold(tx.as_mut(), tenant, hold_id).await?;
            let transition = release_hold(&mut hold)?;
            if transition == Transition::Applied {
                tx.save_hold(&hold).await?;
                tx.commit().await?;
            }
            Ok(transition)
        })
        .await
    }

    /// Ends every open hold of a tenant whose expiry has passed; returns how many.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn expire_holds(&self, tenant: TenantId) -> Result<usize, BillingError> {
        self.with_retries(|| async {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            tx.load_account(tenant).await?;
            let mut expired = 0;
            for mut hold in tx.expired_open_holds(tenant, now).await? {
                if expire_hold(&mut hold, now).is_some() {
                    tx.save_hold(&hold).await?;
                    expired += 1;
                }
            }
            tx.commit().await?;
            Ok(expired)
        })
        .await
    }

    /// Adds or removes credits by hand, with a reason.
    ///
    /// # Errors
    ///
    /// [`LedgerError::InvalidAdjustment`] for a zero amount or empty reason;
    /// [`LedgerError::InsufficientCredits`] when a negative adjustment would
    /// break the overdraft policy.
    pub async fn adjust_credits(
        &self,
        staff: &StaffContext,
        amount: i64,
        reason: &str,
    ) -> Result<LedgerEntry, BillingError> {
        if amount == 0 || reason.trim().is_empty() {
            return Err(LedgerError::InvalidAdjustment.into());
        }
        self.with_retries(|| async {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let account = tx.load_account(staff.tenant_id).await?;
            if amount < 0 {
                check_spend(&account, amount.unsigned_abs())?;
            }
            let entry = LedgerEntry {
                id: LedgerEntryId::from_random_bytes(self.random_16()),
                tenant_id: staff.tenant_id,
                amount,
                kind: EntryKind::Adjustment { staff: staff.user_id, reason: reason.to_owned() },
                created_at: now,
            };
            tx.append_ledger(&entry).await?;
            tx.commit().await?;
            tracing::info!(tenant_id = %staff.tenant_id, staff = %staff.user_id, amount, "credits adjusted");
            Ok(entry)
        })
        .await
    }

    /// The tenant's balance, held credits and available credits.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn balance(&self, tenant: TenantId) -> Result<Balance, BillingError> {
        let account = self.store.account(tenant).await?;
        Ok(Balance { balance: account.balance, held: account.held, available: account.available() })
    }

    /// The tenant's ledger entries, oldest first.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn history(&self, tenant: TenantId) -> Result<Vec<LedgerEntry>, BillingError> {
        Ok(self.store.ledger_entries(tenant).await?)
    }

    /// The tenant's holds, oldest first.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn holds(&self, tenant: TenantId) -> Result<Vec<Hold>, BillingError> {
        Ok(self.store.holds(tenant).await?)
    }

    async fn remember_key(
        &self,
        tx: &mut dyn StoreTx,
        tenant: TenantId,
        key: &IdempotencyKey,
        fingerprint: Fingerprint,
        result: IdempotentResult,
        now: OffsetDateTime,
    ) -> Result<(), BillingError> {
        let record = IdempotencyRecord { tenant_id: tenant, key: key.clone(), fingerprint, result, created_at: now };
        tx.insert_idempotency_record(&record).await?;
        Ok(())
    }
}

async fn load_tenant_hold(tx: &mut dyn StoreTx, tenant: TenantId, hold_id: HoldId) -> Result<Hold, BillingError> {
    match tx.load_hold(hold_id).await? {
        Some(hold) if hold.tenant_id == tenant => Ok(hold),
        _ => Err(LedgerError::HoldNotFound { hold: hold_id }.into()),
    }
}

pub(super) fn require_module(module: &str) -> Result<(), BillingError> {
    if module.trim().is_empty() {
        return Err(BillingError::InvalidInput { reason: "module name must not be empty".into() });
    }
    Ok(())
}
