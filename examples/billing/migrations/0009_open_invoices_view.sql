-- migrate:up
CREATE VIEW open_invoices AS
    SELECT i.id, i.customer_id, c.email, i.amount_cents, i.currency, i.issued_at
    FROM invoices i JOIN customers c ON c.id = i.customer_id
    WHERE i.status = 'open';
COMMENT ON VIEW open_invoices IS 'Invoices waiting for payment';

-- migrate:down
DROP VIEW open_invoices;
