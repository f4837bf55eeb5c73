-- Signed answers.
-- `signer_sets`: the key sets allowed to sign answers, each stored once and
-- named by its digest: "sha256:" and the SHA-256 (64 lowercase hex digits)
-- of its text, an OpenSSH allowed_signers file in t-minus's canonical form.
-- `scope_signers`: which set is in force for a campaign (scope_id = the
-- campaign's id) or for a standalone event (scope_id = the event's id).
-- `nonces`: the nonce of every signed answer accepted, so that no signed
-- message is accepted twice.
CREATE TABLE tm_signer_sets (
    digest TEXT PRIMARY KEY,
    text   TEXT NOT NULL
);
CREATE TABLE tm_scope_signers (
    scope_id TEXT PRIMARY KEY,
    digest   TEXT NOT NULL REFERENCES tm_signer_sets (digest)
);
CREATE TABLE tm_nonces (
    nonce    TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    at_ms    BIGINT NOT NULL
);
