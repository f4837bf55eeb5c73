-- t-minus schema: compact ids and hashes.
-- Every id (campaigns, events, attendees, edges, the log, notifications,
-- signers, nonces) is stored as its 16 bytes (a BLOB) instead of 36
-- characters of text, in each row and each index that holds it; the log's
-- `prev` and `hash` as their 32 bytes instead of 64 hex digits. The order
-- of ids is unchanged: the bytes of a UUID sort as its lowercase hex text.
-- Each table is rebuilt under a new name, filled from the old one (rowids,
-- `seq` numbers and AUTOINCREMENT counters kept), and renamed once the old
-- tables are dropped, children first, so that no cascade runs.
-- `events_unfinished` is gone: `events_listing` orders the same events.
-- A new attendee row carries `open` as its event's state says (the
-- statements that insert attendees write it), so no trigger runs per
-- inserted attendee; `attendees_open_on_state` keeps it in step after.

CREATE TABLE campaigns_new (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    created_ms  INTEGER NOT NULL,
    managed     INTEGER NOT NULL DEFAULT 0,
    anchor_ms   INTEGER,
    revision    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO campaigns_new (rowid, id, name, description, created_ms, managed, anchor_ms, revision)
SELECT rowid, unhex(replace(id, '-', '')), name, description, created_ms, managed, anchor_ms,
       revision
FROM campaigns;

CREATE TABLE events_new (
    id               BLOB PRIMARY KEY,
    campaign_id      BLOB REFERENCES campaigns_new (id) ON DELETE CASCADE,
    campaign_pos     INTEGER,
    name             TEXT,
    kind             TEXT NOT NULL,
    description      TEXT,
    at_ms            INTEGER,
    offset_ms        INTEGER,
    start_ms         INTEGER,
    t_minus_ms       INTEGER NOT NULL,
    defer_ms         INTEGER NOT NULL DEFAULT 0,
    max_defer_ms     INTEGER,
    fire_ms          INTEGER,
    quorum           INTEGER NOT NULL,
    quorum_spec      TEXT NOT NULL,
    fire_policy      TEXT NOT NULL,
    organizer        TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL
        CHECK (state IN ('blocked', 'pending', 'fired', 'missed', 'cancelled')),
    finished_ms      INTEGER,
    created_ms       INTEGER NOT NULL,
    last_response_ms INTEGER,
    groups           TEXT,
    CHECK ((at_ms IS NULL) <> (offset_ms IS NULL)),
    UNIQUE (campaign_id, name)
);
INSERT INTO events_new (rowid, id, campaign_id, campaign_pos, name, kind, description, at_ms,
    offset_ms, start_ms, t_minus_ms, defer_ms, max_defer_ms, fire_ms, quorum, quorum_spec,
    fire_policy, organizer, payload, state, finished_ms, created_ms, last_response_ms, groups)
SELECT rowid, unhex(replace(id, '-', '')), unhex(replace(campaign_id, '-', '')), campaign_pos,
       name, kind, description, at_ms, offset_ms, start_ms, t_minus_ms, defer_ms, max_defer_ms,
       fire_ms, quorum, quorum_spec, fire_policy, organizer, payload, state, finished_ms,
       created_ms, last_response_ms, groups
FROM events;

CREATE TABLE attendees_new (
    event_id     BLOB NOT NULL REFERENCES events_new (id) ON DELETE CASCADE,
    agent        TEXT NOT NULL,
    position     INTEGER NOT NULL,
    status       TEXT NOT NULL
        CHECK (status IN ('pending', 'confirmed', 'deferred', 'declined', 'missed')),
    defer_ms     INTEGER,
    responded_ms INTEGER,
    open         INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (event_id, agent)
) WITHOUT ROWID;
INSERT INTO attendees_new (event_id, agent, position, status, defer_ms, responded_ms, open)
SELECT unhex(replace(event_id, '-', '')), agent, position, status, defer_ms, responded_ms, open
FROM attendees;

CREATE TABLE edges_new (
    seq         INTEGER PRIMARY KEY,
    campaign_id BLOB NOT NULL REFERENCES campaigns_new (id) ON DELETE CASCADE,
    from_id     BLOB NOT NULL REFERENCES events_new (id) ON DELETE CASCADE,
    to_id       BLOB NOT NULL REFERENCES events_new (id) ON DELETE CASCADE,
    UNIQUE (from_id, to_id)
);
INSERT INTO edges_new (seq, campaign_id, from_id, to_id)
SELECT seq, unhex(replace(campaign_id, '-', '')), unhex(replace(from_id, '-', '')),
       unhex(replace(to_id, '-', ''))
FROM edges;

CREATE TABLE audit_new (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    BLOB NOT NULL,
    at_ms       INTEGER NOT NULL,
    recorded_ms INTEGER NOT NULL,
    agent       TEXT,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    unreported  INTEGER,
    prev        BLOB,
    hash        BLOB,
    message     TEXT,
    signature   TEXT
);
INSERT INTO audit_new (seq, event_id, at_ms, recorded_ms, agent, action, detail, unreported,
    prev, hash, message, signature)
SELECT seq, unhex(replace(event_id, '-', '')), at_ms, recorded_ms, agent, action, detail,
       unreported, unhex(prev), unhex(hash), message, signature
FROM audit;

CREATE TABLE notify_rules_new (
    event_id BLOB PRIMARY KEY REFERENCES events_new (id) ON DELETE CASCADE,
    rules    TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO notify_rules_new (event_id, rules)
SELECT unhex(replace(event_id, '-', '')), rules FROM notify_rules;

CREATE TABLE reminders_new (
    event_id  BLOB NOT NULL REFERENCES events_new (id) ON DELETE CASCADE,
    before_ms INTEGER NOT NULL,
    remind_ms INTEGER NOT NULL,
    sent      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, before_ms)
) WITHOUT ROWID;
INSERT INTO reminders_new (event_id, before_ms, remind_ms, sent)
SELECT unhex(replace(event_id, '-', '')), before_ms, remind_ms, sent FROM reminders;

CREATE TABLE deliveries_new (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    key         BLOB NOT NULL UNIQUE,
    event_id    BLOB NOT NULL,
    cause       TEXT NOT NULL,
    rule        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_ms     INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    finished_ms INTEGER,
    last_error  TEXT
);
INSERT INTO deliveries_new (seq, key, event_id, cause, rule, payload, state, attempts, next_ms,
    created_ms, finished_ms, last_error)
SELECT seq, unhex(replace(key, '-', '')), unhex(replace(event_id, '-', '')), cause, rule, payload,
       state, attempts, next_ms, created_ms, finished_ms, last_error
FROM deliveries;

CREATE TABLE scope_signers_new (
    scope_id BLOB PRIMARY KEY,
    digest   TEXT NOT NULL REFERENCES signer_sets (digest)
) WITHOUT ROWID;
INSERT INTO scope_signers_new (scope_id, digest)
SELECT unhex(replace(scope_id, '-', '')), digest FROM scope_signers;

CREATE TABLE nonces_new (
    nonce    BLOB PRIMARY KEY,
    event_id BLOB NOT NULL,
    at_ms    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO nonces_new (nonce, event_id, at_ms)
SELECT unhex(replace(nonce, '-', '')), unhex(replace(event_id, '-', '')), at_ms FROM nonces;

-- The AUTOINCREMENT counters go on where they were, even past deleted rows.
DELETE FROM sqlite_sequence WHERE name IN ('audit_new', 'deliveries_new');
INSERT INTO sqlite_sequence (name, seq)
SELECT name || '_new', seq FROM sqlite_sequence WHERE name IN ('audit', 'deliveries');

DROP TABLE nonces;
DROP TABLE scope_signers;
DROP TABLE deliveries;
DROP TABLE reminders;
DROP TABLE notify_rules;
DROP TABLE audit;
DROP TABLE edges;
DROP TABLE attendees;
DROP TABLE events;
DROP TABLE campaigns;

ALTER TABLE campaigns_new RENAME TO campaigns;
ALTER TABLE events_new RENAME TO events;
ALTER TABLE attendees_new RENAME TO attendees;
ALTER TABLE edges_new RENAME TO edges;
ALTER TABLE audit_new RENAME TO audit;
ALTER TABLE notify_rules_new RENAME TO notify_rules;
ALTER TABLE reminders_new RENAME TO reminders;
ALTER TABLE deliveries_new RENAME TO deliveries;
ALTER TABLE scope_signers_new RENAME TO scope_signers;
ALTER TABLE nonces_new RENAME TO nonces;

CREATE INDEX events_due ON events (fire_ms) WHERE state = 'pending';
CREATE INDEX events_campaign ON events (campaign_id, campaign_pos);
CREATE INDEX events_campaign_due ON events (campaign_id, fire_ms) WHERE state = 'pending';
CREATE INDEX events_listing ON events (fire_ms IS NULL, fire_ms, created_ms, id)
    WHERE state IN ('blocked', 'pending');
CREATE INDEX attendees_inbox ON attendees (agent, event_id) WHERE open = 1;
CREATE INDEX edges_to ON edges (to_id);
CREATE INDEX edges_campaign ON edges (campaign_id);
CREATE INDEX audit_event ON audit (event_id, seq);
CREATE INDEX audit_unreported ON audit (seq) WHERE unreported = 1;
CREATE INDEX reminders_due ON reminders (remind_ms) WHERE sent = 0;
CREATE INDEX deliveries_due ON deliveries (next_ms) WHERE state = 'pending';
CREATE INDEX deliveries_event ON deliveries (event_id, seq);

CREATE TRIGGER attendees_open_on_state AFTER UPDATE OF state ON events
WHEN (OLD.state IN ('blocked', 'pending')) <> (NEW.state IN ('blocked', 'pending'))
BEGIN
    UPDATE attendees SET open = NEW.state IN ('blocked', 'pending') WHERE event_id = NEW.id;
END;
