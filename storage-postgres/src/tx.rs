//! Writes: [`PgTx`], one PostgreSQL transaction behind the [`StoreTx`] port.
//!
//! Lock-taking reads use `FOR NO KEY UPDATE`: it serialises writers of a row
//! like `FOR UPDATE` does, but lets other transactions insert rows whose
//! foreign keys point at it. Versioned writes (`save_invoice`,
//! `save_payment`) update only when the stored version is the one the
//! caller read, so a stale write is a [`StoreError::Conflict`] and never a
//! lost update. Every ledger entry is inserted by the statement that moves
//! its account's balance, so the balance is always the sum of the entries.
//!
//! Dropping a `PgTx` without [`StoreTx::commit`] drops the sqlx transaction,
//! which rolls back before its connection is used again.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::postgres::{PgConnection, Postgres};
use sqlx::types::Json;
use sqlx::Transaction;
use time::OffsetDateTime;

use billing_domain::apply::InvoiceCredits;
use billing_domain::directory::{Company, Content, Membership, Project, Role, Tenant};
use billing_domain::ledger::{AccountSnapshot, Hold, HoldStatus, IdempotencyRecord, LedgerEntry};
use billing_domain::log::{InboxClaim, InboxEntry, InboxState, LogEntry};
use billing_domain::store::{BatchWrites, PaymentInsert, StoreError, StoreTx};
use billing_domain::{
    EventKey, HoldId, IdempotencyKey, Invoice, InvoiceId, LogEntryId, Payment, PaymentId, ProviderEvent, ProviderName,
    ProviderReference, TenantId,
};

use crate::batch::RowLock;
use crate::codec::{
    attention_name, entry_invoice, entry_kind_name, from_bigint, hold_captured, hold_status_name, inbox_state_name,
    resolved_by, to_bigint,
};
use crate::error::{store_error, violates, CHECK_VIOLATION, UNIQUE_VIOLATION};
use crate::read::{decode_all, decode_optional, select_payment, select_payments_for_invoice};
use crate::rows::{self, columns};

/// One open store transaction on a pooled connection.
#[derive(Debug)]
pub struct PgTx {
    tx: Transaction<'static, Postgres>,
    /// The reference each payment read or written in this transaction
    /// carries and already owns in `payment_references`, so saving a payment
    /// whose reference did not change costs no extra statement.
    owned_references: HashMap<PaymentId, ProviderReference>,
}

impl PgTx {
    pub(crate) fn new(tx: Transaction<'static, Postgres>) -> PgTx {
        PgTx { tx, owned_references: HashMap::new() }
    }

    pub(crate) fn connection(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Whether saving `payment` needs no new row in `payment_references`.
    pub(crate) fn owns_its_reference(&self, payment: &Payment) -> bool {
        match &payment.reference {
            Some(reference) => self.owned_references.get(&payment.id) == Some(reference),
            None => true,
        }
    }

    pub(crate) fn remember_reference(&mut self, payment: &Payment) {
        if let Some(reference) = &payment.reference {
            self.owned_references.insert(payment.id, reference.clone());
        }
    }

    /// Records that `payment` carries `reference` and returns the payment
    /// that owns the reference, which is another payment when it was taken.
    async fn claim_reference(
        &mut self,
        payment: &Payment,
        reference: &ProviderReference,
    ) -> Result<PaymentId, StoreError> {
        // The no-op update makes the statement return (and lock) the owner
        // when the reference is taken, in one round trip.
        let owner: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO payment_references (provider, reference, payment_id) VALUES ($1, $2, $3) \
             ON CONFLICT (provider, reference) DO UPDATE SET payment_id = payment_references.payment_id \
             RETURNING payment_id",
        )
        .bind(payment.provider.as_str())
        .bind(reference.as_str())
        .bind(payment.id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|error| store_error(&format!("provider reference {reference}"), error))?;
        Ok(PaymentId::from_uuid(owner))
    }

    /// Makes sure the tenant's account row exists, with the tenant's policy
    /// (or none, for a tenant the store has not seen), as the in-memory store does.
    async fn ensure_account(&mut self, tenant: TenantId) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO accounts (tenant_id, balance, held, overdraft_limit) \
             SELECT $1, 0, 0, coalesce((SELECT overdraft_limit FROM tenants WHERE id = $1), 0) \
             ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(tenant.as_uuid())
        .execute(&mut *self.tx)
        .await
        .map_err(|error| store_error(&format!("account of tenant {tenant}"), error))?;
        Ok(())
    }

    async fn lock_account(&mut self, tenant: TenantId) -> Result<Option<AccountSnapshot>, StoreError> {
        let sql = concat!("SELECT ", columns!(account), " FROM accounts WHERE tenant_id = $1 FOR NO KEY UPDATE");
        let row = sqlx::query(sql).bind(tenant.as_uuid()).fetch_optional(&mut *self.tx).await;
        decode_optional(row, "account", rows::account)
    }

    /// Tells a missing row from a version mismatch after a versioned update changed nothing.
    async fn version_failure(&mut self, exists_sql: &'static str, id: uuid::Uuid, what: String) -> StoreError {
        match sqlx::query(exists_sql).bind(id).fetch_optional(&mut *self.tx).await {
            Ok(Some(_)) => StoreError::Conflict { what },
            Ok(None) => StoreError::NotFound { what },
            Err(error) => store_error(&what, error),
        }
    }

    /// Moves the tenant's held total by `delta` credits.
    async fn move_held(&mut self, tenant: TenantId, delta: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET held = held + $2 WHERE tenant_id = $1")
            .bind(tenant.as_uuid())
            .bind(delta)
            .execute(&mut *self.tx)
            .await
            .map_err(|error| store_error(&format!("held credits of tenant {tenant}"), error))?;
        Ok(())
    }

    /// Inserts `entry` and moves its account's balance in one statement.
    /// Returns `false`, writing nothing, when the account row does not exist.
    async fn insert_entry(&mut self, entry: &LedgerEntry) -> Result<bool, StoreError> {
        let (invoice_id, payment_id) = entry_invoice(&entry.kind);
        let inserted = sqlx::query(
            "WITH moved AS (UPDATE accounts SET balance = balance + $3 WHERE tenant_id = $2 RETURNING tenant_id) \
             INSERT INTO ledger_entries (id, tenant_id, amount, kind, invoice_id, payment_id, created_at, body) \
             SELECT $1, tenant_id, $3, $4, $5, $6, $7, $8 FROM moved",
        )
        .bind(entry.id.as_uuid())
        .bind(entry.tenant_id.as_uuid())
        .bind(entry.amount)
        .bind(entry_kind_name(&entry.kind))
        .bind(invoice_id)
        .bind(payment_id)
        .bind(entry.created_at)
        .bind(Json(entry))
        .execute(&mut *self.tx)
        .await;
        match inserted {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(error) => Err(self.ledger_error(&format!("ledger entry {} of {}", entry.id, entry.amount), error)),
        }
    }

    /// Names the ledger rule a refused entry broke.
    pub(crate) fn ledger_error(&self, what: &str, error: sqlx::Error) -> StoreError {
        if violates(&error, CHECK_VIOLATION, "accounts_balance_floor") {
            return StoreError::Constraint {
                constraint: format!("{what} would take a balance below its overdraft limit"),
            };
        }
        if violates(&error, UNIQUE_VIOLATION, "ledger_entries_one_grant_per_invoice") {
            return StoreError::Constraint {
                constraint: format!("{what} would grant an invoice's credits a second time"),
            };
        }
        store_error(what, error)
    }

    async fn inbox_entry(
        &mut self,
        key: &EventKey,
        lock: InboxLock,
        what: &str,
    ) -> Result<Option<InboxEntry>, StoreError> {
        let sql = match lock {
            InboxLock::None => {
                concat!("SELECT ", columns!(inbox_entry), " FROM inbox WHERE provider = $1 AND event_id = $2")
            }
            InboxLock::ForUpdate => concat!(
                "SELECT ",
                columns!(inbox_entry),
                " FROM inbox WHERE provider = $1 AND event_id = $2 FOR NO KEY UPDATE"
            ),
        };
        let row = sqlx::query(sql)
            .bind(key.provider.as_str())
            .bind(key.event_id.as_str())
            .fetch_optional(&mut *self.tx)
            .await;
        decode_optional(row, what, rows::inbox_entry)
    }

    async fn resolve_log(
        &mut self,
        sql: &'static str,
        what: &str,
        bind: ResolveTarget<'_>,
        by: LogEntryId,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(sql);
        let query = match bind {
            ResolveTarget::Event(key) => query.bind(key.provider.as_str()).bind(key.event_id.as_str()),
            ResolveTarget::Id(id) => query.bind(id),
        };
        query.bind(by.as_uuid()).execute(&mut *self.tx).await.map_err(|error| store_error(what, error))?;
        Ok(())
    }
}

/// Whether reading an inbox entry locks it.
#[derive(Debug, Clone, Copy)]
enum InboxLock {
    None,
    ForUpdate,
}

/// Inbox rows are never deleted, so a conflicting row that cannot be read
/// back means a concurrent change; the caller should run its operation again.
fn missing_inbox_entry(what: String) -> StoreError {
    StoreError::Conflict { what }
}

/// The rows a log resolution marks: those of one event, or one id.
enum ResolveTarget<'a> {
    Event(&'a EventKey),
    Id(uuid::Uuid),
}

#[async_trait]
impl StoreTx for PgTx {
    async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        let what = format!("tenant {}", tenant.id);
        let inserted = sqlx::query(
            "WITH created AS (INSERT INTO tenants (id, name, overdraft_limit) VALUES ($1, $2, $3) \
             RETURNING id, overdraft_limit) \
             INSERT INTO accounts (tenant_id, balance, held, overdraft_limit) \
             SELECT id, 0, 0, overdraft_limit FROM created ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(tenant.id.as_uuid())
        .bind(&tenant.name)
        .bind(to_bigint(tenant.overdraft.limit, "overdraft limit")?)
        .execute(&mut *self.tx)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if violates(&error, UNIQUE_VIOLATION, "tenants_pkey") => Err(StoreError::AlreadyExists { what }),
            Err(error) => Err(store_error(&what, error)),
        }
    }

    async fn insert_company(&mut self, company: &Company) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO companies (id, tenant_id, name) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, name = EXCLUDED.name",
        )
        .bind(company.id.as_uuid())
        .bind(company.tenant_id.as_uuid())
        .bind(&company.name)
        .execute(&mut *self.tx)
        .await
        .map_err(|error| store_error(&format!("company {}", company.id), error))?;
        Ok(())
    }

    async fn insert_project(&mut self, project: &Project) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO projects (id, tenant_id, company_id, name, url) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, company_id = EXCLUDED.company_id, \
             name = EXCLUDED.name, url = EXCLUDED.url",
        )
        .bind(project.id.as_uuid())
        .bind(project.tenant_id.as_uuid())
        .bind(project.company_id.as_uuid())
        .bind(&project.name)
        .bind(&project.url)
        .execute(&mut *self.tx)
        .await
        .map_err(|error| store_error(&format!("project {}", project.id), error))?;
        Ok(())
    }

    async fn insert_content(&mut self, content: &Content) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO contents (id, tenant_id, title, location) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, title = EXCLUDED.title, \
             location = EXCLUDED.location",
        )
        .bind(content.id.as_uuid())
        .bind(content.tenant_id.as_uuid())
        .bind(&content.title)
        .bind(&content.location)
        .execute(&mut *self.tx)
        .await
        .map_err(|error| store_error(&format!("content {}", content.id), error))?;
        Ok(())
    }

    async fn upsert_membership(&mut self, membership: &Membership) -> Result<(), StoreError> {
        let (role, company) = match membership.role {
            Role::Staff => ("staff", None),
            Role::Customer { company_id } => ("customer", Some(company_id.as_uuid())),
        };
        sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, display_name, role, company_id) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET display_name = EXCLUDED.display_name, \
             role = EXCLUDED.role, company_id = EXCLUDED.company_id",
        )
        .bind(membership.tenant_id.as_uuid())
        .bind(membership.user_id.as_uuid())
        .bind(&membership.display_name)
        .bind(role)
        .bind(company)
        .execute(&mut *self.tx)
        .await
        .map_err(|error| store_error(&format!("membership of user {}", membership.user_id), error))?;
        Ok(())
    }

    async fn claim_event(&mut self, event: &ProviderEvent, now: OffsetDateTime) -> Result<InboxClaim, StoreError> {
        let key = event.key();
        let what = format!("inbox entry {key}");

        // A concurrent claim of the same key makes this insert wait until the
        // other transaction ends. If that one rolled back, this insert goes
        // ahead; if it committed, this one does nothing.
        let inserted = sqlx::query(
            "INSERT INTO inbox (provider, event_id, state, attempts, payment_id, reference, received_at, updated_at, event) \
             VALUES ($1, $2, 'unresolved', 0, $3, $4, $5, $5, $6) ON CONFLICT (provider, event_id) DO NOTHING",
        )
        .bind(key.provider.as_str())
        .bind(key.event_id.as_str())
        .bind(event.matches.payment_id.map(|id| id.as_uuid()))
        .bind(event.matches.reference.as_ref().map(ProviderReference::as_str))
        .bind(now)
        .bind(Json(event))
        .execute(&mut *self.tx)
        .await
        .map_err(|error| store_error(&what, error))?;
        if inserted.rows_affected() == 1 {
            return Ok(InboxClaim::New);
        }

        // A done entry is final, so a duplicate needs no lock and concurrent
        // duplicates do not queue behind each other. An unresolved entry is
        // locked so that only one transaction retries it at a time.
        let Some(existing) = self.inbox_entry(&key, InboxLock::None, &what).await? else {
            return Err(missing_inbox_entry(what));
        };
        if existing.state == InboxState::Done {
            return Ok(InboxClaim::Done(existing));
        }
        let Some(locked) = self.inbox_entry(&key, InboxLock::ForUpdate, &what).await? else {
            return Err(missing_inbox_entry(what));
        };
        Ok(match locked.state {
            InboxState::Done => InboxClaim::Done(locked),
            InboxState::Unresolved => InboxClaim::Retry(locked),
        })
    }

    async fn set_inbox_state(
        &mut self,
        key: &EventKey,
        state: InboxState,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let what = format!("inbox entry {key}");
        let updated = sqlx::query(
            "UPDATE inbox SET state = $3, attempts = LEAST(attempts, 2147483646) + 1, updated_at = $4 \
             WHERE provider = $1 AND event_id = $2",
        )
        .bind(key.provider.as_str())
        .bind(key.event_id.as_str())
        .bind(inbox_state_name(state))
        .bind(now)
        .execute(&mut *self.tx)
        .await
        .map_err(|error| store_error(&what, error))?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound { what });
        }
        Ok(())
    }

    async fn insert_invoice(&mut self, invoice: &Invoice) -> Result<(), StoreError> {
        let what = format!("invoice {}", invoice.id);
        let inserted = sqlx::query(
            "INSERT INTO invoices (id, tenant_id, company_id, number, currency, status, public_token_hash, \
             settled_by, created_at, version, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(invoice.id.as_uuid())
        .bind(invoice.tenant_id.as_uuid())
        .bind(invoice.company_id.as_uuid())
        .bind(&invoice.number)
        .bind(invoice.currency.code())
        .bind(invoice.status().as_str())
        .bind(invoice.public_token_hash().map(|hash| hash.as_bytes().to_vec()))
        .bind(invoice.settled_by().map(|id| id.as_uuid()))
        .bind(invoice.created_at)
        .bind(to_bigint(invoice.version, "invoice version")?)
        .bind(Json(invoice))
        .execute(&mut *self.tx)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if violates(&error, UNIQUE_VIOLATION, "invoices_pkey") => {
                Err(StoreError::AlreadyExists { what })
            }
            Err(error) => Err(invoice_write_error(&what, error)),
        }
    }

    async fn load_invoice(&mut self, id: InvoiceId) -> Result<Option<Invoice>, StoreError> {
        let sql = concat!("SELECT ", columns!(invoice), " FROM invoices WHERE id = $1 FOR NO KEY UPDATE");
        let row = sqlx::query(sql).bind(id.as_uuid()).fetch_optional(&mut *self.tx).await;
        decode_optional(row, "invoice", rows::invoice)
    }

    async fn save_invoice(&mut self, invoice: &Invoice) -> Result<(), StoreError> {
        let what = format!("invoice {}", invoice.id);
        let updated = sqlx::query(
            "UPDATE invoices SET tenant_id = $3, company_id = $4, number = $5, currency = $6, status = $7, \
             public_token_hash = $8, settled_by = $9, created_at = $10, body = $11, version = version + 1 \
             WHERE id = $1 AND version = $2",
        )
        .bind(invoice.id.as_uuid())
        .bind(to_bigint(invoice.version, "invoice version")?)
        .bind(invoice.tenant_id.as_uuid())
        .bind(invoice.company_id.as_uuid())
        .bind(&invoice.number)
        .bind(invoice.currency.code())
        .bind(invoice.status().as_str())
        .bind(invoice.public_token_hash().map(|hash| hash.as_bytes().to_vec()))
        .bind(invoice.settled_by().map(|id| id.as_uuid()))
        .bind(invoice.created_at)
        .bind(Json(invoice))
        .execute(&mut *self.tx)
        .await
        .map_err(|error| invoice_write_error(&what, error))?;
        if updated.rows_affected() == 0 {
            return Err(self.version_failure("SELECT 1 FROM invoices WHERE id = $1", invoice.id.as_uuid(), what).await);
        }
        Ok(())
    }

    async fn insert_payment(&mut self, payment: &Payment) -> Result<PaymentInsert, StoreError> {
        let what = format!("payment {}", payment.id);
        if let Some(reference) = &payment.reference {
            let owner = self.claim_reference(payment, reference).await?;
            if owner != payment.id {
                return match select_payment(&mut *self.tx, owner).await? {
                    Some(existing) => Ok(PaymentInsert::ReferenceTaken(Box::new(existing))),
                    None => Err(StoreError::Conflict { what: format!("payment with reference {reference}") }),
                };
            }
        }

        let inserted = sqlx::query(
            "INSERT INTO payments (id, tenant_id, invoice_id, provider, reference, status, amount, refunded, currency, \
             overpayment, created_at, updated_at, version, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(payment.id.as_uuid())
        .bind(payment.tenant_id.as_uuid())
        .bind(payment.invoice_id.as_uuid())
        .bind(payment.provider.as_str())
        .bind(payment.reference.as_ref().map(ProviderReference::as_str))
        .bind(payment.status().as_str())
        .bind(payment.amount.amount())
        .bind(payment.refunded().amount())
        .bind(payment.amount.currency().code())
        .bind(payment.overpayment)
        .bind(payment.created_at)
        .bind(payment.updated_at)
        .bind(to_bigint(payment.version, "payment version")?)
        .bind(Json(payment))
        .execute(&mut *self.tx)
        .await;
        match inserted {
            Ok(_) => {
                self.remember_reference(payment);
                Ok(PaymentInsert::Inserted)
            }
            Err(error) if violates(&error, UNIQUE_VIOLATION, "payments_pkey") => {
                Err(StoreError::AlreadyExists { what })
            }
            Err(error) => Err(store_error(&what, error)),
        }
    }

    async fn load_payment(&mut self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        let sql = concat!("SELECT ", columns!(payment), " FROM payments WHERE id = $1 FOR NO KEY UPDATE");
        let row = sqlx::query(sql).bind(id.as_uuid()).fetch_optional(&mut *self.tx).await;
        let payment = decode_optional(row, "payment", rows::payment)?;
        if let Some(payment) = &payment {
            self.remember_reference(payment);
        }
        Ok(payment)
    }

    async fn peek_payment(&mut self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        let payment = select_payment(&mut *self.tx, id).await?;
        if let Some(payment) = &payment {
            self.remember_reference(payment);
        }
        Ok(payment)
    }

    async fn find_payment_id(
        &mut self,
        provider: &ProviderName,
        reference: &ProviderReference,
    ) -> Result<Option<PaymentId>, StoreError> {
        let found = sqlx::query_scalar::<_, uuid::Uuid>(
            "SELECT payment_id FROM payment_references WHERE provider = $1 AND reference = $2",
        )
        .bind(provider.as_str())
        .bind(reference.as_str())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(|error| store_error(&format!("payment with reference {reference}"), error))?;
        Ok(found.map(PaymentId::from_uuid))
    }

    async fn payments_for_invoice(&mut self, invoice: InvoiceId) -> Result<Vec<Payment>, StoreError> {
        select_payments_for_invoice(&mut *self.tx, invoice).await
    }

    async fn save_payment(&mut self, payment: &Payment) -> Result<(), StoreError> {
        let what = format!("payment {}", payment.id);
        if let Some(reference) = &payment.reference {
            if self.owned_references.get(&payment.id) != Some(reference) {
                let owner = self.claim_reference(payment, reference).await?;
                if owner != payment.id {
                    return Err(StoreError::Constraint {
                        constraint: format!("provider reference {reference} belongs to another payment"),
                    });
                }
            }
        }

        let updated = sqlx::query(
            "UPDATE payments SET tenant_id = $3, invoice_id = $4, provider = $5, reference = $6, status = $7, \
             amount = $8, refunded = $9, currency = $10, overpayment = $11, created_at = $12, updated_at = $13, \
             body = $14, version = version + 1 WHERE id = $1 AND version = $2",
        )
        .bind(payment.id.as_uuid())
        .bind(to_bigint(payment.version, "payment version")?)
        .bind(payment.tenant_id.as_uuid())
        .bind(payment.invoice_id.as_uuid())
        .bind(payment.provider.as_str())
        .bind(payment.reference.as_ref().map(ProviderReference::as_str))
        .bind(payment.status().as_str())
        .bind(payment.amount.amount())
        .bind(payment.refunded().amount())
        .bind(payment.amount.currency().code())
        .bind(payment.overpayment)
        .bind(payment.created_at)
        .bind(payment.updated_at)
        .bind(Json(payment))
        .execute(&mut *self.tx)
        .await
        .map_err(|error| store_error(&what, error))?;
        if updated.rows_affected() == 0 {
            return Err(self.version_failure("SELECT 1 FROM payments WHERE id = $1", payment.id.as_uuid(), what).await);
        }
        self.remember_reference(payment);
        Ok(())
    }

    async fn load_account(&mut self, tenant: TenantId) -> Result<AccountSnapshot, StoreError> {
        if let Some(account) = self.lock_account(tenant).await? {
            return Ok(account);
        }
        self.ensure_account(tenant).await?;
        match self.lock_account(tenant).await? {
            Some(account) => Ok(account),
            None => Err(StoreError::Conflict { what: format!("account of tenant {tenant}") }),
        }
    }

    async fn invoice_credits(&mut self, invoice: InvoiceId) -> Result<InvoiceCredits, StoreError> {
        let what = format!("credits of invoice {invoice}");
        let (granted, reversed): (i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(abs(amount)) FILTER (WHERE kind = 'grant'), 0)::bigint, \
             coalesce(sum(abs(amount)) FILTER (WHERE kind = 'reversal'), 0)::bigint \
             FROM ledger_entries WHERE invoice_id = $1",
        )
        .bind(invoice.as_uuid())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|error| store_error(&what, error))?;
        Ok(InvoiceCredits { granted: from_bigint(granted, &what)?, reversed: from_bigint(reversed, &what)? })
    }

    async fn append_ledger(&mut self, entry: &LedgerEntry) -> Result<(), StoreError> {
        if self.insert_entry(entry).await? {
            return Ok(());
        }
        self.ensure_account(entry.tenant_id).await?;
        if self.insert_entry(entry).await? {
            return Ok(());
        }
        Err(StoreError::Conflict { what: format!("account of tenant {}", entry.tenant_id) })
    }

    async fn idempotency_record(
        &mut self,
        tenant: TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(idempotency_record),
            " FROM idempotency_keys WHERE tenant_id = $1 AND key = $2"
        );
        let row = sqlx::query(sql).bind(tenant.as_uuid()).bind(key.as_str()).fetch_optional(&mut *self.tx).await;
        decode_optional(row, "idempotency key", rows::idempotency_record)
    }

    async fn insert_idempotency_record(&mut self, record: &IdempotencyRecord) -> Result<(), StoreError> {
        let what = format!("idempotency key {}", record.key);

        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, key, fingerprint, result, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(record.tenant_id.as_uuid())
        .bind(record.key.as_str())
        .bind(record.fingerprint.as_str())
        .bind(Json(&record.result))
        .bind(record.created_at)
        .execute(&mut *self.tx)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if violates(&error, UNIQUE_VIOLATION, "idempotency_keys_pkey") => {
                Err(StoreError::AlreadyExists { what })
            }
            Err(error) => Err(store_error(&what, error)),
        }
    }

    async fn load_hold(&mut self, id: HoldId) -> Result<Option<Hold>, StoreError> {
        let sql = concat!("SELECT ", columns!(hold), " FROM holds WHERE id = $1 FOR NO KEY UPDATE");
        let row = sqlx::query(sql).bind(id.as_uuid()).fetch_optional(&mut *self.tx).await;
        decode_optional(row, "hold", rows::hold)
    }

    async fn expired_open_holds(&mut self, tenant: TenantId, now: OffsetDateTime) -> Result<Vec<Hold>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(hold),
            " FROM holds WHERE tenant_id = $1 AND status = 'open' AND expires_at <= $2 ",
            "ORDER BY expires_at, id FOR NO KEY UPDATE"
        );
        let found = sqlx::query(sql).bind(tenant.as_uuid()).bind(now).fetch_all(&mut *self.tx).await;
        decode_all(found, "expired holds", rows::hold)
    }

    async fn save_hold(&mut self, hold: &Hold) -> Result<(), StoreError> {
        let what = format!("hold {}", hold.id);
        let amount = to_bigint(hold.amount, "hold amount")?;
        let captured =
            hold_captured(hold.status).map(|captured| to_bigint(captured, "captured credits")).transpose()?;
        self.ensure_account(hold.tenant_id).await?;

        // `previous` reads the row as it was before this statement's upsert:
        // every part of one statement sees the same snapshot.
        let previous: Option<String> = sqlx::query_scalar(
            "WITH previous AS (SELECT status FROM holds WHERE id = $1), \
             written AS (INSERT INTO holds (id, tenant_id, amount, status, captured, expires_at, created_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, \
             amount = EXCLUDED.amount, status = EXCLUDED.status, captured = EXCLUDED.captured, \
             expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at, body = EXCLUDED.body RETURNING 1) \
             SELECT (SELECT status FROM previous) FROM written",
        )
        .bind(hold.id.as_uuid())
        .bind(hold.tenant_id.as_uuid())
        .bind(amount)
        .bind(hold_status_name(hold.status))
        .bind(captured)
        .bind(hold.expires_at)
        .bind(hold.created_at)
        .bind(Json(hold))
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|error| store_error(&what, error))?;

        let was_open = previous.as_deref() == Some("open");
        let is_open = hold.status == HoldStatus::Open;
        match (was_open, is_open) {
            (false, true) => self.move_held(hold.tenant_id, amount).await,
            (true, false) => self.move_held(hold.tenant_id, -amount).await,
            _ => Ok(()),
        }
    }

    async fn append_log(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO log_entries (id, tenant_id, invoice_id, payment_id, event_provider, event_id, outcome, \
             attention, resolved_by, at, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(entry.id.as_uuid())
        .bind(entry.tenant_id.map(|id| id.as_uuid()))
        .bind(entry.invoice_id.map(|id| id.as_uuid()))
        .bind(entry.payment_id.map(|id| id.as_uuid()))
        .bind(entry.event.as_ref().map(|key| key.provider.as_str()))
        .bind(entry.event.as_ref().map(|key| key.event_id.as_str()))
        .bind(entry.outcome.as_str())
        .bind(attention_name(entry.attention))
        .bind(resolved_by(entry.attention))
        .bind(entry.at)
        .bind(Json(entry))
        .execute(&mut *self.tx)
        .await
        .map_err(|error| store_error(&format!("log entry {}", entry.id), error))?;
        Ok(())
    }

    async fn resolve_log_for_event(&mut self, event: &EventKey, by: LogEntryId) -> Result<(), StoreError> {
        let sql = "UPDATE log_entries SET attention = 'resolved', resolved_by = $3 \
                   WHERE event_provider = $1 AND event_id = $2 AND attention = 'open' AND id <> $3";
        self.resolve_log(sql, &format!("log entries of event {event}"), ResolveTarget::Event(event), by).await
    }

    async fn resolve_log_for_payment(&mut self, payment: PaymentId, by: LogEntryId) -> Result<(), StoreError> {
        let sql = "UPDATE log_entries SET attention = 'resolved', resolved_by = $2 \
                   WHERE payment_id = $1 AND attention = 'open' AND id <> $2";
        let what = format!("log entries of payment {payment}");
        self.resolve_log(sql, &what, ResolveTarget::Id(payment.as_uuid()), by).await
    }

    async fn resolve_log_entry(&mut self, id: LogEntryId, by: LogEntryId) -> Result<(), StoreError> {
        let sql = "UPDATE log_entries SET attention = 'resolved', resolved_by = $2 \
                   WHERE id = $1 AND attention = 'open' AND id <> $2";
        self.resolve_log(sql, &format!("log entry {id}"), ResolveTarget::Id(id.as_uuid()), by).await
    }

    async fn claim_events(
        &mut self,
        events: &[ProviderEvent],
        now: OffsetDateTime,
    ) -> Result<Vec<InboxClaim>, StoreError> {
        self.claim_many(events, now).await
    }

    async fn peek_payments(&mut self, ids: &[PaymentId]) -> Result<Vec<Payment>, StoreError> {
        self.select_payments(ids, RowLock::None).await
    }

    async fn load_invoices(&mut self, ids: &[InvoiceId]) -> Result<Vec<Invoice>, StoreError> {
        self.lock_invoices(ids).await
    }

    async fn load_payments(&mut self, ids: &[PaymentId]) -> Result<Vec<Payment>, StoreError> {
        self.select_payments(ids, RowLock::ForUpdate).await
    }

    async fn load_accounts(&mut self, tenants: &[TenantId]) -> Result<Vec<AccountSnapshot>, StoreError> {
        self.lock_accounts(tenants).await
    }

    async fn invoice_credits_of(&mut self, invoices: &[InvoiceId]) -> Result<Vec<InvoiceCredits>, StoreError> {
        self.credits_of(invoices).await
    }

    async fn idempotency_records(
        &mut self,
        tenant: TenantId,
        keys: &[IdempotencyKey],
    ) -> Result<Vec<IdempotencyRecord>, StoreError> {
        self.idempotency_many(tenant, keys).await
    }

    async fn write_batch(&mut self, writes: &BatchWrites, now: OffsetDateTime) -> Result<(), StoreError> {
        self.write_many(writes, now).await
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(|error| store_error("committing a transaction", error))
    }
}

/// Maps an invoice write error, naming the public-link rule when it is the one refused.
fn invoice_write_error(what: &str, error: sqlx::Error) -> StoreError {
    if violates(&error, UNIQUE_VIOLATION, "invoices_public_token_hash") {
        return StoreError::Constraint { constraint: "public token hash is unique".into() };
    }
    store_error(what, error)
}
