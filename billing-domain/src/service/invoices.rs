//! Tenants, directory records and the invoice life cycle up to payment.

use time::OffsetDateTime;

use crate::directory::{Company, Content, Membership, Project, Role, Tenant};
use crate::ids::{CompanyId, ContentId, InvoiceId, ProjectId, TenantId, UserId};
use crate::invoice::{InternalNote, Invoice, InvoiceRow, Receipt};
use crate::ledger::OverdraftPolicy;
use crate::log::{LogOutcome, LogSource};
use crate::money::Currency;
use crate::store::StoreTx;
use crate::token::{PublicToken, TOKEN_BYTES};

use super::{BillingError, BillingService, LogDraft, StaffContext};

/// What a new invoice is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvoice {
    pub company_id: CompanyId,
    pub number: String,
    pub currency: Currency,
    pub rows: Vec<InvoiceRow>,
}

/// An issued invoice and its public link token, shown only this once.
#[derive(Debug, Clone)]
pub struct IssuedInvoice {
    pub invoice: Invoice,
    pub token: PublicToken,
}

impl BillingService {
    /// Creates a tenant with its first staff member and returns that member's context.
    ///
    /// # Errors
    ///
    /// [`BillingError::InvalidInput`] for an empty name, store errors.
    pub async fn create_tenant(
        &self,
        name: &str,
        owner: UserId,
        owner_name: &str,
        overdraft: OverdraftPolicy,
    ) -> Result<(Tenant, StaffContext), BillingError> {
        require_text("tenant name", name)?;
        let tenant = Tenant { id: TenantId::from_random_bytes(self.random_16()), name: name.to_owned(), overdraft };
        let membership =
            Membership { tenant_id: tenant.id, user_id: owner, display_name: owner_name.to_owned(), role: Role::Staff };

        let mut tx = self.store.begin().await?;
        tx.insert_tenant(&tenant).await?;
        tx.upsert_membership(&membership).await?;
        tx.commit().await?;

        tracing::info!(tenant_id = %tenant.id, "tenant created");
        Ok((tenant.clone(), StaffContext { tenant_id: tenant.id, user_id: owner }))
    }

    /// Adds a customer company to the staff member's tenant.
    ///
    /// # Errors
    ///
    /// [`BillingError::InvalidInput`] for an empty name, store errors.
    pub async fn add_company(&self, staff: &StaffContext, name: &str) -> Result<Company, BillingError> {
        require_text("company name", name)?;
        let company = Company {
            id: CompanyId::from_random_bytes(self.random_16()),
            tenant_id: staff.tenant_id,
            name: name.to_owned(),
        };
        let mut tx = self.store.begin().await?;
        tx.insert_company(&company).await?;
        tx.commit().await?;
        Ok(company)
    }

    /// Adds a project for a company of the staff member's tenant.
    ///
    /// # Errors
    ///
    /// [`BillingError::NotFound`] when the company is not in this tenant.
    pub async fn add_project(
        &self,
        staff: &StaffContext,
        company: CompanyId,
        name: &str,
        url: &str,
    ) -> Result<Project, BillingError> {
        require_text("project name", name)?;
        self.company_of_tenant(staff.tenant_id, company).await?;
        let project = Project {
            id: ProjectId::from_random_bytes(self.random_16()),
            tenant_id: staff.tenant_id,
            company_id: company,
            name: name.to_owned(),
            url: url.to_owned(),
        };
        let mut tx = self.store.begin().await?;
        tx.insert_project(&project).await?;
        tx.commit().await?;
        Ok(project)
    }

    /// Registers paid content that invoice rows can unlock.
    ///
    /// # Errors
    ///
    /// [`BillingError::InvalidInput`] for an empty title, store errors.
    pub async fn add_content(
        &self,
        staff: &StaffContext,
        title: &str,
        location: &str,
    ) -> Result<Content, BillingError> {
        require_text("content title", title)?;
        let content = Content {
            id: ContentId::from_random_bytes(self.random_16()),
            tenant_id: staff.tenant_id,
            title: title.to_owned(),
            location: location.to_owned(),
        };
        let mut tx = self.store.begin().await?;
        tx.insert_content(&content).await?;
        tx.commit().await?;
        Ok(content)
    }

    /// Makes `user` staff, or a member of one customer company, of the staff member's tenant.
    ///
    /// # Errors
    ///
    /// [`BillingError::NotFound`] when a customer role names a company of another tenant.
    pub async fn add_member(
        &self,
        staff: &StaffContext,
        user: UserId,
        display_name: &str,
        role: Role,
    ) -> Result<Membership, BillingError> {
        if let Role::Customer { company_id } = role {
            self.company_of_tenant(staff.tenant_id, company_id).await?;
        }
        let membership =
            Membership { tenant_id: staff.tenant_id, user_id: user, display_name: display_name.to_owned(), role };
        let mut tx = self.store.begin().await?;
        tx.upsert_membership(&membership).await?;
        tx.commit().await?;
        Ok(membership)
    }

    /// Creates a draft invoice for a company of the staff member's tenant.
    ///
    /// # Errors
    ///
    /// [`BillingError::Invoice`] for invalid rows, [`BillingError::NotFound`]
    /// for a company, project or content of another tenant.
    pub async fn create_invoice(&self, staff: &StaffContext, new: NewInvoice) -> Result<Invoice, BillingError> {
        require_text("invoice number", &new.number)?;
        self.company_of_tenant(staff.tenant_id, new.company_id).await?;
        for row in &new.rows {
            self.check_row_links(staff.tenant_id, new.company_id, row).await?;
        }
        let invoice = Invoice::draft(
            InvoiceId::from_random_bytes(self.random_16()),
            staff.tenant_id,
            new.company_id,
            new.number,
            new.currency,
            new.rows,
            self.clock.now(),
        )?;

        let mut tx = self.store.begin().await?;
        tx.insert_invoice(&invoice).await?;
        tx.commit().await?;

        tracing::info!(tenant_id = %invoice.tenant_id, invoice_id = %invoice.id, "invoice created");
        Ok(invoice)
    }

    /// Opens a draft for payment and mints its public link.
    ///
    /// # Errors
    ///
    /// [`BillingError::Invoice`] unless the invoice is a draft.
    pub async fn issue_invoice(
        &self,
        staff: &StaffContext,
        invoice_id: InvoiceId,
    ) -> Result<IssuedInvoice, BillingError> {
        let token = self.mint_token();
        let now = self.clock.now();
        let invoice = self
            .update_invoice(staff, invoice_id, "invoice issued", |invoice| {
                if invoice.status() != crate::invoice::InvoiceStatus::Draft {
                    return Err(crate::invoice::InvoiceError::InvalidTransition {
                        invoice: invoice.id,
                        from: invoice.status(),
                        change: crate::invoice::InvoiceChange::Issue,
                    }
                    .into());
                }
                invoice.issue(token.hash(), now)?;
                Ok(())
            })
            .await?;
        Ok(IssuedInvoice { invoice, token })
    }

    /// Mints a new public link for an open invoice; the old link stops working.
    ///
    /// # Errors
    ///
    /// [`BillingError::Invoice`] unless the invoice is open.
    pub async fn mint_public_link(
        &self,
        staff: &StaffContext,
        invoice_id: InvoiceId,
    ) -> Result<PublicToken, BillingError> {
        let token = self.mint_token();
        self.update_invoice(staff, invoice_id, "public link replaced", |invoice| {
            invoice.replace_public_token(token.hash())?;
            Ok(())
        })
        .await?;
        Ok(token)
    }

    /// Withdraws an unpaid invoice; its public link answers "gone" from now on.
    ///
    /// # Errors
    ///
    /// [`BillingError::Invoice`] once the invoice has been paid;
    /// [`BillingError::PaymentInProgress`] while an attempt may still succeed;
    /// [`BillingError::NotFound`] for an invoice of another tenant.
    pub async fn void_invoice(&self, staff: &StaffContext, invoice_id: InvoiceId) -> Result<Invoice, BillingError> {
        self.with_retries(|| async {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let mut invoice = load_staff_invoice(tx.as_mut(), staff, invoice_id).await?;

            // Checked under the invoice lock, which starting a payment takes
            // too, so no attempt can begin between this check and the void.
            let payments = tx.payments_for_invoice(invoice_id).await?;
            if let Some(payment) = payments.iter().find(|payment| payment.status().is_in_flight()) {
                return Err(BillingError::PaymentInProgress { invoice: invoice_id, payment: payment.id });
            }
            invoice.void(now)?;
            self.save_staff_change(tx, staff, invoice, "invoice voided", now).await
        })
        .await
    }

    /// Adds a note that only staff can read.
    ///
    /// # Errors
    ///
    /// [`BillingError::InvalidInput`] for an empty note.
    pub async fn add_internal_note(
        &self,
        staff: &StaffContext,
        invoice_id: InvoiceId,
        text: &str,
    ) -> Result<Invoice, BillingError> {
        require_text("note", text)?;
        let note = InternalNote { author: staff.user_id, text: text.to_owned(), written_at: self.clock.now() };
        self.update_invoice(staff, invoice_id, "internal note added", |invoice| {
            invoice.internal_notes.push(note.clone());
            Ok(())
        })
        .await
    }

    /// Attaches a receipt that the customer sees in the workspace.
    ///
    /// # Errors
    ///
    /// [`BillingError::InvalidInput`] for an empty label or URL.
    pub async fn attach_receipt(
        &self,
        staff: &StaffContext,
        invoice_id: InvoiceId,
        label: &str,
        url: &str,
    ) -> Result<Invoice, BillingError> {
        require_text("receipt label", label)?;
        require_text("receipt URL", url)?;
        let receipt = Receipt { label: label.to_owned(), url: url.to_owned(), issued_at: self.clock.now() };
        self.update_invoice(staff, invoice_id, "receipt attached", |invoice| {
            invoice.receipts.push(receipt.clone());
            Ok(())
        })
        .await
    }

    fn mint_token(&self) -> PublicToken {
        let mut bytes = [0u8; TOKEN_BYTES];
        self.random.fill_bytes(&mut bytes);
        PublicToken::from_random_bytes(bytes)
    }

    /// Loads, changes and saves one invoice of the staff member's tenant in a
    /// transaction, logging `what` with the staff member as actor.
    async fn update_invoice<F>(
        &self,
        staff: &StaffContext,
        invoice_id: InvoiceId,
        what: &str,
        change: F,
    ) -> Result<Invoice, BillingError>
    where
        F: Fn(&mut Invoice) -> Result<(), BillingError> + Send + Sync,
    {
        self.with_retries(|| async {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let mut invoice = load_staff_invoice(tx.as_mut(), staff, invoice_id).await?;
            change(&mut invoice)?;
            self.save_staff_change(tx, staff, invoice, what, now).await
        })
        .await
    }

    /// Saves a changed invoice, logs `what` with the staff member as actor and commits.
    async fn save_staff_change(
        &self,
        mut tx: Box<dyn StoreTx>,
        staff: &StaffContext,
        mut invoice: Invoice,
        what: &str,
        now: OffsetDateTime,
    ) -> Result<Invoice, BillingError> {
        tx.save_invoice(&invoice).await?;

        let mut draft = LogDraft::new(LogSource::Staff);
        draft.tenant_id = Some(invoice.tenant_id);
        draft.invoice_id = Some(invoice.id);
        draft.actor = Some(staff.user_id);
        tx.append_log(&draft.entry(self.new_log_id(), LogOutcome::Applied, what.to_owned(), false, now)).await?;
        tx.commit().await?;

        tracing::info!(tenant_id = %invoice.tenant_id, invoice_id = %invoice.id, action = what, "invoice updated");
        invoice.version += 1;
        Ok(invoice)
    }

    async fn company_of_tenant(&self, tenant: TenantId, company: CompanyId) -> Result<Company, BillingError> {
        match self.store.company(company).await? {
            Some(found) if found.tenant_id == tenant => Ok(found),
            _ => Err(BillingError::not_found("company", company)),
        }
    }

    async fn check_row_links(
        &self,
        tenant: TenantId,
        company: CompanyId,
        row: &InvoiceRow,
    ) -> Result<(), BillingError> {
        if let Some(project) = row.project {
            match self.store.project(project).await? {
                Some(found) if found.tenant_id == tenant && found.company_id == company => {}
                _ => return Err(BillingError::not_found("project", project)),
            }
        }
        if let Some(content) = row.content {
            match self.store.content(content).await? {
                Some(found) if found.tenant_id == tenant => {}
                _ => return Err(BillingError::not_found("content", content)),
            }
        }
        Ok(())
    }
}

/// Loads and locks an invoice of the staff member's tenant.
async fn load_staff_invoice(
    tx: &mut dyn StoreTx,
    staff: &StaffContext,
    invoice_id: InvoiceId,
) -> Result<Invoice, BillingError> {
    match tx.load_invoice(invoice_id).await? {
        Some(invoice) if invoice.tenant_id == staff.tenant_id => Ok(invoice),
        _ => Err(BillingError::not_found("invoice", invoice_id)),
    }
}

fn require_text(what: &str, value: &str) -> Result<(), BillingError> {
    if value.trim().is_empty() {
        return Err(BillingError::InvalidInput { reason: format!("{what} must not be empty") });
    }
    Ok(())
}
