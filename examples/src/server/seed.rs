//! The demo workspace the server starts with: a tenant with a staff member,
//! two customer companies with one user each, a project, paid content, and
//! one issued invoice whose public link is printed at start-up.
//!
//! The invoice is created through [`create_and_issue`], the code behind
//! `POST /api/staff/invoices`, so the demo exercises the API's own path.
//! Demo users get session tokens signed with this run's key; they stop
//! working when the server restarts.

use billing_domain::directory::Role;
use billing_domain::ledger::OverdraftPolicy;
use billing_domain::service::RandomSource;
use billing_domain::{BillingError, CompanyId, ContentId, InvoiceId, ProjectId, TenantId, UserId};

use super::auth::Principal;
use super::staff_api::{create_and_issue, InvoiceDraft, RowDraft};
use super::App;

/// A demo user and the access token to sign in with.
#[derive(Debug, Clone)]
pub struct DemoUser {
    pub name: &'static str,
    pub user_id: UserId,
    /// A session token: paste it on `/signin` or send it as `Authorization: Bearer`.
    pub token: String,
}

/// What the demo seed created.
#[derive(Debug, Clone)]
pub struct DemoSeed {
    pub tenant_id: TenantId,
    pub company_id: CompanyId,
    pub other_company_id: CompanyId,
    pub project_id: ProjectId,
    pub content_id: ContentId,
    pub invoice_id: InvoiceId,
    pub invoice_number: &'static str,
    /// The issued invoice's public link.
    pub public_url: String,
    pub staff: DemoUser,
    pub customer: DemoUser,
    /// A customer of the other company, who must not see the demo invoice.
    pub other_customer: DemoUser,
}

/// The seeded invoice's number.
pub const DEMO_INVOICE_NUMBER: &str = "2026-0012";

/// Creates the demo workspace in `app`'s store.
///
/// # Errors
///
/// Store errors, or a rejected invoice (which would be a bug in the seed).
pub async fn seed_demo(app: &App, random: &dyn RandomSource) -> Result<DemoSeed, BillingError> {
    let service = app.service();
    let new_user = || {
        let mut bytes = [0u8; 16];
        random.fill_bytes(&mut bytes);
        UserId::from_random_bytes(bytes)
    };
    let (staff_id, customer_id, other_id) = (new_user(), new_user(), new_user());

    let (tenant, staff) =
        service.create_tenant("Northwind Studio", staff_id, "Sam (staff)", OverdraftPolicy::default()).await?;
    let company = service.add_company(&staff, "Customer Ltd").await?;
    let other_company = service.add_company(&staff, "Other Company AS").await?;
    let project =
        service.add_project(&staff, company.id, "Website redesign", "https://projects.example/website").await?;
    service.add_project(&staff, other_company.id, "Intranet", "https://projects.example/intranet").await?;
    let content = service.add_content(&staff, "Brand guidelines", "https://content.example/brand.pdf").await?;
    service.add_member(&staff, customer_id, "Casey (customer)", Role::Customer { company_id: company.id }).await?;
    service
        .add_member(&staff, other_id, "Olivia (other company)", Role::Customer { company_id: other_company.id })
        .await?;

    let row = |description: &str, quantity: &str, unit_price: &str| RowDraft {
        description: description.into(),
        quantity: quantity.into(),
        unit_price: unit_price.into(),
        project_id: None,
        content_id: None,
        credits: None,
    };
    let draft = InvoiceDraft {
        company_id: company.id,
        number: DEMO_INVOICE_NUMBER.into(),
        currency: "EUR".into(),
        rows: vec![
            RowDraft { project_id: Some(project.id), ..row("Design sprint, 2 days", "2", "20.00") },
            RowDraft { content_id: Some(content.id), ..row("Brand guidelines (PDF)", "1", "4.90") },
            RowDraft { credits: Some(500), ..row("500 module credits", "1", "5.00") },
        ],
    };
    let issued = create_and_issue(service, &staff, draft).await?;
    service.add_internal_note(&staff, issued.invoice.id, "Customer asked to split the next invoice").await?;
    tracing::info!(tenant_id = %tenant.id, invoice_id = %issued.invoice.id, "demo workspace seeded");

    let user = |name: &'static str, user_id: UserId| DemoUser {
        name,
        user_id,
        token: app.sessions().issue(Principal { tenant_id: tenant.id, user_id }),
    };
    Ok(DemoSeed {
        tenant_id: tenant.id,
        company_id: company.id,
        other_company_id: other_company.id,
        project_id: project.id,
        content_id: content.id,
        invoice_id: issued.invoice.id,
        invoice_number: DEMO_INVOICE_NUMBER,
        public_url: format!("{}/pay/{}", app.base_url(), issued.token.expose()),
        staff: user("Sam (staff)", staff_id),
        customer: user("Casey (customer)", customer_id),
        other_customer: user("Olivia (other company)", other_id),
    })
}
