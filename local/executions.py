"""Following executions on the live stack: their history, whether one waits in AwaitApproval, waiting for one to end
(answering its approval once), and stopping what still runs when the runtime stops."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from local.live_stack import LiveStack

if TYPE_CHECKING:
    from local.lambdas import InProcessLambdas

# State names are the operator contract (docs/state-machine.md); the runtime answers this one's callback.
APPROVAL_STATE = "AwaitApproval"
_POLL_S = 0.02


class Executions:
    """The executions of the stack's state machines, read and waited for through Step Functions' own API."""

    def __init__(self, live: LiveStack, lambdas: InProcessLambdas | None) -> None:
        self.live, self.lambdas = live, lambdas

    def drain(self) -> None:
        """Let asynchronous Lambda deliveries (EventBridge targets) finish before production is read."""
        if self.lambdas is not None:
            self.lambdas.drain()

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        paginator = self.live.clients.stepfunctions.get_paginator("get_execution_history")
        for page in paginator.paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events

    # -- approval --------------------------------------------------------------------------------------------
    def _approval_requested(self, execution_arn: str) -> bool:
        """Whether the AwaitApproval Lambda has stored this execution's task token (from the invocation record)."""
        if self.lambdas is None:
            return True
        for call in list(self.lambdas.invocations):
            event = call.event if isinstance(call.event, dict) else {}
            claim = (event.get("state") or {}).get("claim") or {}
            if "task_token" in event and claim.get("execution_arn") == execution_arn and call.error is None:
                return True
        return False

    def approval_pending(self, execution_arn: str) -> bool:
        """True once AwaitApproval's Lambda has run and its task waits for the token (TaskSubmitted)."""
        if not self._approval_requested(execution_arn):
            return False  # cheap check first: the history grows long during a rollout, reading it is not free
        in_approval = False
        for event in self.history(execution_arn):
            if event["type"] == "TaskStateEntered":
                in_approval = event["stateEnteredEventDetails"]["name"] == APPROVAL_STATE
            elif event["type"] == "TaskSubmitted" and in_approval:
                return True
        return False

    def wait_for_approval_request(self, execution_arn: str, timeout_s: float = 30.0) -> None:
        """Poll until the execution waits in AwaitApproval (its candidate registered, its token stored)."""
        deadline = time.monotonic() + timeout_s
        while not self.approval_pending(execution_arn):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} never reached {APPROVAL_STATE} within {timeout_s:g} s")
            time.sleep(_POLL_S)

    def task_waiting(self, execution_arn: str, state: str) -> bool:
        """True while the execution's latest task state is `state` and it waits for its token (TaskSubmitted)."""
        waiting, current = False, None
        for event in self.history(execution_arn):
            if event["type"] == "TaskStateEntered":
                current, waiting = event["stateEnteredEventDetails"]["name"], False
            elif event["type"] == "TaskSubmitted" and current == state:
                waiting = True
            elif event["type"] in ("TaskSucceeded", "TaskFailed", "TaskTimedOut", "TaskStateExited"):
                waiting = False
        return waiting

    def wait_in(self, execution_arn: str, state: str, timeout_s: float = 60.0) -> None:
        """Poll until the execution waits in the callback task `state` (a held rollout waits in AwaitOperator)."""
        deadline = time.monotonic() + timeout_s
        while not self.task_waiting(execution_arn, state):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} never waited in {state} within {timeout_s:g} s")
            time.sleep(_POLL_S * 5)

    # -- the end ---------------------------------------------------------------------------------------------
    def wait(
        self, execution_arn: str, *, answer: Callable[[], None] | None = None, timeout_s: float = 120.0
    ) -> dict[str, Any]:
        """Poll until the execution ends, calling `answer` once when it waits in AwaitApproval; DescribeExecution's
        answer. Past `timeout_s` the execution is stopped (status ABORTED, error LocalTimeout)."""
        sfn = self.live.clients.stepfunctions
        deadline = time.monotonic() + timeout_s
        stopped = False
        while True:
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                if stopped:  # moto's StopExecution does not keep the error and cause it was given
                    described.update(error="LocalTimeout", cause=f"still running after {timeout_s:g} s: stopped")
                return described
            if answer is not None and self.approval_pending(execution_arn):
                answer()
                answer = None
            if not stopped and time.monotonic() > deadline:
                sfn.stop_execution(executionArn=execution_arn)
                stopped = True
            time.sleep(_POLL_S)

    def stop_all(self, settle_s: float = 20.0) -> None:
        """Let the short executions SageMaker's events started (the operator rollback machine's, which most often
        just ignore a package change the run made) end by themselves, then stop whatever still runs: an execution
        stopped mid-task would finish its Lambda after this runtime is gone, inside the next one's world."""
        sfn = self.live.clients.stepfunctions
        promotion = self.live.state_machine_arn
        machines = list(self.live.world.state_machines.values())
        deadline = time.monotonic() + settle_s
        for arn in machines:
            if arn == promotion:
                continue
            self.drain()
            while sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        for arn in machines:
            for execution in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
                try:
                    sfn.stop_execution(executionArn=execution["executionArn"])
                except ClientError as error:  # it ended by itself since the listing
                    if error.response["Error"]["Code"] not in ("ExecutionDoesNotExist", "ExecutionNotRunning"):
                        raise
