-- Event flows still to run for an operation: a row is written (with the request view the
-- flows see, which holds no secret) just before the operation it belongs to, and deleted once
-- the operation's completion or error flows ran. The operation's own ending (state no longer
-- 'in progress') is what makes the row due, so the mark is set by the very transaction that
-- ends the operation. Claimed under a lease like the journal's; `next_flow` counts the flows
-- already run, so a broker taking over resumes after them.
CREATE TABLE operation_flows (
    operation_id TEXT PRIMARY KEY NOT NULL,
    request TEXT NOT NULL,
    next_flow BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_ms BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL
);

CREATE INDEX operation_flows_by_lease ON operation_flows (lease_expires_ms);
