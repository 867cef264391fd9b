//! Batched use cases: many provider events, or many consumptions of one
//! account, in one store transaction.
//!
//! A batch keeps every promise of the single-item path. Each event still
//! claims its inbox key and is decided by [`decide`] on the rows it locked,
//! in the order given; each consumption still checks its idempotency key
//! and the spendable balance one after the other. What changes is only how
//! the rows travel: the store reads and writes them set-wise
//! ([`StoreTx::claim_events`], [`StoreTx::write_batch`] and friends), and
//! the batch commits or rolls back as a whole. A conflict reruns the whole
//! batch, like any operation.
//!
//! Locks are taken kind by kind: inbox rows in key order, then invoices,
//! payments and (for events that can move credits) accounts, each sorted by id. That is the order the single
//! path takes for one event, so batches and single events never wait on
//! each other in a cycle.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;

use crate::apply::{decide, Decision, InvoiceCredits};
use crate::event::{EventKey, EventKind, ProviderEvent};
use crate::ids::{IdempotencyKey, InvoiceId, LedgerEntryId, PaymentId, ProviderName, ProviderReference, TenantId};
use crate::invoice::Invoice;
use crate::ledger::{
    check_idempotency, check_spend, AccountSnapshot, ConsumptionReceipt, ConsumptionRequest, EntryKind,
    IdempotencyRecord, IdempotentResult, KeyedDecision, LedgerEntry, LedgerError, OverdraftPolicy,
};
use crate::log::{InboxClaim, LogOutcome, LogSource};
use crate::payment::Payment;
use crate::provider::WebhookRequest;
use crate::store::{BatchWrites, StoreTx};
use crate::Transition;

use super::credits::require_module;
use super::events::{check_claims, event_draft, inbox_state_after, report, touches_credits, EventReport, Origin};
use super::payments::only_from;
use super::{BillingError, BillingService, LogDraft};

/// The rows a batch of events locked, changed in memory as decisions are made.
#[derive(Debug, Default)]
struct Working {
    invoices: HashMap<InvoiceId, Invoice>,
    payments: HashMap<PaymentId, Payment>,
    accounts: HashMap<TenantId, AccountSnapshot>,
    credits: HashMap<InvoiceId, InvoiceCredits>,
    changed_invoices: HashSet<InvoiceId>,
    changed_payments: HashSet<PaymentId>,
    learned_references: HashSet<(ProviderName, ProviderReference)>,
}

impl BillingService {
    /// Verifies several webhooks of one provider and applies all their
    /// events as one batch. Returns, per request, its reports or why it was
    /// rejected; a rejected webhook is logged and applies nothing.
    ///
    /// # Errors
    ///
    /// Store errors only: nothing of the batch was stored and every request
    /// should be delivered again.
    pub async fn handle_webhook_batch(
        &self,
        provider_name: &ProviderName,
        requests: &[WebhookRequest],
    ) -> Result<Vec<Result<Vec<EventReport>, BillingError>>, BillingError> {
        let provider = self.provider(provider_name)?;
        let now = self.clock.now();
        let mut verified = Vec::with_capacity(requests.len());
        for request in requests {
            match provider.verify_webhook(request, now).await.and_then(|events| only_from(provider_name, events)) {
                Ok(events) => verified.push(Ok(events)),
                Err(error) => {
                    self.log_rejected_webhook(provider_name, &error, now).await?;
                    verified.push(Err(BillingError::from(error)));
                }
            }
        }

        let events: Vec<ProviderEvent> =
            verified.iter().filter_map(|events| events.as_ref().ok()).flatten().cloned().collect();
        let mut reports = self.apply_event_batch(&events).await?.into_iter();
        Ok(verified
            .into_iter()
            .map(|events| events.map(|events| reports.by_ref().take(events.len()).collect()))
            .collect())
    }

    /// Applies verified provider events, each at most once per
    /// `(provider, event id)`, and returns one report per event in the order
    /// given. Events go to the store in as few transactions as delivery order
    /// allows: a key that repeats starts a new transaction, so the repeat is
    /// applied after its first delivery committed, exactly as one-by-one
    /// delivery would apply it.
    ///
    /// # Errors
    ///
    /// Store errors only. The transaction that failed and every later one
    /// stored nothing; earlier ones did, so redelivering them is a duplicate.
    pub async fn apply_event_batch(&self, events: &[ProviderEvent]) -> Result<Vec<EventReport>, BillingError> {
        let origin = Origin { source: LogSource::Webhook, actor: None };
        let mut reports = Vec::with_capacity(events.len());
        let mut start = 0;
        while start < events.len() {
            let mut seen = HashSet::new();
            let mut end = start;
            while end < events.len() && seen.insert(events[end].key()) {
                end += 1;
            }

            let batch: Vec<&ProviderEvent> = events[start..end].iter().collect();
            let batch_reports = self.with_retries(|| self.ingest_batch_once(&batch, origin)).await?;
            for (event, batch_report) in batch.iter().zip(batch_reports) {
                tracing::info!(
                    provider = %event.provider,
                    event_id = %event.event_id,
                    payment_id = batch_report.payment_id.map(tracing::field::display),
                    invoice_id = batch_report.invoice_id.map(tracing::field::display),
                    outcome = %batch_report.outcome,
                    "provider event processed in a batch"
                );
                reports.push(batch_report);
            }
            start = end;
        }
        Ok(reports)
    }

    async fn ingest_batch_once(
        &self,
        events: &[&ProviderEvent],
        origin: Origin,
    ) -> Result<Vec<EventReport>, BillingError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;

        // Claim in key order, then keep the claims in delivery order.
        let mut by_key: Vec<usize> = (0..events.len()).collect();
        by_key.sort_by_key(|&index| events[index].key());
        let sorted: Vec<ProviderEvent> = by_key.iter().map(|&index| events[index].clone()).collect();
        let mut claims: Vec<Option<InboxClaim>> = vec![None; events.len()];
        for (index, claim) in by_key.into_iter().zip(tx.claim_events(&sorted, now).await?) {
            claims[index] = Some(claim);
        }

        let located = self.locate_batch(tx.as_mut(), events, &claims).await?;
        let mut working = lock_batch(tx.as_mut(), events, &located).await?;

        let mut writes = BatchWrites::default();
        let mut reports = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            let claim = claims[index].as_ref();
            let located = &located[index];
            let report = self
                .decide_in_batch(tx.as_mut(), event, claim, located, &mut working, &mut writes, origin, now)
                .await?;
            reports.push(report);
        }

        writes.payments = sorted_changes(&working.payments, &working.changed_payments);
        writes.invoices = sorted_changes(&working.invoices, &working.changed_invoices);
        tx.write_batch(&writes, now).await?;
        tx.commit().await?;
        Ok(reports)
    }

    /// Finds each event's payment as the single path does, reading the
    /// payments named by id in one go. Events that were processed before or
    /// that need no payment get `None`.
    async fn locate_batch(
        &self,
        tx: &mut dyn StoreTx,
        events: &[&ProviderEvent],
        claims: &[Option<InboxClaim>],
    ) -> Result<Vec<Option<Located>>, BillingError> {
        let needs_payment = |index: usize| {
            !matches!(claims[index], Some(InboxClaim::Done(_)))
                && !matches!(events[index].kind, EventKind::Ignored { .. })
        };
        let mut ids: Vec<PaymentId> = (0..events.len())
            .filter(|&index| needs_payment(index))
            .filter_map(|i| events[i].matches.payment_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let peeked: HashMap<PaymentId, Payment> =
            tx.peek_payments(&ids).await?.into_iter().map(|payment| (payment.id, payment)).collect();

        let mut located = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            if !needs_payment(index) {
                located.push(None);
                continue;
            }
            let found = match event.matches.payment_id {
                Some(payment_id) => peeked
                    .get(&payment_id)
                    .cloned()
                    .ok_or_else(|| (LogOutcome::Unmatched, format!("no payment {payment_id} on record"))),
                None => self.locate_payment(tx, event).await?,
            };
            located.push(Some(found));
        }
        Ok(located)
    }

    /// Decides one event of a batch on the working rows and queues its
    /// writes, step for step as the single path's `ingest_once` does.
    #[allow(clippy::too_many_arguments)]
    async fn decide_in_batch(
        &self,
        tx: &mut dyn StoreTx,
        event: &ProviderEvent,
        claim: Option<&InboxClaim>,
        located: &Option<Located>,
        working: &mut Working,
        writes: &mut BatchWrites,
        origin: Origin,
        now: OffsetDateTime,
    ) -> Result<EventReport, BillingError> {
        let key = event.key();
        let mut draft = event_draft(event, origin);
        if let Some(InboxClaim::Done(_)) = claim {
            let reason = "event already processed".to_owned();
            writes.log.push(draft.entry(self.new_log_id(), LogOutcome::Duplicate, reason.clone(), false, now));
            return Ok(report(&key, LogOutcome::Duplicate, &draft, reason, false));
        }
        if let EventKind::Ignored { provider_type } = &event.kind {
            let reason = format!("event type {provider_type} is not handled");
            return Ok(self.finish_in_batch(writes, &key, &draft, LogOutcome::Ignored, reason, false, now));
        }
        let located = match located {
            Some(Ok(found)) => found,
            Some(Err((outcome, reason))) => {
                return Ok(self.finish_in_batch(writes, &key, &draft, *outcome, reason.clone(), true, now))
            }
            None => return Err(BillingError::InvalidInput { reason: format!("event {key} was not located") }),
        };
        let (payment_id, invoice_id) = (located.id, located.invoice_id);
        draft.payment_id = Some(payment_id);
        draft.invoice_id = Some(invoice_id);
        if let Err(reason) = check_claims(event, located) {
            draft.tenant_id = Some(located.tenant_id);
            return Ok(self.finish_in_batch(writes, &key, &draft, LogOutcome::Rejected, reason, true, now));
        }

        let Some(invoice) = working.invoices.get(&invoice_id).cloned() else {
            return Err(BillingError::not_found("invoice", invoice_id));
        };
        let Some(payment) = working.payments.get(&payment_id).cloned() else {
            return Err(BillingError::not_found("payment", payment_id));
        };
        draft.tenant_id = Some(payment.tenant_id);
        let (account, credits) = match touches_credits(&event.kind) {
            true => {
                let Some(account) = working.accounts.get(&payment.tenant_id).copied() else {
                    return Err(BillingError::not_found("account of tenant", payment.tenant_id));
                };
                (account, working.credits.get(&invoice_id).copied().unwrap_or_default())
            }
            false => (AccountSnapshot::empty(payment.tenant_id, OverdraftPolicy::default()), InvoiceCredits::default()),
        };

        let mut next_payment = payment.clone();
        let mut next_invoice = invoice.clone();
        let learned_reference = self.learn_reference_in_batch(tx, event, &mut next_payment, working).await?;
        let (outcome, reason, open) = match decide(event, &mut next_payment, &mut next_invoice, &account, credits, now)
        {
            Decision::Apply { summary, entries, attention } => {
                if next_payment != payment {
                    working.changed_payments.insert(payment_id);
                    working.payments.insert(payment_id, next_payment);
                }
                if next_invoice != invoice {
                    working.changed_invoices.insert(invoice_id);
                    working.invoices.insert(invoice_id, next_invoice);
                }
                for planned in entries {
                    let entry = LedgerEntry {
                        id: LedgerEntryId::from_random_bytes(self.random_16()),
                        tenant_id: payment.tenant_id,
                        amount: planned.amount,
                        kind: planned.kind,
                        created_at: now,
                    };
                    book(working, &entry, invoice_id);
                    writes.ledger.push(entry);
                }
                let open = attention.is_some();
                let reason = match attention {
                    Some(attention) => {
                        tracing::warn!(payment_id = %payment.id, invoice_id = %invoice.id, "applied event needs staff attention");
                        format!("{summary}; {attention}")
                    }
                    None => summary,
                };
                (LogOutcome::Applied, reason, open)
            }
            Decision::NoChange { reason } => {
                if learned_reference {
                    working.changed_payments.insert(payment_id);
                    working.payments.insert(payment_id, next_payment);
                }
                (LogOutcome::Ignored, reason, false)
            }
            Decision::Park { reason } => (LogOutcome::Parked, reason, true),
            Decision::Reject { reason } => (LogOutcome::Rejected, reason, true),
        };
        Ok(self.finish_in_batch(writes, &key, &draft, outcome, reason, open, now))
    }

    /// The single path's reference learning, aware of references that
    /// earlier events of this batch learned but have not written yet.
    async fn learn_reference_in_batch(
        &self,
        tx: &mut dyn StoreTx,
        event: &ProviderEvent,
        payment: &mut Payment,
        working: &mut Working,
    ) -> Result<bool, BillingError> {
        if let Some(reference) = &event.matches.reference {
            if working.learned_references.contains(&(event.provider.clone(), reference.clone())) {
                return Ok(false);
            }
        }
        let learned = self.learn_reference(tx, event, payment).await?;
        if let (true, Some(reference)) = (learned, &payment.reference) {
            working.learned_references.insert((event.provider.clone(), reference.clone()));
        }
        Ok(learned)
    }

    /// Queues the inbox state, the log row and the resolution of earlier rows
    /// that the single path's `finish` writes.
    #[allow(clippy::too_many_arguments)]
    fn finish_in_batch(
        &self,
        writes: &mut BatchWrites,
        key: &EventKey,
        draft: &LogDraft,
        outcome: LogOutcome,
        reason: String,
        open: bool,
        now: OffsetDateTime,
    ) -> EventReport {
        writes.inbox.push((key.clone(), inbox_state_after(outcome)));
        let entry = draft.entry(self.new_log_id(), outcome, reason.clone(), open, now);
        writes.resolutions.push((key.clone(), entry.id));
        writes.log.push(entry);
        report(key, outcome, draft, reason, open)
    }

    /// Takes credits for several module requests of one tenant in one
    /// transaction, in the order given. Returns one result per request, as
    /// [`BillingService::consume_credits`] would have returned it had the
    /// requests run one after the other: a repeated key replays, a request
    /// the balance cannot cover is refused, and neither affects the others.
    ///
    /// # Errors
    ///
    /// [`BillingError::InvalidInput`] when the requests name more than one
    /// tenant; store errors, after which nothing of the batch was stored.
    pub async fn consume_credits_batch(
        &self,
        requests: &[ConsumptionRequest],
    ) -> Result<Vec<Result<ConsumptionReceipt, BillingError>>, BillingError> {
        let Some(first) = requests.first() else {
            return Ok(Vec::new());
        };
        let tenant = first.tenant_id;
        if requests.iter().any(|request| request.tenant_id != tenant) {
            return Err(BillingError::InvalidInput { reason: "a batch of consumptions must name one tenant".into() });
        }
        let results = self.with_retries(|| self.consume_batch_once(tenant, requests)).await?;
        let applied = results
            .iter()
            .filter(|result| matches!(result, Ok(receipt) if receipt.transition == Transition::Applied))
            .count();
        tracing::info!(tenant_id = %tenant, requests = requests.len(), applied, "credits consumed in a batch");
        Ok(results)
    }

    async fn consume_batch_once(
        &self,
        tenant: TenantId,
        requests: &[ConsumptionRequest],
    ) -> Result<Vec<Result<ConsumptionReceipt, BillingError>>, BillingError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let mut account = tx.load_account(tenant).await?;
        let keys: Vec<IdempotencyKey> = requests.iter().map(|request| request.idempotency_key.clone()).collect();
        let mut known: HashMap<IdempotencyKey, IdempotencyRecord> = tx
            .idempotency_records(tenant, &keys)
            .await?
            .into_iter()
            .map(|record| (record.key.clone(), record))
            .collect();

        let mut writes = BatchWrites::default();
        let results: Vec<Result<ConsumptionReceipt, BillingError>> = requests
            .iter()
            .map(|request| self.consume_in_batch(request, &mut account, &mut known, &mut writes, now))
            .collect();
        tx.write_batch(&writes, now).await?;
        tx.commit().await?;
        Ok(results)
    }

    /// Decides one consumption of a batch on the running account and queues its writes.
    fn consume_in_batch(
        &self,
        request: &ConsumptionRequest,
        account: &mut AccountSnapshot,
        known: &mut HashMap<IdempotencyKey, IdempotencyRecord>,
        writes: &mut BatchWrites,
        now: OffsetDateTime,
    ) -> Result<ConsumptionReceipt, BillingError> {
        require_module(&request.module)?;
        let key = &request.idempotency_key;
        let fingerprint = request.fingerprint();
        if let KeyedDecision::Replay(result) = check_idempotency(known.get(key), key, &fingerprint)? {
            let IdempotentResult::Consumed { entry_id, balance_after } = result else {
                return Err(LedgerError::IdempotencyKeyReused { key: key.clone() }.into());
            };
            return Ok(ConsumptionReceipt {
                entry_id,
                amount: request.amount,
                balance_after,
                transition: Transition::AlreadyApplied,
            });
        }

        let amount = check_spend(account, request.amount)?;
        let entry = LedgerEntry {
            id: LedgerEntryId::from_random_bytes(self.random_16()),
            tenant_id: request.tenant_id,
            amount: -amount,
            kind: EntryKind::Consumption { module: request.module.clone(), idempotency_key: key.clone() },
            created_at: now,
        };
        account.balance -= amount;
        let balance_after = account.balance;
        let record = IdempotencyRecord {
            tenant_id: request.tenant_id,
            key: key.clone(),
            fingerprint,
            result: IdempotentResult::Consumed { entry_id: entry.id, balance_after },
            created_at: now,
        };
        known.insert(key.clone(), record.clone());
        writes.idempotency.push(record);
        let entry_id = entry.id;
        writes.ledger.push(entry);
        Ok(ConsumptionReceipt { entry_id, amount: request.amount, balance_after, transition: Transition::Applied })
    }
}

/// Where an event's payment was found, or the outcome to log when it was not.
type Located = Result<Payment, (LogOutcome, String)>;

/// Locks the invoices and payments the located events touch, and the
/// accounts of those that can move credits, kind by kind and each sorted by
/// id, and reads the credits booked for their invoices.
async fn lock_batch(
    tx: &mut dyn StoreTx,
    events: &[&ProviderEvent],
    located: &[Option<Located>],
) -> Result<Working, BillingError> {
    let decided: Vec<(&ProviderEvent, &Payment)> = events
        .iter()
        .zip(located)
        .filter_map(|(event, located)| match located {
            Some(Ok(payment)) if check_claims(event, payment).is_ok() => Some((*event, payment)),
            _ => None,
        })
        .collect();
    let invoice_ids = sorted_unique(decided.iter().map(|(_, payment)| payment.invoice_id));
    let payment_ids = sorted_unique(decided.iter().map(|(_, payment)| payment.id));
    let crediting: Vec<&Payment> =
        decided.iter().filter(|(event, _)| touches_credits(&event.kind)).map(|(_, payment)| *payment).collect();

    let invoices: HashMap<InvoiceId, Invoice> =
        tx.load_invoices(&invoice_ids).await?.into_iter().map(|invoice| (invoice.id, invoice)).collect();
    let payments: HashMap<PaymentId, Payment> =
        tx.load_payments(&payment_ids).await?.into_iter().map(|payment| (payment.id, payment)).collect();
    let tenants = sorted_unique(crediting.iter().map(|payment| payment.tenant_id));
    let accounts = tx.load_accounts(&tenants).await?.into_iter().map(|account| (account.tenant_id, account)).collect();
    let credit_invoices = sorted_unique(crediting.iter().map(|payment| payment.invoice_id));
    let credits = tx.invoice_credits_of(&credit_invoices).await?;
    Ok(Working {
        invoices,
        payments,
        accounts,
        credits: credit_invoices.into_iter().zip(credits).collect(),
        changed_invoices: HashSet::new(),
        changed_payments: HashSet::new(),
        learned_references: HashSet::new(),
    })
}

fn sorted_unique<T: Ord>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut items: Vec<T> = items.collect();
    items.sort_unstable();
    items.dedup();
    items
}

/// Moves the working account and the invoice's booked credits by `entry`,
/// so later events of the batch decide on what this one wrote.
fn book(working: &mut Working, entry: &LedgerEntry, invoice: InvoiceId) {
    if let Some(account) = working.accounts.get_mut(&entry.tenant_id) {
        account.balance = account.balance.saturating_add(entry.amount);
    }
    let credits = working.credits.entry(invoice).or_default();
    match entry.kind {
        EntryKind::Grant { .. } => credits.granted = credits.granted.saturating_add(entry.amount.unsigned_abs()),
        EntryKind::Reversal { .. } => credits.reversed = credits.reversed.saturating_add(entry.amount.unsigned_abs()),
        EntryKind::Consumption { .. } | EntryKind::Capture { .. } | EntryKind::Adjustment { .. } => {}
    }
}

/// The changed rows, sorted by id so that writes take locks in one order.
fn sorted_changes<K: Ord + Copy + std::hash::Hash, V: Clone>(rows: &HashMap<K, V>, changed: &HashSet<K>) -> Vec<V> {
    let mut keys: Vec<K> = changed.iter().copied().collect();
    keys.sort_unstable();
    keys.iter().filter_map(|key| rows.get(key).cloned()).collect()
}
