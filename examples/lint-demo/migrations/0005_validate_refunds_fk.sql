-- migrate:up
-- Validated in its own migration (its own transaction): SHARE UPDATE EXCLUSIVE, reads and writes go on.
ALTER TABLE refunds VALIDATE CONSTRAINT refunds_order_id_fkey;

-- migrate:down
SELECT 1;
