-- t-minus schema: notifications.
-- An event's rules (campaign and event level together) as a JSON array.
CREATE TABLE notify_rules (
    event_id TEXT PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    rules    TEXT NOT NULL
) WITHOUT ROWID;

-- Reminder times of pending events with `reminder` rules: the fire time
-- minus each `before`, rewritten whenever the fire time moves. A tick
-- finds the due ones in O(log n).
CREATE TABLE reminders (
    event_id  TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    before_ms INTEGER NOT NULL,
    remind_ms INTEGER NOT NULL,
    sent      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, before_ms)
) WITHOUT ROWID;
CREATE INDEX reminders_due ON reminders (remind_ms) WHERE sent = 0;

-- The delivery queue. Rows are written in the transaction of what they
-- announce; `next_ms` (wall clock) is when a pending delivery may be
-- attempted next, or when the lease of the attempt under way runs out.
-- `key` is the idempotency key receivers see.
CREATE TABLE deliveries (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT NOT NULL UNIQUE,
    event_id    TEXT NOT NULL,
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
CREATE INDEX deliveries_due ON deliveries (next_ms) WHERE state = 'pending';
CREATE INDEX deliveries_event ON deliveries (event_id, seq);
