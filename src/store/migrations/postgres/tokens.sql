-- API tokens of the HTTP service: one row per token, its id as 16 bytes,
-- the secret's SHA-256 (64 hex digits) in `hash`, never the secret. `role` is reader, agent or
-- operator; `expires_ms` and `revoked_ms` are NULL until they apply.
CREATE TABLE tm_tokens (
    id          uuid PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    agent       TEXT NOT NULL,
    role        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT,
    revoked_ms  BIGINT
);
