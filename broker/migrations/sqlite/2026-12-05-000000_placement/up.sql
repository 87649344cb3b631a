-- organization_guid / space_guid hold where an instance was placed: the context's organization
-- (`organization_guid`, Kubernetes `clusterid`) and space (`space_guid`, `namespace`), else the
-- top-level fields. Rows written before held the top-level fields only; organization and
-- space quotas count by these columns, so rows with a context are brought in line.
UPDATE service_instances SET
    organization_guid = COALESCE(
        CASE WHEN json_type(context, '$.organization_guid') = 'text'
            THEN NULLIF(json_extract(context, '$.organization_guid'), '') END,
        CASE WHEN json_type(context, '$.clusterid') = 'text'
            THEN NULLIF(json_extract(context, '$.clusterid'), '') END,
        NULLIF(organization_guid, '')),
    space_guid = COALESCE(
        CASE WHEN json_type(context, '$.space_guid') = 'text'
            THEN NULLIF(json_extract(context, '$.space_guid'), '') END,
        CASE WHEN json_type(context, '$.namespace') = 'text'
            THEN NULLIF(json_extract(context, '$.namespace'), '') END,
        NULLIF(space_guid, ''))
WHERE context IS NOT NULL AND json_valid(context);
