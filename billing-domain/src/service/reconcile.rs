//! The staff reconciliation path: what needs a person, and the ways to settle it.
//!
//! Staff list unresolved log entries and stale payments, retry stored
//! events, reconcile a payment by fetching the provider's state, and, where
//! the provider cannot answer, force an outcome with a reason. A forced
//! outcome goes through the same event path as a provider report, so it
//! obeys the same rules, and its log row names the staff member.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::event::{EventKey, EventKind, PaymentMatch, ProviderEvent};
use crate::ids::{EventId, LogEntryId, PaymentId};
use crate::log::{LogEntry, LogOutcome, LogSource};
use crate::payment::Payment;
use crate::store::LogFilter;

use super::events::{EventReport, Origin};
use super::payments::payment_draft;
use super::{BillingError, BillingService, StaffContext};

/// The outcome staff decide for a payment the provider cannot settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForcedOutcome {
    Succeeded,
    Failed,
}

/// The result of reconciling one payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub payment: Payment,
    /// Events from the provider's current state.
    pub fetched: Vec<EventReport>,
    /// Earlier unresolved events retried after the fetch.
    pub retried: Vec<EventReport>,
    /// The provider's error when the fetch failed; the payment is unchanged.
    pub fetch_error: Option<String>,
}

impl BillingService {
    /// Log entries of the staff member's tenant, and entries no tenant could be
    /// matched to, that still need a person; newest first.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn unresolved_log(&self, staff: &StaffContext, limit: usize) -> Result<Vec<LogEntry>, BillingError> {
        let mut entries = self
            .store
            .log_entries(&LogFilter {
                tenant_id: Some(staff.tenant_id),
                open_only: true,
                limit,
                ..LogFilter::default()
            })
            .await?;
        let untenanted = self.store.log_entries(&LogFilter { open_only: true, limit, ..LogFilter::default() }).await?;
        entries.extend(untenanted.into_iter().filter(|entry| entry.tenant_id.is_none()));
        entries.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
        entries.truncate(limit);
        Ok(entries)
    }

    /// The latest log entries of the staff member's tenant, newest first: the
    /// activity feed a staff dashboard links invoices and payments from.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn recent_log(&self, staff: &StaffContext, limit: usize) -> Result<Vec<LogEntry>, BillingError> {
        let filter = LogFilter { tenant_id: Some(staff.tenant_id), limit, ..LogFilter::default() };
        Ok(self.store.log_entries(&filter).await?)
    }

    /// Payments still created, pending or unknown after `older_than`, oldest first.
    ///
    /// # Errors
    ///
    /// [`BillingError::InvalidInput`] when `older_than` reaches outside the
    /// calendar, store errors.
    pub async fn stale_payments(
        &self,
        staff: &StaffContext,
        older_than: Duration,
        limit: usize,
    ) -> Result<Vec<Payment>, BillingError> {
        let before = self.stale_cutoff(older_than)?;
        Ok(self.store.stale_payments(Some(staff.tenant_id), before, limit).await?)
    }

    /// The log of one invoice, newest first, for the staff view.
    ///
    /// # Errors
    ///
    /// [`BillingError::NotFound`] for an invoice of another tenant.
    pub async fn invoice_log(
        &self,
        staff: &StaffContext,
        invoice_id: crate::ids::InvoiceId,
    ) -> Result<Vec<LogEntry>, BillingError> {
        self.staff_invoice_record(staff, invoice_id).await?;
        let filter = LogFilter { invoice_id: Some(invoice_id), ..LogFilter::default() };
        Ok(self.store.log_entries(&filter).await?)
    }

    /// Applies a stored, unresolved event again (after staff fixed what blocked it).
    ///
    /// # Errors
    ///
    /// [`BillingError::NotFound`] when the inbox has no such event or it
    /// belongs to another tenant, by its metadata or by the payment it matches.
    pub async fn retry_event(&self, staff: &StaffContext, key: &EventKey) -> Result<EventReport, BillingError> {
        let Some(entry) = self.store.inbox_entry(key).await? else {
            return Err(BillingError::not_found("event", key));
        };
        if !self.event_belongs_to(staff, &entry.event).await? {
            return Err(BillingError::not_found("event", key));
        }
        self.ingest(&entry.event, Origin { source: LogSource::Staff, actor: Some(staff.user_id) }).await
    }

    /// Fetches a payment's state from its provider, applies it, then retries
    /// the payment's unresolved events (a refund that arrived before its success).
    ///
    /// # Errors
    ///
    /// [`BillingError::NotFound`] for a payment of another tenant, store errors.
    pub async fn reconcile_payment(
        &self,
        staff: &StaffContext,
        payment_id: PaymentId,
    ) -> Result<ReconcileReport, BillingError> {
        let payment = self.staff_payment(staff, payment_id).await?;
        let (fetched, fetch_error) = match self.fetch_and_apply(&payment, LogSource::Fetch, Some(staff)).await? {
            Ok(reports) => (reports, None),
            Err(error) => (Vec::new(), Some(error)),
        };
        let retried = self.retry_payment_events(payment_id, Some(staff)).await?;
        let payment = self.staff_payment(staff, payment_id).await?;
        Ok(ReconcileReport { payment, fetched, retried, fetch_error })
    }

    /// Reconciles every stale payment of every tenant once, for a scheduled janitor.
    ///
    /// # Errors
    ///
    /// [`BillingError::InvalidInput`] when `older_than` reaches outside the
    /// calendar, store errors; a provider that cannot be reached is logged per payment.
    pub async fn reconcile_stale(&self, older_than: Duration, limit: usize) -> Result<usize, BillingError> {
        let before = self.stale_cutoff(older_than)?;
        let stale = self.store.stale_payments(None, before, limit).await?;
        for payment in &stale {
            if self.fetch_and_apply(payment, LogSource::System, None).await?.is_ok() {
                self.retry_payment_events(payment.id, None).await?;
            }
        }
        Ok(stale.len())
    }

    /// Settles a payment the provider cannot answer for, with a reason that is
    /// recorded beside the evidence. Goes through the normal event path.
    ///
    /// # Errors
    ///
    /// [`BillingError::InvalidInput`] for an empty reason, [`BillingError::NotFound`]
    /// for a payment of another tenant.
    pub async fn force_outcome(
        &self,
        staff: &StaffContext,
        payment_id: PaymentId,
        outcome: ForcedOutcome,
        reason: &str,
    ) -> Result<EventReport, BillingError> {
        if reason.trim().is_empty() {
            return Err(BillingError::InvalidInput { reason: "a forced outcome needs a reason".into() });
        }
        let payment = self.staff_payment(staff, payment_id).await?;
        // The decision settles only the rows that were open before it, so an
        // overpayment it reveals stays open for staff to refund.
        let open_before = LogFilter { payment_id: Some(payment.id), open_only: true, ..LogFilter::default() };
        let open_before = self.store.log_entries(&open_before).await?;
        let now = self.clock.now();
        let event = ProviderEvent {
            provider: payment.provider.clone(),
            event_id: EventId::new(format!("staff:{}", self.new_log_id()))?,
            occurred_at: now,
            matches: PaymentMatch {
                tenant_id: Some(payment.tenant_id),
                invoice_id: Some(payment.invoice_id),
                payment_id: Some(payment.id),
                reference: payment.reference.clone(),
            },
            kind: match outcome {
                ForcedOutcome::Succeeded => EventKind::Succeeded,
                ForcedOutcome::Failed => EventKind::Failed,
            },
            amount: Some(payment.amount),
            provider_type: "staff.forced_outcome".into(),
        };
        let mut report = self.ingest(&event, Origin { source: LogSource::Staff, actor: Some(staff.user_id) }).await?;

        let mut tx = self.store.begin().await?;
        let mut draft = payment_draft(&payment, LogSource::Staff);
        draft.actor = Some(staff.user_id);
        draft.event = Some(event.key());
        let note = format!("staff forced {outcome:?} ({}): {reason}", report.outcome).to_lowercase();
        let entry = draft.entry(self.new_log_id(), LogOutcome::Applied, note, false, now);
        tx.append_log(&entry).await?;
        if report.outcome == LogOutcome::Applied {
            for earlier in &open_before {
                tx.resolve_log_entry(earlier.id, entry.id).await?;
            }
        }
        tx.commit().await?;
        tracing::info!(payment_id = %payment.id, staff = %staff.user_id, ?outcome, "staff forced a payment outcome");
        report.reason = format!("{}; {reason}", report.reason);
        Ok(report)
    }

    /// Marks one log entry as handled, with a note (an overpayment refunded by hand).
    ///
    /// # Errors
    ///
    /// [`BillingError::InvalidInput`] for an empty note, [`BillingError::NotFound`]
    /// for an entry that is not open in this tenant.
    pub async fn resolve_log_entry(
        &self,
        staff: &StaffContext,
        entry_id: LogEntryId,
        note: &str,
    ) -> Result<LogEntry, BillingError> {
        if note.trim().is_empty() {
            return Err(BillingError::InvalidInput { reason: "resolving an entry needs a note".into() });
        }
        let open = self.unresolved_log(staff, usize::MAX).await?;
        let Some(target) = open.into_iter().find(|entry| entry.id == entry_id) else {
            return Err(BillingError::not_found("open log entry", entry_id));
        };
        let now = self.clock.now();
        let mut draft = super::LogDraft::new(LogSource::Staff);
        draft.tenant_id = Some(staff.tenant_id);
        draft.invoice_id = target.invoice_id;
        draft.payment_id = target.payment_id;
        draft.actor = Some(staff.user_id);
        let entry = draft.entry(
            self.new_log_id(),
            LogOutcome::Applied,
            format!("resolved entry {entry_id}: {note}"),
            false,
            now,
        );
        let mut tx = self.store.begin().await?;
        tx.append_log(&entry).await?;
        tx.resolve_log_entry(entry_id, entry.id).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Checks that an event names no other tenant, neither in its metadata nor
    /// through the payment it matches. Events that match nothing are shared.
    async fn event_belongs_to(&self, staff: &StaffContext, event: &ProviderEvent) -> Result<bool, BillingError> {
        let matches = &event.matches;
        if matches.tenant_id.is_some_and(|tenant| tenant != staff.tenant_id) {
            return Ok(false);
        }
        let payment = match (matches.payment_id, &matches.reference) {
            (Some(payment_id), _) => self.store.payment(payment_id).await?,
            (None, Some(reference)) => self.store.payment_by_reference(&event.provider, reference).await?,
            (None, None) => None,
        };
        Ok(payment.is_none_or(|payment| payment.tenant_id == staff.tenant_id))
    }

    /// The moment before which an in-flight payment counts as stale.
    fn stale_cutoff(&self, older_than: Duration) -> Result<OffsetDateTime, BillingError> {
        let now = self.clock.now();
        now.checked_sub(older_than).ok_or_else(|| BillingError::InvalidInput {
            reason: format!("payment age {older_than} before {now} is out of range; pass a shorter age"),
        })
    }

    async fn staff_payment(&self, staff: &StaffContext, payment_id: PaymentId) -> Result<Payment, BillingError> {
        match self.store.payment(payment_id).await? {
            Some(payment) if payment.tenant_id == staff.tenant_id => Ok(payment),
            _ => Err(BillingError::not_found("payment", payment_id)),
        }
    }

    async fn retry_payment_events(
        &self,
        payment_id: PaymentId,
        staff: Option<&StaffContext>,
    ) -> Result<Vec<EventReport>, BillingError> {
        let pending = self.store.unresolved_events_for_payment(payment_id).await?;
        let origin = Origin {
            source: if staff.is_some() { LogSource::Staff } else { LogSource::System },
            actor: staff.map(StaffContext::user_id),
        };
        let mut reports = Vec::with_capacity(pending.len());
        for entry in pending {
            reports.push(self.ingest(&entry.event, origin).await?);
        }
        Ok(reports)
    }
}
