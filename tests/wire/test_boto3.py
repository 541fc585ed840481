"""An unchanged boto3 ``lambda`` client against the real web server, worker and database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from engine.api import LambdaClient
from tests.wire.conftest import callback_id, finished, history

SDK = "tests.handlers.engine_sdk"
PG = "tests.handlers.engine_pg"
MISSING_ARN = "arn:aws:lambda:us-east-1:123456789012:function:nope:$LATEST/durable-execution/x/00000000-0000-0000-0000-000000000000"


def payload_of(response: dict[str, Any]) -> Any:
    return json.loads(response["Payload"].read())


# --- functions ----------------------------------------------------------------------------------


def test_create_get_list_update_function(lambda_client: Any, make_function: Any) -> None:
    name = make_function(f"{SDK}.echo", Description="first")
    got = lambda_client.get_function(FunctionName=name)
    assert got["Configuration"]["FunctionName"] == name
    assert got["Configuration"]["DurableConfig"]["ExecutionTimeout"] == 300
    assert got["Configuration"]["Description"] == "first"

    updated = lambda_client.update_function_configuration(FunctionName=name, Description="second", Timeout=45)
    assert (updated["Description"], updated["Timeout"]) == ("second", 45)
    assert lambda_client.get_function(FunctionName=name)["Configuration"]["Timeout"] == 45

    names = [
        f["FunctionName"]
        for page in lambda_client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2})
        for f in page["Functions"]
    ]
    assert name in names and len(names) == len(set(names))

    with pytest.raises(lambda_client.exceptions.ResourceConflictException):
        lambda_client.create_function(
            FunctionName=name, Runtime="python3.13", Role="r" * 20, Handler=f"{SDK}.echo", Code={}
        )


def test_unknown_function_is_resource_not_found(lambda_client: Any) -> None:
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as caught:
        lambda_client.get_function(FunctionName="no-such-function-anywhere")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.invoke(FunctionName="no-such-function-anywhere", Payload=b"{}")


# --- invoke ---------------------------------------------------------------------------------------


def test_invoke_request_response_and_event(lambda_client: Any, make_function: Any) -> None:
    name = make_function(f"{SDK}.echo")
    answer = lambda_client.invoke(FunctionName=name, Payload=json.dumps({"n": 1}))
    assert answer["StatusCode"] == 200
    assert answer["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in answer
    assert payload_of(answer) == {"event": {"n": 1}, "replaying": False}
    arn = answer["DurableExecutionArn"]
    assert lambda_client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "SUCCEEDED"

    queued = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 2}')
    assert queued["StatusCode"] == 202
    assert finished(lambda_client, queued["DurableExecutionArn"])["Status"] == "SUCCEEDED"

    dry = lambda_client.invoke(FunctionName=name, InvocationType="DryRun")
    assert dry["StatusCode"] == 204


def test_invoke_failure_sets_function_error(lambda_client: Any, make_function: Any) -> None:
    name = make_function(f"{SDK}.raises_value_error")
    answer = lambda_client.invoke(FunctionName=name, Payload=b"{}")
    assert answer["StatusCode"] == 200
    assert answer["FunctionError"] == "Unhandled"
    assert payload_of(answer)["errorType"] == "ValueError"


def test_invoke_twice_with_one_execution_name(lambda_client: Any, make_function: Any) -> None:
    """Same name, same input: the same execution (AWS's idempotent start); other input: refused."""
    name = make_function(f"{SDK}.echo")
    first = lambda_client.invoke(FunctionName=name, DurableExecutionName="once", Payload=b'{"a": 1}')
    again = lambda_client.invoke(FunctionName=name, DurableExecutionName="once", Payload=b'{"a": 1}')
    assert again["DurableExecutionArn"] == first["DurableExecutionArn"]
    assert "/durable-execution/once/" in first["DurableExecutionArn"]
    with pytest.raises(lambda_client.exceptions.DurableExecutionAlreadyStartedException) as caught:
        lambda_client.invoke(FunctionName=name, DurableExecutionName="once", Payload=b'{"a": 2}')
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    listed = lambda_client.list_durable_executions_by_function(FunctionName=name)["DurableExecutions"]
    assert len(listed) == 1


def test_invalid_parameter_value(lambda_client: Any, make_function: Any) -> None:
    name = make_function(f"{SDK}.echo")
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as caught:
        lambda_client.invoke(FunctionName=name, DurableExecutionName="no spaces allowed", Payload=b"{}")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
        lambda_client.get_durable_execution(DurableExecutionArn="arn:aws:lambda:not-an-execution")
    with pytest.raises(lambda_client.exceptions.InvalidRequestContentException):
        lambda_client.invoke(FunctionName=name, Payload=b"{not json")
    assert lambda_client.list_durable_executions_by_function(FunctionName=name)["DurableExecutions"] == []


# --- executions and history -----------------------------------------------------------------------


def test_execution_and_history_paging(lambda_client: Any, make_function: Any) -> None:
    name = make_function(f"{PG}.steps")
    arn = lambda_client.invoke(FunctionName=name, Payload=b'{"n": 4}')["DurableExecutionArn"]

    described = lambda_client.get_durable_execution(DurableExecutionArn=arn)
    assert described["Status"] == "SUCCEEDED" and described["Result"] == "6"
    assert described["InputPayload"] == '{"n": 4}'
    assert (
        isinstance(described["StartTimestamp"], datetime) and described["EndTimestamp"] >= described["StartTimestamp"]
    )
    compact = lambda_client.get_durable_execution(DurableExecutionArn=arn, IncludeExecutionData=False)
    assert "Result" not in compact and "InputPayload" not in compact and compact["ExecutionDataIncluded"] is False

    events = history(lambda_client, arn, IncludeExecutionData=True)
    ids = [e["EventId"] for e in events]
    assert ids == sorted(ids) and len(ids) > 8
    types = [e["EventType"] for e in events]
    assert types[0] == "ExecutionStarted" and types.count("StepSucceeded") == 4 and "ExecutionSucceeded" in types
    succeeded = next(e for e in events if e["EventType"] == "StepSucceeded")
    assert succeeded["StepSucceededDetails"]["Result"]["Payload"] == "0"
    assert isinstance(succeeded["EventTimestamp"], datetime)
    bare = next(e for e in history(lambda_client, arn) if e["EventType"] == "StepSucceeded")
    assert "Payload" not in bare["StepSucceededDetails"]["Result"]

    paged: list[int] = []
    pages = 0
    marker: dict[str, Any] = {}
    while True:
        page = lambda_client.get_durable_execution_history(DurableExecutionArn=arn, MaxItems=3, **marker)
        paged += [e["EventId"] for e in page["Events"]]
        pages += 1
        if "NextMarker" not in page:
            break
        marker = {"Marker": page["NextMarker"]}
    assert paged == ids and pages == -(-len(ids) // 3)
    backwards = history(lambda_client, arn, ReverseOrder=True, MaxItems=1000)
    assert [e["EventId"] for e in backwards] == ids[::-1]


def test_list_by_function_with_statuses(lambda_client: Any, make_function: Any) -> None:
    name = make_function(f"{PG}.parked")
    done = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    waiting = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    lambda_client.send_durable_execution_callback_success(CallbackId=callback_id(lambda_client, done), Result=b'"x"')
    assert finished(lambda_client, done)["Status"] == "SUCCEEDED"
    callback_id(lambda_client, waiting)

    def arns(**filters: Any) -> set[str]:
        found = lambda_client.list_durable_executions_by_function(FunctionName=name, **filters)
        return {e["DurableExecutionArn"] for e in found["DurableExecutions"]}

    assert arns() == {done, waiting}
    assert arns(Statuses=["RUNNING"]) == {waiting}
    assert arns(Statuses=["SUCCEEDED"]) == {done}
    assert arns(Statuses=["SUCCEEDED", "RUNNING"]) == {done, waiting}
    assert arns(Statuses=["FAILED"]) == set()
    assert arns(StartedAfter=datetime.now(UTC) + timedelta(hours=1)) == set()
    assert arns(StartedBefore=datetime.now(UTC) + timedelta(hours=1)) == {done, waiting}
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.list_durable_executions_by_function(FunctionName="no-such-function-anywhere")
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
        lambda_client.list_durable_executions_by_function(FunctionName=name, Statuses=["PAUSED-FOREVER"])


# --- callbacks and stop ---------------------------------------------------------------------------


def test_callback_success_failure_and_heartbeat(lambda_client: Any, make_function: Any) -> None:
    name = make_function(f"{PG}.parked")
    ok = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"heartbeat": 60}')
    ok_arn = ok["DurableExecutionArn"]
    ok_id = callback_id(lambda_client, ok_arn)
    lambda_client.send_durable_execution_callback_heartbeat(CallbackId=ok_id)
    lambda_client.send_durable_execution_callback_success(CallbackId=ok_id, Result=b'{"approved": true}')
    assert json.loads(finished(lambda_client, ok_arn)["Result"]) == {"result": '{"approved": true}'}
    types = [e["EventType"] for e in history(lambda_client, ok_arn)]
    assert "CallbackSucceeded" in types

    bad_arn = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    bad_id = callback_id(lambda_client, bad_arn)
    lambda_client.send_durable_execution_callback_failure(
        CallbackId=bad_id, Error={"ErrorType": "Rejected", "ErrorMessage": "no thanks"}
    )
    assert json.loads(finished(lambda_client, bad_arn)["Result"])["message"] == "no thanks"
    failed = next(
        e for e in history(lambda_client, bad_arn, IncludeExecutionData=True) if e["EventType"] == "CallbackFailed"
    )
    assert failed["CallbackFailedDetails"]["Error"]["Payload"]["ErrorType"] == "Rejected"

    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
        lambda_client.send_durable_execution_callback_success(CallbackId=ok_id, Result=b"again")
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.send_durable_execution_callback_heartbeat(CallbackId="QUJDREVGR0hJSktMTU5PUFFSU1RVVldY")


def test_stop(lambda_client: Any, make_function: Any) -> None:
    name = make_function(f"{PG}.parked")
    arn = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    callback_id(lambda_client, arn)
    stopped = lambda_client.stop_durable_execution(
        DurableExecutionArn=arn, Error={"ErrorType": "Operator", "ErrorMessage": "enough"}
    )
    assert isinstance(stopped["StopTimestamp"], datetime)
    described = lambda_client.get_durable_execution(DurableExecutionArn=arn)
    assert described["Status"] == "STOPPED"
    assert described["Error"]["ErrorMessage"] == "enough"
    assert history(lambda_client, arn)[-1]["EventType"] == "ExecutionStopped"
    again = lambda_client.stop_durable_execution(DurableExecutionArn=arn)  # idempotent: the first stop's time
    assert again["StopTimestamp"] == stopped["StopTimestamp"]
    done = lambda_client.invoke(FunctionName=make_function(f"{SDK}.echo"), Payload=b"{}")["DurableExecutionArn"]
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
        lambda_client.stop_durable_execution(DurableExecutionArn=done)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.stop_durable_execution(DurableExecutionArn=MISSING_ARN)


def test_percent_encoded_arn_in_the_path(lambda_client: Any, raw_http: Any, make_function: Any) -> None:
    name = make_function(f"{SDK}.echo")
    arn = lambda_client.invoke(FunctionName=name, Payload=b"{}")["DurableExecutionArn"]
    for encoded in (quote(arn, safe=""), quote(arn, safe=":/")):
        status, _, body = raw_http.send("GET", f"/2025-12-01/durable-executions/{encoded}")
        assert status == 200, body
        assert json.loads(body)["DurableExecutionArn"] == arn
        status, _, body = raw_http.send("GET", f"/2025-12-01/durable-executions/{encoded}/history")
        assert status == 200 and json.loads(body)["Events"][0]["EventType"] == "ExecutionStarted"


# --- pause, resume, delete (engine methods land from branch ``pause``) ----------------------------

needs_pause = pytest.mark.skipif(
    not hasattr(LambdaClient, "pause_durable_execution"), reason="engine pause/resume/delete lands from branch pause"
)


@needs_pause
def test_pause_resume(lambda_client: Any, make_function: Any) -> None:
    name = make_function(f"{PG}.parked")
    arn = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    callback_id(lambda_client, arn)
    paused = lambda_client.pause_durable_execution(DurableExecutionArn=arn)
    assert paused["ResponseMetadata"]["HTTPStatusCode"] == 202
    with pytest.raises(lambda_client.exceptions.ResourceConflictException):
        lambda_client.pause_durable_execution(DurableExecutionArn=arn)
    resumed = lambda_client.resume_durable_execution(DurableExecutionArn=arn)
    assert resumed["ResponseMetadata"]["HTTPStatusCode"] == 202
    types = [e["EventType"] for e in history(lambda_client, arn)]
    assert "ExecutionPaused" in types and "ExecutionResumed" in types
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.pause_durable_execution(DurableExecutionArn=MISSING_ARN)


@needs_pause
def test_delete(lambda_client: Any, make_function: Any) -> None:
    name = make_function(f"{SDK}.echo")
    arn = lambda_client.invoke(FunctionName=name, Payload=b"{}")["DurableExecutionArn"]
    deleted = lambda_client.delete_durable_execution(DurableExecutionArn=arn)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_durable_execution(DurableExecutionArn=arn)


def test_answering_a_timed_out_callback_is_callback_timeout(lambda_client: Any, make_function: Any) -> None:
    name = make_function(f"{PG}.parked")
    arn = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"timeout": 1}')[
        "DurableExecutionArn"
    ]
    timed_out = callback_id(lambda_client, arn)
    assert json.loads(finished(lambda_client, arn)["Result"])["error_type"]  # the handler saw the timeout
    for answer in (
        lambda: lambda_client.send_durable_execution_callback_success(CallbackId=timed_out, Result=b"late"),
        lambda: lambda_client.send_durable_execution_callback_failure(CallbackId=timed_out, Error={}),
        lambda: lambda_client.send_durable_execution_callback_heartbeat(CallbackId=timed_out),
    ):
        with pytest.raises(lambda_client.exceptions.CallbackTimeoutException) as caught:
            answer()
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
