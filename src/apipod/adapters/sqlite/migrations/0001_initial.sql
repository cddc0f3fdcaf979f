-- apipod's embedded schema, version 1. Times are fixed-width UTC ISO 8601 text (text order = time order).

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    digest       TEXT NOT NULL UNIQUE,  -- hex SHA-256 of the plaintext; the plaintext is never stored
    prefix       TEXT NOT NULL,
    name         TEXT NOT NULL,
    plan         TEXT NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT
);
CREATE INDEX api_keys_created_at ON api_keys (created_at);

CREATE TABLE upstreams (
    name            TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    base_url        TEXT NOT NULL DEFAULT '',
    headers         TEXT NOT NULL DEFAULT '{}',  -- JSON object
    connect_timeout REAL NOT NULL,
    read_timeout    REAL NOT NULL,
    options         TEXT NOT NULL DEFAULT '{}'   -- JSON object of type-specific settings
);

CREATE TABLE upstream_accounts (
    upstream TEXT NOT NULL REFERENCES upstreams (name) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    secret   TEXT NOT NULL,
    project  TEXT,
    PRIMARY KEY (upstream, idx)
);

CREATE TABLE upstream_models (
    name            TEXT PRIMARY KEY,
    upstream        TEXT NOT NULL REFERENCES upstreams (name),
    upstream_model  TEXT NOT NULL,
    rpm             INTEGER,
    tpm             INTEGER,
    rpd             INTEGER,
    max_concurrency INTEGER
);

CREATE TABLE plans (
    name            TEXT PRIMARY KEY,
    routes          TEXT NOT NULL,  -- JSON [{model, weight}]
    aliases         TEXT NOT NULL,  -- JSON [{name, routes: [{model, weight}]}]
    budgets         TEXT NOT NULL,  -- JSON [{window, tokens, requests}]
    strict_models   INTEGER NOT NULL DEFAULT 0,
    rpm             INTEGER,
    max_concurrency INTEGER
);

-- What is spent plus held per key and budget window.
CREATE TABLE quota_windows (
    key_id       TEXT NOT NULL,
    window_name  TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end   TEXT NOT NULL,
    tokens       INTEGER NOT NULL DEFAULT 0,
    requests     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, window_name, window_start)
) WITHOUT ROWID;
CREATE INDEX quota_windows_end ON quota_windows (window_end);

CREATE TABLE quota_reservations (
    id             TEXT PRIMARY KEY,
    key_id         TEXT NOT NULL,
    tokens         INTEGER NOT NULL,
    holds          TEXT NOT NULL,  -- JSON [[window, start, tokens, requests, counts_tokens], ...]
    reserved_at    TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'settled', 'released')),
    settled_tokens INTEGER
);
CREATE INDEX quota_reservations_expiry ON quota_reservations (state, expires_at);

CREATE TABLE usage_records (
    id                          INTEGER PRIMARY KEY,
    request_id                  TEXT NOT NULL,
    key_id                      TEXT NOT NULL,
    user                        TEXT NOT NULL,
    requested_model             TEXT NOT NULL,
    routed_model                TEXT NOT NULL,
    upstream                    TEXT NOT NULL,
    status                      TEXT NOT NULL,
    token_count                 INTEGER NOT NULL,
    input_tokens                INTEGER NOT NULL,
    output_tokens               INTEGER NOT NULL,
    cached_input_tokens         INTEGER NOT NULL,
    cache_creation_input_tokens INTEGER NOT NULL,
    reasoning_tokens            INTEGER NOT NULL,
    latency_ms                  REAL NOT NULL,
    ttft_ms                     REAL,
    error                       TEXT,
    timestamp                   TEXT NOT NULL,
    attempts                    TEXT NOT NULL DEFAULT '[]'  -- JSON [{model, account, outcome}]
);
CREATE INDEX usage_records_timestamp ON usage_records (timestamp);
CREATE INDEX usage_records_key_timestamp ON usage_records (key_id, timestamp);
CREATE INDEX usage_records_request_id ON usage_records (request_id);
