-- Migration 0004: customers get a phone number (its rollback lives in rollback/).
ALTER TABLE customers ADD COLUMN phone TEXT;
