-- One row per request: the original project's usage_logs columns (user, requested_model, routed_model,
-- upstream_provider, status, token_count, input_tokens, output_tokens, timestamp) plus what billing and
-- debugging need. row_id is chosen by the writer so a batch retried after a lost acknowledgement is not
-- counted twice.

CREATE TABLE usage_logs (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    row_id                      uuid NOT NULL UNIQUE,
    request_id                  text NOT NULL,
    key_id                      text NOT NULL,
    user_name                   text NOT NULL,
    requested_model             text NOT NULL,
    routed_model                text NOT NULL DEFAULT '',
    upstream_provider           text NOT NULL DEFAULT '',
    status                      text NOT NULL,
    token_count                 bigint NOT NULL DEFAULT 0,
    input_tokens                bigint NOT NULL DEFAULT 0,
    output_tokens               bigint NOT NULL DEFAULT 0,
    cached_input_tokens         bigint NOT NULL DEFAULT 0,
    cache_creation_input_tokens bigint NOT NULL DEFAULT 0,
    reasoning_tokens            bigint NOT NULL DEFAULT 0,
    latency_ms                  double precision NOT NULL DEFAULT 0,
    ttft_ms                     double precision,
    error                       text,
    attempts                    jsonb NOT NULL DEFAULT '[]',
    "timestamp"                 timestamptz NOT NULL
);
CREATE INDEX usage_logs_timestamp_idx ON usage_logs ("timestamp" DESC, id DESC);
CREATE INDEX usage_logs_key_idx ON usage_logs (key_id, "timestamp" DESC, id DESC);
