-- Switchboard CDR schema, version 3: the caller's priority-list label.
--
-- `label` is `[[number.caller_priority]] label` of the list that matched the caller (e.g.
-- "vip"), NULL when none did. Rows written before this migration have NULL.

ALTER TABLE cdr_calls ADD COLUMN label TEXT;
