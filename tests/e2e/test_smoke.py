from __future__ import annotations

import json

from tests.conftest import wait_until


def test_demo_workflow_completes_through_real_worker(lam, unique):
    response = lam.invoke(
        FunctionName="hello-steps",
        Payload=json.dumps({"name": unique, "wait_seconds": 1}),
        DurableExecutionName=f"smoke-{unique}",
    )
    assert response["StatusCode"] == 200, response
    assert json.loads(response["Payload"].read()) == {
        "greeting": f"Hello, {unique}!",
        "loud": f"HELLO, {unique.upper()}!",
    }
    events = lam.get_durable_execution_history(DurableExecutionArn=response["DurableExecutionArn"])["Events"]
    assert [e["EventType"] for e in events] == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "WaitStarted",
        "InvocationCompleted",
        "WaitSucceeded",
        "StepStarted",
        "StepSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]


def test_callback_approval_resumes_execution(lam, unique):
    started = lam.invoke(FunctionName="human-approval", InvocationType="Event", Payload=b'{"amount": 7}')
    arn = started["DurableExecutionArn"]

    def callback_id():
        events = lam.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
        return next(
            (e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted"), None
        )

    cid = wait_until(callback_id, message="CallbackStarted")
    lam.send_durable_execution_callback_success(CallbackId=cid, Result=json.dumps({"approved": True}))
    wait_until(lambda: lam.get_durable_execution(DurableExecutionArn=arn)["Status"] != "RUNNING", message="terminal")
    execution = lam.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "SUCCEEDED", execution
    assert json.loads(execution["Result"])["decision"] == json.dumps({"approved": True})
