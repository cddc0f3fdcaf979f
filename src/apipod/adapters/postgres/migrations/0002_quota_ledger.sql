-- The quota ledger: one counter row per key and budget window (spent plus held), and the reservations
-- that hold part of it until they are settled, released, or expire.

CREATE TABLE quota_windows (
    key_id       text NOT NULL,
    window_name  text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    tokens       bigint NOT NULL DEFAULT 0,
    requests     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, window_name, window_start)
);
CREATE INDEX quota_windows_end_idx ON quota_windows (window_end);

-- holds: [{"w": window_name, "s": window_start, "t": held tokens, "r": held requests, "ct": counts tokens}]
CREATE TABLE quota_reservations (
    id             text PRIMARY KEY,
    key_id         text NOT NULL,
    holds          jsonb NOT NULL,
    tokens         bigint NOT NULL,
    settled_tokens bigint,
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'settled', 'released', 'expired')),
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    closed_at      timestamptz
);
CREATE INDEX quota_reservations_pending_idx ON quota_reservations (expires_at) WHERE state = 'pending';
CREATE INDEX quota_reservations_closed_idx ON quota_reservations (closed_at) WHERE state <> 'pending';
