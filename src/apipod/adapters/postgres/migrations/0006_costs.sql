-- Cost accounting. Prices are exact decimals; usage rows keep their cost as numeric; the ledger counts
-- money as bigint units of 10^-10 of the catalog's currency (domain/pricing.py COST_QUANTUM), like tokens.

ALTER TABLE upstream_models
    ADD COLUMN input_price       numeric,
    ADD COLUMN output_price      numeric,
    ADD COLUMN cache_read_price  numeric,
    ADD COLUMN cache_write_price numeric;

ALTER TABLE plan_budgets ADD COLUMN cost numeric;

-- One row: the catalog's currency, and a version every catalog write bumps, so each process notices another's
-- change with one tiny read at most once a second.
CREATE TABLE catalog_meta (
    id       integer PRIMARY KEY CHECK (id = 1),
    currency text NOT NULL DEFAULT 'USD',
    version  bigint NOT NULL DEFAULT 0
);
INSERT INTO catalog_meta (id) VALUES (1);

ALTER TABLE quota_windows ADD COLUMN cost bigint NOT NULL DEFAULT 0;
ALTER TABLE quota_reservations
    ADD COLUMN cost         bigint NOT NULL DEFAULT 0,
    ADD COLUMN settled_cost bigint;

ALTER TABLE usage_logs
    ADD COLUMN plan text NOT NULL DEFAULT '',
    ADD COLUMN cost numeric NOT NULL DEFAULT 0;
CREATE INDEX usage_logs_plan_idx ON usage_logs (plan, "timestamp" DESC, id DESC);
CREATE INDEX usage_logs_requested_idx ON usage_logs (requested_model, "timestamp" DESC, id DESC);
CREATE INDEX usage_logs_routed_idx ON usage_logs (routed_model, "timestamp" DESC, id DESC);
CREATE INDEX usage_logs_provider_idx ON usage_logs ((split_part(upstream_provider, '/', 1)), "timestamp" DESC);
