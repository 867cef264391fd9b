//! What each kind of caller may see.
//!
//! The public entry carries amount, currency, status and a sign-in hint and
//! nothing else: its type has no field that could hold a row, a name, a
//! project, content, a receipt or a note. The customer view adds the details
//! of the customer's own company's invoices. Internal notes exist only in
//! the staff view.

use serde::Serialize;

use crate::directory::{Company, Content, Project};
use crate::ids::{CompanyId, ContentId, InvoiceId, ProjectId};
use crate::invoice::{InternalNote, Invoice, InvoiceStatus, Receipt};
use crate::log::LogEntry;
use crate::money::Money;
use crate::payment::Payment;

use super::{AccessError, BillingError, BillingService, CustomerContext, StaffContext};

/// The sentence the public page shows instead of any detail.
pub const SIGN_IN_HINT: &str = "Sign in to the workspace to see the details.";

/// Whether the public page may offer a Pay button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PublicStatus {
    /// Open with no attempt in flight.
    Payable,
    /// An attempt is in flight; no new payment is offered.
    Processing,
}

/// The public payment entry. Deliberately nothing private.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicEntry {
    pub amount: Money,
    pub status: PublicStatus,
    pub sign_in_hint: &'static str,
}

/// Content a row unlocks; `location` is filled only once the invoice is paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContentAccess {
    pub content_id: ContentId,
    pub title: String,
    pub location: Option<String>,
}

/// One invoice row as the workspace shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowView {
    pub description: String,
    pub quantity: rust_decimal::Decimal,
    pub unit_price: Money,
    pub line_total: Money,
    pub project: Option<Project>,
    pub content: Option<ContentAccess>,
    pub credits: Option<u64>,
}

/// An invoice as a member of the customer's company (or staff) sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceView {
    pub invoice_id: InvoiceId,
    pub number: String,
    pub status: InvoiceStatus,
    pub total: Money,
    pub company: Company,
    pub rows: Vec<RowView>,
    pub receipts: Vec<Receipt>,
}

/// The staff view: the customer view plus notes, payments and the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffInvoiceView {
    pub invoice: InvoiceView,
    pub internal_notes: Vec<InternalNote>,
    pub payments: Vec<Payment>,
    pub log: Vec<LogEntry>,
}

/// A line of the customer's invoice list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceSummary {
    pub invoice_id: InvoiceId,
    pub number: String,
    pub status: InvoiceStatus,
    pub total: Money,
}

impl BillingService {
    /// What the public link shows.
    ///
    /// # Errors
    ///
    /// [`BillingError::PublicLinkNotFound`] for an unknown or retired token (and
    /// for a draft), [`BillingError::PublicLinkGone`] once the invoice is paid
    /// or void.
    pub async fn public_entry(&self, token: &str) -> Result<PublicEntry, BillingError> {
        let invoice = self.invoice_for_token(token).await?;
        let payments = self.store.payments_for_invoice(invoice.id).await?;
        let status = if payments.iter().any(|payment| payment.status().is_in_flight()) {
            PublicStatus::Processing
        } else {
            PublicStatus::Payable
        };
        Ok(PublicEntry { amount: invoice.total()?, status, sign_in_hint: SIGN_IN_HINT })
    }

    /// An invoice of the customer's own company, with rows, projects, content and receipts.
    ///
    /// # Errors
    ///
    /// [`AccessError::NotVisible`] for a draft or another company's invoice.
    pub async fn customer_invoice(
        &self,
        customer: &CustomerContext,
        invoice_id: InvoiceId,
    ) -> Result<InvoiceView, BillingError> {
        let invoice = match self.store.invoice(invoice_id).await? {
            Some(invoice)
                if invoice.tenant_id == customer.tenant_id
                    && invoice.company_id == customer.company_id
                    && invoice.status() != InvoiceStatus::Draft =>
            {
                invoice
            }
            _ => return Err(AccessError::NotVisible { what: format!("invoice {invoice_id}") }.into()),
        };
        self.invoice_view(&invoice).await
    }

    /// The customer company's issued invoices, oldest first.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn customer_invoices(&self, customer: &CustomerContext) -> Result<Vec<InvoiceSummary>, BillingError> {
        let invoices = self.store.invoices_for_company(customer.tenant_id, customer.company_id).await?;
        invoices
            .into_iter()
            .filter(|invoice| invoice.status() != InvoiceStatus::Draft)
            .map(|invoice| {
                Ok(InvoiceSummary {
                    invoice_id: invoice.id,
                    number: invoice.number.clone(),
                    status: invoice.status(),
                    total: invoice.total()?,
                })
            })
            .collect()
    }

    /// Any invoice of the staff member's tenant, with internal notes, payments and log.
    ///
    /// # Errors
    ///
    /// [`BillingError::NotFound`] for an invoice of another tenant.
    pub async fn staff_invoice(
        &self,
        staff: &StaffContext,
        invoice_id: InvoiceId,
    ) -> Result<StaffInvoiceView, BillingError> {
        let invoice = self.staff_invoice_record(staff, invoice_id).await?;
        let view = self.invoice_view(&invoice).await?;
        let payments = self.store.payments_for_invoice(invoice_id).await?;
        let log = self.invoice_log(staff, invoice_id).await?;
        Ok(StaffInvoiceView { invoice: view, internal_notes: invoice.internal_notes.clone(), payments, log })
    }

    /// Projects connected to the customer's company: the tenant portal list.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn tenant_projects(&self, customer: &CustomerContext) -> Result<Vec<Project>, BillingError> {
        Ok(self.store.projects_for_company(customer.tenant_id, customer.company_id).await?)
    }

    /// Projects of one company of the staff member's tenant.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn company_projects(
        &self,
        staff: &StaffContext,
        company: CompanyId,
    ) -> Result<Vec<Project>, BillingError> {
        Ok(self.store.projects_for_company(staff.tenant_id, company).await?)
    }

    /// Opens purchased content. Only an invoice of the customer's company that
    /// the store records as paid (and not fully refunded) unlocks it, never a redirect.
    ///
    /// # Errors
    ///
    /// [`AccessError::NotVisible`] when no such paid invoice exists.
    pub async fn open_content(
        &self,
        customer: &CustomerContext,
        content_id: ContentId,
    ) -> Result<Content, BillingError> {
        let invoices = self.store.invoices_for_company(customer.tenant_id, customer.company_id).await?;
        let unlocked = invoices
            .iter()
            .filter(|invoice| unlocks_content(invoice.status()))
            .any(|invoice| invoice.rows().iter().any(|row| row.content == Some(content_id)));
        if !unlocked {
            return Err(AccessError::NotVisible { what: format!("content {content_id}") }.into());
        }
        match self.store.content(content_id).await? {
            Some(content) if content.tenant_id == customer.tenant_id => Ok(content),
            _ => Err(AccessError::NotVisible { what: format!("content {content_id}") }.into()),
        }
    }

    async fn invoice_view(&self, invoice: &Invoice) -> Result<InvoiceView, BillingError> {
        let Some(company) = self.store.company(invoice.company_id).await? else {
            return Err(BillingError::not_found("company", invoice.company_id));
        };
        let unlocked = unlocks_content(invoice.status());
        let mut rows = Vec::with_capacity(invoice.rows().len());
        for row in invoice.rows() {
            let project = match row.project {
                Some(project) => self.project_of(project).await?,
                None => None,
            };
            let content = match row.content {
                Some(content_id) => self.store.content(content_id).await?.map(|content| ContentAccess {
                    content_id,
                    title: content.title,
                    location: unlocked.then_some(content.location),
                }),
                None => None,
            };
            rows.push(RowView {
                description: row.description.clone(),
                quantity: row.quantity,
                unit_price: row.unit_price,
                line_total: row.line_total()?,
                project,
                content,
                credits: row.credits,
            });
        }
        Ok(InvoiceView {
            invoice_id: invoice.id,
            number: invoice.number.clone(),
            status: invoice.status(),
            total: invoice.total()?,
            company,
            rows,
            receipts: invoice.receipts.clone(),
        })
    }

    async fn project_of(&self, project: ProjectId) -> Result<Option<Project>, BillingError> {
        Ok(self.store.project(project).await?)
    }
}

fn unlocks_content(status: InvoiceStatus) -> bool {
    matches!(status, InvoiceStatus::Paid | InvoiceStatus::PartiallyRefunded | InvoiceStatus::Disputed)
}
