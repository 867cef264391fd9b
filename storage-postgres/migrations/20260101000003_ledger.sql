-- The credit ledger: one account per tenant, append-only entries, holds and
-- idempotency keys.
--
-- Credits are whole units, so amounts are `bigint`, never a floating-point
-- type. An entry's amount is signed and never zero: grants are positive;
-- consumption, captures and reversals are negative.
--
-- `accounts` keeps the running balance (the sum of the tenant's entries) and
-- the credits reserved by open holds, so a writer locks one row instead of
-- summing the ledger. Every entry is inserted in the same statement that
-- moves its account's balance. The CHECK on `accounts` is the rule's last
-- line of defence: the balance never goes below zero, or below minus the
-- tenant's overdraft limit when its policy allows one. Accounts carry no
-- foreign key to `tenants` because the service may read the (empty) account
-- of a tenant it has not seen, as the in-memory store allows.
--
-- Entries, idempotency keys and holds carry no foreign key to `accounts`
-- on purpose: a ledger entry is only ever inserted by the statement that
-- moves its account row (so the row exists), keys and holds are written
-- while the service holds the account's lock, and a foreign-key check per
-- row would double the cost of the hottest path, consumption.
--
-- `id` is the domain's id; `seq` orders entries by insertion for history
-- listings. The domain's `EntryKind` is kept whole in `body`; the
-- columns beside it back lookups and rules. An invoice grants its credits
-- at most once, which the partial unique index on grants enforces.
--
-- An idempotency key is unique per account and stored with the fingerprint
-- of the request that first used it and that request's result.

CREATE TABLE accounts (
    tenant_id       uuid PRIMARY KEY,
    balance         bigint NOT NULL,
    held            bigint NOT NULL CHECK (held >= 0),
    overdraft_limit bigint NOT NULL CHECK (overdraft_limit >= 0),
    CONSTRAINT accounts_balance_floor CHECK (balance >= -overdraft_limit)
);

CREATE TABLE ledger_entries (
    id              uuid PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id       uuid NOT NULL,
    amount          bigint NOT NULL CHECK (amount <> 0),
    kind            text NOT NULL CHECK (kind IN ('grant', 'consumption', 'capture', 'reversal', 'adjustment')),
    invoice_id      uuid,
    payment_id      uuid,
    created_at      timestamptz NOT NULL,
    body            jsonb NOT NULL,
    CHECK ((kind IN ('grant', 'reversal')) = (invoice_id IS NOT NULL AND payment_id IS NOT NULL)),
    CHECK ((kind = 'grant' AND amount > 0)
        OR (kind IN ('consumption', 'capture', 'reversal') AND amount < 0)
        OR kind = 'adjustment')
);
CREATE INDEX ledger_entries_tenant ON ledger_entries (tenant_id, seq);
CREATE INDEX ledger_entries_invoice ON ledger_entries (invoice_id) WHERE invoice_id IS NOT NULL;
CREATE UNIQUE INDEX ledger_entries_one_grant_per_invoice ON ledger_entries (invoice_id) WHERE kind = 'grant';

CREATE TABLE idempotency_keys (
    tenant_id   uuid NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    result      jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE holds (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    status          text NOT NULL CHECK (status IN ('open', 'captured', 'released', 'expired')),
    captured        bigint CHECK (captured >= 0 AND captured <= amount),
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    body            jsonb NOT NULL,
    CHECK ((status = 'captured') = (captured IS NOT NULL))
);
CREATE INDEX holds_tenant ON holds (tenant_id, created_at, id);
-- Backs the search for open holds past their expiry.
CREATE INDEX holds_open_expiry ON holds (tenant_id, expires_at, id) WHERE status = 'open';
