-- Switchboard CDR schema, version 1.
--
-- One row per call (cdr_calls) and per agent-state period (cdr_agent_states), keyed by the
-- journal sequence number `seq`: the sink inserts with ON CONFLICT (seq) DO NOTHING, so a
-- batch re-sent after a crash or a failed commit stores nothing twice. The main fields are
-- typed columns for SQL reporting; `record` holds the whole record in its documented JSON
-- form (`{"type":"call",...}`), so fields added later are never lost.
--
-- Applied once by sqlx's migrator (tracked in `_sqlx_migrations`). Never edit this file
-- after release: its checksum is verified on every start. Add 0002_... instead.

CREATE TABLE cdr_calls (
    seq                       BIGINT PRIMARY KEY,
    id                        TEXT NOT NULL,
    trunk_call_id             TEXT NOT NULL,
    arrived                   TIMESTAMPTZ NOT NULL,
    ivr_ended                 TIMESTAMPTZ,
    enqueued                  TIMESTAMPTZ,
    offered                   TIMESTAMPTZ,
    answered                  TIMESTAMPTZ,
    ended                     TIMESTAMPTZ NOT NULL,
    -- The instant a call counts at in reports: queued, or arrived if it never queued.
    counted_at                TIMESTAMPTZ GENERATED ALWAYS AS (COALESCE(enqueued, arrived)) STORED,
    caller                    TEXT NOT NULL,
    did                       TEXT NOT NULL,
    language                  TEXT,
    queue                     TEXT,
    agent                     TEXT,
    -- u32 in the model: does not fit INTEGER.
    priority                  BIGINT NOT NULL,
    wait_s                    DOUBLE PRECISION NOT NULL,
    ring_s                    DOUBLE PRECISION NOT NULL,
    talk_s                    DOUBLE PRECISION NOT NULL,
    hold_s                    DOUBLE PRECISION NOT NULL,
    wrap_up_s                 DOUBLE PRECISION NOT NULL,
    disposition               TEXT NOT NULL,
    hangup_side               TEXT NOT NULL,
    sip_cause                 INTEGER,
    transfer_count            INTEGER NOT NULL,
    survey_score              SMALLINT,
    recording                 TEXT,
    service_level_threshold_s DOUBLE PRECISION NOT NULL,
    record                    JSONB NOT NULL
);

-- Reports select a time range and page through it by (counted_at, seq).
CREATE INDEX cdr_calls_counted_at ON cdr_calls (counted_at, seq);
-- Looking a call up by Switchboard's id (recordings and events carry it).
CREATE INDEX cdr_calls_id ON cdr_calls (id);

CREATE TABLE cdr_agent_states (
    seq        BIGINT PRIMARY KEY,
    agent      TEXT NOT NULL,
    state      TEXT NOT NULL,
    reason     TEXT,
    started    TIMESTAMPTZ NOT NULL,
    ended      TIMESTAMPTZ NOT NULL,
    duration_s DOUBLE PRECISION NOT NULL,
    call_id    TEXT,
    record     JSONB NOT NULL
);

CREATE INDEX cdr_agent_states_agent_started ON cdr_agent_states (agent, started);
