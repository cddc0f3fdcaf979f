-- Responses API responses kept for `store: true` (GET /v1/responses/{id}, previous_response_id), scoped to
-- the key that made them. response and items are JSON text; times are fixed-width UTC ISO 8601 text, so
-- comparing them as text compares the times.

CREATE TABLE stored_responses (
    id         TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    response   TEXT NOT NULL,
    items      TEXT NOT NULL
);
CREATE INDEX stored_responses_key_idx ON stored_responses (key_id);
CREATE INDEX stored_responses_expires_idx ON stored_responses (expires_at);
