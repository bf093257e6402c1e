-- migrate:up
-- Safe on PostgreSQL 11+: constant and stable defaults are stored in the catalog, and widening
-- a varchar is binary-coercible. One ALTER TABLE takes the lock once.
ALTER TABLE orders
    ADD COLUMN status text NOT NULL DEFAULT 'new',
    ADD COLUMN placed_at timestamptz DEFAULT now(),
    ALTER COLUMN note TYPE varchar(500);

-- migrate:down
ALTER TABLE orders DROP COLUMN placed_at, DROP COLUMN status;
