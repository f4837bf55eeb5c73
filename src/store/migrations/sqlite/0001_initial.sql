-- t-minus schema, version 1.
-- Times are integer milliseconds since the Unix epoch (UTC); durations are
-- integer milliseconds; ids are lowercase hyphenated UUIDs.

CREATE TABLE campaigns (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    created_ms  INTEGER NOT NULL,
    managed     INTEGER NOT NULL DEFAULT 0,  -- 1 when a manifest manages it
    anchor_ms   INTEGER,                     -- first apply: base of relative times
    revision    INTEGER NOT NULL DEFAULT 0   -- bumped by every change
);

CREATE TABLE events (
    id               TEXT PRIMARY KEY,
    campaign_id      TEXT REFERENCES campaigns (id) ON DELETE CASCADE,
    campaign_pos     INTEGER,
    name             TEXT,
    kind             TEXT NOT NULL,
    description      TEXT,
    at_ms            INTEGER,          -- absolute scheduled time before deferrals
    offset_ms        INTEGER,          -- or: offset from the start
    start_ms         INTEGER,          -- when it started counting (NULL while blocked)
    t_minus_ms       INTEGER NOT NULL,
    defer_ms         INTEGER NOT NULL DEFAULT 0,
    max_defer_ms     INTEGER,
    fire_ms          INTEGER,          -- effective fire time, when known
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
    CHECK ((at_ms IS NULL) <> (offset_ms IS NULL)),
    UNIQUE (campaign_id, name)
);

-- Due events for tick, and the next wake-up for run: O(log n).
CREATE INDEX events_due ON events (fire_ms) WHERE state = 'pending';
-- Status of unfinished events without scanning history.
CREATE INDEX events_unfinished ON events (fire_ms) WHERE state IN ('blocked', 'pending');
CREATE INDEX events_campaign ON events (campaign_id, campaign_pos);

CREATE TABLE attendees (
    event_id     TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    agent        TEXT NOT NULL,
    position     INTEGER NOT NULL,
    status       TEXT NOT NULL
        CHECK (status IN ('pending', 'confirmed', 'deferred', 'declined', 'missed')),
    defer_ms     INTEGER,
    responded_ms INTEGER,
    PRIMARY KEY (event_id, agent)
) WITHOUT ROWID;

CREATE TABLE edges (
    seq         INTEGER PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    from_id     TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    to_id       TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    UNIQUE (from_id, to_id)
);
CREATE INDEX edges_to ON edges (to_id);
CREATE INDEX edges_campaign ON edges (campaign_id);

-- Append-only audit trail. `unreported` is 1 for a transition no tick has
-- reported yet; a tick claims those rows in its transaction.
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    recorded_ms INTEGER NOT NULL,
    agent       TEXT,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    unreported  INTEGER
);
CREATE INDEX audit_event ON audit (event_id, seq);
CREATE INDEX audit_unreported ON audit (seq) WHERE unreported = 1;
