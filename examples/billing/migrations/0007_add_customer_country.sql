-- migrate:up
-- A new column with a constant default is a catalog change (no rewrite).
ALTER TABLE customers ADD COLUMN country char(2) DEFAULT 'DE';
-- NOT NULL the safe way: a NOT VALID check now (no scan), validated in 0008.
ALTER TABLE customers ADD CONSTRAINT customers_country_not_null
    CHECK (country IS NOT NULL) NOT VALID;

-- migrate:down
ALTER TABLE customers DROP COLUMN country;
