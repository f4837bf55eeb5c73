-- Delegations: `from_agent` lets `to_agent` answer for it, for one campaign
-- (`campaign_id`) or everywhere (NULL), until `until_ms` or until revoked
-- (`revoked_ms`), whichever comes first. A signed delegation keeps its
-- message and armored signature. Audit entries name the agent acted for
-- (`on_behalf_of`) when an agent answered for another.
CREATE TABLE delegations (
    id          BLOB PRIMARY KEY,
    from_agent  TEXT NOT NULL,
    to_agent    TEXT NOT NULL,
    campaign_id BLOB,
    created_ms  INTEGER NOT NULL,
    until_ms    INTEGER,
    revoked_ms  INTEGER,
    message     TEXT,
    signature   TEXT
) WITHOUT ROWID;
CREATE INDEX delegations_pair ON delegations (from_agent, to_agent);
ALTER TABLE audit ADD COLUMN on_behalf_of TEXT;

-- Escalation steps of an event and how many were applied (JSON), NULL for
-- an event without; `fire_ms` is then the sooner of the fire time and the
-- next step's due time.
ALTER TABLE events ADD COLUMN escalation TEXT;
