"""``manage.py durable_bench [--quick] [--only B1 ...] [--json PATH]``: the benchmark suite of benchmarks.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Run benchmarks B1-B11 against the configured PostgreSQL and broker, in a database the bench "
        "creates and drops; write bench/results/latest.json and print floor/target/stretch verdicts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quick", action="store_true", help="B1, B2a, B4 and B5 only (under a minute)")
        parser.add_argument("--json", type=Path, default=None, help="also write the results to this path")
        parser.add_argument(
            "--only",
            nargs="+",
            default=[],
            metavar="KEY",
            help="run only these benchmarks (B1 B2a B2b B3 B4 B4b B5 B6 B7 B8 B9 B10 B11); bench/results/latest.json is left alone",
        )

    def handle(self, *args: Any, quick: bool, json: Path | None, only: list[str], **options: Any) -> None:
        # Imported here: the bench package is a dev tool, not needed to load the command list.
        from bench import suite

        suite.run(quick=quick, json_path=json, out=self.stdout, only=frozenset(only))
