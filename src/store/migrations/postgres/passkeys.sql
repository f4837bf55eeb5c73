-- People who answer from a browser with a passkey (WebAuthn).
-- Invitations: a single-use enrolment link for `agent`; the secret's
-- SHA-256 (64 hex digits) in `hash`, never the secret. `used_ms` is set by
-- the enrolment it made.
CREATE TABLE tm_invites (
    id          uuid PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    agent       TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    used_ms     BIGINT
);
-- Passkeys: a credential id (base64url) bound to `agent` by the invitation
-- `id`; its COSE public key (base64url) and algorithm (ES256 or EdDSA).
CREATE TABLE tm_passkeys (
    credential  TEXT PRIMARY KEY,
    id          uuid NOT NULL UNIQUE,
    agent       TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    revoked_ms  BIGINT
);
CREATE INDEX tm_passkeys_agent ON tm_passkeys (agent);
-- WebAuthn ceremonies under way: the challenge issued (base64url), what it
-- is for (`enrol`, `signin`, `answer`), the agent and data it is bound to
-- (the invitation id, the answer message). Taken (deleted) once finished;
-- any serve process sharing the store can finish one another began.
CREATE TABLE tm_ceremonies (
    id          uuid PRIMARY KEY,
    kind        TEXT NOT NULL,
    challenge   TEXT NOT NULL,
    agent       TEXT,
    data        TEXT,
    expires_ms  BIGINT NOT NULL
);
-- Browser sessions: the cookie secret's SHA-256 in `hash`, never the
-- secret; the passkey that signed in (the session ends with it), the CSRF
-- token state-changing requests carry.
CREATE TABLE tm_sessions (
    hash        TEXT PRIMARY KEY,
    agent       TEXT NOT NULL,
    credential  TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    ended_ms    BIGINT
);
