-- The broker's state: instances, bindings and the operation journal.
-- Portable column types (the SQLite twin is identical): TEXT ids, BIGINT unix-ms timestamps,
-- TEXT JSON, secrets as TEXT `v1:<key id>:<base64>` (AES-256-GCM).

CREATE TABLE service_instances (
    id TEXT PRIMARY KEY NOT NULL,
    service_id TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    parameters TEXT NOT NULL,
    context TEXT,
    organization_guid TEXT,
    space_guid TEXT,
    maintenance_version TEXT,
    dashboard_url TEXT,
    state TEXT NOT NULL,
    deployment_name TEXT,
    deployment_spec_enc TEXT,
    endpoints TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE service_bindings (
    id TEXT PRIMARY KEY NOT NULL,
    instance_id TEXT NOT NULL REFERENCES service_instances (id),
    service_id TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    parameters TEXT NOT NULL,
    context TEXT,
    bind_resource TEXT,
    app_guid TEXT,
    state TEXT NOT NULL,
    credentials_enc TEXT,
    endpoints TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE INDEX service_bindings_by_instance ON service_bindings (instance_id);

CREATE TABLE operations (
    id TEXT PRIMARY KEY NOT NULL,
    instance_id TEXT NOT NULL REFERENCES service_instances (id),
    binding_id TEXT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    description TEXT NOT NULL,
    step TEXT NOT NULL,
    payload TEXT NOT NULL,
    request_id TEXT,
    originating_identity TEXT,
    lease_owner TEXT,
    lease_expires_ms BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    finished_at_ms BIGINT
);

CREATE INDEX operations_by_instance ON operations (instance_id, created_at_ms);
CREATE INDEX operations_by_binding ON operations (binding_id, created_at_ms);
CREATE INDEX operations_by_state ON operations (state, lease_expires_ms);

-- At most one operation in progress per instance (instance operations) and per binding.
CREATE UNIQUE INDEX operations_one_running_per_instance ON operations (instance_id)
    WHERE state = 'in progress' AND binding_id IS NULL;
CREATE UNIQUE INDEX operations_one_running_per_binding ON operations (binding_id)
    WHERE state = 'in progress' AND binding_id IS NOT NULL;
