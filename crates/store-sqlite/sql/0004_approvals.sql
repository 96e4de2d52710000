-- Versions of approval policies: each distinct definition is stored once, and a request keeps
-- the version it started under.
CREATE TABLE approval_policy_versions (
    policy_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    hash TEXT NOT NULL,
    definition TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (policy_id, version)
);

-- Approval requests are found by what they are about, and steps by their request.
CREATE INDEX records_by_approval_key ON records (kind, json_extract(fields, '$.key'))
    WHERE kind = 'approval_request';
CREATE INDEX records_by_subject ON records (kind, json_extract(fields, '$.subject_id'))
    WHERE kind = 'approval_request';
CREATE INDEX records_by_request ON records (kind, json_extract(fields, '$.request'))
    WHERE kind = 'approval_step';
