-- t-minus schema for PostgreSQL (as SQLite's inbox migration): an agent's
-- inbox in O(log n + k). `tm_attendees.open` mirrors whether the attendee's
-- event is unfinished (blocked or pending); triggers keep it in step with
-- `tm_events.state`, so an agent's open events are one index range, however
-- much history it has.
ALTER TABLE tm_attendees ADD COLUMN open BOOLEAN NOT NULL DEFAULT TRUE;
UPDATE tm_attendees a SET open = coalesce(
    (SELECT e.state IN ('blocked', 'pending') FROM tm_events e WHERE e.id = a.event_id), FALSE);
CREATE INDEX tm_attendees_inbox ON tm_attendees (agent, event_id) WHERE open;

CREATE FUNCTION tm_attendees_open_on_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tm_attendees SET open = NEW.state IN ('blocked', 'pending') WHERE event_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER tm_attendees_open_on_state AFTER UPDATE OF state ON tm_events
    FOR EACH ROW
    WHEN ((OLD.state IN ('blocked', 'pending')) IS DISTINCT FROM (NEW.state IN ('blocked', 'pending')))
    EXECUTE FUNCTION tm_attendees_open_on_state();

CREATE FUNCTION tm_attendees_open_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.open := coalesce(
        (SELECT e.state IN ('blocked', 'pending') FROM tm_events e WHERE e.id = NEW.event_id), FALSE);
    RETURN NEW;
END $$;
CREATE TRIGGER tm_attendees_open_on_insert BEFORE INSERT ON tm_attendees
    FOR EACH ROW EXECUTE FUNCTION tm_attendees_open_on_insert();
