-- t-minus schema for PostgreSQL (as SQLite's compact_ids migration): every
-- id is a `uuid` (16 bytes) instead of 36 characters of text, in each row
-- and each index that holds it; the log's `prev` and `hash` are `bytea`
-- (32 bytes) instead of 64 hex digits. The order of ids is unchanged:
-- `uuid` compares bytewise, as the "C" collation compared their text. The
-- foreign keys are dropped while their columns change type, then restored.
-- `tm_events_unfinished` is gone: `tm_events_listing` orders the same
-- events. A new attendee row carries `open` as its event's state says (the
-- statements that insert attendees write it), so no trigger runs per
-- inserted attendee.

ALTER TABLE tm_events DROP CONSTRAINT tm_events_campaign_id_fkey;
ALTER TABLE tm_attendees DROP CONSTRAINT tm_attendees_event_id_fkey;
ALTER TABLE tm_edges DROP CONSTRAINT tm_edges_campaign_id_fkey,
    DROP CONSTRAINT tm_edges_from_id_fkey, DROP CONSTRAINT tm_edges_to_id_fkey;
ALTER TABLE tm_notify_rules DROP CONSTRAINT tm_notify_rules_event_id_fkey;
ALTER TABLE tm_reminders DROP CONSTRAINT tm_reminders_event_id_fkey;
DROP INDEX tm_events_unfinished;
DROP TRIGGER tm_attendees_open_on_insert ON tm_attendees;
DROP FUNCTION tm_attendees_open_on_insert();

ALTER TABLE tm_campaigns ALTER COLUMN id TYPE uuid USING id::uuid;
ALTER TABLE tm_events ALTER COLUMN id TYPE uuid USING id::uuid,
    ALTER COLUMN campaign_id TYPE uuid USING campaign_id::uuid;
ALTER TABLE tm_attendees ALTER COLUMN event_id TYPE uuid USING event_id::uuid;
ALTER TABLE tm_edges ALTER COLUMN campaign_id TYPE uuid USING campaign_id::uuid,
    ALTER COLUMN from_id TYPE uuid USING from_id::uuid,
    ALTER COLUMN to_id TYPE uuid USING to_id::uuid;
ALTER TABLE tm_audit ALTER COLUMN event_id TYPE uuid USING event_id::uuid,
    ALTER COLUMN prev TYPE bytea
        USING CASE WHEN prev ~ '^[0-9a-f]{64}$' THEN decode(prev, 'hex') END,
    ALTER COLUMN hash TYPE bytea
        USING CASE WHEN hash ~ '^[0-9a-f]{64}$' THEN decode(hash, 'hex') END;
ALTER TABLE tm_notify_rules ALTER COLUMN event_id TYPE uuid USING event_id::uuid;
ALTER TABLE tm_reminders ALTER COLUMN event_id TYPE uuid USING event_id::uuid;
ALTER TABLE tm_deliveries ALTER COLUMN key TYPE uuid USING key::uuid,
    ALTER COLUMN event_id TYPE uuid USING event_id::uuid;
ALTER TABLE tm_scope_signers ALTER COLUMN scope_id TYPE uuid USING scope_id::uuid;
ALTER TABLE tm_nonces ALTER COLUMN nonce TYPE uuid USING nonce::uuid,
    ALTER COLUMN event_id TYPE uuid USING event_id::uuid;

ALTER TABLE tm_events ADD CONSTRAINT tm_events_campaign_id_fkey
    FOREIGN KEY (campaign_id) REFERENCES tm_campaigns (id) ON DELETE CASCADE;
ALTER TABLE tm_attendees ADD CONSTRAINT tm_attendees_event_id_fkey
    FOREIGN KEY (event_id) REFERENCES tm_events (id) ON DELETE CASCADE;
ALTER TABLE tm_edges ADD CONSTRAINT tm_edges_campaign_id_fkey
        FOREIGN KEY (campaign_id) REFERENCES tm_campaigns (id) ON DELETE CASCADE,
    ADD CONSTRAINT tm_edges_from_id_fkey
        FOREIGN KEY (from_id) REFERENCES tm_events (id) ON DELETE CASCADE,
    ADD CONSTRAINT tm_edges_to_id_fkey
        FOREIGN KEY (to_id) REFERENCES tm_events (id) ON DELETE CASCADE;
ALTER TABLE tm_notify_rules ADD CONSTRAINT tm_notify_rules_event_id_fkey
    FOREIGN KEY (event_id) REFERENCES tm_events (id) ON DELETE CASCADE;
ALTER TABLE tm_reminders ADD CONSTRAINT tm_reminders_event_id_fkey
    FOREIGN KEY (event_id) REFERENCES tm_events (id) ON DELETE CASCADE;
