-- Records, the event log, mirrors, rules, runs, jobs, findings and tokens.
CREATE TABLE records (
    rowid INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    fields TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (kind, id)
);
CREATE INDEX records_by_state ON records (kind, state, id);
-- Reference lookups used by controls, API filters and billing. They are partial, so a
-- record without the field costs no index entry; a query must spell the expression
-- exactly as here, and `= ?` on it implies the NOT NULL that lets SQLite use the index.
CREATE INDEX records_by_employee ON records (kind, json_extract(fields, '$.employee'))
    WHERE json_extract(fields, '$.employee') IS NOT NULL;
CREATE INDEX records_by_project ON records (kind, json_extract(fields, '$.project'))
    WHERE json_extract(fields, '$.project') IS NOT NULL;
CREATE INDEX records_by_contract ON records (kind, json_extract(fields, '$.contract'))
    WHERE json_extract(fields, '$.contract') IS NOT NULL;
CREATE INDEX records_by_client ON records (kind, json_extract(fields, '$.client'))
    WHERE json_extract(fields, '$.client') IS NOT NULL;

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    record_kind TEXT,
    record_id TEXT,
    record_version INTEGER,
    changes TEXT NOT NULL,
    data TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    cause TEXT,
    correlation TEXT NOT NULL,
    depth INTEGER NOT NULL,
    occurred_at TEXT NOT NULL
);
-- Time filters use the id, a ULID that starts with its timestamp, so no time index is
-- needed; each index here costs every append.
CREATE INDEX events_by_record ON events (record_kind, record_id, seq);
CREATE INDEX events_by_correlation ON events (correlation, seq);

CREATE TABLE external_links (
    system TEXT NOT NULL,
    model TEXT NOT NULL,
    external_id TEXT NOT NULL,
    record_kind TEXT NOT NULL,
    record_id TEXT NOT NULL,
    source_version TEXT,
    PRIMARY KEY (system, model, external_id)
) WITHOUT ROWID;
CREATE INDEX external_links_by_record ON external_links (record_kind, record_id);

CREATE TABLE sync_cursors (
    system TEXT NOT NULL,
    model TEXT NOT NULL,
    cursor TEXT NOT NULL,
    PRIMARY KEY (system, model)
) WITHOUT ROWID;

CREATE TABLE rule_versions (
    rule_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    hash TEXT NOT NULL,
    definition TEXT NOT NULL,
    origin TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT,
    PRIMARY KEY (rule_id, version)
);

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    rule_version INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    record_kind TEXT,
    record_id TEXT,
    status TEXT NOT NULL,
    trigger TEXT NOT NULL,
    condition TEXT,
    inputs TEXT NOT NULL,
    result TEXT NOT NULL,
    actions TEXT NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX runs_by_event ON runs (event_id);
CREATE INDEX runs_by_rule ON runs (rule_id, id);
CREATE INDEX runs_by_record ON runs (record_kind, record_id, id);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    run_id TEXT,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    run_at TEXT NOT NULL,
    lease_until TEXT,
    last_error TEXT,
    replays INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- `<event name>|<key>` of a job waiting for an event.
    wait_key TEXT
);
-- Claims scan due pending jobs, and waiting jobs whose timeout passed, in run_at order.
CREATE INDEX jobs_due ON jobs (state, run_at, id);
CREATE INDEX jobs_waiting ON jobs (wait_key) WHERE wait_key IS NOT NULL;

CREATE TABLE findings (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    control TEXT NOT NULL,
    severity TEXT NOT NULL,
    record_kind TEXT,
    record_id TEXT,
    message TEXT NOT NULL,
    evidence TEXT NOT NULL,
    state TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    resolved_at TEXT
);
CREATE INDEX findings_by_control ON findings (control, state);
CREATE INDEX findings_by_record ON findings (record_kind, record_id);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    employee TEXT,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
