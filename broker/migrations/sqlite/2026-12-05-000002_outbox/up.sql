-- Callbacks (webhooks). `webhook_endpoints` names the configured endpoints and the event kinds
-- each wants (a JSON array of patterns; URLs and secrets stay in the settings), so the
-- transaction that changes an operation's state can write one `outbox` row per endpoint that
-- wants the event. The dispatcher, one across the brokers (the `outbox_lease` row), delivers
-- them in `seq` order per instance and endpoint.
CREATE TABLE webhook_endpoints (
    name TEXT PRIMARY KEY NOT NULL,
    events TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    event_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    last_error TEXT,
    created_at_ms BIGINT NOT NULL,
    delivered_at_ms BIGINT
);

CREATE UNIQUE INDEX outbox_one_row_per_event_and_endpoint ON outbox (event_id, endpoint);
CREATE INDEX outbox_by_endpoint_state ON outbox (endpoint, state, seq);

CREATE TABLE outbox_lease (
    name TEXT PRIMARY KEY NOT NULL,
    owner TEXT,
    expires_ms BIGINT
);
INSERT INTO outbox_lease (name, owner, expires_ms) VALUES ('dispatcher', NULL, NULL);
