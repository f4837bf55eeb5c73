-- Delegations: `from_agent` lets `to_agent` answer for it, for one campaign
-- (`campaign_id`) or everywhere (NULL), until `until_ms` or until revoked
-- (`revoked_ms`), whichever comes first. A signed delegation keeps its
-- message and armored signature. Audit entries name the agent acted for
-- (`on_behalf_of`) when an agent answered for another.
CREATE TABLE tm_delegations (
    id          uuid PRIMARY KEY,
    from_agent  TEXT NOT NULL,
    to_agent    TEXT NOT NULL,
    campaign_id uuid,
    created_ms  BIGINT NOT NULL,
    until_ms    BIGINT,
    revoked_ms  BIGINT,
    message     TEXT,
    signature   TEXT
);
CREATE INDEX tm_delegations_pair ON tm_delegations (from_agent, to_agent);
ALTER TABLE tm_audit ADD COLUMN on_behalf_of TEXT;

-- Escalation steps of an event and how many were applied (JSON), NULL for
-- an event without; `fire_ms` is then the sooner of the fire time and the
-- next step's due time.
ALTER TABLE tm_events ADD COLUMN escalation TEXT;
