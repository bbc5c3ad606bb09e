"""In-process Lambda: real handlers, their own modules, their environment and layers, Lambda's error shape."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from local.errors import UsageError
from local.faults import Crash, FaultInjector
from local.iam.model import Role
from local.iam.policy import Policy
from local.lambdas import InProcessLambdas
from local.runtime import LocalRuntime
from local.world import FunctionSpec
from tests.local.conftest import run_path


def _function(tmp_path: Path, name: str, source: str, **environment: str) -> FunctionSpec:
    code_dir = tmp_path / name
    code_dir.mkdir()
    (code_dir / "handler.py").write_text(source)
    return FunctionSpec(
        logical_id=name.title(),
        name=name,
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        handler="handler.handler",
        code_dir=code_dir,
        environment=environment,
        layer_dirs=(),
        memory_mb=128,
        timeout_s=3,
    )


@pytest.fixture
def lambdas(tmp_path: Path) -> InProcessLambdas:
    functions = [
        _function(tmp_path, "one", "WHO = 'one'\ndef handler(event, context):\n    return {'who': WHO, **event}\n"),
        _function(tmp_path, "two", "WHO = 'two'\ndef handler(event, context):\n    return {'who': WHO}\n"),
        _function(
            tmp_path,
            "env",
            "import os\ndef handler(event, context):\n    print('hello log')\n    return os.environ['ONLY_HERE']\n",
            ONLY_HERE="yes",
        ),
        _function(
            tmp_path, "boom", "class Boom(Exception):\n    pass\ndef handler(event, context):\n    raise Boom('no')\n"
        ),
        _function(tmp_path, "unjson", "def handler(event, context):\n    return {1, 2}\n"),
        _function(tmp_path, "broken", "import not_a_module_anywhere\n"),
    ]
    runtime = InProcessLambdas({spec.logical_id: spec for spec in functions}, "us-east-1")
    runtime.open()
    yield runtime
    runtime.close()


def test_each_handler_py_is_its_own_module(lambdas: InProcessLambdas) -> None:
    assert lambdas.invoke("one", {"x": 1}) == ({"who": "one", "x": 1}, None)
    assert lambdas.invoke("arn:aws:lambda:us-east-1:123456789012:function:two", {}) == ({"who": "two"}, None)
    assert lambdas.invoke("one", {}) == ({"who": "one"}, None)
    assert "handler" not in sys.modules


def test_the_environment_is_the_functions_only_during_the_call(lambdas: InProcessLambdas) -> None:
    assert lambdas.invoke("env", {}) == ("yes", None)
    assert "ONLY_HERE" not in os.environ
    assert lambdas.invocations[-1].logs == "hello log\n"


def test_an_exception_becomes_lambdas_error_payload(lambdas: InProcessLambdas) -> None:
    result, error = lambdas.invoke("boom", {})
    assert result is None and error is not None
    assert set(error) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert error["errorType"] == "Boom" and error["errorMessage"] == "no"
    assert error["requestId"] == lambdas.invocations[-1].request_id
    assert "handler.py" in error["stackTrace"][-1] and "lambdas.py" not in "".join(error["stackTrace"])


@pytest.mark.parametrize(
    ("function", "error_type"), [("unjson", "Runtime.MarshalError"), ("broken", "Runtime.ImportModuleError")]
)
def test_runtime_errors_are_named_as_lambda_names_them(
    lambdas: InProcessLambdas, function: str, error_type: str
) -> None:
    _, error = lambdas.invoke(function, {})
    assert error is not None and error["errorType"] == error_type


def test_an_unknown_function_is_not_silently_invoked(lambdas: InProcessLambdas) -> None:
    with pytest.raises(KeyError):
        lambdas.invoke("nope", {})


def test_a_lambda_task_returns_what_the_real_handler_returned(runtime: LocalRuntime) -> None:
    described = run_path(runtime, path="echo")
    assert described["status"] == "SUCCEEDED"
    echo = json.loads(described["output"])["echo"]
    assert echo["who"] == "echo" and echo["event"] == {"path": "echo"}
    assert echo["greeting"] == "hello from the layer"  # imported from the layer's python/ directory
    assert echo["catalog"] == ["mini.yaml"]  # CATALOG_DIR=/opt/catalog points into the layer
    assert Path(echo["env"]["CATALOG_DIR"]).parts[-1] == "catalog"
    assert echo["env"]["TABLE"] == "statetable" and echo["env"]["CONFIG_BUCKET"] == "configbucket"
    assert echo["env"]["TOPIC"] == "arn:aws:sns:us-east-1:123456789012:notifications"
    context = echo["context"]
    assert context["function_name"] == "echofunction"
    assert context["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:echofunction"
    assert context["memory_limit_in_mb"] == 256 and context["remaining_ms_positive"]


def test_a_handler_error_is_the_error_name_catch_matches(runtime: LocalRuntime) -> None:
    described = run_path(runtime, path="fail")
    assert described["status"] == "SUCCEEDED"  # caught by the definition's Catch on FixtureBoom
    error = json.loads(described["output"])["error"]
    assert error["Error"] == "FixtureBoom"
    cause = json.loads(error["Cause"])
    assert cause["errorType"] == "FixtureBoom" and cause["errorMessage"] == "boom for fail"
    assert set(cause) == {"errorMessage", "errorType", "requestId", "stackTrace"}


def test_a_lambda_invoke_of_a_missing_function_fails_as_on_aws(runtime: LocalRuntime) -> None:
    definition = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:nope", "Payload": {}},
                "End": True,
            }
        },
    }
    sfn = runtime.clients.stepfunctions
    role = "arn:aws:iam::123456789012:role/r"
    arn = sfn.create_state_machine(name="missing", definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
    # AWS authorizes the invocation before it looks for the function: a role that may not invoke it is refused.
    refused = runtime.wait(sfn.start_execution(stateMachineArn=arn, name="refused")["executionArn"])
    assert (refused["status"], refused["error"]) == ("FAILED", "Lambda.AccessDeniedException")
    assert "role/r may be assumed by Step Functions" in refused["cause"]  # r is no role of the template
    assert runtime.iam is not None
    trust = {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
    invoke_any = {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}
    runtime.iam.model.roles[role] = Role(
        "r",
        role,
        (Policy.parse("invoke-any", {"Statement": [invoke_any]}),),
        Policy.parse("trust", {"Statement": [trust]}, resource_policy=True),
    )
    described = runtime.wait(sfn.start_execution(stateMachineArn=arn, name="granted")["executionArn"])
    assert described["status"] == "FAILED"
    assert described["error"] == "Lambda.ResourceNotFoundException"


def test_fail_at_injects_a_fault_into_the_function_behind_the_state(mini_root: Path) -> None:
    with LocalRuntime(mini_root, fail_at=["Echo"]) as runtime:
        described = run_path(runtime, path="echo")
        assert described["status"] == "FAILED" and described["error"] == "InjectedFault"
        assert json.loads(described["cause"])["errorType"] == "InjectedFault"
        assert run_path(runtime, path="flaky")["status"] == "SUCCEEDED"  # other functions are untouched


def test_fail_at_an_unknown_state_names_the_lambda_tasks(mini_root: Path) -> None:
    with pytest.raises(UsageError, match="AwaitToken, Echo, Explode, Flaky"):
        LocalRuntime(mini_root, fail_at=["Route"]).start()


def test_fail_at_is_a_crash_of_the_fault_injector_with_its_options(mini_root: Path) -> None:
    """`fail_at` is `Crash.parse` in a FaultInjector: `STATE:after:crash` fails the invocation after the handler ran,
    as a crashed Lambda runtime, and every AWS call the handlers make is recorded as with any injector."""
    runtime = LocalRuntime(mini_root, fail_at=["Echo:after:crash"])
    assert runtime.faults is not None and runtime.faults.crashes == (Crash(state="Echo", when="after", kind="crash"),)
    with runtime:
        described = run_path(runtime, path="echo")
        assert described["status"] == "FAILED" and described["error"] == "Runtime.ExitError"
        assert json.loads(described["cause"])["stackTrace"] == []  # the runtime's frames are not the function's
        assert [what for what, _ in runtime.faults.fired] == ["crash crash after"]
    with pytest.raises(UsageError, match="expected STATE"):
        LocalRuntime(mini_root, fail_at=["Echo:later"])
    with pytest.raises(UsageError, match="not both"):
        LocalRuntime(mini_root, fail_at=["Echo"], faults=FaultInjector())
