-- Outbound webhook endpoints and deliveries; inbound endpoints, receipts and rejections.
-- Secrets arrive sealed by the webhook crate and are stored as opaque text.

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    sealed_secret TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    events TEXT,                      -- JSON array of event names; NULL accepts every event
    timeout_ms INTEGER NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- One row per delivery (one event for one endpoint), kept up to date by each attempt.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,              -- the webhook-id header of every attempt
    endpoint TEXT NOT NULL,
    event TEXT NOT NULL,
    job TEXT NOT NULL,
    state TEXT NOT NULL,              -- succeeded, retrying, dead, skipped
    attempts INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    resent_from TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint, id);

CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY,
    delivery TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status INTEGER,                   -- NULL when no response came
    error TEXT,
    duration_ms INTEGER NOT NULL,
    succeeded INTEGER NOT NULL,
    at TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX webhook_attempts_delivery ON webhook_attempts (delivery, attempt);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint, at);
CREATE INDEX webhook_attempts_at ON webhook_attempts (at);

CREATE TABLE inbound_endpoints (
    id TEXT PRIMARY KEY,
    sealed_secret TEXT NOT NULL,
    config TEXT NOT NULL,             -- JSON: verification, idempotency, mapping, response mode
    enabled INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- The first response per idempotency key, returned to repeats until expires_at.
CREATE TABLE inbound_receipts (
    endpoint TEXT NOT NULL,
    key TEXT NOT NULL,
    event TEXT,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (endpoint, key)
) STRICT;
CREATE INDEX inbound_receipts_expiry ON inbound_receipts (expires_at);
CREATE INDEX inbound_receipts_received ON inbound_receipts (endpoint, received_at);

CREATE TABLE inbound_rejections (
    id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    status INTEGER NOT NULL,
    body_sha256 TEXT NOT NULL,
    body_bytes INTEGER NOT NULL,
    received_at TEXT NOT NULL
) STRICT;
CREATE INDEX inbound_rejections_endpoint ON inbound_rejections (endpoint, id);
CREATE INDEX inbound_rejections_received ON inbound_rejections (received_at);
