"""Where the conformance requirements come from (conformance/requirements.py) and how log
expectations are checked (conformance/runner.py): pure, no worker."""

from __future__ import annotations

import importlib
import subprocess
import zipfile
from collections import Counter

import pytest

from conformance import SUITES, handler_module, requirements
from conformance.requirements import RequirementsUnavailable, requirement_files
from conformance.runner import check_log_expectation, log_record

# AWS's 1.0.0 release: 155 requirements in ten suites.
SUITE_SIZES = {
    "step": 20,
    "wait": 5,
    "child": 18,
    "callback": 19,
    "invoke": 16,
    "wait_for_condition": 13,
    "wait_for_callback": 15,
    "parallel": 22,
    "map": 20,
    "plugin": 7,
}


@pytest.fixture
def pinned_wheel(monkeypatch):
    monkeypatch.delenv("DURABLE_SHARED_DIR", raising=False)
    try:
        return requirement_files()
    except RequirementsUnavailable as exc:
        message = str(exc)
    # Outside the except block, so the failure is the message alone, without a chained traceback.
    pytest.fail(message, pytrace=False)


def test_the_pinned_wheel_holds_every_suite_and_each_requirement_has_a_handler(pinned_wheel):
    assert Counter(r.suite for r in pinned_wheel) == SUITE_SIZES
    assert set(SUITE_SIZES) == set(SUITES)
    missing = [
        f"{r.suite}/{r.id}" for r in pinned_wheel if r.id not in importlib.import_module(handler_module(r.suite)).SPECS
    ]
    assert not missing, f"requirements without a handler: {missing}"
    assert all(isinstance(r.load(), dict) and r.load().get("description") for r in pinned_wheel)


def test_the_wheel_lives_inside_the_checkout_where_git_ignores_it():
    wheel = requirements.wheel_path()
    assert wheel.is_relative_to(requirements.ROOT)
    ignored = subprocess.run(["git", "check-ignore", "-q", str(wheel)], cwd=requirements.ROOT, check=False)
    assert ignored.returncode == 0, f"{wheel} is not git-ignored"


def test_a_missing_wheel_names_the_make_target(monkeypatch, tmp_path):
    monkeypatch.delenv("DURABLE_SHARED_DIR", raising=False)
    monkeypatch.setattr(requirements, "WHEEL_DIR", tmp_path)
    with pytest.raises(RequirementsUnavailable, match="run `make conformance-wheel`"):
        requirement_files()


def test_a_wheel_that_is_not_the_pinned_one_is_refused(monkeypatch, tmp_path):
    monkeypatch.delenv("DURABLE_SHARED_DIR", raising=False)
    monkeypatch.setattr(requirements, "WHEEL_DIR", tmp_path)
    with zipfile.ZipFile(requirements.wheel_path(), "w") as forged:
        forged.writestr("x/test_requirements/step/1-1.yaml", "ExpectedResult: {ExecutionStatus: SUCCEEDED}")
    with pytest.raises(RequirementsUnavailable, match=r"not the [0-9a-f]{64} pinned.*make conformance-wheel"):
        requirement_files()


def test_durable_shared_dir_overrides_the_wheel(monkeypatch, tmp_path):
    folder = tmp_path / "conformance" / "requirements" / "step"
    folder.mkdir(parents=True)
    (folder / "1-10.yaml").write_text("ExpectedResult: {ExecutionStatus: FAILED}")
    (folder / "1-9.yaml").write_text("ExpectedResult: {ExecutionStatus: SUCCEEDED}")
    monkeypatch.setenv("DURABLE_SHARED_DIR", str(tmp_path))
    found = requirement_files()
    assert [(r.suite, r.id) for r in found] == [("step", "1-9"), ("step", "1-10")]
    assert found[1].load() == {"ExpectedResult": {"ExecutionStatus": "FAILED"}}
    monkeypatch.setenv("DURABLE_SHARED_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(RequirementsUnavailable, match="no conformance requirements under"):
        requirement_files()


def _records(*messages: str) -> list[dict]:
    return [log_record({"message": message, "level": "INFO"}) for message in messages]


def test_log_records_are_json_fields_or_the_raw_message():
    [structured, plain] = _records('{"plugin": "P", "first": true, "n": 2}', "plain text")
    assert (structured["plugin"], structured["first"], structured["n"]) == ("P", True, 2)
    assert plain == {"message": "plain text", "level": "INFO"}


def test_log_expectations_count_typed_fields_and_order():
    records = _records('{"hook": "start", "first": true}', "step ran for abc", '{"hook": "end"}')
    check_log_expectation({"match": {"hook": "start", "first": True}, "count": 1}, records, {})
    check_log_expectation({"match": {"hook": "start", "first": False}, "count": 0}, records, {})
    check_log_expectation({"match": {"message": "/ran for ${X}/"}, "after": {"hook": "start"}}, records, {"X": "abc"})
    with pytest.raises(AssertionError, match="not all after"):
        check_log_expectation({"match": {"hook": "start"}, "count": 1, "after": [{"hook": "end"}]}, records, {})
    with pytest.raises(AssertionError, match="matched no log record"):
        check_log_expectation({"match": {"hook": "end"}, "after": [{"hook": "typo"}]}, records, {})
    with pytest.raises(AssertionError, match=r"expected 1\.\.None"):
        check_log_expectation({"match": {"hook": "missing"}}, records, {})
