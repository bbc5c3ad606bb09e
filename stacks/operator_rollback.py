"""The operator rollback state machine: an operator's rollback request (the live release's model package rejected
in the Model Registry), carried out with the same restore as the promotion's Rollback, and the endpoint waited for
in a Wait loop (a Lambda must not sleep through an update).

    BeginRollback ─ ignore (NotARollback: a candidate's or an old release's package), refuse (RollbackRefused) or
                    restore parameters and config, then the endpoint's first step
      └─ RestoreProgress: pending ─> WaitForEndpointRestore (60 s) ─> ContinueRollback ─> RestoreProgress
                          accepted ─> RolledBack;  ignored ─> NotARollback;  otherwise ─> RollbackRefused
    any task failure ─> RollbackFailed (the function has released the model's lock and recorded the outcome)
"""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.nag import acknowledge, wildcard_resource_finding
from stacks.state_machine import POLL_INTERVAL, logged_state_machine, retry_transient_errors


class OperatorRollbackStateMachine(Construct):
    """Standard state machine the RollbackRequested rule starts, one execution per rejected package of a catalog
    model (most are candidates' rejections, which end at NotARollback)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        state_machine_name: str,
        log_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)

        def step(name: str, payload: dict[str, object]) -> tasks.LambdaInvoke:
            invoke = tasks.LambdaInvoke(
                self,
                name,
                lambda_function=function,
                payload=sfn.TaskInput.from_object(payload),
                payload_response_only=True,
                retry_on_service_exceptions=False,
                result_path="$.rollback",
            )
            retry_transient_errors(invoke)
            invoke.add_catch(failed, errors=["States.ALL"], result_path="$.error")
            return invoke

        failed = sfn.Fail(self, "RollbackFailed", error_path="$.error.Error", cause_path="$.error.Cause")
        request = sfn.JsonPath.object_at("$$.Execution.Input")
        execution = sfn.JsonPath.string_at("$$.Execution.Id")
        begin = step("BeginRollback", {"event": request, "execution": execution})
        again = step(
            "ContinueRollback",
            {"event": request, "execution": execution, "progress": sfn.JsonPath.object_at("$.rollback")},
        )
        wait = sfn.Wait(self, "WaitForEndpointRestore", time=sfn.WaitTime.duration(POLL_INTERVAL))
        progress = (
            sfn.Choice(self, "RestoreProgress")
            .when(sfn.Condition.boolean_equals("$.rollback.pending", True), wait)
            .when(sfn.Condition.boolean_equals("$.rollback.accepted", True), sfn.Succeed(self, "RolledBack"))
            .when(
                sfn.Condition.boolean_equals("$.rollback.ignored", True),
                sfn.Succeed(self, "NotARollback", comment="The package change asked for no rollback"),
            )
            .otherwise(sfn.Fail(self, "RollbackRefused", error="RollbackRefused", cause_path="$.rollback.reason"))
        )
        begin.next(progress)
        wait.next(again)
        again.next(progress)

        self.log_group, self.state_machine = logged_state_machine(
            self,
            state_machine_name=state_machine_name,
            start=begin,
            log_key=log_key,
            comment="Operator rollback: the previous release back, the endpoint waited for until it serves it",
        )
        role = self.state_machine.role
        acknowledge(
            role,
            wildcard_resource_finding(role, f"{function.function_arn}:*"),
            "CDK's Lambda task grant covers the versions and aliases (<arn>:*) of the rollback_request function only.",
        )
