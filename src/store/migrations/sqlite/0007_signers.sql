-- Signed answers.
-- `signer_sets`: the key sets allowed to sign answers, each stored once and
-- named by its digest: "sha256:" and the SHA-256 (64 lowercase hex digits)
-- of its text, an OpenSSH allowed_signers file in t-minus's canonical form.
-- `scope_signers`: which set is in force for a campaign (scope_id = the
-- campaign's id) or for a standalone event (scope_id = the event's id).
-- `nonces`: the nonce of every signed answer accepted, so that no signed
-- message is accepted twice.
CREATE TABLE signer_sets (
    digest TEXT PRIMARY KEY,
    text   TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE scope_signers (
    scope_id TEXT PRIMARY KEY,
    digest   TEXT NOT NULL REFERENCES signer_sets (digest)
) WITHOUT ROWID;
CREATE TABLE nonces (
    nonce    TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    at_ms    INTEGER NOT NULL
) WITHOUT ROWID;
