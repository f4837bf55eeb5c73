-- The tamper-evident audit chain: every entry stores `prev` (the hash of
-- the entry before it in commit order, 64 hex digits; zeros for the first)
-- and `hash` = SHA-256(prev || the entry's canonical bytes), plus the
-- signed answer message and its signature when the answer was signed.
-- Existing entries are chained in `seq` order by the migration itself.
ALTER TABLE audit ADD COLUMN prev TEXT;
ALTER TABLE audit ADD COLUMN hash TEXT;
ALTER TABLE audit ADD COLUMN message TEXT;
ALTER TABLE audit ADD COLUMN signature TEXT;
