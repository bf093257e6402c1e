-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_status_idx ON invoices (status);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY IF EXISTS invoices_status_idx;
