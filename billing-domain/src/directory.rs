//! Tenants, customer companies, projects and who belongs where.
//!
//! These records answer the access questions of the workspace: which
//! company a customer user belongs to, who is staff, which projects a tenant
//! portal lists. Authentication itself belongs to the application; it hands
//! the service an authenticated user id and the service checks membership here.

use serde::{Deserialize, Serialize};

use crate::ids::{CompanyId, ContentId, ProjectId, TenantId, UserId};
use crate::ledger::OverdraftPolicy;

/// A workspace; owns one credit account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub overdraft: OverdraftPolicy,
}

/// A customer company of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    pub id: CompanyId,
    pub tenant_id: TenantId,
    pub name: String,
}

/// Project work for a company, linked from invoice rows and listed in the tenant portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub tenant_id: TenantId,
    pub company_id: CompanyId,
    pub name: String,
    pub url: String,
}

/// Paid content an invoice row can unlock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub id: ContentId,
    pub tenant_id: TenantId,
    pub title: String,
    /// Where the unlocked content lives; shown only after payment.
    pub location: String,
}

/// A user's role in one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    Staff,
    Customer { company_id: CompanyId },
}

/// A user's membership of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub display_name: String,
    pub role: Role,
}
