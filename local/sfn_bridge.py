"""Hooks into moto's Step Functions interpreter (moto 5.2.5, `moto.stepfunctions.parser`), installed once per
process and active only while a local runtime is running (otherwise every hook falls through to moto).

Bridges (each tested in tests/local/test_sfn_bridge.py):

* Lambda tasks -> in-process handlers. Both a plain function-ARN `Resource` (`StateTaskLambda`) and
  `arn:aws:states:::lambda:invoke[.waitForTaskToken]` (`StateTaskServiceLambda`) call
  `lambda_eval_utils.execute_lambda_function_integration`, which calls the module-level
  `lambda_eval_utils._invoke_lambda_function`; that one function is replaced. It returns Lambda's Invoke response
  (`Payload`, and `FunctionError: Unhandled` with the error payload when the handler raised), so moto's own code
  turns an error into the Step Functions error name (`errorType`) and cause (the payload JSON) as AWS does, and
  `.waitForTaskToken` then waits for SendTaskSuccess/SendTaskFailure exactly as the interpreter already does.
  An unknown function answers Lambda's `ResourceNotFoundException` instead of moto's silent echo; a function the
  state machine's role may not invoke answers `AccessDeniedException` (`authorize_invoke`, from `local.iam`).
* Wait states: `WaitFunction._wait_interval` sleeps `seconds * wait_factor` (default 0: a Wait of an hour passes
  in milliseconds). Seconds, SecondsPath, Timestamp and TimestampPath all go through it. The definition and the
  execution history are unchanged (WaitStateEntered/Exited as on AWS).
* Retry intervals: `RetrierDecl._eval_body` sleeps through its module's `time.sleep`; that module reference is
  replaced by a clock whose `sleep` is scaled by `retry_factor` (backoff, MaxDelaySeconds and jitter still apply,
  before the scaling); like a Wait, the interval's unscaled seconds pass as simulated time (`on_wait`).
* Callback timeouts: the `Timeout` component of a `.waitForTaskToken` task (TimeoutSeconds or TimeoutSecondsPath)
  is wrapped when the state is first evaluated, so its value becomes `ceil(seconds * callback_timeout_factor)`,
  capped at `callback_timeout_max_s`, at least 1 s; an approval expiry scenario then times out in seconds. Other
  tasks keep their timeouts. A compressed value also shows in the TaskScheduled event's `timeoutInSeconds`.
* Callback waits: while a `.waitForTaskToken` task waits, `advance` lets the next pending SageMaker change
  complete (simulated time passes to it, the traffic simulator serves that time), so the SageMaker event that
  answers the task comes at once; an answer that never comes still times the task out.
* StopExecution during a callback wait: moto's `Execution.stop` marks the program stopped, but a task waiting
  for its token keeps waiting for the whole TimeoutSeconds (72 h for an approval), so the execution stays RUNNING.
  The replacement also interrupts the execution's waiting callback endpoints, and `Environment.set_error` no
  longer turns a stopped program into a failed one (the interrupted task raises on its way out), so the execution
  ends ABORTED at once, as on AWS.
* SendTaskFailure's cause: moto's `StepFunctionResponse.send_task_failure` passes only the error to the backend
  and drops `cause`; the replacement passes both, so a Catch sees the cause the caller sent, as on AWS.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError
from moto.core.responses import EmptyResult
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, CallbackOutcome
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.responses import StepFunctionResponse

from local.hooks import Hooks


@dataclass(frozen=True)
class TimeCompression:
    """How much local time a second of state-machine time takes (the synthesized definition is never changed)."""

    wait_factor: float = 0.0
    retry_factor: float = 0.0
    callback_timeout_factor: float = 1.0
    callback_timeout_max_s: float | None = None
    # The callback timeout of these states in local seconds, whatever the definition says (a test lets one hold
    # expire without shortening the waits for SageMaker's jobs).
    state_timeouts_s: Mapping[str, float] = field(default_factory=dict)

    def wait(self, seconds: float) -> float:
        return max(0.0, seconds * self.wait_factor)

    def retry(self, seconds: float) -> float:
        return max(0.0, seconds * self.retry_factor)

    def callback_timeout(self, seconds: int, state: str | None = None) -> int:
        if state is not None and state in self.state_timeouts_s:
            return max(1, math.ceil(self.state_timeouts_s[state]))
        compressed = seconds * self.callback_timeout_factor
        if self.callback_timeout_max_s is not None:
            compressed = min(compressed, self.callback_timeout_max_s)
        return max(1, math.ceil(compressed))


class LambdaInvoker(Protocol):
    def invoke(self, reference: str, event: Any) -> tuple[Any, dict[str, Any] | None]: ...


@dataclass(frozen=True)
class StepFunctionsBridge:
    """What the hooks need from the running local runtime."""

    lambdas: LambdaInvoker
    time: TimeCompression
    # Called with the state-machine seconds each Wait stands for (the traffic simulator fills them with requests).
    on_wait: Callable[[float], None] | None = None
    # local.iam: (state machine ARN, function) -> raises a ClientError (AccessDeniedException) when the state
    # machine's role may not invoke the function
    authorize_invoke: Callable[[str, str], None] | None = None
    # Called while a task waits for its token: let the next thing SageMaker has pending happen (simulated time
    # passes until then); False when nothing is pending.
    advance: Callable[[], bool] | None = None
    # Called on the interpreter's thread after each Lambda task's function returned (state name, its result),
    # before the execution goes on: a test acts at an exact point of the flow (an operator's pause mid-rollout).
    after_invoke: Callable[[str, Any], None] | None = None


def _stop(self: Execution, stop_date: datetime, error: str | None, cause: str | None) -> None:
    _ORIGINALS["stop"](self, stop_date, error, cause)
    worker = self.exec_worker
    if HOOKS.current is None or worker is None or worker.env is None:
        return
    for endpoint in list(worker.env.callback_pool_manager._pool.values()):
        endpoint.interrupt_all()


def _set_error(self: Environment, error: Any) -> None:
    if HOOKS.current is not None and isinstance(self.program_state(), ProgramStopped):
        return  # StopExecution wins over the error the interrupted state raises while unwinding
    _ORIGINALS["set_error"](self, error)


def _patch(originals: dict[str, Any]) -> None:
    originals["invoke"] = lambda_eval_utils._invoke_lambda_function
    originals["execute"] = lambda_eval_utils.execute_lambda_function_integration
    originals["wait"] = WaitFunction._wait_interval
    originals["retry_time"] = retrier_decl.time
    originals["callback_eval_body"] = StateTaskServiceCallback._eval_body
    originals["token_wait"] = StateTaskServiceCallback._wait_for_task_token_timeout
    originals["send_task_failure"] = StepFunctionResponse.send_task_failure
    originals["stop"] = Execution.stop
    originals["set_error"] = Environment.set_error
    lambda_eval_utils._invoke_lambda_function = _invoke_lambda_function
    lambda_eval_utils.execute_lambda_function_integration = _execute_lambda_function_integration
    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]
    retrier_decl.time = _RetryClock()  # type: ignore[assignment]
    StateTaskServiceCallback._eval_body = _callback_eval_body  # type: ignore[method-assign]
    StateTaskServiceCallback._wait_for_task_token_timeout = _wait_for_task_token  # type: ignore[method-assign]
    StepFunctionResponse.send_task_failure = _send_task_failure  # type: ignore[method-assign]
    Execution.stop = _stop  # type: ignore[method-assign]
    Environment.set_error = _set_error  # type: ignore[method-assign]


HOOKS: Hooks[StepFunctionsBridge] = Hooks(_patch)
_ORIGINALS = HOOKS.originals


def _not_found(function_name: str) -> ClientError:
    message = f"Function not found: {function_name}"
    return ClientError(
        {
            "Error": {"Code": "ResourceNotFoundException", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 404, "RequestId": "local"},
        },
        "Invoke",
    )


def _invoke_lambda_function(parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
    bridge = HOOKS.current
    if bridge is None:
        original: Any = _ORIGINALS["invoke"]
        return original(parameters=parameters, region=region, state_credentials=state_credentials)
    raw = parameters.get("Payload") or b"{}"
    event = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    if bridge.authorize_invoke is not None:
        bridge.authorize_invoke(getattr(_EXECUTING, "machine", ""), parameters["FunctionName"])
    try:
        result, error = bridge.lambdas.invoke(parameters["FunctionName"], event)
    except KeyError:
        raise _not_found(parameters["FunctionName"]) from None
    if error is None and bridge.after_invoke is not None:
        bridge.after_invoke(getattr(_EXECUTING, "state", ""), result)
    response: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    if error is not None:
        response.update(FunctionError="Unhandled", Payload=error)
    else:
        response["Payload"] = result
    return response


_EXECUTING = threading.local()  # the state machine whose Lambda task this interpreter thread is running


def _execute_lambda_function_integration(
    env: Environment, parameters: dict[str, Any], region: str, state_credentials: Any
) -> None:
    """Remember which state machine makes the invocation (its role is the one authorized), then run moto's code."""
    _EXECUTING.machine = env.states.context_object.context_object_data["StateMachine"]["Id"]
    state = env.states.context_object.context_object_data.get("State")
    _EXECUTING.state = state["Name"] if state else ""
    _ORIGINALS["execute"](env, parameters, region, state_credentials)


def _wait_interval(self: WaitFunction, env: Environment, wait_seconds: int) -> None:
    bridge = HOOKS.current
    if bridge is None:
        _ORIGINALS["wait"](self, env, wait_seconds)
        return
    if bridge.on_wait is not None:
        bridge.on_wait(float(wait_seconds))
    deadline = time.monotonic() + bridge.time.wait(wait_seconds)
    while env.is_running():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        # The event pulses on any program state change; a stop ends the loop through env.is_running().
        env.program_state_event.wait(remaining)


class _RetryClock:
    """Replaces the `time` module inside moto's retrier module: `sleep` is scaled, the rest is `time`."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        bridge = HOOKS.current
        if bridge is not None and bridge.on_wait is not None:
            bridge.on_wait(float(seconds))  # a retry interval is simulated time too (an endpoint change goes on)
        time.sleep(seconds if bridge is None else bridge.time.retry(seconds))


class CompressedTimeout(Timeout):
    """A callback task's timeout, compressed by the running local runtime's TimeCompression."""

    def __init__(self, inner: Timeout) -> None:
        self.inner = inner

    def is_default_value(self) -> bool:
        return self.inner.is_default_value()

    def _eval_seconds(self, env: Environment) -> int:
        self.inner.eval(env=env)
        seconds: int = env.stack.pop()
        bridge = HOOKS.current
        state = env.states.context_object.context_object_data.get("State")
        return seconds if bridge is None else bridge.time.callback_timeout(seconds, state["Name"] if state else None)


def _callback_eval_body(self: StateTaskServiceCallback, env: Environment) -> None:
    if (
        self.resource.condition == ResourceCondition.WaitForTaskToken
        and not isinstance(self.timeout, CompressedTimeout)
        and not self.timeout.is_default_value()
    ):
        self.timeout = CompressedTimeout(self.timeout)
    _ORIGINALS["callback_eval_body"](self, env)


TOKEN_WAIT_SLICE_S = 0.02


def _wait_for_task_token(
    self: StateTaskServiceCallback, timeout_seconds: int, callback_endpoint: CallbackEndpoint
) -> CallbackOutcome | None:
    """Wait for the token as moto does, but while nothing has answered, let SageMaker's pending work finish in
    simulated time (an endpoint change completes, its event completes the task): a wait for SageMaker takes no real
    time. The timeout is the (compressed) real-time one: an answer that never comes times the task out."""
    bridge = HOOKS.current
    if bridge is None or bridge.advance is None:
        result: CallbackOutcome | None = _ORIGINALS["token_wait"](self, timeout_seconds, callback_endpoint)
        return result
    deadline = time.monotonic() + timeout_seconds
    while True:
        if callback_endpoint._notify_event.is_set():
            return callback_endpoint.get_outcome()  # answered, or interrupted (StopExecution): moto's handling follows
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        bridge.advance()  # SageMaker's next change, if any: its event (on another thread) may answer the task
        callback_endpoint.wait(timeout=min(TOKEN_WAIT_SLICE_S, remaining))


def _send_task_failure(self: StepFunctionResponse) -> Any:
    if HOOKS.current is None:
        return _ORIGINALS["send_task_failure"](self)
    backend: Any = self.stepfunction_backend  # the interpreter's backend, whose send_task_failure takes a cause
    backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()
