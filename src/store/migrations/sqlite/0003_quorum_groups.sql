-- t-minus schema, version 3: quorum groups. An event with groups lists them
-- (name, quorum as spelled, members) as JSON; the attendees table still holds
-- every member once with its response. NULL is a plain event: one unnamed
-- group of all its attendees needing `quorum`, so existing rows keep their
-- meaning.
ALTER TABLE events ADD COLUMN groups TEXT;
