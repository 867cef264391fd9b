-- The provider-event inbox and the payment log.
--
-- The inbox holds each verified provider event once: its primary key is
-- (provider, event id), so a redelivered event finds the first row and
-- concurrent deliveries of one event wait for each other on that key. The
-- normalised event is kept whole in `event` (`jsonb`); it never holds a raw
-- payload. `payment_id` and `reference` copy the event's match fields so
-- that the unresolved events of a payment are found through an index.
--
-- The log records every event and decision. `attention` is 'open' while a
-- person must act and 'resolved' once a later entry (`resolved_by`) settled
-- it; partial indexes on open entries back the reconciliation listings, so
-- they stay small however long the log grows. `seq` orders the log by
-- insertion. Entries name ids without foreign keys on purpose: an unmatched
-- event is logged with whatever ids it carried, even ids the store never saw.

CREATE TABLE inbox (
    provider    text NOT NULL,
    event_id    text NOT NULL,
    state       text NOT NULL CHECK (state IN ('done', 'unresolved')),
    attempts    integer NOT NULL CHECK (attempts >= 0),
    payment_id  uuid,
    reference   text,
    received_at timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    event       jsonb NOT NULL,
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX inbox_unresolved_payment ON inbox (payment_id, received_at) WHERE state = 'unresolved';
CREATE INDEX inbox_unresolved_reference ON inbox (provider, reference, received_at) WHERE state = 'unresolved';

CREATE TABLE log_entries (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             uuid NOT NULL UNIQUE,
    tenant_id      uuid,
    invoice_id     uuid,
    payment_id     uuid,
    event_provider text,
    event_id       text,
    outcome        text NOT NULL CHECK (outcome IN
                       ('applied', 'duplicate', 'ignored', 'rejected', 'unmatched', 'parked', 'failed')),
    attention      text NOT NULL CHECK (attention IN ('not_needed', 'open', 'resolved')),
    resolved_by    uuid,
    at             timestamptz NOT NULL,
    body           jsonb NOT NULL,
    CHECK ((attention = 'resolved') = (resolved_by IS NOT NULL)),
    CHECK ((event_provider IS NULL) = (event_id IS NULL))
);
CREATE INDEX log_entries_tenant ON log_entries (tenant_id, seq);
CREATE INDEX log_entries_invoice ON log_entries (invoice_id, seq);
CREATE INDEX log_entries_payment ON log_entries (payment_id, seq);
CREATE INDEX log_entries_open ON log_entries (seq) WHERE attention = 'open';
CREATE INDEX log_entries_open_event ON log_entries (event_provider, event_id) WHERE attention = 'open';
CREATE INDEX log_entries_open_payment ON log_entries (payment_id) WHERE attention = 'open';
