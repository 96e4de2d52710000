-- Timers of time triggers and occurrences of schedules.

-- One row per rule, record and due instant. A changed date cancels the pending timer and
-- adds one for the new instant; a fired timer stays, so the same instant never fires again.
CREATE TABLE timers (
    rule_id TEXT NOT NULL,
    record_kind TEXT NOT NULL,
    record_id TEXT NOT NULL,
    due_at TEXT NOT NULL,
    rule_version INTEGER NOT NULL,
    -- pending, fired, cancelled, or skipped (due before the rule existed)
    state TEXT NOT NULL,
    fired_at TEXT,
    event_id TEXT,
    PRIMARY KEY (rule_id, record_kind, record_id, due_at)
) WITHOUT ROWID;
-- The scheduler claims pending timers in due order.
CREATE INDEX timers_due ON timers (state, due_at);
CREATE INDEX timers_by_record ON timers (record_kind, record_id);

-- The rule versions whose existing records already have timers.
CREATE TABLE timer_backfills (
    rule_id TEXT PRIMARY KEY,
    rule_version INTEGER NOT NULL
) WITHOUT ROWID;

-- How far each schedule's occurrences have been decided.
CREATE TABLE schedule_cursors (
    rule_id TEXT PRIMARY KEY,
    planned_until TEXT NOT NULL
) WITHOUT ROWID;

-- One row per schedule and instant; the primary key makes each instant run at most once,
-- whatever the number of processes.
CREATE TABLE schedule_occurrences (
    rule_id TEXT NOT NULL,
    scheduled_at TEXT NOT NULL,
    rule_version INTEGER NOT NULL,
    -- started, finished, skipped, missed or buffered
    state TEXT NOT NULL,
    reason TEXT,
    event_id TEXT,
    run_id TEXT,
    job_id TEXT,
    decided_at TEXT NOT NULL,
    finished_at TEXT,
    PRIMARY KEY (rule_id, scheduled_at)
) WITHOUT ROWID;
CREATE INDEX schedule_occurrences_by_state ON schedule_occurrences (rule_id, state, scheduled_at);
