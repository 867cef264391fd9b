//! Reads outside a transaction: the [`Store`] methods of [`PgStore`].
//!
//! Each read is one autocommit statement and sees committed data only. The
//! reconciliation listings (stale payments, open log entries, unresolved
//! inbox events) skip rows that a transaction is changing at that moment
//! (`FOR UPDATE SKIP LOCKED`), so several workers can list at once without
//! waiting on each other or on the writer that is settling a row. Listing
//! never claims work: two workers may still be handed the same payment, and
//! applying its events twice is harmless because every event goes through
//! the inbox.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::PgExecutor;
use time::OffsetDateTime;

use billing_domain::directory::{Company, Content, Membership, Project, Tenant};
use billing_domain::ledger::{AccountSnapshot, Hold, LedgerEntry, OverdraftPolicy};
use billing_domain::log::{InboxEntry, LogEntry};
use billing_domain::store::{LogFilter, Store, StoreError, StoreTx};
use billing_domain::token::TokenHash;
use billing_domain::{
    CompanyId, ContentId, EventKey, Invoice, InvoiceId, Payment, PaymentId, ProjectId, ProviderName, ProviderReference,
    TenantId, UserId,
};

use crate::codec::from_bigint;
use crate::error::store_error;
use crate::rows::{self, columns};
use crate::tx::PgTx;
use crate::PgStore;

const IN_FLIGHT: &str = "('created', 'pending', 'unknown')";

#[async_trait]
impl Store for PgStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        let tx = self.pool.begin().await.map_err(|error| store_error("starting a transaction", error))?;
        Ok(Box::new(PgTx::new(tx)))
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        let sql = concat!("SELECT ", columns!(tenant), " FROM tenants WHERE id = $1");
        let row = sqlx::query(sql).bind(id.as_uuid()).fetch_optional(&self.pool).await;
        decode_optional(row, "tenant", rows::tenant)
    }

    async fn company(&self, id: CompanyId) -> Result<Option<Company>, StoreError> {
        let sql = concat!("SELECT ", columns!(company), " FROM companies WHERE id = $1");
        let row = sqlx::query(sql).bind(id.as_uuid()).fetch_optional(&self.pool).await;
        decode_optional(row, "company", rows::company)
    }

    async fn membership(&self, tenant: TenantId, user: UserId) -> Result<Option<Membership>, StoreError> {
        let sql = concat!("SELECT ", columns!(membership), " FROM memberships WHERE tenant_id = $1 AND user_id = $2");
        let row = sqlx::query(sql).bind(tenant.as_uuid()).bind(user.as_uuid()).fetch_optional(&self.pool).await;
        decode_optional(row, "membership", rows::membership)
    }

    async fn projects_for_company(&self, tenant: TenantId, company: CompanyId) -> Result<Vec<Project>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(project),
            " FROM projects WHERE tenant_id = $1 AND company_id = $2 ORDER BY name COLLATE \"C\", id"
        );
        let found = sqlx::query(sql).bind(tenant.as_uuid()).bind(company.as_uuid()).fetch_all(&self.pool).await;
        decode_all(found, "projects", rows::project)
    }

    async fn project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        let sql = concat!("SELECT ", columns!(project), " FROM projects WHERE id = $1");
        let row = sqlx::query(sql).bind(id.as_uuid()).fetch_optional(&self.pool).await;
        decode_optional(row, "project", rows::project)
    }

    async fn content(&self, id: ContentId) -> Result<Option<Content>, StoreError> {
        let sql = concat!("SELECT ", columns!(content), " FROM contents WHERE id = $1");
        let row = sqlx::query(sql).bind(id.as_uuid()).fetch_optional(&self.pool).await;
        decode_optional(row, "content", rows::content)
    }

    async fn invoice(&self, id: InvoiceId) -> Result<Option<Invoice>, StoreError> {
        let sql = concat!("SELECT ", columns!(invoice), " FROM invoices WHERE id = $1");
        let row = sqlx::query(sql).bind(id.as_uuid()).fetch_optional(&self.pool).await;
        decode_optional(row, "invoice", rows::invoice)
    }

    async fn invoice_by_token(&self, hash: &TokenHash) -> Result<Option<Invoice>, StoreError> {
        let sql = concat!("SELECT ", columns!(invoice), " FROM invoices WHERE public_token_hash = $1");
        let row = sqlx::query(sql).bind(&hash.as_bytes()[..]).fetch_optional(&self.pool).await;
        decode_optional(row, "invoice by public link", rows::invoice)
    }

    async fn invoices_for_company(&self, tenant: TenantId, company: CompanyId) -> Result<Vec<Invoice>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(invoice),
            " FROM invoices WHERE tenant_id = $1 AND company_id = $2 ORDER BY created_at, id"
        );
        let found = sqlx::query(sql).bind(tenant.as_uuid()).bind(company.as_uuid()).fetch_all(&self.pool).await;
        decode_all(found, "invoices", rows::invoice)
    }

    async fn payment(&self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        select_payment(&self.pool, id).await
    }

    async fn payment_by_reference(
        &self,
        provider: &ProviderName,
        reference: &ProviderReference,
    ) -> Result<Option<Payment>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(payment),
            " FROM payments WHERE id = ",
            "(SELECT payment_id FROM payment_references WHERE provider = $1 AND reference = $2)"
        );
        let row = sqlx::query(sql).bind(provider.as_str()).bind(reference.as_str()).fetch_optional(&self.pool).await;
        decode_optional(row, "payment by reference", rows::payment)
    }

    async fn payments_for_invoice(&self, invoice: InvoiceId) -> Result<Vec<Payment>, StoreError> {
        select_payments_for_invoice(&self.pool, invoice).await
    }

    async fn stale_payments(
        &self,
        tenant: Option<TenantId>,
        updated_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let found = match tenant {
            Some(tenant) => {
                let sql = format!(
                    "SELECT {} FROM payments WHERE status IN {IN_FLIGHT} AND updated_at < $1 AND tenant_id = $2 \
                     ORDER BY updated_at, id LIMIT $3 FOR UPDATE SKIP LOCKED",
                    columns!(payment)
                );
                sqlx::query(&sql).bind(updated_before).bind(tenant.as_uuid()).bind(limit).fetch_all(&self.pool).await
            }
            None => {
                let sql = format!(
                    "SELECT {} FROM payments WHERE status IN {IN_FLIGHT} AND updated_at < $1 \
                     ORDER BY updated_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
                    columns!(payment)
                );
                sqlx::query(&sql).bind(updated_before).bind(limit).fetch_all(&self.pool).await
            }
        };
        decode_all(found, "stale payments", rows::payment)
    }

    async fn account(&self, tenant: TenantId) -> Result<AccountSnapshot, StoreError> {
        let sql = concat!("SELECT ", columns!(account), " FROM accounts WHERE tenant_id = $1");
        let row = sqlx::query(sql).bind(tenant.as_uuid()).fetch_optional(&self.pool).await;
        if let Some(account) = decode_optional(row, "account", rows::account)? {
            return Ok(account);
        }

        // No entry or hold has touched the account yet: it is empty, under the
        // tenant's policy when the tenant exists, as the in-memory store answers.
        let policy = sqlx::query_scalar::<_, i64>("SELECT overdraft_limit FROM tenants WHERE id = $1")
            .bind(tenant.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(|error| store_error("tenant policy", error))?;
        let limit = match policy {
            Some(limit) => from_bigint(limit, "overdraft limit")?,
            None => 0,
        };
        Ok(AccountSnapshot::empty(tenant, OverdraftPolicy { limit }))
    }

    async fn ledger_entries(&self, tenant: TenantId) -> Result<Vec<LedgerEntry>, StoreError> {
        let sql = concat!("SELECT ", columns!(ledger_entry), " FROM ledger_entries WHERE tenant_id = $1 ORDER BY seq");
        let found = sqlx::query(sql).bind(tenant.as_uuid()).fetch_all(&self.pool).await;
        decode_all(found, "ledger entries", rows::ledger_entry)
    }

    async fn holds(&self, tenant: TenantId) -> Result<Vec<Hold>, StoreError> {
        let sql = concat!("SELECT ", columns!(hold), " FROM holds WHERE tenant_id = $1 ORDER BY created_at, id");
        let found = sqlx::query(sql).bind(tenant.as_uuid()).fetch_all(&self.pool).await;
        decode_all(found, "holds", rows::hold)
    }

    async fn inbox_entry(&self, key: &EventKey) -> Result<Option<InboxEntry>, StoreError> {
        let sql = concat!("SELECT ", columns!(inbox_entry), " FROM inbox WHERE provider = $1 AND event_id = $2");
        let row =
            sqlx::query(sql).bind(key.provider.as_str()).bind(key.event_id.as_str()).fetch_optional(&self.pool).await;
        decode_optional(row, "inbox entry", rows::inbox_entry)
    }

    async fn unresolved_events_for_payment(&self, payment: PaymentId) -> Result<Vec<InboxEntry>, StoreError> {
        // An event names its payment by id (metadata) or by the payment's
        // provider reference; either makes it one of the payment's events.
        let sql = concat!(
            "SELECT ",
            columns!(inbox_entry),
            " FROM inbox i WHERE i.state = 'unresolved' AND (i.payment_id = $1 OR EXISTS (",
            "SELECT 1 FROM payments p WHERE p.id = $1 AND p.reference IS NOT NULL ",
            "AND p.provider = i.provider AND p.reference = i.reference)) ",
            "ORDER BY i.received_at, i.event_id COLLATE \"C\" FOR UPDATE OF i SKIP LOCKED"
        );
        let found = sqlx::query(sql).bind(payment.as_uuid()).fetch_all(&self.pool).await;
        decode_all(found, "unresolved events", rows::inbox_entry)
    }

    async fn log_entries(&self, filter: &LogFilter) -> Result<Vec<LogEntry>, StoreError> {
        let sql = log_query(filter);
        let mut query = sqlx::query(&sql);
        let ids = [
            filter.tenant_id.map(|id| id.as_uuid()),
            filter.invoice_id.map(|id| id.as_uuid()),
            filter.payment_id.map(|id| id.as_uuid()),
        ];
        for id in ids.into_iter().flatten() {
            query = query.bind(id);
        }
        if filter.limit > 0 {
            query = query.bind(i64::try_from(filter.limit).unwrap_or(i64::MAX));
        }
        decode_all(query.fetch_all(&self.pool).await, "log entries", rows::log_entry)
    }
}

/// Builds the log listing for one filter shape. Each present id adds an
/// equality on its indexed column, so every shape gets a plan of its own
/// instead of one generic plan with `$n IS NULL OR ...` conditions.
fn log_query(filter: &LogFilter) -> String {
    let mut conditions = Vec::new();
    let mut next_bind = 1;
    for (present, column) in [
        (filter.tenant_id.is_some(), "tenant_id"),
        (filter.invoice_id.is_some(), "invoice_id"),
        (filter.payment_id.is_some(), "payment_id"),
    ] {
        if present {
            conditions.push(format!("{column} = ${next_bind}"));
            next_bind += 1;
        }
    }
    if filter.open_only {
        conditions.push("attention = 'open'".to_owned());
    }

    let mut sql = format!("SELECT {} FROM log_entries", columns!(log_entry));
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(" ORDER BY seq DESC");
    if filter.limit > 0 {
        sql.push_str(&format!(" LIMIT ${next_bind}"));
    }
    if filter.open_only {
        sql.push_str(" FOR UPDATE SKIP LOCKED");
    }
    sql
}

pub(crate) async fn select_payment<'e>(
    executor: impl PgExecutor<'e>,
    id: PaymentId,
) -> Result<Option<Payment>, StoreError> {
    let sql = concat!("SELECT ", columns!(payment), " FROM payments WHERE id = $1");
    let row = sqlx::query(sql).bind(id.as_uuid()).fetch_optional(executor).await;
    decode_optional(row, "payment", rows::payment)
}

pub(crate) async fn select_payments_for_invoice<'e>(
    executor: impl PgExecutor<'e>,
    invoice: InvoiceId,
) -> Result<Vec<Payment>, StoreError> {
    let sql = concat!("SELECT ", columns!(payment), " FROM payments WHERE invoice_id = $1 ORDER BY created_at, id");
    let found = sqlx::query(sql).bind(invoice.as_uuid()).fetch_all(executor).await;
    decode_all(found, "payments of invoice", rows::payment)
}

/// Decodes the row a `fetch_optional` returned, if any.
pub(crate) fn decode_optional<T>(
    row: Result<Option<PgRow>, sqlx::Error>,
    what: &str,
    decode: fn(&PgRow) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    match row.map_err(|error| store_error(what, error))? {
        Some(row) => decode(&row).map(Some),
        None => Ok(None),
    }
}

/// Decodes the rows a `fetch_all` returned.
pub(crate) fn decode_all<T>(
    found: Result<Vec<PgRow>, sqlx::Error>,
    what: &str,
    decode: fn(&PgRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows::all(&found.map_err(|error| store_error(what, error))?, decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_query_binds_present_filters_in_order() {
        let filter = LogFilter {
            tenant_id: Some(TenantId::from_random_bytes([1; 16])),
            payment_id: Some(PaymentId::from_random_bytes([2; 16])),
            open_only: true,
            limit: 5,
            ..LogFilter::default()
        };
        let sql = log_query(&filter);
        assert!(sql.contains("WHERE tenant_id = $1 AND payment_id = $2 AND attention = 'open'"), "{sql}");
        assert!(sql.ends_with("ORDER BY seq DESC LIMIT $3 FOR UPDATE SKIP LOCKED"), "{sql}");
    }

    #[test]
    fn log_query_without_filter_lists_everything() {
        let sql = log_query(&LogFilter::default());
        assert!(sql.ends_with("FROM log_entries ORDER BY seq DESC"), "{sql}");
    }
}
