-- organization_guid / space_guid hold where an instance was placed: the context's organization
-- (`organization_guid`, Kubernetes `clusterid`) and space (`space_guid`, `namespace`), else the
-- top-level fields. Rows written before held the top-level fields only; organization and
-- space quotas count by these columns, so rows with a context are brought in line.
UPDATE service_instances SET
    organization_guid = COALESCE(
        CASE WHEN json_typeof(context::json -> 'organization_guid') = 'string'
            THEN NULLIF(context::json ->> 'organization_guid', '') END,
        CASE WHEN json_typeof(context::json -> 'clusterid') = 'string'
            THEN NULLIF(context::json ->> 'clusterid', '') END,
        NULLIF(organization_guid, '')),
    space_guid = COALESCE(
        CASE WHEN json_typeof(context::json -> 'space_guid') = 'string'
            THEN NULLIF(context::json ->> 'space_guid', '') END,
        CASE WHEN json_typeof(context::json -> 'namespace') = 'string'
            THEN NULLIF(context::json ->> 'namespace', '') END,
        NULLIF(space_guid, ''))
WHERE context IS NOT NULL;
