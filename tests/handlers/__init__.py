"""Small durable handlers used by the end-to-end tests (importable by the test worker)."""
