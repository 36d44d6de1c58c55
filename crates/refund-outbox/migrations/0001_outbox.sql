-- refund-outbox schema, version 1. Applied by `refund_outbox::migrate` inside one transaction,
-- under an advisory lock, and recorded in refund_outbox_migrations. Never edit a released
-- migration: add the next one.

-- One row per refund the application decided on. `reference` is the merchant's reference for
-- the refund: unique, so a reference enqueued twice is refused and never refunded twice.
CREATE TABLE refund_outbox_intents (
    id                  bigserial PRIMARY KEY,
    provider            text NOT NULL,
    payment_scope       text NOT NULL CHECK (payment_scope IN ('payment', 'item')),
    payment_id          text NOT NULL,
    payment_parent      text,
    amount              numeric NOT NULL CHECK (amount > 0),
    currency            text NOT NULL,
    reason              text,
    reference           text NOT NULL,
    -- pending: never sent. unknown: a request may have reached the provider (an attempt is
    -- out, or its outcome was unknown); reconciled by a lookup before anything is resent.
    -- retry_later: refused for now or not reached; sent again after not_before.
    -- refunded, declined: final. failed: nothing was refunded and nothing will be sent
    -- without a person (invalid request, rejected credentials, unknown provider).
    state               text NOT NULL DEFAULT 'pending' CHECK (state IN
                            ('pending', 'unknown', 'retry_later', 'refunded', 'declined', 'failed')),
    -- Not claimed before this time (retry_later, and unknown until its settle time).
    not_before          timestamptz NOT NULL DEFAULT now(),
    -- Refund requests sent, and how many of them the provider refused (for judge_after).
    sends               integer NOT NULL DEFAULT 0,
    refusals            integer NOT NULL DEFAULT 0,
    -- The time of the latest refund attempt, from the database's clock.
    last_sent_at        timestamptz,
    -- The lease: incremented by every claim; a worker writes only under its own claim.
    claim               bigint NOT NULL DEFAULT 0,
    lease_owner         text,
    lease_until         timestamptz,
    provider_reference  text,
    note                text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refund_outbox_intents_reference_key UNIQUE (reference)
);

CREATE INDEX refund_outbox_intents_due ON refund_outbox_intents (not_before, id)
    WHERE state IN ('pending', 'unknown', 'retry_later');

-- One row per request to a provider: a refund (written and committed before the request
-- leaves; an outcome of NULL means no answer was recorded, the worker died or lost its
-- database) or a lookup (written with its verdict).
CREATE TABLE refund_outbox_attempts (
    id                  bigserial PRIMARY KEY,
    intent_id           bigint NOT NULL REFERENCES refund_outbox_intents (id),
    kind                text NOT NULL CHECK (kind IN ('refund', 'lookup')),
    worker              text NOT NULL,
    started_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at         timestamptz,
    outcome             text,
    error_kind          text,
    provider_code       text,
    provider_reference  text,
    note                text
);

CREATE INDEX refund_outbox_attempts_intent ON refund_outbox_attempts (intent_id, id);

-- The pace of each provider's requests, shared by every worker: at most one request per
-- interval_us (0: unlimited), and none before paused_until (set by a rate limit answer).
CREATE TABLE refund_outbox_pacing (
    provider            text PRIMARY KEY,
    interval_us         bigint NOT NULL DEFAULT 0 CHECK (interval_us >= 0),
    next_at             timestamptz NOT NULL DEFAULT '-infinity',
    paused_until        timestamptz NOT NULL DEFAULT '-infinity'
);
