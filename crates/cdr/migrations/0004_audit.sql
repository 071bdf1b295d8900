-- Switchboard schema, version 4: the audit log (docs/security.md), shipped from each node's
-- `audit-YYYY-MM-DD.jsonl` files. A row is keyed by the node and its place in those files
-- (UTC day, line number from 1), so a record sent again after a failure or a restart is
-- skipped, and nodes sharing the database keep each other's rows.

CREATE TABLE audit (
    node       TEXT        NOT NULL,
    day        DATE        NOT NULL,
    line       BIGINT      NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    who_token  TEXT,
    who_role   TEXT,
    who_agent  TEXT,
    source     TEXT,
    action     TEXT        NOT NULL,
    target     TEXT,
    result     TEXT        NOT NULL,
    PRIMARY KEY (node, day, line)
);

CREATE INDEX audit_at ON audit (at);
