"""The promotion state machine, exactly as docs/state-machine.md specifies it (state names are the operator contract).

The construct is given the step functions by step directory name (`functions/<name>/`) and the machine's name; it
owns the execution log group (encrypted, ALL events) and the key that encrypts it.
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from promotion.contract.state import ClaimStatus, Comparison, Outcome, RolloutAction, Validation, document_value
from promotion.core.errors import REJECTION_ERROR, EndpointBusy
from promotion.jobs.callbacks import ENDPOINT_WAIT_SECONDS, WEIGHTS_WAIT_SECONDS
from stacks.nag import acknowledge, wildcard_resource_finding

# State name -> function directory of every Lambda task, in the order of the contract's table.
TASK_FUNCTIONS: dict[str, str] = {
    "ClaimPromotion": "claim_promotion",
    "ValidateCandidate": "validate_candidate",
    "AwaitApproval": "await_approval",
    "CheckDataQuality": "check_data_quality",
    "BackupProduction": "backup_production",
    "WriteParameters": "write_parameters",
    "WriteConfig": "write_config",
    "TriggerPipeline": "trigger_pipeline",
    "CompareWithChampion": "compare_with_champion",
    "DeployChallenger": "deploy_challenger",
    "ShiftTraffic": "shift_traffic",
    "EvaluateStage": "evaluate_stage",
    "AwaitOperator": "await_operator",
    "PromoteChallenger": "promote_challenger",
    "RetireChampion": "retire_champion",
    "Rollback": "rollback",
    "PublishResult": "publish_result",
}
# Errors worth retrying: Lambda service hiccups and the domain's own "transient AWS error". Never AccessDenied,
# validation or domain errors (those are decisions, not accidents).
RETRYABLE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "TransientAwsError",
]
# Rollback's endpoint loop (it waits for SageMaker between restore calls; a rollback is rare, so it polls).
POLL_INTERVAL = cdk.Duration.seconds(60)
# A waiting promotion looks at the model lock every 5 minutes: 1,500 looks (promotion.claim.claim.MAX_LOCK_WAITS) span
# 5 days and stay well inside Step Functions' 25,000-event execution history.
LOCK_POLL_INTERVAL = cdk.Duration.seconds(300)
# The steps that start SageMaker work and wait for its state-change event (promotion.jobs.callbacks), each with the
# longest it waits: the job's max run time plus a margin (from the catalog, in $.validation), two hours for a new
# endpoint config, half an hour for new weights. A wait that times out (the event never came) fails the step, and the
# promotion rolls back.
CALLBACK_TIMEOUTS: dict[str, str | int] = {
    "CheckDataQuality": "$.validation.data_quality_wait_seconds",
    "TriggerPipeline": "$.validation.training_wait_seconds",
    "CompareWithChampion": "$.validation.comparison_wait_seconds",
    "DeployChallenger": ENDPOINT_WAIT_SECONDS,
    "ShiftTraffic": WEIGHTS_WAIT_SECONDS,
    "PromoteChallenger": ENDPOINT_WAIT_SECONDS,
}
PASSED = document_value(Validation, "verdict", "PASSED")
COMPARISON_PASSED = document_value(Comparison, "decision", "PASS")
ENDPOINT_BUSY_ERROR = EndpointBusy.__name__  # a Lambda error is named after its exception class
# The tasks that send SageMaker an endpoint change (Rollback waits in its own loop instead of retrying).
ENDPOINT_CHANGING_STATES = frozenset({"DeployChallenger", "ShiftTraffic", "PromoteChallenger"})
ENDPOINT_BUSY_RETRY_INTERVAL = cdk.Duration.seconds(60)
APPROVAL_TIMEOUT_PATH = "$.validation.approval_timeout_seconds"
HOLD_TIMEOUT_PATH = "$.rollout.hold_seconds"
MAX_HOLD_SECONDS = 7 * 86400  # the catalog's hold_hours at most


def retry_transient_errors(invoke: tasks.LambdaInvoke) -> None:
    """Every Lambda task's Retry: Lambda service hiccups and the domain's TransientAwsError, with full jitter."""
    invoke.add_retry(
        errors=RETRYABLE_ERRORS,
        interval=cdk.Duration.seconds(2),
        backoff_rate=2,
        max_attempts=4,
        jitter_strategy=sfn.JitterType.FULL,
    )


def logged_state_machine(
    scope: Construct, *, state_machine_name: str, start: sfn.IChainable, log_key: kms.IKey, comment: str
) -> tuple[logs.LogGroup, sfn.StateMachine]:
    """A Standard machine with X-Ray tracing and every event logged, without its data, to a KMS-encrypted log group.

    Without data: AwaitApproval's input carries the task token, and whoever may read the log group must not be able
    to complete the approval with it; the data stays in the execution history."""
    log_group = logs.LogGroup(
        scope,
        "ExecutionLogs",
        # Vended-logs prefix keeps Step Functions' log delivery off the account's log resource policy limit.
        log_group_name=f"/aws/vendedlogs/states/{state_machine_name}",
        retention=logs.RetentionDays.THREE_MONTHS,
        encryption_key=log_key,
    )
    machine = sfn.StateMachine(
        scope,
        "StateMachine",
        state_machine_name=state_machine_name,
        state_machine_type=sfn.StateMachineType.STANDARD,
        definition_body=sfn.DefinitionBody.from_chainable(start),
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        tracing_enabled=True,
        comment=comment,
    )
    acknowledge(
        machine.role,
        "AwsSolutions-IAM5[Resource::*]",
        "Resource '*' only for X-Ray tracing and CloudWatch Logs log delivery (logs:*LogDelivery, "
        "PutResourcePolicy, Describe*): Step Functions logging and tracing support no resource-level permissions.",
    )
    return log_group, machine


class PromotionStateMachine(Construct):
    """Standard state machine: ClaimPromotion ... PublishResult, with Rollback on any failure after BackupProduction."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        steps: Mapping[str, lambda_.IFunction],
        state_machine_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        missing = sorted(set(TASK_FUNCTIONS.values()) - steps.keys())
        if missing:
            raise ValueError(f"the promotion state machine needs functions for the steps {missing}")

        def task(state: str, **kwargs: object) -> tasks.LambdaInvoke:
            invoke = tasks.LambdaInvoke(
                self,
                state,
                lambda_function=steps[TASK_FUNCTIONS[state]],
                retry_on_service_exceptions=False,  # our own Retry below, with jitter and the domain's errors
                **kwargs,  # type: ignore[arg-type]
            )
            retry_transient_errors(invoke)
            if state in ENDPOINT_CHANGING_STATES:
                # Something else changed the endpoint between our look and our call (SageMaker maintenance, a
                # person): SageMaker refuses until that change is done, which takes minutes.
                invoke.add_retry(
                    errors=[ENDPOINT_BUSY_ERROR], interval=ENDPOINT_BUSY_RETRY_INTERVAL, backoff_rate=2, max_attempts=5
                )
            return invoke

        def step(state: str, result_path: str) -> tasks.LambdaInvoke:
            return task(state, payload_response_only=True, result_path=result_path)

        def waiting_step(state: str, result_path: str) -> tasks.LambdaInvoke:
            """A step whose task completes when SageMaker's work is done (SendTaskSuccess with the step's result)."""
            limit = CALLBACK_TIMEOUTS[state]
            timeout = (
                sfn.Timeout.at(limit) if isinstance(limit, str) else sfn.Timeout.duration(cdk.Duration.seconds(limit))
            )
            return task(
                state,
                integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
                payload=sfn.TaskInput.from_object(
                    {
                        "state": sfn.JsonPath.entire_payload,
                        "task_token": sfn.JsonPath.task_token,
                        # a retried step's newer token must win over a late write of an earlier attempt's
                        "attempt": sfn.JsonPath.number_at("$$.State.RetryCount"),
                    }
                ),
                task_timeout=timeout,
                result_path=result_path,
            )

        claim = task(
            "ClaimPromotion",
            payload_response_only=True,
            payload=sfn.TaskInput.from_object(
                {
                    "event": sfn.JsonPath.object_at("$$.Execution.Input"),
                    "execution_name": sfn.JsonPath.execution_name,
                    "execution_arn": sfn.JsonPath.execution_id,
                    "state": sfn.JsonPath.entire_payload,
                }
            ),
            result_selector={"claim": sfn.JsonPath.entire_payload},
            result_path="$",
        )
        validate = step("ValidateCandidate", "$.validation")
        await_approval = task(
            "AwaitApproval",
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {"state": sfn.JsonPath.entire_payload, "task_token": sfn.JsonPath.task_token}
            ),
            task_timeout=sfn.Timeout.at(APPROVAL_TIMEOUT_PATH),
            result_path="$.approval",
        )
        check_data = waiting_step("CheckDataQuality", "$.data_quality")
        backup = step("BackupProduction", "$.backup")
        write_parameters = step("WriteParameters", "$.parameters")
        write_config = step("WriteConfig", "$.config")
        trigger_pipeline = waiting_step("TriggerPipeline", "$.pipeline")
        compare = waiting_step("CompareWithChampion", "$.comparison")
        deploy = waiting_step("DeployChallenger", "$.rollout")
        shift = waiting_step("ShiftTraffic", "$.rollout")
        evaluate = step("EvaluateStage", "$.rollout")
        promote_challenger = waiting_step("PromoteChallenger", "$.rollout")
        retire = step("RetireChampion", "$.rollout")
        # A held rollout waits for an operator's answer (the control record keeps the token; the answer goes to
        # $.rollout.operator, which EvaluateStage applies at once).
        await_operator = task(
            "AwaitOperator",
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {"state": sfn.JsonPath.entire_payload, "task_token": sfn.JsonPath.task_token}
            ),
            task_timeout=sfn.Timeout.at(HOLD_TIMEOUT_PATH),
            result_path="$.rollout.operator",
        )
        hold_expired = sfn.Pass(
            self,
            "OperatorHoldExpired",
            result=sfn.Result.from_object({"decision": "expired"}),
            result_path="$.rollout.operator",
        )
        rollback = step("Rollback", "$.rollback")
        publish = step("PublishResult", "$.result")

        wait_for_lock = sfn.Wait(self, "WaitForModelLock", time=sfn.WaitTime.duration(LOCK_POLL_INTERVAL))
        # The bake between two looks at a stage: the catalog's look interval, carried in the rollout section.
        bake = sfn.Wait(self, "Bake", time=sfn.WaitTime.seconds_path("$.rollout.look_seconds"))
        duplicate = sfn.Succeed(self, "Duplicate")
        approval_expired = sfn.Pass(
            self, "ApprovalExpired", result=sfn.Result.from_object({"decision": "expired"}), result_path="$.approval"
        )
        promoted = sfn.Succeed(self, "Promoted")
        not_promoted = sfn.Fail(
            self,
            "NotPromoted",
            error_path=sfn.JsonPath.string_at("$.result.outcome"),
            cause_path=sfn.JsonPath.string_at("$.result.reason"),
        )
        # ClaimPromotion's own failure has no claim to publish a result for (PublishResult needs one), and it wrote
        # nothing but the claim, which a redelivered event takes over once this execution has ended.
        claim_failed = sfn.Fail(
            self,
            "ClaimFailed",
            error_path=sfn.JsonPath.string_at("$.error.Error"),
            cause_path=sfn.JsonPath.string_at("$.error.Cause"),
        )
        promotion_failed = sfn.Fail(
            self, "PromotionFailed", error="PromotionFailed", cause="publishing the result failed after rollback"
        )

        claim.next(
            sfn.Choice(self, "ClaimOutcome")
            .when(sfn.Condition.string_equals("$.claim.status", ClaimStatus.CLAIMED.value), validate)
            .when(sfn.Condition.string_equals("$.claim.status", ClaimStatus.WAIT.value), wait_for_lock)
            .when(sfn.Condition.string_equals("$.claim.status", ClaimStatus.DUPLICATE.value), duplicate)
            .otherwise(publish)
        )
        claim.add_catch(claim_failed, errors=["States.ALL"], result_path="$.error")
        wait_for_lock.next(claim)

        validate.next(
            sfn.Choice(self, "CandidateVerdict")
            .when(
                sfn.Condition.string_equals("$.validation.verdict", document_value(Validation, "verdict", "PASSED")),
                await_approval,
            )
            .otherwise(publish)
        )
        validate.add_catch(publish, errors=["States.ALL"], result_path="$.error")

        # Only an approval goes on: anything else AwaitApproval was completed with (a forged SendTaskSuccess with a
        # rejection, an output without a decision) writes nothing. BackupProduction then checks the approval
        # against the one the approval path recorded before it writes.
        not_granted = sfn.Pass(
            self,
            "ApprovalNotGranted",
            result=sfn.Result.from_object(
                {
                    "decision": "reject",
                    "decided_by": None,
                    "comment": "AwaitApproval was completed with an output that is not an approval; nothing written",
                }
            ),
            result_path="$.approval",
        )
        await_approval.next(
            sfn.Choice(self, "ApprovalGate")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.approval.decision"),
                    sfn.Condition.string_equals("$.approval.decision", "approve"),
                ),
                check_data,
            )
            .otherwise(not_granted)
        )
        not_granted.next(publish)
        # A Catch's ResultPath must keep the document; ApprovalExpired then overwrites $.approval with the verdict.
        await_approval.add_catch(approval_expired, errors=["States.Timeout"], result_path="$.approval")
        await_approval.add_catch(publish, errors=[REJECTION_ERROR], result_path="$.error")
        await_approval.add_catch(publish, errors=["States.ALL"], result_path="$.error")
        approval_expired.next(publish)

        # The data-quality gate, after the approval (close to the training that reads the data) and before anything
        # in production is written: its task completes only on a PASS; a failed check (DataQualityFailed) or a failed
        # job ends the promotion with nothing to restore.
        check_data.next(backup)
        check_data.add_catch(publish, errors=["States.ALL"], result_path="$.error")

        # From BackupProduction on, production may have been touched: every failure rolls back.
        for state, following in (
            (backup, write_parameters),
            (write_parameters, write_config),
            (write_config, trigger_pipeline),
            # The training job's task completes only once the job Completed (a failed job fails the task).
            (trigger_pipeline, compare),
        ):
            state.next(following)
            state.add_catch(rollback, errors=["States.ALL"], result_path="$.error")

        compare.next(
            sfn.Choice(self, "ComparisonVerdict")
            .when(
                sfn.Condition.string_equals("$.comparison.decision", document_value(Comparison, "decision", "PASS")),
                deploy,
            )
            # FAIL or INCONCLUSIVE: the challenger was not proven better; Rollback and the report take the
            # reason and the numbers from $.comparison.
            .otherwise(rollback)
        )
        compare.add_catch(rollback, errors=["States.ALL"], result_path="$.error")

        # Rollout: DeployChallenger -> [ShiftTraffic -> (Bake, EvaluateStage)*]* -> PromoteChallenger ->
        # RetireChampion. Each endpoint change's task completes once SageMaker serves the config and the weights it
        # asked for (rollout.check_endpoint, run on SageMaker's event); `$.rollout.action` steers.
        def action(name: RolloutAction) -> sfn.Condition:
            return sfn.Condition.string_equals("$.rollout.action", name.value)

        # The bake reads its length from the document; a Wait cannot catch, so the Choice that leads to it proves
        # the value first (a BAKE with any other look_seconds rolls back).
        look = "$.rollout.look_seconds"
        bake_next = sfn.Condition.and_(
            action(RolloutAction.BAKE),
            sfn.Condition.is_numeric(look),
            sfn.Condition.number_greater_than_equals(look, 1),
            sfn.Condition.number_less_than_equals(look, 86400),
        )
        endpoint_status = (
            sfn.Choice(self, "EndpointStatus")
            .when(action(RolloutAction.SHIFT), shift)
            .when(bake_next, bake)
            .when(action(RolloutAction.DONE), retire)
            .when(action(RolloutAction.SKIPPED), publish)
            # A BAKE without a valid look_seconds, or anything else: roll back with the document as it is.
            .otherwise(rollback)
        )
        for changed in (deploy, shift, promote_challenger):
            changed.next(endpoint_status)
        bake.next(evaluate)
        # Like the bake, the hold's timeout is read from the document: the Choice proves it first.
        hold = "$.rollout.hold_seconds"
        hold_next = sfn.Condition.and_(
            action(RolloutAction.HOLD),
            sfn.Condition.is_numeric(hold),
            sfn.Condition.number_greater_than_equals(hold, 1),
            sfn.Condition.number_less_than_equals(hold, MAX_HOLD_SECONDS),
        )
        evaluate.next(
            sfn.Choice(self, "StageVerdict")
            .when(action(RolloutAction.NEXT_STAGE), shift)
            .when(bake_next, bake)
            .when(hold_next, await_operator)
            .when(action(RolloutAction.PROMOTE), promote_challenger)
            # FAIL, INVALID, INCONCLUSIVE past the extensions, an abort, or a BAKE or HOLD without a valid length:
            # Rollback takes the reason from $.rollout.
            .otherwise(rollback)
        )
        await_operator.next(evaluate)
        hold_expired.next(evaluate)
        # A Catch's ResultPath must keep the document; OperatorHoldExpired then overwrites $.rollout.operator.
        await_operator.add_catch(hold_expired, errors=["States.Timeout"], result_path="$.rollout.operator")
        retire.next(publish)
        for state in (deploy, shift, evaluate, await_operator, promote_challenger, retire):
            state.add_catch(rollback, errors=["States.ALL"], result_path="$.error")

        # Rollback restores parameters and config at once, then the endpoint one SageMaker call at a time: while
        # an endpoint change is in progress it waits here and runs again (idempotent: it only writes what differs).
        wait_for_rollback = sfn.Wait(self, "WaitForRollbackEndpoint", time=sfn.WaitTime.duration(POLL_INTERVAL))
        rollback.next(
            sfn.Choice(self, "RollbackEndpoint")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.rollback.endpoint_pending"),
                    sfn.Condition.boolean_equals("$.rollback.endpoint_pending", True),
                ),
                wait_for_rollback,
            )
            .otherwise(publish)
        )
        wait_for_rollback.next(rollback)
        rollback.add_catch(publish, errors=["States.ALL"], result_path="$.rollback_error")

        publish.next(
            sfn.Choice(self, "Outcome")
            .when(sfn.Condition.string_equals("$.result.outcome", Outcome.PROMOTED.value), promoted)
            .otherwise(not_promoted)
        )
        publish.add_catch(
            # Rollback already ran (it succeeded: $.rollback; it failed: its Catch wrote $.rollback_error): stop here,
            # or a Rollback and a PublishResult that keep failing would loop until the execution history is full.
            sfn.Choice(self, "PublishFailed")
            .when(sfn.Condition.is_present("$.rollback"), promotion_failed)
            .when(sfn.Condition.is_present("$.rollback_error"), promotion_failed)
            .otherwise(rollback),
            errors=["States.ALL"],
            result_path="$.error",
        )

        self.log_key = kms.Key(
            self,
            "LogKey",
            description="Encrypts the promotion state machine's execution log",
            enable_key_rotation=True,
        )
        # CloudWatch Logs encrypts with the key only for log groups of this account and region.
        self.log_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogs",
                principals=[iam.ServicePrincipal(f"logs.{cdk.Aws.REGION}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:DescribeKey",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:log-group:*"
                        )
                    }
                },
            )
        )
        self.log_group, self.state_machine = logged_state_machine(
            self,
            state_machine_name=state_machine_name,
            start=claim,
            log_key=self.log_key,
            comment="Model promotion: validate, approve, back up, write production, train; roll back on failure",
        )
        role = self.state_machine.role
        for name in sorted(set(TASK_FUNCTIONS.values())):
            acknowledge(
                role,
                wildcard_resource_finding(role, f"{steps[name].function_arn}:*"),
                f"CDK's Lambda task grant covers the versions and aliases (<arn>:*) of the {name} function only.",
            )
