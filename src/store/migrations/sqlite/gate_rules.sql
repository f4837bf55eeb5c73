-- Gates beyond the quorum: four eyes, time windows, break-glass (the list
-- of who may, and the break-glass that fired the event), as JSON
-- (`{"four_eyes": true, "windows": [...], "breakglass": [...], "broken":
-- {...}}`). NULL is an event without any, so existing rows keep their
-- meaning. The lazy fire policy is a new word of `fire_policy`.
ALTER TABLE events ADD COLUMN gates TEXT;
