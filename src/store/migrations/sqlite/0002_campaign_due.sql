-- t-minus schema, version 2: a campaign's due events in O(log n).
-- A response to a blocked event settles what fell due in its campaign, and
-- `run --campaign` asks for the campaign's next fire time; both look up
-- pending events of one campaign by fire time.
CREATE INDEX events_campaign_due ON events (campaign_id, fire_ms) WHERE state = 'pending';
