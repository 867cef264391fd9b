//! Invoices and their state machine.
//!
//! An invoice moves `Draft → Open → Paid`, `Draft | Open → Void`,
//! `Paid → PartiallyRefunded | Refunded`, `Paid → Disputed → Paid | Refunded`.
//! The total is derived from the rows and never stored beside them. This
//! module decides transitions only: it does no I/O and reads no clock, so
//! every timestamp comes in as a parameter.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{CompanyId, ContentId, InvoiceId, PaymentId, ProjectId, TenantId, UserId};
use crate::money::{Currency, Money, MoneyError};
use crate::token::TokenHash;
use crate::Transition;

/// Where an invoice is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Being written; invisible to the customer and not payable.
    Draft,
    /// Issued and payable through its public link.
    Open,
    /// Settled by exactly one succeeded payment.
    Paid,
    /// Paid, then part of the money went back.
    PartiallyRefunded,
    /// Paid, then all of the money went back (by refund or a lost dispute).
    Refunded,
    /// Paid, and the customer's bank is contesting the charge.
    Disputed,
    /// Withdrawn before payment.
    Void,
}

impl InvoiceStatus {
    /// Whether the public link may start a payment in this status.
    pub fn is_payable(self) -> bool {
        self == InvoiceStatus::Open
    }

    /// Whether a payment has settled this invoice at some point. The public
    /// link answers "gone" in these statuses and in `Void`.
    pub fn has_been_paid(self) -> bool {
        matches!(
            self,
            InvoiceStatus::Paid | InvoiceStatus::PartiallyRefunded | InvoiceStatus::Refunded | InvoiceStatus::Disputed
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "draft",
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::PartiallyRefunded => "partially_refunded",
            InvoiceStatus::Refunded => "refunded",
            InvoiceStatus::Disputed => "disputed",
            InvoiceStatus::Void => "void",
        }
    }
}

impl fmt::Display for InvoiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The change a caller attempted, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceChange {
    Issue,
    Void,
    MarkPaid,
    Refund,
    OpenDispute,
    WinDispute,
    LoseDispute,
    EditRows,
}

impl fmt::Display for InvoiceChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            InvoiceChange::Issue => "issue",
            InvoiceChange::Void => "void",
            InvoiceChange::MarkPaid => "mark paid",
            InvoiceChange::Refund => "refund",
            InvoiceChange::OpenDispute => "open a dispute",
            InvoiceChange::WinDispute => "win a dispute",
            InvoiceChange::LoseDispute => "lose a dispute",
            InvoiceChange::EditRows => "edit rows",
        };
        f.write_str(name)
    }
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRow {
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Money,
    /// The project this row bills, shown as a link in the workspace.
    pub project: Option<ProjectId>,
    /// Content the customer may open once the invoice is paid.
    pub content: Option<ContentId>,
    /// Credits granted to the tenant's account once the invoice is paid.
    pub credits: Option<u64>,
}

impl InvoiceRow {
    /// Returns what the row sells, read from what it grants: credits first, then
    /// content, then a project. A row that grants credits and also links a
    /// project is a credits row.
    pub fn kind(&self) -> RowKind {
        if self.credits.is_some() {
            RowKind::Credits
        } else if self.content.is_some() {
            RowKind::Content
        } else if self.project.is_some() {
            RowKind::ProjectWork
        } else {
            RowKind::Other
        }
    }

    /// Quantity times unit price, checked against the currency's minor unit.
    ///
    /// # Errors
    ///
    /// [`MoneyError`] when the product has fraction digits the currency lacks or overflows.
    pub fn line_total(&self) -> Result<Money, MoneyError> {
        self.unit_price.checked_mul(self.quantity)
    }
}

/// The kind of thing an invoice row sells. A provider adapter may map each kind to an
/// entry of the integrator's own catalogue (a Stripe Price or Product), so
/// hosted pages and provider reports group sales without seeing row text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowKind {
    /// Grants credits for metered modules.
    Credits,
    /// Unlocks purchased content.
    Content,
    /// Bills work on a project.
    ProjectWork,
    /// Anything else: fees, adjustments, discounts.
    Other,
}

impl fmt::Display for RowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            RowKind::Credits => "credits",
            RowKind::Content => "content",
            RowKind::ProjectWork => "project work",
            RowKind::Other => "other",
        };
        f.write_str(name)
    }
}

/// A receipt attached after payment (a PDF link or a provider receipt URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub label: String,
    pub url: String,
    pub issued_at: OffsetDateTime,
}

/// A note only staff may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternalNote {
    pub author: UserId,
    pub text: String,
    pub written_at: OffsetDateTime,
}

/// An invoice and everything the workspace shows about it.
///
/// Fields that a state transition guards are private; read them through getters
/// and change them through the transition methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: InvoiceId,
    pub tenant_id: TenantId,
    pub company_id: CompanyId,
    /// Human-facing number such as `2026-0012`; never used as a secret.
    pub number: String,
    pub currency: Currency,
    rows: Vec<InvoiceRow>,
    pub receipts: Vec<Receipt>,
    pub internal_notes: Vec<InternalNote>,
    status: InvoiceStatus,
    /// SHA-256 of the current public link token; `None` until issued.
    public_token_hash: Option<TokenHash>,
    /// The payment that settled the invoice, once one has.
    settled_by: Option<PaymentId>,
    pub created_at: OffsetDateTime,
    pub issued_at: Option<OffsetDateTime>,
    pub paid_at: Option<OffsetDateTime>,
    pub voided_at: Option<OffsetDateTime>,
    /// Optimistic concurrency version, bumped by the store on every write.
    pub version: u64,
}

impl Invoice {
    /// Creates a draft.
    ///
    /// # Errors
    ///
    /// [`InvoiceError::Row`] when a row's currency differs from the invoice's,
    /// its quantity is not positive, or its total does not fit the minor unit;
    /// [`InvoiceError::NegativeTotal`] when the rows sum below zero;
    /// [`InvoiceError::CreditsTooLarge`] when the rows promise more credits than the ledger holds.
    pub fn draft(
        id: InvoiceId,
        tenant_id: TenantId,
        company_id: CompanyId,
        number: String,
        currency: Currency,
        rows: Vec<InvoiceRow>,
        created_at: OffsetDateTime,
    ) -> Result<Invoice, InvoiceError> {
        let invoice = Invoice {
            id,
            tenant_id,
            company_id,
            number,
            currency,
            rows,
            receipts: Vec::new(),
            internal_notes: Vec::new(),
            status: InvoiceStatus::Draft,
            public_token_hash: None,
            settled_by: None,
            created_at,
            issued_at: None,
            paid_at: None,
            voided_at: None,
            version: 0,
        };
        invoice.check_rows()?;
        Ok(invoice)
    }

    pub fn status(&self) -> InvoiceStatus {
        self.status
    }

    pub fn rows(&self) -> &[InvoiceRow] {
        &self.rows
    }

    pub fn public_token_hash(&self) -> Option<&TokenHash> {
        self.public_token_hash.as_ref()
    }

    pub fn settled_by(&self) -> Option<PaymentId> {
        self.settled_by
    }

    /// Sum of the rows, in the invoice currency.
    ///
    /// # Errors
    ///
    /// [`InvoiceError::Row`] for a row in another currency, with a non-positive
    /// quantity or a total that does not fit; [`InvoiceError::NegativeTotal`].
    pub fn total(&self) -> Result<Money, InvoiceError> {
        let mut total = Money::zero(self.currency);
        for (index, row) in self.rows.iter().enumerate() {
            if row.quantity <= Decimal::ZERO {
                return Err(InvoiceError::Row { index, reason: RowProblem::QuantityNotPositive(row.quantity) });
            }
            if row.unit_price.currency() != self.currency {
                return Err(InvoiceError::Row {
                    index,
                    reason: RowProblem::Currency { row: row.unit_price.currency(), invoice: self.currency },
                });
            }
            let line =
                row.line_total().map_err(|error| InvoiceError::Row { index, reason: RowProblem::Amount(error) })?;
            total = total
                .checked_add(line)
                .map_err(|error| InvoiceError::Row { index, reason: RowProblem::Amount(error) })?;
        }
        if total.is_negative() {
            return Err(InvoiceError::NegativeTotal { total });
        }
        Ok(total)
    }

    /// Checks what [`Invoice::total`] checks, and that the credits the rows
    /// promise fit the ledger, whose balance is a signed 64-bit count.
    fn check_rows(&self) -> Result<(), InvoiceError> {
        self.total()?;
        let promised: u128 = self.rows.iter().filter_map(|row| row.credits).map(u128::from).sum();
        let max = i64::MAX.unsigned_abs();
        if promised > u128::from(max) {
            return Err(InvoiceError::CreditsTooLarge { promised, max });
        }
        Ok(())
    }

    /// Credits the rows promise once the invoice is paid.
    pub fn credits_promised(&self) -> u64 {
        self.rows.iter().filter_map(|row| row.credits).fold(0u64, u64::saturating_add)
    }

    /// Replaces the rows of a draft.
    ///
    /// # Errors
    ///
    /// [`InvoiceError::InvalidTransition`] unless the invoice is a draft, the
    /// row errors of [`Invoice::total`] and [`InvoiceError::CreditsTooLarge`].
    pub fn replace_rows(&mut self, rows: Vec<InvoiceRow>) -> Result<(), InvoiceError> {
        self.require(InvoiceChange::EditRows, &[InvoiceStatus::Draft])?;
        let previous = std::mem::replace(&mut self.rows, rows);
        if let Err(error) = self.check_rows() {
            self.rows = previous;
            return Err(error);
        }
        Ok(())
    }

    /// Opens a draft for payment and stores the hash of its first public link.
    ///
    /// # Errors
    ///
    /// [`InvoiceError::InvalidTransition`] from any status but `Draft` and `Open`.
    pub fn issue(&mut self, token_hash: TokenHash, now: OffsetDateTime) -> Result<Transition, InvoiceError> {
        if self.status == InvoiceStatus::Open {
            return Ok(Transition::AlreadyApplied);
        }
        self.require(InvoiceChange::Issue, &[InvoiceStatus::Draft])?;
        self.total()?;
        self.status = InvoiceStatus::Open;
        self.public_token_hash = Some(token_hash);
        self.issued_at = Some(now);
        Ok(Transition::Applied)
    }

    /// Retires the current public link and stores the hash of a new one.
    ///
    /// # Errors
    ///
    /// [`InvoiceError::InvalidTransition`] unless the invoice is `Open`: a paid or
    /// void invoice keeps answering "gone".
    pub fn replace_public_token(&mut self, token_hash: TokenHash) -> Result<(), InvoiceError> {
        self.require(InvoiceChange::Issue, &[InvoiceStatus::Open])?;
        self.public_token_hash = Some(token_hash);
        Ok(())
    }

    /// Withdraws an unpaid invoice.
    ///
    /// # Errors
    ///
    /// [`InvoiceError::InvalidTransition`] once a payment has settled it.
    pub fn void(&mut self, now: OffsetDateTime) -> Result<Transition, InvoiceError> {
        if self.status == InvoiceStatus::Void {
            return Ok(Transition::AlreadyApplied);
        }
        self.require(InvoiceChange::Void, &[InvoiceStatus::Draft, InvoiceStatus::Open])?;
        self.status = InvoiceStatus::Void;
        self.voided_at = Some(now);
        Ok(Transition::Applied)
    }

    /// Settles the invoice with one succeeded payment.
    ///
    /// # Errors
    ///
    /// [`InvoiceError::AlreadySettled`] when another payment settled it first
    /// (an overpayment for staff), [`InvoiceError::InvalidTransition`] when it is
    /// not open.
    pub fn mark_paid(&mut self, payment: PaymentId, now: OffsetDateTime) -> Result<Transition, InvoiceError> {
        if let Some(settled_by) = self.settled_by {
            if settled_by == payment {
                return Ok(Transition::AlreadyApplied);
            }
            return Err(InvoiceError::AlreadySettled { invoice: self.id, settled_by, attempted: payment });
        }
        self.require(InvoiceChange::MarkPaid, &[InvoiceStatus::Open])?;
        self.status = InvoiceStatus::Paid;
        self.settled_by = Some(payment);
        self.paid_at = Some(now);
        Ok(Transition::Applied)
    }

    /// Records the cumulative refunded amount of the settling payment.
    ///
    /// # Errors
    ///
    /// [`InvoiceError::InvalidTransition`] before payment, while disputed or after void.
    pub fn record_refund(&mut self, fully_refunded: bool) -> Result<Transition, InvoiceError> {
        let target = if fully_refunded { InvoiceStatus::Refunded } else { InvoiceStatus::PartiallyRefunded };
        if self.status == target {
            return Ok(Transition::AlreadyApplied);
        }
        self.require(InvoiceChange::Refund, &[InvoiceStatus::Paid, InvoiceStatus::PartiallyRefunded])?;
        self.status = target;
        Ok(Transition::Applied)
    }

    /// Marks the settling payment as contested by the customer's bank.
    ///
    /// # Errors
    ///
    /// [`InvoiceError::InvalidTransition`] unless the invoice is paid.
    pub fn open_dispute(&mut self) -> Result<Transition, InvoiceError> {
        if self.status == InvoiceStatus::Disputed {
            return Ok(Transition::AlreadyApplied);
        }
        self.require(InvoiceChange::OpenDispute, &[InvoiceStatus::Paid, InvoiceStatus::PartiallyRefunded])?;
        self.status = InvoiceStatus::Disputed;
        Ok(Transition::Applied)
    }

    /// Closes a dispute. Won returns to `Paid`; lost ends in `Refunded`.
    ///
    /// # Errors
    ///
    /// [`InvoiceError::InvalidTransition`] unless a dispute is open.
    pub fn close_dispute(&mut self, won: bool) -> Result<Transition, InvoiceError> {
        let change = if won { InvoiceChange::WinDispute } else { InvoiceChange::LoseDispute };
        self.require(change, &[InvoiceStatus::Disputed])?;
        self.status = if won { InvoiceStatus::Paid } else { InvoiceStatus::Refunded };
        Ok(Transition::Applied)
    }

    fn require(&self, change: InvoiceChange, allowed: &[InvoiceStatus]) -> Result<(), InvoiceError> {
        if !allowed.contains(&self.status) {
            return Err(InvoiceError::InvalidTransition { invoice: self.id, from: self.status, change });
        }
        Ok(())
    }
}

/// What is wrong with one invoice row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RowProblem {
    #[error("quantity {0} is not positive")]
    QuantityNotPositive(Decimal),

    #[error("unit price is in {row} but the invoice is in {invoice}")]
    Currency { row: Currency, invoice: Currency },

    #[error(transparent)]
    Amount(MoneyError),
}

/// Why an invoice change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvoiceError {
    #[error("cannot {change} invoice {invoice}: it is {from}")]
    InvalidTransition { invoice: InvoiceId, from: InvoiceStatus, change: InvoiceChange },

    #[error(
        "invoice {invoice} is already settled by payment {settled_by}; payment {attempted} is an overpayment to refund"
    )]
    AlreadySettled { invoice: InvoiceId, settled_by: PaymentId, attempted: PaymentId },

    #[error("invoice row {index} is invalid: {reason}")]
    Row { index: usize, reason: RowProblem },

    #[error("invoice total {total} is negative; add rows until the total is zero or more")]
    NegativeTotal { total: Money },

    #[error("invoice rows promise {promised} credits, above the ledger's maximum of {max}; lower the credit rows")]
    CreditsTooLarge { promised: u128, max: u64 },
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    fn at() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    fn row(price: Decimal, credits: Option<u64>) -> InvoiceRow {
        InvoiceRow {
            description: "Credits pack".into(),
            quantity: dec!(2),
            unit_price: Money::new(price, Currency::EUR).unwrap(),
            project: None,
            content: None,
            credits,
        }
    }

    fn draft(rows: Vec<InvoiceRow>) -> Invoice {
        Invoice::draft(
            InvoiceId::from_random_bytes([1; 16]),
            TenantId::from_random_bytes([2; 16]),
            CompanyId::from_random_bytes([3; 16]),
            "2026-0001".into(),
            Currency::EUR,
            rows,
            at(),
        )
        .unwrap()
    }

    fn payment(byte: u8) -> PaymentId {
        PaymentId::from_random_bytes([byte; 16])
    }

    #[test]
    fn total_is_derived_from_rows() {
        let invoice = draft(vec![row(dec!(10.25), Some(100)), row(dec!(1), None)]);
        assert_eq!(invoice.total().unwrap().amount(), dec!(22.50));
        assert_eq!(invoice.credits_promised(), 100);
    }

    #[test]
    fn row_in_other_currency_is_rejected() {
        let mut bad = row(dec!(1), None);
        bad.unit_price = Money::new(dec!(1), Currency::USD).unwrap();
        let error = Invoice::draft(
            InvoiceId::from_random_bytes([1; 16]),
            TenantId::from_random_bytes([2; 16]),
            CompanyId::from_random_bytes([3; 16]),
            "n".into(),
            Currency::EUR,
            vec![bad],
            at(),
        )
        .unwrap_err();
        assert!(matches!(error, InvoiceError::Row { index: 0, reason: RowProblem::Currency { .. } }));
    }

    #[test]
    fn zero_quantity_row_is_rejected() {
        let mut invoice = draft(vec![]);
        let mut bad = row(dec!(1), None);
        bad.quantity = Decimal::ZERO;
        let error = invoice.replace_rows(vec![bad]).unwrap_err();
        assert!(matches!(error, InvoiceError::Row { reason: RowProblem::QuantityNotPositive(_), .. }));
        assert!(invoice.rows().is_empty());
    }

    #[test]
    fn credits_beyond_ledger_are_rejected() {
        let mut invoice = draft(vec![row(dec!(1), Some(7))]);
        let half = i64::MAX.unsigned_abs() / 2 + 1;

        let error = invoice.replace_rows(vec![row(dec!(1), Some(half)), row(dec!(1), Some(half))]).unwrap_err();

        assert_eq!(
            error,
            InvoiceError::CreditsTooLarge { promised: u128::from(half) * 2, max: i64::MAX.unsigned_abs() }
        );
        assert_eq!(invoice.credits_promised(), 7, "the old rows stay");
    }

    #[test]
    fn negative_total_is_rejected() {
        let error = Invoice::draft(
            InvoiceId::from_random_bytes([1; 16]),
            TenantId::from_random_bytes([2; 16]),
            CompanyId::from_random_bytes([3; 16]),
            "n".into(),
            Currency::EUR,
            vec![row(dec!(-1), None)],
            at(),
        )
        .unwrap_err();
        assert!(matches!(error, InvoiceError::NegativeTotal { .. }));
    }

    #[test]
    fn fractional_cent_row_is_rejected() {
        let mut invoice = draft(vec![]);
        let mut bad = row(dec!(0.05), None);
        bad.quantity = dec!(0.5);
        let error = invoice.replace_rows(vec![bad]).unwrap_err();
        assert!(matches!(
            error,
            InvoiceError::Row { reason: RowProblem::Amount(MoneyError::ExcessPrecision { .. }), .. }
        ));
    }

    #[test]
    fn lifecycle_draft_open_paid() {
        let mut invoice = draft(vec![row(dec!(5), None)]);
        assert_eq!(invoice.issue(TokenHash::of("t"), at()).unwrap(), Transition::Applied);
        assert_eq!(invoice.issue(TokenHash::of("t"), at()).unwrap(), Transition::AlreadyApplied);
        assert!(invoice.status().is_payable());
        assert_eq!(invoice.mark_paid(payment(9), at()).unwrap(), Transition::Applied);
        assert_eq!(invoice.mark_paid(payment(9), at()).unwrap(), Transition::AlreadyApplied);
        assert_eq!(invoice.status(), InvoiceStatus::Paid);
        assert!(invoice.status().has_been_paid());
    }

    #[test]
    fn second_payment_is_overpayment() {
        let mut invoice = draft(vec![row(dec!(5), None)]);
        invoice.issue(TokenHash::of("t"), at()).unwrap();
        invoice.mark_paid(payment(1), at()).unwrap();
        let error = invoice.mark_paid(payment(2), at()).unwrap_err();
        assert!(matches!(error, InvoiceError::AlreadySettled { .. }));
        assert_eq!(invoice.settled_by(), Some(payment(1)));
    }

    #[test]
    fn draft_cannot_be_paid() {
        let mut invoice = draft(vec![row(dec!(5), None)]);
        let error = invoice.mark_paid(payment(1), at()).unwrap_err();
        assert_eq!(
            error,
            InvoiceError::InvalidTransition {
                invoice: invoice.id,
                from: InvoiceStatus::Draft,
                change: InvoiceChange::MarkPaid
            }
        );
        assert_eq!(error.to_string(), format!("cannot mark paid invoice {}: it is draft", invoice.id));
    }

    #[test]
    fn paid_invoice_cannot_be_voided() {
        let mut invoice = draft(vec![row(dec!(5), None)]);
        invoice.issue(TokenHash::of("t"), at()).unwrap();
        invoice.mark_paid(payment(1), at()).unwrap();
        assert!(matches!(invoice.void(at()), Err(InvoiceError::InvalidTransition { from: InvoiceStatus::Paid, .. })));
        assert!(invoice.replace_public_token(TokenHash::of("u")).is_err());
    }

    #[test]
    fn void_is_idempotent_and_final() {
        let mut invoice = draft(vec![row(dec!(5), None)]);
        invoice.issue(TokenHash::of("t"), at()).unwrap();
        assert_eq!(invoice.void(at()).unwrap(), Transition::Applied);
        assert_eq!(invoice.void(at()).unwrap(), Transition::AlreadyApplied);
        assert!(invoice.issue(TokenHash::of("t"), at()).is_err());
        assert!(invoice.mark_paid(payment(1), at()).is_err());
    }

    #[test]
    fn refunds_and_disputes_move_forward() {
        let mut invoice = draft(vec![row(dec!(5), None)]);
        assert!(invoice.record_refund(false).is_err());
        invoice.issue(TokenHash::of("t"), at()).unwrap();
        invoice.mark_paid(payment(1), at()).unwrap();
        assert_eq!(invoice.record_refund(false).unwrap(), Transition::Applied);
        assert_eq!(invoice.status(), InvoiceStatus::PartiallyRefunded);
        assert_eq!(invoice.open_dispute().unwrap(), Transition::Applied);
        assert_eq!(invoice.open_dispute().unwrap(), Transition::AlreadyApplied);
        assert!(invoice.record_refund(true).is_err());
        invoice.close_dispute(true).unwrap();
        assert_eq!(invoice.status(), InvoiceStatus::Paid);
        invoice.open_dispute().unwrap();
        invoice.close_dispute(false).unwrap();
        assert_eq!(invoice.status(), InvoiceStatus::Refunded);
        assert!(invoice.close_dispute(true).is_err());
    }

    #[test]
    fn row_kind_follows_what_the_row_grants() {
        let row = |credits: Option<u64>, content: bool, project: bool| InvoiceRow {
            description: "row".into(),
            quantity: Decimal::ONE,
            unit_price: Money::new(Decimal::TEN, Currency::EUR).unwrap(),
            project: project.then(|| ProjectId::from_random_bytes([4; 16])),
            content: content.then(|| ContentId::from_random_bytes([5; 16])),
            credits,
        };
        assert_eq!(row(Some(10), true, true).kind(), RowKind::Credits);
        assert_eq!(row(None, true, true).kind(), RowKind::Content);
        assert_eq!(row(None, false, true).kind(), RowKind::ProjectWork);
        assert_eq!(row(None, false, false).kind(), RowKind::Other);
        assert_eq!(RowKind::ProjectWork.to_string(), "project work");
    }
}
