-- Billing reads a year of a contract's time entries at once: through the contract's lines,
-- and through its projects for the entries that name no line. These two indexes carry the
-- fields of that read (`TIME_ENTRY_FIELDS` in the store crate), so SQLite serves it from the
-- index alone, in id order, without visiting the table. That costs a few pages per contract
-- line instead of a page per entry. A query uses them by selecting each field as `fields -> '$.<name>'`.
DROP INDEX IF EXISTS records_by_contract_line;
CREATE INDEX records_by_contract_line ON records (
    kind, json_extract(fields, '$.contract_line'), id, state, version, created_at, updated_at,
    fields -> '$.employee', fields -> '$.date', fields -> '$.hours', fields -> '$.project',
    fields -> '$.contract_line', fields -> '$.billable', fields -> '$.role',
    fields -> '$.invoice')
    WHERE json_extract(fields, '$.contract_line') IS NOT NULL;
CREATE INDEX records_unlined_by_project ON records (
    kind, json_extract(fields, '$.project'), id, state, version, created_at, updated_at,
    json_extract(fields, '$.contract_line'),
    fields -> '$.employee', fields -> '$.date', fields -> '$.hours', fields -> '$.project',
    fields -> '$.contract_line', fields -> '$.billable', fields -> '$.role',
    fields -> '$.invoice')
    WHERE json_extract(fields, '$.project') IS NOT NULL
      AND json_extract(fields, '$.contract_line') IS NULL;
