-- The shop's own table. The refund outbox's tables are migrated by refund_outbox::sqlx::migrate.
CREATE TABLE IF NOT EXISTS shop_orders (
    id              bigint PRIMARY KEY,
    provider        text NOT NULL,
    payment_scope   text NOT NULL CHECK (payment_scope IN ('payment', 'item')),
    payment_id      text NOT NULL,
    payment_parent  text,
    amount          numeric NOT NULL CHECK (amount > 0),
    currency        text NOT NULL,
    -- paid: nothing asked; returned: the refund intent is in the outbox (same transaction);
    -- refund_completed: SiPay's verified notification said the refund completed.
    status          text NOT NULL DEFAULT 'paid'
                    CHECK (status IN ('paid', 'returned', 'refund_completed')),
    returned_at     timestamptz,
    completed_at    timestamptz
);
