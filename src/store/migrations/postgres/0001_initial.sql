-- t-minus schema for PostgreSQL, version 1: the same tables as SQLite's
-- version 1, prefixed `tm_` so they can share a database with others.
-- Times are BIGINT milliseconds since the Unix epoch (UTC); durations are
-- BIGINT milliseconds; ids are lowercase hyphenated UUID text. Ids and names
-- use the "C" collation, so ordering and id-prefix ranges are bytewise, as on
-- SQLite, whatever the database's default collation.

CREATE TABLE tm_campaigns (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    description TEXT,
    created_ms  BIGINT NOT NULL,
    managed     BOOLEAN NOT NULL DEFAULT FALSE,
    anchor_ms   BIGINT,
    revision    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE tm_events (
    id               TEXT COLLATE "C" PRIMARY KEY,
    seq              BIGSERIAL,        -- insertion order: ties in fire time
    campaign_id      TEXT COLLATE "C" REFERENCES tm_campaigns (id) ON DELETE CASCADE,
    campaign_pos     BIGINT,
    name             TEXT COLLATE "C",
    kind             TEXT NOT NULL,
    description      TEXT,
    at_ms            BIGINT,
    offset_ms        BIGINT,
    start_ms         BIGINT,
    t_minus_ms       BIGINT NOT NULL,
    defer_ms         BIGINT NOT NULL DEFAULT 0,
    max_defer_ms     BIGINT,
    fire_ms          BIGINT,
    quorum           BIGINT NOT NULL,
    quorum_spec      TEXT NOT NULL,
    fire_policy      TEXT NOT NULL,
    organizer        TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL
        CHECK (state IN ('blocked', 'pending', 'fired', 'missed', 'cancelled')),
    finished_ms      BIGINT,
    created_ms       BIGINT NOT NULL,
    last_response_ms BIGINT,
    CHECK ((at_ms IS NULL) <> (offset_ms IS NULL)),
    UNIQUE (campaign_id, name)
);

-- Events become final and stay as history: vacuum early, so that index
-- scans for due and unfinished events skip few dead entries.
ALTER TABLE tm_events SET (autovacuum_vacuum_scale_factor = 0.01,
                           autovacuum_vacuum_threshold = 1000);

-- Due events for tick, and the next wake-up for run: O(log n).
CREATE INDEX tm_events_due ON tm_events (fire_ms, seq) WHERE state = 'pending';
-- Status of unfinished events without scanning history.
CREATE INDEX tm_events_unfinished ON tm_events (fire_ms) WHERE state IN ('blocked', 'pending');
CREATE INDEX tm_events_campaign ON tm_events (campaign_id, campaign_pos);

CREATE TABLE tm_attendees (
    event_id     TEXT COLLATE "C" NOT NULL REFERENCES tm_events (id) ON DELETE CASCADE,
    agent        TEXT COLLATE "C" NOT NULL,
    position     BIGINT NOT NULL,
    status       TEXT NOT NULL
        CHECK (status IN ('pending', 'confirmed', 'deferred', 'declined', 'missed')),
    defer_ms     BIGINT,
    responded_ms BIGINT,
    PRIMARY KEY (event_id, agent)
);

CREATE TABLE tm_edges (
    seq         BIGSERIAL PRIMARY KEY,
    campaign_id TEXT COLLATE "C" NOT NULL REFERENCES tm_campaigns (id) ON DELETE CASCADE,
    from_id     TEXT COLLATE "C" NOT NULL REFERENCES tm_events (id) ON DELETE CASCADE,
    to_id       TEXT COLLATE "C" NOT NULL REFERENCES tm_events (id) ON DELETE CASCADE,
    UNIQUE (from_id, to_id)
);
CREATE INDEX tm_edges_to ON tm_edges (to_id);
CREATE INDEX tm_edges_campaign ON tm_edges (campaign_id);

-- Append-only audit trail. `unreported` is TRUE for a transition no tick has
-- reported yet; a tick claims those rows in its transaction. Writers hold
-- the store's write lock (tm_meta's row), so `seq` order is commit order and
-- a runner reading `seq > last` never skips an entry committed later.
CREATE TABLE tm_audit (
    seq         BIGSERIAL PRIMARY KEY,
    event_id    TEXT COLLATE "C" NOT NULL,
    at_ms       BIGINT NOT NULL,
    recorded_ms BIGINT NOT NULL,
    agent       TEXT,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    unreported  BOOLEAN
);
CREATE INDEX tm_audit_event ON tm_audit (event_id, seq);
CREATE INDEX tm_audit_unreported ON tm_audit (seq) WHERE unreported;
