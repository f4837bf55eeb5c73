-- t-minus schema for PostgreSQL, version 2 (as SQLite's version 2): a
-- campaign's due events in O(log n). A response to a blocked event settles
-- what fell due in its campaign, and `run --campaign` asks for the
-- campaign's next fire time; both look up pending events of one campaign by
-- fire time.
CREATE INDEX tm_events_campaign_due ON tm_events (campaign_id, fire_ms, seq) WHERE state = 'pending';
