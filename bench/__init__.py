"""Durable Lab's benchmark suite (benchmarks.md B1-B8): ``python manage.py durable_bench``."""
