-- t-minus schema for PostgreSQL (as SQLite's listing-order migration):
-- unfinished events in their listing order (soonest fire time first,
-- unknown fire times last, then by creation and id), so a listing walks
-- the index instead of sorting every unfinished event.
CREATE INDEX tm_events_listing ON tm_events ((fire_ms IS NULL), fire_ms, created_ms, id)
    WHERE state IN ('blocked', 'pending');
