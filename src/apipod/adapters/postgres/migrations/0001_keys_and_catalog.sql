-- Keys (stored as a SHA-256 digest plus a display prefix) and the catalog: upstreams with their account
-- pools, upstream models with limits, plans with weighted routes, aliases and budgets.
-- The seq columns keep insertion order, so a snapshot lists things in the order they were first created.

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    digest       text NOT NULL UNIQUE,
    prefix       text NOT NULL,
    name         text NOT NULL,
    plan         text NOT NULL,
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_created_idx ON api_keys (created_at, id);

CREATE TABLE upstreams (
    name            text PRIMARY KEY,
    kind            text NOT NULL,
    base_url        text NOT NULL DEFAULT '',
    headers         jsonb NOT NULL DEFAULT '{}',
    connect_timeout double precision NOT NULL,
    read_timeout    double precision NOT NULL,
    options         jsonb NOT NULL DEFAULT '{}',
    seq             bigint GENERATED ALWAYS AS IDENTITY
);

-- The account pool of an upstream; secret is an API key, a GitHub token or a refresh token.
CREATE TABLE upstream_accounts (
    upstream text NOT NULL REFERENCES upstreams (name) ON DELETE CASCADE,
    idx      integer NOT NULL,
    secret   text NOT NULL,
    project  text,
    PRIMARY KEY (upstream, idx)
);

CREATE TABLE upstream_models (
    name            text PRIMARY KEY,
    upstream        text NOT NULL REFERENCES upstreams (name),
    upstream_model  text NOT NULL,
    rpm             integer,
    tpm             integer,
    rpd             integer,
    max_concurrency integer,
    seq             bigint GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE plans (
    name            text PRIMARY KEY,
    strict_models   boolean NOT NULL DEFAULT false,
    rpm             integer,
    max_concurrency integer,
    seq             bigint GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE plan_aliases (
    plan     text NOT NULL REFERENCES plans (name) ON DELETE CASCADE,
    name     text NOT NULL,
    position integer NOT NULL,
    PRIMARY KEY (plan, name)
);

-- alias = '' is the plan's default mix; otherwise the routes of that alias.
CREATE TABLE plan_routes (
    plan     text NOT NULL REFERENCES plans (name) ON DELETE CASCADE,
    alias    text NOT NULL DEFAULT '',
    position integer NOT NULL,
    model    text NOT NULL REFERENCES upstream_models (name),
    weight   double precision NOT NULL,
    PRIMARY KEY (plan, alias, position)
);

-- window_name is Window.name: minute, hour, day, week, month, or "<N>h".
CREATE TABLE plan_budgets (
    plan        text NOT NULL REFERENCES plans (name) ON DELETE CASCADE,
    position    integer NOT NULL,
    window_name text NOT NULL,
    tokens      bigint,
    requests    bigint,
    PRIMARY KEY (plan, position)
);
