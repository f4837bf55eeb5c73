-- t-minus schema: an agent's inbox in O(log n + k).
-- `attendees.open` mirrors whether the attendee's event is unfinished
-- (blocked or pending); triggers keep it in step with `events.state`, so an
-- agent's open events are one index range, however much history it has.
ALTER TABLE attendees ADD COLUMN open INTEGER NOT NULL DEFAULT 1;
UPDATE attendees SET open = coalesce(
    (SELECT state IN ('blocked', 'pending') FROM events WHERE events.id = attendees.event_id), 0);
CREATE INDEX attendees_inbox ON attendees (agent, event_id) WHERE open = 1;

CREATE TRIGGER attendees_open_on_state AFTER UPDATE OF state ON events
WHEN (OLD.state IN ('blocked', 'pending')) <> (NEW.state IN ('blocked', 'pending'))
BEGIN
    UPDATE attendees SET open = NEW.state IN ('blocked', 'pending') WHERE event_id = NEW.id;
END;

CREATE TRIGGER attendees_open_on_insert AFTER INSERT ON attendees
BEGIN
    UPDATE attendees SET open = coalesce(
        (SELECT state IN ('blocked', 'pending') FROM events WHERE id = NEW.event_id), 0)
    WHERE event_id = NEW.event_id AND agent = NEW.agent;
END;
