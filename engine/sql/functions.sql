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
    maximum_retry_attempts, invocation_retry, revision_id, created_at, last_modified, runtime, code_sha256,
    code_size)
VALUES (%(name)s, %(handler)s, %(description)s, %(timeout)s, %(durable_config)s, %(environment)s,
    %(maximum_retry_attempts)s, %(invocation_retry)s, %(revision_id)s, %(now)s, %(now)s, %(runtime)s,
    %(code_sha256)s, %(code_size)s)
ON CONFLICT (name) DO UPDATE SET handler = EXCLUDED.handler, description = EXCLUDED.description,
    timeout = EXCLUDED.timeout, durable_config = EXCLUDED.durable_config,
    environment = EXCLUDED.environment, maximum_retry_attempts = EXCLUDED.maximum_retry_attempts,
    invocation_retry = EXCLUDED.invocation_retry, revision_id = EXCLUDED.revision_id,
    last_modified = EXCLUDED.last_modified, runtime = EXCLUDED.runtime, code_sha256 = EXCLUDED.code_sha256,
    code_size = EXCLUDED.code_size
RETURNING *

-- name: store_code
-- A function's zip, content-addressed: the same bytes uploaded twice (or by two functions) are
-- stored once.
INSERT INTO durable_function_code (sha256, zip, size, created_at)
VALUES (%(sha256)s, %(zip)s, %(size)s, %(now)s)
ON CONFLICT (sha256) DO NOTHING

-- name: get_code
-- The zip a worker unpacks once per code version for an out-of-process runtime.
SELECT zip FROM durable_function_code WHERE sha256 = %(sha256)s
