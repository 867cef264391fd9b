//! Row decoders: rebuild domain records from the columns the queries select.
//!
//! Each decoder reads the columns that [`columns!`] lists under its name.
//! Aggregates come from their `jsonb` body; columns that change
//! after insert (versions, inbox state, log attention, account totals)
//! override what the body says.

use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use billing_domain::directory::{Company, Content, Membership, Project, Role, Tenant};
use billing_domain::ledger::Fingerprint;
use billing_domain::ledger::{
    AccountSnapshot, Hold, IdempotencyRecord, IdempotentResult, LedgerEntry, OverdraftPolicy,
};
use billing_domain::log::{InboxEntry, LogEntry};
use billing_domain::store::StoreError;
use billing_domain::{CompanyId, ContentId, IdempotencyKey, Invoice, Payment, ProjectId, TenantId, UserId};

use crate::codec::{attention, column, decode_json, from_bigint, inbox_state, version};
use crate::error::corrupt;

/// The select list each decoder below reads, for splicing into queries with
/// `concat!`, so a query and its decoder cannot drift apart.
macro_rules! columns {
    (tenant) => {
        "id, name, overdraft_limit"
    };
    (company) => {
        "id, tenant_id, name"
    };
    (project) => {
        "id, tenant_id, company_id, name, url"
    };
    (content) => {
        "id, tenant_id, title, location"
    };
    (membership) => {
        "tenant_id, user_id, display_name, role, company_id"
    };
    (invoice) => {
        "version, body"
    };
    (payment) => {
        "version, body"
    };
    (account) => {
        "tenant_id, balance, held, overdraft_limit"
    };
    (ledger_entry) => {
        "body"
    };
    (hold) => {
        "body"
    };
    (idempotency_record) => {
        "tenant_id, key, fingerprint, result, created_at"
    };
    (inbox_entry) => {
        "state, attempts, received_at, updated_at, event"
    };
    (log_entry) => {
        "attention, resolved_by, body"
    };
}
pub(crate) use columns;

pub(crate) fn tenant(row: &PgRow) -> Result<Tenant, StoreError> {
    let what = "tenant";
    Ok(Tenant {
        id: TenantId::from_uuid(column(row, "id", what)?),
        name: column(row, "name", what)?,
        overdraft: OverdraftPolicy { limit: from_bigint(column(row, "overdraft_limit", what)?, what)? },
    })
}

pub(crate) fn company(row: &PgRow) -> Result<Company, StoreError> {
    let what = "company";
    Ok(Company {
        id: CompanyId::from_uuid(column(row, "id", what)?),
        tenant_id: TenantId::from_uuid(column(row, "tenant_id", what)?),
        name: column(row, "name", what)?,
    })
}

pub(crate) fn project(row: &PgRow) -> Result<Project, StoreError> {
    let what = "project";
    Ok(Project {
        id: ProjectId::from_uuid(column(row, "id", what)?),
        tenant_id: TenantId::from_uuid(column(row, "tenant_id", what)?),
        company_id: CompanyId::from_uuid(column(row, "company_id", what)?),
        name: column(row, "name", what)?,
        url: column(row, "url", what)?,
    })
}

pub(crate) fn content(row: &PgRow) -> Result<Content, StoreError> {
    let what = "content";
    Ok(Content {
        id: ContentId::from_uuid(column(row, "id", what)?),
        tenant_id: TenantId::from_uuid(column(row, "tenant_id", what)?),
        title: column(row, "title", what)?,
        location: column(row, "location", what)?,
    })
}

pub(crate) fn membership(row: &PgRow) -> Result<Membership, StoreError> {
    let what = "membership";
    let role_name: String = column(row, "role", what)?;
    let company: Option<uuid::Uuid> = column(row, "company_id", what)?;
    let role = match (role_name.as_str(), company) {
        ("staff", None) => Role::Staff,
        ("customer", Some(company)) => Role::Customer { company_id: CompanyId::from_uuid(company) },
        (other, company) => return Err(corrupt(what, format_args!("role {other:?} with company {company:?}"))),
    };
    Ok(Membership {
        tenant_id: TenantId::from_uuid(column(row, "tenant_id", what)?),
        user_id: UserId::from_uuid(column(row, "user_id", what)?),
        display_name: column(row, "display_name", what)?,
        role,
    })
}

pub(crate) fn invoice(row: &PgRow) -> Result<Invoice, StoreError> {
    let mut invoice: Invoice = decode_json(row, "body", "invoice")?;
    invoice.version = version(row, "invoice")?;
    Ok(invoice)
}

pub(crate) fn payment(row: &PgRow) -> Result<Payment, StoreError> {
    let mut payment: Payment = decode_json(row, "body", "payment")?;
    payment.version = version(row, "payment")?;
    Ok(payment)
}

pub(crate) fn account(row: &PgRow) -> Result<AccountSnapshot, StoreError> {
    let what = "account";
    Ok(AccountSnapshot {
        tenant_id: TenantId::from_uuid(column(row, "tenant_id", what)?),
        balance: column(row, "balance", what)?,
        held: column(row, "held", what)?,
        policy: OverdraftPolicy { limit: from_bigint(column(row, "overdraft_limit", what)?, what)? },
    })
}

pub(crate) fn ledger_entry(row: &PgRow) -> Result<LedgerEntry, StoreError> {
    decode_json(row, "body", "ledger entry")
}

pub(crate) fn hold(row: &PgRow) -> Result<Hold, StoreError> {
    decode_json(row, "body", "hold")
}

pub(crate) fn idempotency_record(row: &PgRow) -> Result<IdempotencyRecord, StoreError> {
    let what = "idempotency key";
    let key: String = column(row, "key", what)?;
    Ok(IdempotencyRecord {
        tenant_id: TenantId::from_uuid(column(row, "tenant_id", what)?),
        key: IdempotencyKey::new(key).map_err(|error| corrupt(what, error))?,
        fingerprint: Fingerprint::from_stored(column(row, "fingerprint", what)?),
        result: decode_json::<IdempotentResult>(row, "result", what)?,
        created_at: column::<OffsetDateTime>(row, "created_at", what)?,
    })
}

pub(crate) fn inbox_entry(row: &PgRow) -> Result<InboxEntry, StoreError> {
    let what = "inbox entry";
    let state: String = column(row, "state", what)?;
    let attempts: i32 = column(row, "attempts", what)?;
    Ok(InboxEntry {
        event: decode_json(row, "event", what)?,
        state: inbox_state(&state, what)?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt(what, format_args!("attempts {attempts}")))?,
        received_at: column(row, "received_at", what)?,
        updated_at: column(row, "updated_at", what)?,
    })
}

pub(crate) fn log_entry(row: &PgRow) -> Result<LogEntry, StoreError> {
    let what = "log entry";
    let mut entry: LogEntry = decode_json(row, "body", what)?;
    let name: String = column(row, "attention", what)?;
    entry.attention = attention(&name, column(row, "resolved_by", what)?, what)?;
    Ok(entry)
}

/// Decodes every row with `decode`.
pub(crate) fn all<T>(rows: &[PgRow], decode: fn(&PgRow) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    rows.iter().map(decode).collect()
}
