-- Key rotation with a grace period: the replaced secret's digest stays valid until previous_valid_until.
ALTER TABLE api_keys ADD COLUMN previous_digest text;
ALTER TABLE api_keys ADD COLUMN previous_valid_until timestamptz;
CREATE INDEX api_keys_previous_digest_idx ON api_keys (previous_digest) WHERE previous_digest IS NOT NULL;
