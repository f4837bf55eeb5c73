-- t-minus schema: unfinished events in their listing order.
-- `status` lists blocked and pending events soonest fire time first (unknown
-- fire times last, then by creation and id); this index holds exactly that
-- order, so a listing walks it instead of sorting every unfinished event.
CREATE INDEX events_listing ON events (fire_ms IS NULL, fire_ms, created_ms, id)
    WHERE state IN ('blocked', 'pending');
