-- Responses API responses kept for `store: true` (GET /v1/responses/{id}, previous_response_id), scoped to
-- the key that made them. json, not jsonb: the text is kept as written (key order, and \u0000 escapes that
-- jsonb refuses), and nothing ever queries inside it.

CREATE TABLE stored_responses (
    id         text PRIMARY KEY,
    key_id     text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    response   json NOT NULL,
    items      json NOT NULL
);
CREATE INDEX stored_responses_key_idx ON stored_responses (key_id);
CREATE INDEX stored_responses_expires_idx ON stored_responses (expires_at);
