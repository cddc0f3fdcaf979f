-- Cost accounting. Money is exact everywhere: prices are decimal text (as written in the catalog), and the
-- ledger and usage rows count integers of 10^-10 of the catalog's currency (domain/pricing.py COST_QUANTUM).

ALTER TABLE upstream_models ADD COLUMN input_price TEXT;
ALTER TABLE upstream_models ADD COLUMN output_price TEXT;
ALTER TABLE upstream_models ADD COLUMN cache_read_price TEXT;
ALTER TABLE upstream_models ADD COLUMN cache_write_price TEXT;

-- One row: the catalog's currency, and a version every catalog write bumps, so each process sharing the file
-- notices another's change with one tiny read at most once a second.
CREATE TABLE catalog_meta (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    currency TEXT NOT NULL DEFAULT 'USD',
    version  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO catalog_meta (id) VALUES (1);

ALTER TABLE quota_windows ADD COLUMN cost INTEGER NOT NULL DEFAULT 0;
ALTER TABLE quota_reservations ADD COLUMN cost INTEGER NOT NULL DEFAULT 0;
ALTER TABLE quota_reservations ADD COLUMN settled_cost INTEGER;

ALTER TABLE usage_records ADD COLUMN plan TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_records ADD COLUMN cost INTEGER NOT NULL DEFAULT 0;
CREATE INDEX usage_records_plan_timestamp ON usage_records (plan, timestamp);
CREATE INDEX usage_records_requested_timestamp ON usage_records (requested_model, timestamp);
CREATE INDEX usage_records_routed_timestamp ON usage_records (routed_model, timestamp);
CREATE INDEX usage_records_upstream_timestamp ON usage_records (upstream, timestamp);
