-- t-minus schema: the log explains every row.
-- No table changes: once this script has run, the migration appends one
-- `baseline` entry per event and one `campaign-baseline` entry per campaign,
-- each with its whole record as stored (see src/trust/record.rs), chained
-- after the log's last entry. From these entries on, `verify` replays the
-- log into every event's and campaign's record and compares it with the rows.
SELECT 1;
