-- migrate:up
CREATE INDEX orders_status_idx ON orders (status);
ALTER TABLE orders ADD COLUMN public_id uuid DEFAULT gen_random_uuid();
ALTER TABLE orders ALTER COLUMN total TYPE numeric(14, 4);
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
ALTER TABLE users RENAME COLUMN email TO email_address;

-- migrate:down
ALTER TABLE users RENAME COLUMN email_address TO email;
