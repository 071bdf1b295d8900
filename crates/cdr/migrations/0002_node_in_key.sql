-- Switchboard CDR schema, version 2: rows are keyed by (node, seq).
--
-- `seq` is a node's own journal sequence number. Several nodes writing into one database
-- reuse the same numbers, and with `seq` alone as the key their rows were taken for re-sent
-- duplicates and dropped. `node` names the writing node ([cdr] node, default the host name);
-- rows written before this migration keep node ''.

ALTER TABLE cdr_calls ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE cdr_calls DROP CONSTRAINT cdr_calls_pkey;
ALTER TABLE cdr_calls ADD PRIMARY KEY (node, seq);
DROP INDEX cdr_calls_counted_at;
CREATE INDEX cdr_calls_counted_at ON cdr_calls (counted_at, node, seq);

ALTER TABLE cdr_agent_states ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE cdr_agent_states DROP CONSTRAINT cdr_agent_states_pkey;
ALTER TABLE cdr_agent_states ADD PRIMARY KEY (node, seq);
