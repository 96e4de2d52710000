-- Versions of the firm's control settings and project templates. Each distinct definition is
-- stored once, and the newest version is in force for every command on the database.
CREATE TABLE IF NOT EXISTS control_settings_versions (
    version INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    definition TEXT NOT NULL,
    origin TEXT,
    created_at TEXT NOT NULL
);

-- Staffing reads allocations and leaves by person, and handoff finds the project of a deal.
CREATE INDEX IF NOT EXISTS records_by_opportunity ON records (kind, json_extract(fields, '$.opportunity'))
    WHERE json_extract(fields, '$.opportunity') IS NOT NULL;
