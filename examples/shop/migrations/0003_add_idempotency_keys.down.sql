DROP TRIGGER orders_status_audit;
DROP TABLE order_status_changes;
DROP TABLE idempotency_keys;
