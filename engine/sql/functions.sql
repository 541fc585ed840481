-- The registered functions (durable_function). A function is looked up by its name, which is
-- also its primary key.

-- name: get_function
-- The whole row: the registry turns every column into the API's FunctionConfiguration.
SELECT * FROM durable_function WHERE name = %(name)s

-- name: list_functions
-- Keyset paging by name: the marker is the last name of the previous page.
SELECT * FROM durable_function WHERE name > %(after)s ORDER BY name LIMIT %(limit)s

-- name: upsert_function
-- Create or update in one statement, so that two concurrent CreateFunction calls cannot both
-- insert; created_at is kept from the first registration.
INSERT INTO durable_function (name, handler, description, timeout, durable_config, environment,
    maximum_retry_attempts, invocation_retry, revision_id, created_at, last_modified)
VALUES (%(name)s, %(handler)s, %(description)s, %(timeout)s, %(durable_config)s, %(environment)s,
    %(maximum_retry_attempts)s, %(invocation_retry)s, %(revision_id)s, %(now)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET handler = EXCLUDED.handler, description = EXCLUDED.description,
    timeout = EXCLUDED.timeout, durable_config = EXCLUDED.durable_config,
    environment = EXCLUDED.environment, maximum_retry_attempts = EXCLUDED.maximum_retry_attempts,
    invocation_retry = EXCLUDED.invocation_retry, revision_id = EXCLUDED.revision_id,
    last_modified = EXCLUDED.last_modified
RETURNING *
