-- Versions of the firm's billing settings (tax table, default rounding, reverse charge). Each
-- distinct definition is stored once, and the newest version is in force.
CREATE TABLE billing_settings_versions (
    version INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    definition TEXT NOT NULL,
    origin TEXT,
    created_at TEXT NOT NULL
);

-- Billing gathers a contract's time, milestones and invoice lines by contract line, and an
-- invoice's lines and the entries it billed by invoice.
CREATE INDEX records_by_contract_line ON records (kind, json_extract(fields, '$.contract_line'))
    WHERE json_extract(fields, '$.contract_line') IS NOT NULL;
CREATE INDEX records_by_invoice ON records (kind, json_extract(fields, '$.invoice'))
    WHERE json_extract(fields, '$.invoice') IS NOT NULL;
