-- migrate:up
-- VALIDATE takes SHARE UPDATE EXCLUSIVE: reads and writes go on while it scans.
ALTER TABLE payments VALIDATE CONSTRAINT payments_invoice_fk;

-- migrate:down
-- A validated constraint cannot be made NOT VALID again; re-create it as it was.
ALTER TABLE payments DROP CONSTRAINT payments_invoice_fk;
ALTER TABLE payments ADD CONSTRAINT payments_invoice_fk
    FOREIGN KEY (invoice_id) REFERENCES invoices (id) NOT VALID;
