//! The set-wise store methods behind the service's batched use cases.
//!
//! Each method does for many rows in one statement what its single-row
//! counterpart in `tx.rs` does for one: the same locks (`FOR NO KEY UPDATE`,
//! taken in the order the rows are sorted), the same version rule, the same
//! constraints. Arrays travel as bind parameters and are expanded with
//! `unnest ... WITH ORDINALITY`, so inserted rows keep the order the service
//! decided them in. A batch that meets a case the set-wise statement does
//! not cover (a missing account, a payment taking a new provider
//! reference) falls back to the single-row method for that row.

use std::collections::{HashMap, HashSet};

use sqlx::types::Json;
use time::OffsetDateTime;

use billing_domain::apply::InvoiceCredits;
use billing_domain::ledger::{AccountSnapshot, IdempotencyRecord, LedgerEntry};
use billing_domain::log::{InboxClaim, InboxEntry, InboxState, LogEntry};
use billing_domain::store::{BatchWrites, StoreError, StoreTx};
use billing_domain::{
    EventKey, IdempotencyKey, Invoice, InvoiceId, LogEntryId, Payment, PaymentId, ProviderEvent, ProviderReference,
    TenantId,
};

use crate::codec::{
    attention_name, entry_invoice, entry_kind_name, from_bigint, inbox_state_name, resolved_by, to_bigint,
};
use crate::error::{store_error, violates, UNIQUE_VIOLATION};
use crate::read::decode_all;
use crate::rows::{self, columns};
use crate::tx::PgTx;

impl PgTx {
    pub(crate) async fn claim_many(
        &mut self,
        events: &[ProviderEvent],
        now: OffsetDateTime,
    ) -> Result<Vec<InboxClaim>, StoreError> {
        let inserted: Vec<(String, String)> = sqlx::query_as(
            "INSERT INTO inbox (provider, event_id, state, attempts, payment_id, reference, received_at, updated_at, \
             event) SELECT p, e, 'unresolved', 0, pay, r, $6, $6, ev \
             FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::jsonb[]) WITH ORDINALITY \
             AS x(p, e, pay, r, ev, n) ORDER BY n \
             ON CONFLICT (provider, event_id) DO NOTHING RETURNING provider, event_id",
        )
        .bind(events.iter().map(|event| event.provider.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|event| event.event_id.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|event| event.matches.payment_id.map(|id| id.as_uuid())).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|event| event.matches.reference.as_ref().map(ProviderReference::as_str))
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(Json).collect::<Vec<_>>())
        .bind(now)
        .fetch_all(self.connection())
        .await
        .map_err(|error| store_error("claiming a batch of inbox entries", error))?;
        let inserted: HashSet<(String, String)> = inserted.into_iter().collect();

        // The rest were delivered before. A done entry is final and needs no
        // lock; unresolved ones are locked, in key order, for the retry.
        let seen: Vec<&ProviderEvent> = events
            .iter()
            .filter(|event| !inserted.contains(&(event.provider.to_string(), event.event_id.to_string())))
            .collect();
        let mut existing = self.inbox_entries(&seen, InboxLockMany::None).await?;
        let unresolved: Vec<&ProviderEvent> = seen
            .iter()
            .copied()
            .filter(|event| existing.get(&event.key()).is_some_and(|entry| entry.state == InboxState::Unresolved))
            .collect();
        existing.extend(self.inbox_entries(&unresolved, InboxLockMany::ForUpdate).await?);

        let mut claims = Vec::with_capacity(events.len());
        for event in events {
            let key = event.key();
            if inserted.contains(&(key.provider.to_string(), key.event_id.to_string())) {
                claims.push(InboxClaim::New);
                continue;
            }
            let Some(entry) = existing.remove(&key) else {
                return Err(StoreError::Conflict { what: format!("inbox entry {key}") });
            };
            claims.push(match entry.state {
                InboxState::Done => InboxClaim::Done(entry),
                InboxState::Unresolved => InboxClaim::Retry(entry),
            });
        }
        Ok(claims)
    }

    async fn inbox_entries(
        &mut self,
        events: &[&ProviderEvent],
        lock: InboxLockMany,
    ) -> Result<HashMap<EventKey, InboxEntry>, StoreError> {
        if events.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = match lock {
            InboxLockMany::None => concat!(
                "SELECT ",
                columns!(inbox_entry),
                " FROM inbox WHERE (provider, event_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
            ),
            InboxLockMany::ForUpdate => concat!(
                "SELECT ",
                columns!(inbox_entry),
                " FROM inbox WHERE (provider, event_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) ",
                "ORDER BY provider, event_id FOR NO KEY UPDATE"
            ),
        };
        let found = sqlx::query(sql)
            .bind(events.iter().map(|event| event.provider.as_str()).collect::<Vec<_>>())
            .bind(events.iter().map(|event| event.event_id.as_str()).collect::<Vec<_>>())
            .fetch_all(self.connection())
            .await;
        let entries = decode_all(found, "inbox entries", rows::inbox_entry)?;
        Ok(entries.into_iter().map(|entry| (entry.event.key(), entry)).collect())
    }

    pub(crate) async fn select_payments(
        &mut self,
        ids: &[PaymentId],
        lock: RowLock,
    ) -> Result<Vec<Payment>, StoreError> {
        let sql = match lock {
            RowLock::None => concat!("SELECT ", columns!(payment), " FROM payments WHERE id = ANY($1) ORDER BY id"),
            RowLock::ForUpdate => {
                concat!("SELECT ", columns!(payment), " FROM payments WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
            }
        };
        let uuids: Vec<uuid::Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let found = sqlx::query(sql).bind(uuids).fetch_all(self.connection()).await;
        let payments = decode_all(found, "payments", rows::payment)?;
        for payment in &payments {
            self.remember_reference(payment);
        }
        Ok(payments)
    }

    pub(crate) async fn lock_invoices(&mut self, ids: &[InvoiceId]) -> Result<Vec<Invoice>, StoreError> {
        let sql =
            concat!("SELECT ", columns!(invoice), " FROM invoices WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE");
        let uuids: Vec<uuid::Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let found = sqlx::query(sql).bind(uuids).fetch_all(self.connection()).await;
        decode_all(found, "invoices", rows::invoice)
    }

    pub(crate) async fn lock_accounts(&mut self, tenants: &[TenantId]) -> Result<Vec<AccountSnapshot>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(account),
            " FROM accounts WHERE tenant_id = ANY($1) ORDER BY tenant_id FOR NO KEY UPDATE"
        );
        let uuids: Vec<uuid::Uuid> = tenants.iter().map(|id| id.as_uuid()).collect();
        let found = sqlx::query(sql).bind(uuids).fetch_all(self.connection()).await;
        let mut locked: HashMap<TenantId, AccountSnapshot> = decode_all(found, "accounts", rows::account)?
            .into_iter()
            .map(|account| (account.tenant_id, account))
            .collect();

        let mut accounts = Vec::with_capacity(tenants.len());
        for tenant in tenants {
            match locked.remove(tenant) {
                Some(account) => accounts.push(account),
                // An account no entry has touched yet: create it as the single path does.
                None => accounts.push(self.load_account(*tenant).await?),
            }
        }
        Ok(accounts)
    }

    pub(crate) async fn credits_of(&mut self, invoices: &[InvoiceId]) -> Result<Vec<InvoiceCredits>, StoreError> {
        let uuids: Vec<uuid::Uuid> = invoices.iter().map(|id| id.as_uuid()).collect();
        let sums: Vec<(uuid::Uuid, i64, i64)> = sqlx::query_as(
            "SELECT i.id, coalesce(sum(abs(l.amount)) FILTER (WHERE l.kind = 'grant'), 0)::bigint, \
             coalesce(sum(abs(l.amount)) FILTER (WHERE l.kind = 'reversal'), 0)::bigint \
             FROM unnest($1::uuid[]) AS i(id) LEFT JOIN ledger_entries l ON l.invoice_id = i.id GROUP BY i.id",
        )
        .bind(uuids)
        .fetch_all(self.connection())
        .await
        .map_err(|error| store_error("credits of invoices", error))?;
        let mut by_invoice = HashMap::new();
        for (invoice, granted, reversed) in sums {
            let what = format!("credits of invoice {invoice}");
            by_invoice.insert(
                invoice,
                InvoiceCredits { granted: from_bigint(granted, &what)?, reversed: from_bigint(reversed, &what)? },
            );
        }
        Ok(invoices.iter().map(|invoice| by_invoice.get(&invoice.as_uuid()).copied().unwrap_or_default()).collect())
    }

    pub(crate) async fn idempotency_many(
        &mut self,
        tenant: TenantId,
        keys: &[IdempotencyKey],
    ) -> Result<Vec<IdempotencyRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(idempotency_record),
            " FROM idempotency_keys WHERE tenant_id = $1 AND key = ANY($2)"
        );
        let keys: Vec<&str> = keys.iter().map(IdempotencyKey::as_str).collect();
        let found = sqlx::query(sql).bind(tenant.as_uuid()).bind(keys).fetch_all(self.connection()).await;
        decode_all(found, "idempotency keys", rows::idempotency_record)
    }

    pub(crate) async fn write_many(&mut self, writes: &BatchWrites, now: OffsetDateTime) -> Result<(), StoreError> {
        self.save_payments(&writes.payments).await?;
        self.save_invoices(&writes.invoices).await?;
        self.append_entries(&writes.ledger).await?;
        self.insert_idempotency_records(&writes.idempotency).await?;
        self.set_inbox_states(&writes.inbox, now).await?;
        self.append_logs(&writes.log).await?;
        self.resolve_for_events(&writes.resolutions).await
    }

    async fn save_payments(&mut self, payments: &[Payment]) -> Result<(), StoreError> {
        // A payment that takes a new provider reference goes the single-row
        // way, which claims the reference first.
        let (plain, referenced): (Vec<&Payment>, Vec<&Payment>) =
            payments.iter().partition(|payment| self.owns_its_reference(payment));
        for payment in referenced {
            self.save_payment(payment).await?;
        }
        if plain.is_empty() {
            return Ok(());
        }

        let mut versions = Vec::with_capacity(plain.len());
        for payment in &plain {
            versions.push(to_bigint(payment.version, "payment version")?);
        }
        let updated = sqlx::query(
            "UPDATE payments p SET status = x.status, reference = x.reference, refunded = x.refunded, \
             overpayment = x.overpayment, updated_at = x.updated_at, body = x.body, version = p.version + 1 \
             FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::numeric[], $6::boolean[], \
             $7::timestamptz[], $8::jsonb[]) AS x(id, version, status, reference, refunded, overpayment, updated_at, body) \
             WHERE p.id = x.id AND p.version = x.version",
        )
        .bind(plain.iter().map(|payment| payment.id.as_uuid()).collect::<Vec<_>>())
        .bind(versions)
        .bind(plain.iter().map(|payment| payment.status().as_str()).collect::<Vec<_>>())
        .bind(plain.iter().map(|payment| payment.reference.as_ref().map(ProviderReference::as_str)).collect::<Vec<_>>())
        .bind(plain.iter().map(|payment| payment.refunded().amount()).collect::<Vec<_>>())
        .bind(plain.iter().map(|payment| payment.overpayment).collect::<Vec<_>>())
        .bind(plain.iter().map(|payment| payment.updated_at).collect::<Vec<_>>())
        .bind(plain.iter().map(|payment| Json(*payment)).collect::<Vec<_>>())
        .execute(self.connection())
        .await
        .map_err(|error| store_error("saving a batch of payments", error))?;
        expect_rows(updated.rows_affected(), plain.len(), "payments changed by a concurrent writer")
    }

    async fn save_invoices(&mut self, invoices: &[Invoice]) -> Result<(), StoreError> {
        if invoices.is_empty() {
            return Ok(());
        }
        let mut versions = Vec::with_capacity(invoices.len());
        for invoice in invoices {
            versions.push(to_bigint(invoice.version, "invoice version")?);
        }
        let updated = sqlx::query(
            "UPDATE invoices i SET status = x.status, public_token_hash = x.token, settled_by = x.settled_by, \
             body = x.body, version = i.version + 1 \
             FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[], $5::uuid[], $6::jsonb[]) \
             AS x(id, version, status, token, settled_by, body) WHERE i.id = x.id AND i.version = x.version",
        )
        .bind(invoices.iter().map(|invoice| invoice.id.as_uuid()).collect::<Vec<_>>())
        .bind(versions)
        .bind(invoices.iter().map(|invoice| invoice.status().as_str()).collect::<Vec<_>>())
        .bind(
            invoices
                .iter()
                .map(|invoice| invoice.public_token_hash().map(|hash| hash.as_bytes().to_vec()))
                .collect::<Vec<_>>(),
        )
        .bind(invoices.iter().map(|invoice| invoice.settled_by().map(|id| id.as_uuid())).collect::<Vec<_>>())
        .bind(invoices.iter().map(Json).collect::<Vec<_>>())
        .execute(self.connection())
        .await;
        let updated = match updated {
            Ok(done) => done.rows_affected(),
            Err(error) if violates(&error, UNIQUE_VIOLATION, "invoices_public_token_hash") => {
                return Err(StoreError::Constraint { constraint: "public token hash is unique".into() })
            }
            Err(error) => return Err(store_error("saving a batch of invoices", error)),
        };
        expect_rows(updated, invoices.len(), "invoices changed by a concurrent writer")
    }

    /// Inserts entries in order and moves each account by the sum of its
    /// entries, in one statement. Entries whose account row does not exist
    /// yet go the single-row way, which creates it.
    async fn append_entries(&mut self, entries: &[LedgerEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let links: Vec<(Option<uuid::Uuid>, Option<uuid::Uuid>)> =
            entries.iter().map(|entry| entry_invoice(&entry.kind)).collect();
        let inserted: Result<Vec<uuid::Uuid>, sqlx::Error> = sqlx::query_scalar(
            "WITH moved AS (UPDATE accounts a SET balance = a.balance + d.delta \
             FROM (SELECT t, sum(amount)::bigint AS delta FROM unnest($2::uuid[], $3::bigint[]) AS s(t, amount) \
             GROUP BY t) d WHERE a.tenant_id = d.t RETURNING a.tenant_id) \
             INSERT INTO ledger_entries (id, tenant_id, amount, kind, invoice_id, payment_id, created_at, body) \
             SELECT x.id, x.t, x.amount, x.kind, x.inv, x.pay, x.at, x.body \
             FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::uuid[], $6::uuid[], \
             $7::timestamptz[], $8::jsonb[]) WITH ORDINALITY AS x(id, t, amount, kind, inv, pay, at, body, n) \
             WHERE x.t IN (SELECT tenant_id FROM moved) ORDER BY x.n RETURNING id",
        )
        .bind(entries.iter().map(|entry| entry.id.as_uuid()).collect::<Vec<_>>())
        .bind(entries.iter().map(|entry| entry.tenant_id.as_uuid()).collect::<Vec<_>>())
        .bind(entries.iter().map(|entry| entry.amount).collect::<Vec<_>>())
        .bind(entries.iter().map(|entry| entry_kind_name(&entry.kind)).collect::<Vec<_>>())
        .bind(links.iter().map(|(invoice, _)| *invoice).collect::<Vec<_>>())
        .bind(links.iter().map(|(_, payment)| *payment).collect::<Vec<_>>())
        .bind(entries.iter().map(|entry| entry.created_at).collect::<Vec<_>>())
        .bind(entries.iter().map(Json).collect::<Vec<_>>())
        .fetch_all(self.connection())
        .await;
        let inserted: HashSet<uuid::Uuid> = match inserted {
            Ok(ids) => ids.into_iter().collect(),
            Err(error) => return Err(self.ledger_error("a batch of ledger entries", error)),
        };
        for entry in entries.iter().filter(|entry| !inserted.contains(&entry.id.as_uuid())) {
            self.append_ledger(entry).await?;
        }
        Ok(())
    }

    async fn insert_idempotency_records(&mut self, records: &[IdempotencyRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, key, fingerprint, result, created_at) \
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::timestamptz[])",
        )
        .bind(records.iter().map(|record| record.tenant_id.as_uuid()).collect::<Vec<_>>())
        .bind(records.iter().map(|record| record.key.as_str()).collect::<Vec<_>>())
        .bind(records.iter().map(|record| record.fingerprint.as_str()).collect::<Vec<_>>())
        .bind(records.iter().map(|record| Json(&record.result)).collect::<Vec<_>>())
        .bind(records.iter().map(|record| record.created_at).collect::<Vec<_>>())
        .execute(self.connection())
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if violates(&error, UNIQUE_VIOLATION, "idempotency_keys_pkey") => {
                Err(StoreError::AlreadyExists { what: "an idempotency key of the batch".into() })
            }
            Err(error) => Err(store_error("a batch of idempotency keys", error)),
        }
    }

    async fn set_inbox_states(
        &mut self,
        states: &[(EventKey, InboxState)],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if states.is_empty() {
            return Ok(());
        }
        let updated = sqlx::query(
            "UPDATE inbox i SET state = x.state, attempts = LEAST(i.attempts, 2147483646) + 1, updated_at = $4 \
             FROM unnest($1::text[], $2::text[], $3::text[]) AS x(provider, event_id, state) \
             WHERE i.provider = x.provider AND i.event_id = x.event_id",
        )
        .bind(states.iter().map(|(key, _)| key.provider.as_str()).collect::<Vec<_>>())
        .bind(states.iter().map(|(key, _)| key.event_id.as_str()).collect::<Vec<_>>())
        .bind(states.iter().map(|(_, state)| inbox_state_name(*state)).collect::<Vec<_>>())
        .bind(now)
        .execute(self.connection())
        .await
        .map_err(|error| store_error("a batch of inbox states", error))?;
        if usize::try_from(updated.rows_affected()).ok() != Some(states.len()) {
            return Err(StoreError::NotFound { what: "an inbox entry of the batch".into() });
        }
        Ok(())
    }

    async fn append_logs(&mut self, entries: &[LogEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO log_entries (id, tenant_id, invoice_id, payment_id, event_provider, event_id, outcome, \
             attention, resolved_by, at, body) \
             SELECT id, tenant_id, invoice_id, payment_id, event_provider, event_id, outcome, attention, resolved_by, \
             at, body FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], \
             $8::text[], $9::uuid[], $10::timestamptz[], $11::jsonb[]) WITH ORDINALITY \
             AS x(id, tenant_id, invoice_id, payment_id, event_provider, event_id, outcome, attention, resolved_by, at, \
             body, n) ORDER BY n",
        )
        .bind(entries.iter().map(|entry| entry.id.as_uuid()).collect::<Vec<_>>())
        .bind(entries.iter().map(|entry| entry.tenant_id.map(|id| id.as_uuid())).collect::<Vec<_>>())
        .bind(entries.iter().map(|entry| entry.invoice_id.map(|id| id.as_uuid())).collect::<Vec<_>>())
        .bind(entries.iter().map(|entry| entry.payment_id.map(|id| id.as_uuid())).collect::<Vec<_>>())
        .bind(entries.iter().map(|entry| entry.event.as_ref().map(|key| key.provider.as_str())).collect::<Vec<_>>())
        .bind(entries.iter().map(|entry| entry.event.as_ref().map(|key| key.event_id.as_str())).collect::<Vec<_>>())
        .bind(entries.iter().map(|entry| entry.outcome.as_str()).collect::<Vec<_>>())
        .bind(entries.iter().map(|entry| attention_name(entry.attention)).collect::<Vec<_>>())
        .bind(entries.iter().map(|entry| resolved_by(entry.attention)).collect::<Vec<_>>())
        .bind(entries.iter().map(|entry| entry.at).collect::<Vec<_>>())
        .bind(entries.iter().map(Json).collect::<Vec<_>>())
        .execute(self.connection())
        .await
        .map_err(|error| store_error("a batch of log entries", error))?;
        Ok(())
    }

    async fn resolve_for_events(&mut self, resolutions: &[(EventKey, LogEntryId)]) -> Result<(), StoreError> {
        // One resolution per event: a later one for the same event wins, as
        // it would have when run one after the other.
        let mut last: HashMap<&EventKey, LogEntryId> = HashMap::new();
        for (key, by) in resolutions {
            last.insert(key, *by);
        }
        if last.is_empty() {
            return Ok(());
        }
        let (keys, by): (Vec<&EventKey>, Vec<LogEntryId>) = last.into_iter().unzip();
        sqlx::query(
            "UPDATE log_entries l SET attention = 'resolved', resolved_by = x.by \
             FROM unnest($1::text[], $2::text[], $3::uuid[]) AS x(provider, event_id, by) \
             WHERE l.event_provider = x.provider AND l.event_id = x.event_id AND l.attention = 'open' AND l.id <> x.by",
        )
        .bind(keys.iter().map(|key| key.provider.as_str()).collect::<Vec<_>>())
        .bind(keys.iter().map(|key| key.event_id.as_str()).collect::<Vec<_>>())
        .bind(by.iter().map(|by| by.as_uuid()).collect::<Vec<_>>())
        .execute(self.connection())
        .await
        .map_err(|error| store_error("resolving log entries of a batch", error))?;
        Ok(())
    }
}

/// Whether a batched read locks the rows it returns.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RowLock {
    None,
    ForUpdate,
}

#[derive(Debug, Clone, Copy)]
enum InboxLockMany {
    None,
    ForUpdate,
}

/// A versioned batch update that changed fewer rows than it named lost a race.
fn expect_rows(changed: u64, expected: usize, what: &str) -> Result<(), StoreError> {
    if usize::try_from(changed).ok() != Some(expected) {
        return Err(StoreError::Conflict { what: what.to_owned() });
    }
    Ok(())
}
