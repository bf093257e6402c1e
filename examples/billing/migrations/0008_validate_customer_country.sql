-- migrate:up
-- In a migration of its own: validating in the same transaction as the ADD COLUMN above would
-- scan the table while that statement's ACCESS EXCLUSIVE lock is still held.
ALTER TABLE customers VALIDATE CONSTRAINT customers_country_not_null;

-- migrate:down
ALTER TABLE customers DROP CONSTRAINT customers_country_not_null;
ALTER TABLE customers ADD CONSTRAINT customers_country_not_null
    CHECK (country IS NOT NULL) NOT VALID;
