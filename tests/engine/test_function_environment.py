"""Invocations that overlap in one process's threads leave the environment as it was."""

from __future__ import annotations

import os
from contextlib import ExitStack

import pytest

from engine.invoker import function_environment

NAME = "AWS_LAMBDA_FUNCTION_NAME"


@pytest.fixture(autouse=True)
def no_function_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NAME, raising=False)
    monkeypatch.delenv("ONLY_A", raising=False)


def test_the_first_to_end_leaves_the_other_ones_values_and_the_last_restores_all() -> None:
    a, b = function_environment({"ONLY_A": "1"}, "fn-a", 30), function_environment({}, "fn-b", 60)
    a.__enter__()
    b.__enter__()
    assert (os.environ[NAME], os.environ["ONLY_A"]) == ("fn-b", "1")
    a.__exit__(None, None, None)  # A ends first: B still runs with its own values
    assert os.environ[NAME] == "fn-b" and os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "60"
    assert "ONLY_A" not in os.environ
    b.__exit__(None, None, None)
    assert NAME not in os.environ and "AWS_LAMBDA_FUNCTION_TIMEOUT" not in os.environ


def test_the_newest_to_end_gives_the_environment_back_to_the_one_still_running() -> None:
    with function_environment({}, "fn-a", 30):
        with function_environment({}, "fn-b", 60):
            assert os.environ[NAME] == "fn-b"
        assert os.environ[NAME] == "fn-a" and os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "30"
    assert NAME not in os.environ


def test_a_value_set_before_any_invocation_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, "the-shells-own")
    with ExitStack() as stack:
        for name in ("fn-a", "fn-b", "fn-c"):
            stack.enter_context(function_environment({}, name, 30))
    assert os.environ[NAME] == "the-shells-own"


@pytest.mark.parametrize("logger", ["gunicorn.access", "gunicorn.error", "django.request"])
def test_the_web_servers_own_lines_are_never_a_functions_output(logger: str) -> None:
    from logging import INFO, LogRecord

    from durable_site.terminal import tag_of

    with function_environment({}, "fn-a", 30):  # a handler runs in this process meanwhile
        assert tag_of(LogRecord(logger, INFO, __file__, 1, "GET / 200", (), None)) is None
        assert tag_of(LogRecord("my_handler", INFO, __file__, 1, "hello", (), None)) == "fn-a"
