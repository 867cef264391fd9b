//! The decision for one provider event: what it does to a payment, its
//! invoice and the tenant's credits.
//!
//! [`decide`] is pure. The service calls it inside a store transaction with
//! the rows it locked, then writes exactly what the [`Decision`] lists. Both
//! stores therefore share one set of rules:
//!
//! - the amount and currency of a success must match the payment and invoice
//!   otherwise the event is rejected for staff;
//! - state only moves forward: a late "pending" or "expired" is ignored, a
//!   refund or dispute before its success is parked;
//! - one succeeded payment settles an invoice; a second is an overpayment for
//!   staff and grants nothing;
//! - credits are granted when the invoice becomes paid here, never earlier.

use time::OffsetDateTime;

use crate::event::{EventKind, ProviderEvent};
use crate::invoice::{Invoice, InvoiceError};
use crate::ledger::{reversal_due, AccountSnapshot, EntryKind, ReversalReason};
use crate::money::Money;
use crate::payment::{Payment, PaymentMove, PaymentStatus};
use crate::Transition;

/// Credits already booked for an invoice, read under the account lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InvoiceCredits {
    pub granted: u64,
    pub reversed: u64,
}

/// A ledger entry for the service to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEntry {
    pub amount: i64,
    pub kind: EntryKind,
}

/// The writes one event calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Save the changed payment and invoice and append `entries`.
    Apply {
        summary: String,
        entries: Vec<PlannedEntry>,
        /// Set when staff must act although the event applied (an overpayment,
        /// credits that could not be reversed because they were spent).
        attention: Option<String>,
    },
    /// Nothing changes; logged as ignored.
    NoChange { reason: String },
    /// It cannot apply yet; keep it for retry after a fetch.
    Park { reason: String },
    /// It contradicts what is on record; keep it for staff.
    Reject { reason: String },
}

/// Decides what `event` does to `payment` and `invoice`, mutating the copies.
///
/// The caller must discard the copies unless the result is [`Decision::Apply`].
pub fn decide(
    event: &ProviderEvent,
    payment: &mut Payment,
    invoice: &mut Invoice,
    account: &AccountSnapshot,
    credits: InvoiceCredits,
    now: OffsetDateTime,
) -> Decision {
    match &event.kind {
        EventKind::Succeeded => decide_success(event, payment, invoice, now),
        EventKind::Pending => decide_move(payment, PaymentStatus::Pending, now),
        EventKind::Failed => decide_move(payment, PaymentStatus::Failed, now),
        EventKind::Expired => decide_move(payment, PaymentStatus::Expired, now),
        EventKind::Canceled => decide_move(payment, PaymentStatus::Canceled, now),
        EventKind::Refunded { total_refunded } => {
            decide_refund(*total_refunded, payment, invoice, account, credits, now)
        }
        EventKind::DisputeOpened => decide_dispute_opened(payment, invoice, now),
        EventKind::DisputeWon => decide_dispute_closed(true, payment, invoice, account, credits, now),
        EventKind::DisputeLost => decide_dispute_closed(false, payment, invoice, account, credits, now),
        EventKind::Ignored { provider_type } => {
            Decision::NoChange { reason: format!("event type {provider_type} is not handled") }
        }
    }
}

fn decide_success(
    event: &ProviderEvent,
    payment: &mut Payment,
    invoice: &mut Invoice,
    now: OffsetDateTime,
) -> Decision {
    let Some(amount) = event.amount else {
        return Decision::Reject { reason: "success reported without an amount; fetch the provider's state".into() };
    };
    if amount != payment.amount {
        return Decision::Reject {
            reason: format!("success reports {amount} but payment {} expects {}", payment.id, payment.amount),
        };
    }
    match invoice.total() {
        Ok(total) if total == amount => {}
        Ok(total) => {
            return Decision::Reject {
                reason: format!("success reports {amount} but invoice {} totals {total}", invoice.number),
            }
        }
        Err(error) => return Decision::Reject { reason: format!("invoice total cannot be computed: {error}") },
    }

    let payment_transition = payment.succeed(now);
    let invoice_result = invoice.mark_paid(payment.id, now);
    match (payment_transition, invoice_result) {
        (Transition::AlreadyApplied, Ok(Transition::AlreadyApplied)) => {
            Decision::NoChange { reason: format!("payment {} already succeeded", payment.id) }
        }
        (_, Ok(Transition::Applied)) => {
            let promised = invoice.credits_promised();
            let mut entries = Vec::new();
            if promised > 0 {
                entries.push(PlannedEntry {
                    amount: i64::try_from(promised).unwrap_or(i64::MAX),
                    kind: EntryKind::Grant { invoice_id: invoice.id, payment_id: payment.id },
                });
            }
            Decision::Apply {
                summary: format!("payment succeeded; invoice {} paid; {promised} credits granted", invoice.number),
                entries,
                attention: None,
            }
        }
        (_, Ok(Transition::AlreadyApplied)) => Decision::Apply {
            summary: format!("payment {} succeeded; invoice already paid by it", payment.id),
            entries: Vec::new(),
            attention: None,
        },
        (transition, Err(InvoiceError::AlreadySettled { settled_by, .. })) => {
            if transition == Transition::AlreadyApplied && payment.overpayment {
                return Decision::NoChange { reason: format!("overpayment {} already recorded", payment.id) };
            }
            payment.overpayment = true;
            Decision::Apply {
                summary: format!("payment {} succeeded for an invoice already paid", payment.id),
                entries: Vec::new(),
                attention: Some(format!(
                    "overpayment: invoice {} was settled by payment {settled_by}; refund payment {}",
                    invoice.number, payment.id
                )),
            }
        }
        (_, Err(error)) => {
            payment.overpayment = true;
            Decision::Apply {
                summary: format!("payment {} succeeded but the invoice cannot be marked paid", payment.id),
                entries: Vec::new(),
                attention: Some(format!("{error}; refund payment {} or reopen the matter", payment.id)),
            }
        }
    }
}

fn decide_move(payment: &mut Payment, to: PaymentStatus, now: OffsetDateTime) -> Decision {
    match payment.advance(to, now) {
        Ok(PaymentMove::Moved(Transition::Applied)) => {
            Decision::Apply { summary: format!("payment {} is {to}", payment.id), entries: Vec::new(), attention: None }
        }
        Ok(PaymentMove::Moved(Transition::AlreadyApplied)) => {
            Decision::NoChange { reason: format!("payment {} is already {to}", payment.id) }
        }
        Ok(PaymentMove::Stale { current }) => {
            Decision::NoChange { reason: format!("late {to} report for payment {} that is {current}", payment.id) }
        }
        Err(error) => Decision::Reject { reason: error.to_string() },
    }
}

fn decide_refund(
    total_refunded: Money,
    payment: &mut Payment,
    invoice: &mut Invoice,
    account: &AccountSnapshot,
    credits: InvoiceCredits,
    now: OffsetDateTime,
) -> Decision {
    if !payment.status().has_succeeded() {
        return Decision::Park {
            reason: format!(
                "refund reported for payment {} that is {}; fetch the provider's state",
                payment.id,
                payment.status()
            ),
        };
    }
    let newly = match payment.record_refund(total_refunded, now) {
        Ok(newly) => newly,
        Err(error) => return Decision::Reject { reason: error.to_string() },
    };
    if newly.is_zero() {
        return Decision::NoChange {
            reason: format!("refund total {total_refunded} already recorded for payment {}", payment.id),
        };
    }
    let summary = format!("payment {} refunded {newly} (total {total_refunded})", payment.id);
    if invoice.settled_by() != Some(payment.id) {
        return Decision::Apply { summary, entries: Vec::new(), attention: None };
    }
    let fully = payment.status() == PaymentStatus::Refunded;
    if let Err(error) = invoice.record_refund(fully) {
        return Decision::Reject { reason: error.to_string() };
    }
    let (entries, attention) = plan_reversal(payment, invoice, account, credits, ReversalReason::Refund);
    Decision::Apply { summary, entries, attention }
}

fn decide_dispute_opened(payment: &mut Payment, invoice: &mut Invoice, now: OffsetDateTime) -> Decision {
    if !payment.status().has_succeeded() {
        return Decision::Park {
            reason: format!(
                "dispute reported for payment {} that is {}; fetch the provider's state",
                payment.id,
                payment.status()
            ),
        };
    }
    match payment.open_dispute(now) {
        Ok(Transition::AlreadyApplied) => {
            let state = if payment.status() == PaymentStatus::Disputed { "open" } else { "closed" };
            return Decision::NoChange { reason: format!("dispute already {state} for payment {}", payment.id) };
        }
        Ok(Transition::Applied) => {}
        Err(error) => return Decision::Reject { reason: error.to_string() },
    }
    if invoice.settled_by() == Some(payment.id) {
        if let Err(error) = invoice.open_dispute() {
            return Decision::Reject { reason: error.to_string() };
        }
    }
    Decision::Apply {
        summary: format!("dispute opened for payment {}", payment.id),
        entries: Vec::new(),
        attention: Some(format!("respond to the dispute on payment {} before the provider's deadline", payment.id)),
    }
}

fn decide_dispute_closed(
    won: bool,
    payment: &mut Payment,
    invoice: &mut Invoice,
    account: &AccountSnapshot,
    credits: InvoiceCredits,
    now: OffsetDateTime,
) -> Decision {
    if !payment.status().has_succeeded() {
        return Decision::Park {
            reason: format!(
                "dispute result for payment {} that is {}; fetch the provider's state",
                payment.id,
                payment.status()
            ),
        };
    }
    if payment.status() == PaymentStatus::Succeeded || payment.status() == PaymentStatus::PartiallyRefunded {
        return Decision::Park {
            reason: format!(
                "dispute closed for payment {} before it was opened; wait for the opening event",
                payment.id
            ),
        };
    }
    match payment.close_dispute(won, now) {
        Ok(Transition::AlreadyApplied) => {
            return Decision::NoChange { reason: format!("dispute already closed for payment {}", payment.id) }
        }
        Ok(Transition::Applied) => {}
        Err(error) => return Decision::Reject { reason: error.to_string() },
    }
    let outcome = if won { "won" } else { "lost" };
    let summary = format!("dispute {outcome} for payment {}", payment.id);
    if invoice.settled_by() != Some(payment.id) {
        return Decision::Apply { summary, entries: Vec::new(), attention: None };
    }
    if let Err(error) = invoice.close_dispute(won) {
        return Decision::Reject { reason: error.to_string() };
    }
    if won {
        // A won dispute returns the invoice to where it stood before, so money
        // refunded ahead of the dispute keeps it partially refunded.
        if !payment.refunded().is_zero() {
            if let Err(error) = invoice.record_refund(false) {
                return Decision::Reject { reason: error.to_string() };
            }
        }
        return Decision::Apply { summary, entries: Vec::new(), attention: None };
    }
    let (entries, attention) = plan_reversal(payment, invoice, account, credits, ReversalReason::DisputeLost);
    Decision::Apply { summary, entries, attention }
}

/// Plans the credits to take back, capped so that the account's available
/// balance stays within its overdraft policy. The part that cannot be taken
/// (already spent) is reported for staff instead of driving the balance negative.
fn plan_reversal(
    payment: &Payment,
    invoice: &Invoice,
    account: &AccountSnapshot,
    credits: InvoiceCredits,
    reason: ReversalReason,
) -> (Vec<PlannedEntry>, Option<String>) {
    let paid_minor = payment.amount.to_minor().unwrap_or(0);
    let refunded_minor = match reason {
        ReversalReason::DisputeLost => paid_minor,
        ReversalReason::Refund => payment.refunded().to_minor().unwrap_or(0),
    };
    let due = reversal_due(credits.granted, credits.reversed, refunded_minor, paid_minor);
    if due == 0 {
        return (Vec::new(), None);
    }
    let takeable = u64::try_from(account.spendable().max(0)).unwrap_or(0);
    let taken = due.min(takeable);
    let mut entries = Vec::new();
    if taken > 0 {
        entries.push(PlannedEntry {
            amount: -i64::try_from(taken).unwrap_or(i64::MAX),
            kind: EntryKind::Reversal { invoice_id: invoice.id, payment_id: payment.id, reason },
        });
    }
    let attention = (taken < due).then(|| {
        format!(
            "{} of {due} credits for invoice {} could not be reversed because they were already used",
            due - taken,
            invoice.number
        )
    });
    (entries, attention)
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::event::PaymentMatch;
    use crate::ids::{CompanyId, EventId, InvoiceId, PaymentId, ProviderName, TenantId};
    use crate::invoice::{InvoiceRow, InvoiceStatus};
    use crate::ledger::OverdraftPolicy;
    use crate::money::Currency;
    use crate::payment::Channel;
    use crate::token::TokenHash;

    fn at() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    fn eur(amount: rust_decimal::Decimal) -> Money {
        Money::new(amount, Currency::EUR).unwrap()
    }

    fn open_invoice(credits: u64) -> Invoice {
        let row = InvoiceRow {
            description: "Credits".into(),
            quantity: dec!(1),
            unit_price: eur(dec!(20)),
            project: None,
            content: None,
            credits: Some(credits),
        };
        let mut invoice = Invoice::draft(
            InvoiceId::from_random_bytes([1; 16]),
            TenantId::from_random_bytes([2; 16]),
            CompanyId::from_random_bytes([3; 16]),
            "2026-0001".into(),
            Currency::EUR,
            vec![row],
            at(),
        )
        .unwrap();
        invoice.issue(TokenHash::of("t"), at()).unwrap();
        invoice
    }

    fn payment(invoice: &Invoice, byte: u8) -> Payment {
        Payment::new(
            PaymentId::from_random_bytes([byte; 16]),
            invoice.tenant_id,
            invoice.id,
            ProviderName::new("p").unwrap(),
            Channel::HostedPage,
            eur(dec!(20)),
            at(),
        )
    }

    fn event(kind: EventKind, amount: Option<Money>) -> ProviderEvent {
        ProviderEvent {
            provider: ProviderName::new("p").unwrap(),
            event_id: EventId::new("e").unwrap(),
            occurred_at: at(),
            matches: PaymentMatch::default(),
            kind,
            amount,
            provider_type: "test".into(),
        }
    }

    fn account(balance: i64) -> AccountSnapshot {
        AccountSnapshot {
            tenant_id: TenantId::from_random_bytes([2; 16]),
            balance,
            held: 0,
            policy: OverdraftPolicy::default(),
        }
    }

    fn granted(credits: u64) -> InvoiceCredits {
        InvoiceCredits { granted: credits, reversed: 0 }
    }

    #[test]
    fn success_grants_promised_credits() {
        let mut invoice = open_invoice(100);
        let mut payment = payment(&invoice, 1);
        let decision = decide(
            &event(EventKind::Succeeded, Some(eur(dec!(20)))),
            &mut payment,
            &mut invoice,
            &account(0),
            granted(0),
            at(),
        );
        let Decision::Apply { entries, attention, .. } = decision else { panic!("expected Apply, got {decision:?}") };
        assert_eq!(
            entries,
            vec![PlannedEntry {
                amount: 100,
                kind: EntryKind::Grant { invoice_id: invoice.id, payment_id: payment.id }
            }]
        );
        assert_eq!(attention, None);
        assert_eq!(invoice.status(), InvoiceStatus::Paid);
    }

    #[test]
    fn success_without_amount_is_rejected() {
        let mut invoice = open_invoice(100);
        let mut payment = payment(&invoice, 1);
        let decision =
            decide(&event(EventKind::Succeeded, None), &mut payment, &mut invoice, &account(0), granted(0), at());
        assert!(matches!(decision, Decision::Reject { .. }));
    }

    #[test]
    fn success_with_other_amount_is_rejected() {
        let mut invoice = open_invoice(100);
        let mut payment = payment(&invoice, 1);
        let decision = decide(
            &event(EventKind::Succeeded, Some(eur(dec!(19.99)))),
            &mut payment,
            &mut invoice,
            &account(0),
            granted(0),
            at(),
        );
        assert!(matches!(decision, Decision::Reject { ref reason } if reason.contains("19.99")), "{decision:?}");
        assert_eq!(invoice.status(), InvoiceStatus::Open);
    }

    #[test]
    fn second_success_needs_staff_and_grants_nothing() {
        let mut invoice = open_invoice(100);
        let mut first = payment(&invoice, 1);
        let mut second = payment(&invoice, 2);
        let paid = event(EventKind::Succeeded, Some(eur(dec!(20))));
        decide(&paid, &mut first, &mut invoice, &account(0), granted(0), at());
        let decision = decide(&paid, &mut second, &mut invoice, &account(100), granted(100), at());
        let Decision::Apply { entries, attention, .. } = decision else { panic!("expected Apply, got {decision:?}") };
        assert!(entries.is_empty());
        assert!(attention.is_some_and(|text| text.contains("overpayment")));
        assert!(second.overpayment);
    }

    #[test]
    fn refund_before_success_is_parked() {
        let mut invoice = open_invoice(100);
        let mut payment = payment(&invoice, 1);
        let refund = event(EventKind::Refunded { total_refunded: eur(dec!(20)) }, None);
        let decision = decide(&refund, &mut payment, &mut invoice, &account(0), granted(0), at());
        assert!(matches!(decision, Decision::Park { .. }));
    }

    #[test]
    fn dispute_closed_before_opened_is_parked() {
        let mut invoice = open_invoice(100);
        let mut payment = payment(&invoice, 1);
        decide(
            &event(EventKind::Succeeded, Some(eur(dec!(20)))),
            &mut payment,
            &mut invoice,
            &account(0),
            granted(0),
            at(),
        );
        let decision =
            decide(&event(EventKind::DisputeLost, None), &mut payment, &mut invoice, &account(100), granted(100), at());
        assert!(matches!(decision, Decision::Park { .. }));
    }

    #[test]
    fn dispute_opening_after_its_result_is_no_change() {
        let mut invoice = open_invoice(100);
        let mut payment = payment(&invoice, 1);
        let paid = event(EventKind::Succeeded, Some(eur(dec!(20))));
        decide(&paid, &mut payment, &mut invoice, &account(0), granted(0), at());
        let opened = event(EventKind::DisputeOpened, None);
        decide(&opened, &mut payment, &mut invoice, &account(100), granted(100), at());
        decide(&event(EventKind::DisputeWon, None), &mut payment, &mut invoice, &account(100), granted(100), at());

        let decision = decide(&opened, &mut payment, &mut invoice, &account(100), granted(100), at());
        assert!(
            matches!(&decision, Decision::NoChange { reason } if reason.contains("already closed")),
            "{decision:?}"
        );
        assert_eq!(payment.status(), PaymentStatus::DisputeWon);
        assert_eq!(invoice.status(), InvoiceStatus::Paid);
    }

    #[test]
    fn reversal_is_capped_at_what_is_left() {
        let mut invoice = open_invoice(100);
        let mut payment = payment(&invoice, 1);
        decide(
            &event(EventKind::Succeeded, Some(eur(dec!(20)))),
            &mut payment,
            &mut invoice,
            &account(0),
            granted(0),
            at(),
        );
        let refund = event(EventKind::Refunded { total_refunded: eur(dec!(20)) }, None);
        let decision = decide(&refund, &mut payment, &mut invoice, &account(30), granted(100), at());
        let Decision::Apply { entries, attention, .. } = decision else { panic!("expected Apply, got {decision:?}") };
        assert_eq!(entries[0].amount, -30);
        assert!(attention.is_some_and(|text| text.contains("70 of 100")));
    }

    #[test]
    fn late_pending_changes_nothing() {
        let mut invoice = open_invoice(100);
        let mut payment = payment(&invoice, 1);
        decide(
            &event(EventKind::Succeeded, Some(eur(dec!(20)))),
            &mut payment,
            &mut invoice,
            &account(0),
            granted(0),
            at(),
        );
        let decision =
            decide(&event(EventKind::Pending, None), &mut payment, &mut invoice, &account(100), granted(100), at());
        assert!(
            matches!(decision, Decision::NoChange { ref reason } if reason.contains("late pending")),
            "{decision:?}"
        );
    }

    #[test]
    fn unhandled_type_changes_nothing() {
        let mut invoice = open_invoice(100);
        let mut payment = payment(&invoice, 1);
        let ignored = event(EventKind::Ignored { provider_type: "customer.created".into() }, None);
        let decision = decide(&ignored, &mut payment, &mut invoice, &account(0), granted(0), at());
        assert!(matches!(decision, Decision::NoChange { .. }));
    }
}
