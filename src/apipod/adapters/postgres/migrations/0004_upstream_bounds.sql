-- Upstream bounds: how long to wait for the first event and for the whole call, and the largest SSE event
-- and non-streamed answer to accept (defaults as in the domain's Timeouts and Upstream).

ALTER TABLE upstreams
    ADD COLUMN first_event_timeout double precision NOT NULL DEFAULT 120,
    ADD COLUMN total_timeout       double precision NOT NULL DEFAULT 1800,
    ADD COLUMN max_event_bytes     bigint NOT NULL DEFAULT 4194304,
    ADD COLUMN max_response_bytes  bigint NOT NULL DEFAULT 16777216;

-- A fixed budget window of 0 hours used to be accepted and then failed every request of its plan; windows
-- are now 1 hour or longer, so such a budget never limited anything and is dropped.
DELETE FROM plan_budgets WHERE window_name = '0h';
