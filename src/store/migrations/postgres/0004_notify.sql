-- t-minus schema for PostgreSQL: notifications, the same tables as SQLite's.
-- An event's rules (campaign and event level together) as a JSON array.
CREATE TABLE tm_notify_rules (
    event_id TEXT COLLATE "C" PRIMARY KEY REFERENCES tm_events (id) ON DELETE CASCADE,
    rules    TEXT NOT NULL
);

-- Reminder times of pending events with `reminder` rules: the fire time
-- minus each `before`, rewritten whenever the fire time moves. A tick
-- finds the due ones in O(log n).
CREATE TABLE tm_reminders (
    event_id  TEXT COLLATE "C" NOT NULL REFERENCES tm_events (id) ON DELETE CASCADE,
    before_ms BIGINT NOT NULL,
    remind_ms BIGINT NOT NULL,
    sent      BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (event_id, before_ms)
);
CREATE INDEX tm_reminders_due ON tm_reminders (remind_ms) WHERE NOT sent;

-- The delivery queue. Rows are written in the transaction of what they
-- announce; `next_ms` (wall clock) is when a pending delivery may be
-- attempted next, or when the lease of the attempt under way runs out.
-- `key` is the idempotency key receivers see.
CREATE TABLE tm_deliveries (
    seq         BIGSERIAL PRIMARY KEY,
    key         TEXT COLLATE "C" NOT NULL UNIQUE,
    event_id    TEXT COLLATE "C" NOT NULL,
    cause       TEXT NOT NULL,
    rule        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts    BIGINT NOT NULL DEFAULT 0,
    next_ms     BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL,
    finished_ms BIGINT,
    last_error  TEXT
);
CREATE INDEX tm_deliveries_due ON tm_deliveries (next_ms, seq) WHERE state = 'pending';
CREATE INDEX tm_deliveries_event ON tm_deliveries (event_id, seq);
