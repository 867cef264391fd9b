-- Invoices and payments.
--
-- Each row keeps the domain object as `body` (`jsonb`, the serde form of
-- `Invoice` or `Payment`) beside typed columns. The typed columns are the
-- ones that back a rule, a lookup or a listing, and they carry the
-- constraints; the store writes both from the same object in one statement
-- and rebuilds the object from `body` plus the `version` column.
--
-- Money is `numeric` with its ISO 4217 currency code beside it, never a
-- floating-point type and never PostgreSQL's `money` type, which is tied to
-- the server's locale. Inside `body` amounts are decimal strings. Invoice
-- rows live only in `body`: the invoice total is derived from its rows and
-- is deliberately not stored, so no column can disagree with the rows.
--
-- `version` is the optimistic concurrency counter: an update names the
-- version it read, and the store bumps it.
--
-- Public link tokens are bearer secrets and are stored only as their
-- SHA-256 hash (`bytea`, exactly 32 bytes), unique across all invoices, so a
-- leaked database yields no working link.
--
-- A provider reference identifies at most one payment per provider.
-- `payment_references` holds every reference a payment has carried (a
-- manual payment keeps its receipt reference after the provider names its
-- own), with (provider, reference) as the primary key, so a repeated start,
-- manual receipt or webhook finds the first payment instead of making a
-- second. `payments.reference` is the payment's current reference.
-- The refunded total never exceeds the amount paid.
--
-- Times are `timestamptz`, which keeps microseconds; `body` keeps the exact
-- values the domain computed.

CREATE TABLE invoices (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    company_id        uuid NOT NULL REFERENCES companies (id),
    number            text NOT NULL,
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status            text NOT NULL CHECK (status IN
                          ('draft', 'open', 'paid', 'partially_refunded', 'refunded', 'disputed', 'void')),
    public_token_hash bytea CHECK (octet_length(public_token_hash) = 32),
    settled_by        uuid,
    created_at        timestamptz NOT NULL,
    version           bigint NOT NULL CHECK (version >= 0),
    body              jsonb NOT NULL,
    -- Only a paid status (or one that follows payment) has a settling payment.
    CHECK ((settled_by IS NOT NULL) = (status IN ('paid', 'partially_refunded', 'refunded', 'disputed')))
);
CREATE UNIQUE INDEX invoices_public_token_hash ON invoices (public_token_hash) WHERE public_token_hash IS NOT NULL;
CREATE INDEX invoices_company ON invoices (tenant_id, company_id, created_at, id);

CREATE TABLE payments (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    invoice_id  uuid NOT NULL REFERENCES invoices (id),
    provider    text NOT NULL,
    reference   text,
    status      text NOT NULL CHECK (status IN
                    ('created', 'pending', 'unknown', 'succeeded', 'failed', 'expired', 'canceled',
                     'partially_refunded', 'refunded', 'disputed', 'dispute_won', 'dispute_lost')),
    amount      numeric NOT NULL CHECK (amount >= 0),
    refunded    numeric NOT NULL CHECK (refunded >= 0 AND refunded <= amount),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    overpayment boolean NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint NOT NULL CHECK (version >= 0),
    body        jsonb NOT NULL
);
CREATE INDEX payments_invoice ON payments (invoice_id, created_at, id);
-- Backs the reconciliation listing of payments that may still change.
CREATE INDEX payments_in_flight ON payments (updated_at, id) WHERE status IN ('created', 'pending', 'unknown');

CREATE TABLE payment_references (
    provider   text NOT NULL,
    reference  text NOT NULL,
    -- Deferred so that a reference can be claimed before its payment row is
    -- written in the same transaction.
    payment_id uuid NOT NULL REFERENCES payments (id) DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY (provider, reference)
);
CREATE INDEX payment_references_payment ON payment_references (payment_id);

-- An invoice is settled by one of its own payments.
ALTER TABLE invoices ADD CONSTRAINT invoices_settled_by FOREIGN KEY (settled_by) REFERENCES payments (id);
