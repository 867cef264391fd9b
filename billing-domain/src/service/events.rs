//! Applying provider events: the one path every webhook, fetch, immediate
//! completion and staff decision takes.
//!
//! Each event is applied in one store transaction: the inbox claim, the
//! payment and invoice changes, the ledger entries and the log rows commit
//! together or not at all.

use serde::Serialize;

use crate::apply::{decide, Decision, InvoiceCredits};
use crate::event::{EventKey, EventKind, ProviderEvent};
use crate::ids::{InvoiceId, LedgerEntryId, PaymentId, UserId};
use crate::ledger::{AccountSnapshot, LedgerEntry, OverdraftPolicy};
use crate::log::{InboxClaim, InboxState, LogOutcome, LogSource};
use crate::payment::Payment;
use crate::store::StoreTx;

use super::{BillingError, BillingService, LogDraft};

/// What became of one provider event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventReport {
    pub event: EventKey,
    pub outcome: LogOutcome,
    pub payment_id: Option<PaymentId>,
    pub invoice_id: Option<InvoiceId>,
    pub reason: String,
    /// Set when the log row waits for staff: the event did not apply, or it
    /// applied but left work for a person (an overpayment to refund).
    pub needs_attention: bool,
}

/// Who is applying an event.
#[derive(Debug, Clone, Copy)]
pub(super) struct Origin {
    pub source: LogSource,
    pub actor: Option<UserId>,
}

impl BillingService {
    /// Applies one verified provider event, at most once per `(provider, event id)`.
    ///
    /// A duplicate changes nothing but the log. An event that cannot apply is
    /// stored in the inbox as unresolved and logged for staff; it is not an error.
    ///
    /// # Errors
    ///
    /// Store errors only: the event was not stored and should be delivered again.
    pub async fn apply_event(&self, event: &ProviderEvent) -> Result<EventReport, BillingError> {
        self.ingest(event, Origin { source: LogSource::Webhook, actor: None }).await
    }

    pub(super) async fn ingest(&self, event: &ProviderEvent, origin: Origin) -> Result<EventReport, BillingError> {
        let report = self.with_retries(|| self.ingest_once(event, origin)).await?;
        tracing::info!(
            provider = %event.provider,
            event_id = %event.event_id,
            payment_id = report.payment_id.map(tracing::field::display),
            invoice_id = report.invoice_id.map(tracing::field::display),
            outcome = %report.outcome,
            "provider event processed"
        );
        Ok(report)
    }

    async fn ingest_once(&self, event: &ProviderEvent, origin: Origin) -> Result<EventReport, BillingError> {
        let now = self.clock.now();
        let key = event.key();
        let mut draft = event_draft(event, origin);

        let mut tx = self.store.begin().await?;
        if let InboxClaim::Done(_) = tx.claim_event(event, now).await? {
            let reason = "event already processed".to_owned();
            tx.append_log(&draft.entry(self.new_log_id(), LogOutcome::Duplicate, reason.clone(), false, now)).await?;
            tx.commit().await?;
            return Ok(report(&key, LogOutcome::Duplicate, &draft, reason, false));
        }

        if let EventKind::Ignored { provider_type } = &event.kind {
            let reason = format!("event type {provider_type} is not handled");
            return self.finish(tx, &key, &draft, LogOutcome::Ignored, reason, false).await;
        }

        let located = match self.locate_payment(tx.as_mut(), event).await? {
            Ok(located) => located,
            Err((outcome, reason)) => return self.finish(tx, &key, &draft, outcome, reason, true).await,
        };
        let (payment_id, invoice_id) = (located.id, located.invoice_id);
        draft.payment_id = Some(payment_id);
        draft.invoice_id = Some(invoice_id);
        if let Err(reason) = check_claims(event, &located) {
            // The row names a payment on record, so it goes to that payment's
            // tenant: its staff must see it and no other tenant may.
            draft.tenant_id = Some(located.tenant_id);
            return self.finish(tx, &key, &draft, LogOutcome::Rejected, reason, true).await;
        }

        // Lock order: invoice, payment, account.
        let Some(invoice) = tx.load_invoice(invoice_id).await? else {
            return Err(BillingError::not_found("invoice", invoice_id));
        };
        let Some(payment) = tx.load_payment(payment_id).await? else {
            return Err(BillingError::not_found("payment", payment_id));
        };
        draft.tenant_id = Some(payment.tenant_id);
        // Only events that can move credits lock the account, so status-only
        // events of one tenant do not queue behind each other.
        let (account, credits) = if touches_credits(&event.kind) {
            (tx.load_account(payment.tenant_id).await?, tx.invoice_credits(invoice_id).await?)
        } else {
            (AccountSnapshot::empty(payment.tenant_id, OverdraftPolicy::default()), InvoiceCredits::default())
        };

        let mut next_payment = payment.clone();
        let mut next_invoice = invoice.clone();
        let learned_reference = self.learn_reference(tx.as_mut(), event, &mut next_payment).await?;
        match decide(event, &mut next_payment, &mut next_invoice, &account, credits, now) {
            Decision::Apply { summary, entries, attention } => {
                if next_payment != payment {
                    tx.save_payment(&next_payment).await?;
                }
                if next_invoice != invoice {
                    tx.save_invoice(&next_invoice).await?;
                }
                for planned in entries {
                    let entry = LedgerEntry {
                        id: LedgerEntryId::from_random_bytes(self.random_16()),
                        tenant_id: payment.tenant_id,
                        amount: planned.amount,
                        kind: planned.kind,
                        created_at: now,
                    };
                    tx.append_ledger(&entry).await?;
                }
                let open = attention.is_some();
                let reason = match attention {
                    Some(attention) => {
                        tracing::warn!(payment_id = %payment.id, invoice_id = %invoice.id, "applied event needs staff attention");
                        format!("{summary}; {attention}")
                    }
                    None => summary,
                };
                self.finish(tx, &key, &draft, LogOutcome::Applied, reason, open).await
            }
            Decision::NoChange { reason } => {
                if learned_reference {
                    tx.save_payment(&next_payment).await?;
                }
                self.finish(tx, &key, &draft, LogOutcome::Ignored, reason, false).await
            }
            Decision::Park { reason } => self.finish(tx, &key, &draft, LogOutcome::Parked, reason, true).await,
            Decision::Reject { reason } => self.finish(tx, &key, &draft, LogOutcome::Rejected, reason, true).await,
        }
    }

    /// Writes the inbox state and the log row for an outcome, resolves earlier
    /// open rows about the same event, and commits.
    async fn finish(
        &self,
        mut tx: Box<dyn StoreTx>,
        key: &EventKey,
        draft: &LogDraft,
        outcome: LogOutcome,
        reason: String,
        open: bool,
    ) -> Result<EventReport, BillingError> {
        let now = self.clock.now();
        tx.set_inbox_state(key, inbox_state_after(outcome), now).await?;
        let entry = draft.entry(self.new_log_id(), outcome, reason.clone(), open, now);
        tx.append_log(&entry).await?;
        tx.resolve_log_for_event(key, entry.id).await?;
        tx.commit().await?;
        Ok(report(key, outcome, draft, reason, open))
    }

    /// Records the provider's reference on a payment that has none yet (its
    /// start call timed out before the provider answered), so later fetches
    /// and events can find it. Returns whether the payment changed.
    pub(super) async fn learn_reference(
        &self,
        tx: &mut dyn StoreTx,
        event: &ProviderEvent,
        payment: &mut Payment,
    ) -> Result<bool, BillingError> {
        let Some(reference) = &event.matches.reference else {
            return Ok(false);
        };
        if payment.reference.is_some() || event.matches.payment_id != Some(payment.id) {
            return Ok(false);
        }
        if tx.find_payment_id(&event.provider, reference).await?.is_some() {
            return Ok(false);
        }
        payment.reference = Some(reference.clone());
        Ok(true)
    }

    /// Finds the payment an event is about: by the payment id in its metadata,
    /// else by the provider reference. Returns the outcome to log when none fits.
    pub(super) async fn locate_payment(
        &self,
        tx: &mut dyn StoreTx,
        event: &ProviderEvent,
    ) -> Result<Result<Payment, (LogOutcome, String)>, BillingError> {
        let matches = &event.matches;
        if let Some(payment_id) = matches.payment_id {
            let Some(payment) = tx.peek_payment(payment_id).await? else {
                return Ok(Err((LogOutcome::Unmatched, format!("no payment {payment_id} on record"))));
            };
            return Ok(Ok(payment));
        }
        let Some(reference) = &matches.reference else {
            return Ok(Err((
                LogOutcome::Unmatched,
                "event carries neither a payment id nor a provider reference".into(),
            )));
        };
        let Some(payment_id) = tx.find_payment_id(&event.provider, reference).await? else {
            return Ok(Err((LogOutcome::Unmatched, format!("no payment with reference {reference}"))));
        };
        match tx.peek_payment(payment_id).await? {
            Some(payment) => Ok(Ok(payment)),
            None => Ok(Err((LogOutcome::Unmatched, format!("no payment with reference {reference}")))),
        }
    }
}

/// Checks the event's claims against the payment it matched: the provider must
/// be the payment's, and tenant or invoice ids in the metadata must not name
/// another one, because metadata ids win over the reference.
pub(super) fn check_claims(event: &ProviderEvent, payment: &Payment) -> Result<(), String> {
    if payment.provider != event.provider {
        return Err(format!("payment {} belongs to provider {}", payment.id, payment.provider));
    }
    let matches = &event.matches;
    let tenant_differs = matches.tenant_id.is_some_and(|tenant| tenant != payment.tenant_id);
    let invoice_differs = matches.invoice_id.is_some_and(|invoice| invoice != payment.invoice_id);
    if tenant_differs || invoice_differs {
        return Err(format!("metadata ids disagree with payment {}", payment.id));
    }
    Ok(())
}

pub(super) fn touches_credits(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Succeeded | EventKind::Refunded { .. } | EventKind::DisputeLost)
}

pub(super) fn report(
    key: &EventKey,
    outcome: LogOutcome,
    draft: &LogDraft,
    reason: String,
    needs_attention: bool,
) -> EventReport {
    EventReport {
        event: key.clone(),
        outcome,
        payment_id: draft.payment_id,
        invoice_id: draft.invoice_id,
        reason,
        needs_attention,
    }
}

/// The inbox state an outcome leaves: done when the event took effect or
/// needs nothing, unresolved when a redelivery or retry should try again.
pub(super) fn inbox_state_after(outcome: LogOutcome) -> InboxState {
    match outcome {
        LogOutcome::Applied | LogOutcome::Ignored | LogOutcome::Duplicate => InboxState::Done,
        LogOutcome::Rejected | LogOutcome::Unmatched | LogOutcome::Parked | LogOutcome::Failed => {
            InboxState::Unresolved
        }
    }
}

/// The log fields every row about `event` carries.
pub(super) fn event_draft(event: &ProviderEvent, origin: Origin) -> LogDraft {
    let mut draft = LogDraft::new(origin.source);
    draft.provider = Some(event.provider.clone());
    draft.event = Some(event.key());
    draft.actor = origin.actor;
    draft.tenant_id = event.matches.tenant_id;
    draft.invoice_id = event.matches.invoice_id;
    draft.payment_id = event.matches.payment_id;
    draft
}
