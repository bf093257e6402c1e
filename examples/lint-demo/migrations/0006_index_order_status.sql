-- migrate:up transaction:false
DROP INDEX CONCURRENTLY IF EXISTS orders_placed_at_idx;
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_placed_at_idx ON orders (placed_at);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY IF EXISTS orders_placed_at_idx;
