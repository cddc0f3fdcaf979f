-- Upstream bounds: how long to wait for the first event and for the whole call, and the largest SSE event
-- and non-streamed answer to accept (defaults as in the domain's Timeouts and Upstream).

ALTER TABLE upstreams ADD COLUMN first_event_timeout REAL NOT NULL DEFAULT 120.0;
ALTER TABLE upstreams ADD COLUMN total_timeout REAL NOT NULL DEFAULT 1800.0;
ALTER TABLE upstreams ADD COLUMN max_event_bytes INTEGER NOT NULL DEFAULT 4194304;
ALTER TABLE upstreams ADD COLUMN max_response_bytes INTEGER NOT NULL DEFAULT 16777216;

-- A fixed budget window of 0 hours used to be accepted and then failed every request of its plan; windows
-- are now 1 hour or longer, so such a budget never limited anything and is dropped.
UPDATE plans
SET budgets = (
    SELECT json_group_array(json(value)) FROM json_each(plans.budgets)
    WHERE json_extract(value, '$.window') <> '0h'
)
WHERE EXISTS (SELECT 1 FROM json_each(plans.budgets) WHERE json_extract(value, '$.window') = '0h');
