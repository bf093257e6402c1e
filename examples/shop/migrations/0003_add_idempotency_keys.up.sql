-- Migration 0003: idempotency keys for order placement (the .up.sql/.down.sql layout).
CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY,
    order_id    INTEGER REFERENCES orders (id),
    created_at  TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Keep an audit trail of status changes; the trigger body holds semicolons of its own.
CREATE TABLE order_status_changes (
    order_id    INTEGER NOT NULL,
    old_status  TEXT NOT NULL,
    new_status  TEXT NOT NULL,
    changed_at  TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TRIGGER orders_status_audit AFTER UPDATE OF status ON orders
WHEN OLD.status <> NEW.status
BEGIN
    INSERT INTO order_status_changes (order_id, old_status, new_status)
    VALUES (NEW.id, OLD.status, NEW.status);
END;
