"""Fuzz every ``manage.py durable`` subcommand and option in-process: a usage or service error, never a crash."""

from __future__ import annotations

import argparse
import functools
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError
from hypothesis import given
from hypothesis import strategies as st

from engine.contrib.django.management.commands.durable import (
    EXIT_BAD_ARGUMENTS,
    EXIT_SERVICE_ERROR,
    IGNORED,
    OPERATIONS,
    Command,
)
from tests.fuzz.conftest import assert_rejection_stores_nothing
from tests.fuzz.hostile import DEEP_JSON, HOSTILE_STRINGS, MISSING_ARN, fuzz_settings, hostile_text

FUZZ_SETTINGS = fuzz_settings(max_examples=8)
ARGPARSE_ERROR = 1  # call_command turns argparse's exit into CommandError(returncode=1)
CLI_SEEDS = [
    *HOSTILE_STRINGS,
    "1e20",
    "inf",
    DEEP_JSON,
    "Variables={" * 5_000,
    "[" * 5_000,
    "2020-01-01T00:00:00+23:59",
    "file:///nonexistent/payload.json",
    "file://\x00",
    "fileb:///nonexistent",
]
UNWRITABLE_OUTFILES = ["/nonexistent/dir/out.json", "/", "a\x00b", "/proc/1/nope/out.json"]

# Required options of each subcommand, with values that reach the engine without changing anything
# that matters: DryRun invokes, a missing ARN to stop, a missing callback to answer.
REQUIRED: dict[str, list[str]] = {
    "create-function": ["--function-name", "fuzz-cli", "--handler", "demos.hello.handler"],
    "update-function-configuration": ["--function-name", "fuzz-update-cli"],
    "update-function-code": ["--function-name", "fuzz-no-such-function", "--zip-file", "fileb:///nonexistent.zip"],
    "get-function": ["--function-name", "fuzz-target"],
    "list-functions": [],
    "invoke": ["--function-name", "fuzz-target", "--invocation-type", "DryRun"],
    "get-durable-execution": ["--durable-execution-arn", "<seed>"],
    "get-durable-execution-history": ["--durable-execution-arn", "<seed>"],
    "get-durable-execution-state": ["--durable-execution-arn", "<seed>", "--checkpoint-token", "t"],
    "list-durable-executions-by-function": ["--function-name", "fuzz-target"],
    "stop-durable-execution": ["--durable-execution-arn", MISSING_ARN],
    "send-durable-execution-callback-success": ["--callback-id", "Tm9wZQ=="],
    "send-durable-execution-callback-failure": ["--callback-id", "Tm9wZQ=="],
    "send-durable-execution-callback-heartbeat": ["--callback-id", "Tm9wZQ=="],
    "release-quarantine": ["--durable-execution-arn", MISSING_ARN],
    "pause-durable-execution": ["--durable-execution-arn", MISSING_ARN],
    "resume-durable-execution": ["--durable-execution-arn", MISSING_ARN],
    "delete-durable-execution": ["--durable-execution-arn", MISSING_ARN],
    # accesskeys' subcommands: an owner and a key that do not exist (NoSuchEntity, nothing made).
    "create-access-key": ["--user-name", "fuzz-nobody"],
    "list-access-keys": ["--user-name", "fuzz-nobody"],
    "delete-access-key": ["--access-key-id", "AKIAFUZZNOSUCHKEY000"],
}


def options_of(subcommand: str) -> list[str]:
    """Every option of the subcommand that takes a value, read from the command's own parser."""
    subparsers = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return [
        action.option_strings[0]
        for action in subparsers.choices[subcommand]._actions
        if action.option_strings and action.nargs != 0 and action.help != IGNORED
    ]


@functools.cache
def parser() -> Any:
    # call_command() would build the parser (13 subcommands, ≈30 ms) again for every call.
    return Command().create_parser("manage.py", "durable")


def run(argv: list[str]) -> Any:
    """Run the command as ``call_command`` does; return None on success or the CommandError.

    Any other exception fails the test, and so does exit status 255 (the command's last resort).
    """
    try:
        options = vars(parser().parse_args(argv))
        Command().execute(**options, skip_checks=True, stdout=io.StringIO(), stderr=io.StringIO())
    except CommandError as exc:
        assert exc.returncode in {ARGPARSE_ERROR, EXIT_BAD_ARGUMENTS, EXIT_SERVICE_ERROR}, (argv[:6], exc)
        assert "Traceback" not in str(exc)
        return exc
    return None


def check(argv: list[str]) -> Any:
    return assert_rejection_stores_nothing(
        lambda: run(argv), lambda outcome: isinstance(outcome, CommandError), [arg[:80] for arg in argv]
    )


@pytest.fixture(autouse=True)
def _keep_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each command closes the engine's pool as a process ending would; in one process, hundreds of
    # commands would reconnect hundreds of times. The command's own code runs unchanged otherwise.
    monkeypatch.setattr("engine.db.close", lambda: None)


@pytest.fixture(scope="module")
def base(fuzz_target: dict[str, Any]) -> dict[str, list[str]]:
    run(["create-function", "--function-name", "fuzz-update-cli", "--handler", "demos.hello.handler"])
    return {name: [fuzz_target["arn"] if arg == "<seed>" else arg for arg in args] for name, args in REQUIRED.items()}


def test_every_subcommand_is_fuzzed() -> None:
    assert set(REQUIRED) == set(OPERATIONS)


@pytest.mark.parametrize("subcommand", sorted(REQUIRED))
def test_every_option_takes_every_seed(base: dict[str, list[str]], subcommand: str, tmp_path: Path) -> None:
    deep_file = tmp_path / "deep.json"
    deep_file.write_text(DEEP_JSON)
    for option in options_of(subcommand):
        for seed in [*CLI_SEEDS, f"file://{deep_file}"]:
            check([subcommand, *base[subcommand], option, seed])


def test_invoke_refuses_unwritable_outfiles_before_starting(base: dict[str, list[str]]) -> None:
    argv = ["invoke", "--function-name", "fuzz-target", "--invocation-type", "Event", "--payload", "{}"]
    for outfile in UNWRITABLE_OUTFILES:
        outcome = check([*argv, "--durable-execution-name", "fuzz-outfile", outfile])
        assert isinstance(outcome, CommandError) and outcome.returncode == EXIT_BAD_ARGUMENTS, outcome
        assert "Error parsing parameter 'outfile'" in str(outcome)


@pytest.mark.parametrize("subcommand", sorted(REQUIRED))
@FUZZ_SETTINGS
@given(data=st.data())
def test_subcommands_answer_any_arguments(base: dict[str, list[str]], subcommand: str, data: Any) -> None:
    options = options_of(subcommand)
    chosen = data.draw(st.lists(st.sampled_from(options), min_size=1, max_size=3, unique=True))
    argv = [subcommand, *base[subcommand]]
    for option in chosen:
        argv += [option, data.draw(hostile_text)]
    check(argv)
