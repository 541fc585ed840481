"""AWS Lambda's durable-execution REST API (rest-json) over HTTP, serving ``engine.client()``."""
