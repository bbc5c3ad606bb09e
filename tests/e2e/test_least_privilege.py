"""Least privilege, both ways: the product's scenarios run with IAM enforced (so nothing it needs is missing), and
every statement of every role is needed by some recorded request, or kept here with the reason no local scenario
reaches it (so nothing it does not need is granted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.least_privilege import Survey, run_scenarios, survey
from tests.e2e.conftest import event, once_per_run, world

pytestmark = pytest.mark.xdist_group("least-privilege")

TELLS_ABSENT_FROM_FORBIDDEN = (
    "S3 answers 403 instead of 404 for a missing key without s3:ListBucket; a step that reads the archive, the "
    "reports or the config must tell 'absent' (a named error: no backup, no report) from 'forbidden', and the "
    "scenarios only make it read keys that exist."
)
# Statements no local scenario exercises, by (role logical id prefix, statement Sid or, for a statement CDK wrote
# without one, its first action), and why they stay.
KEPT_WITHOUT_A_SCENARIO: dict[tuple[str, str], str] = {
    **{
        (role, "ListConfigBucket"): TELLS_ABSENT_FROM_FORBIDDEN
        for role in (
            "FunctionsWriteParametersRole",
            "FunctionsWriteConfigRole",
            "FunctionsCompareWithChampionRole",
            "FunctionsResumeWaitingStepRole",
            "FunctionsPublishResultRole",
            "FunctionsRollbackRequestRole",
            "FunctionsActOnDriftCheckRole",  # a drift check's report is read only once its job completed
        )
    },
    ("FunctionsWriteParametersRole", "DeleteProductionParameters"): (
        "WriteParameters deletes the parameters a release no longer has; the catalog's hyperparameter set is "
        "fixed, so no scenario drops one."
    ),
    ("FunctionsRollbackRequestRole", "DeleteProductionParameters"): (
        "An operator rollback to a release that had fewer parameters deletes the extra ones; the scenarios' "
        "releases all have the same set."
    ),
    ("FunctionsRollbackRequestRole", "DeleteProductionConfig"): (
        "An operator rollback to a first release (no config before it) deletes the config; the runtime refuses "
        "that rollback before it writes (no previous release), so only a restore of absence would reach it."
    ),
    ("FunctionsRollbackRequestRole", "ShiftTraffic"): (
        "An operator rollback sets weights only when the endpoint already serves the previous release's config with "
        "other weights; after a promotion it serves the new config, so the scenario's restore is an UpdateEndpoint."
    ),
    ("FunctionsPromoteChallengerRole", "ReadEndpointConfigs"): (
        "PromoteChallenger reads its final endpoint config back only when a retried step finds the name taken (it "
        "adopts its own config, never another); no scenario retries it."
    ),
    **{
        (role, "CompleteOwnWaits"): (
            "A waiting step completes its own task only when the endpoint already serves what it asked for (a "
            "retried step, or SageMaker's event came before the token was kept) or there is nothing to wait for (no "
            "endpoint); every scenario's endpoint change is still in progress when the step checks."
        )
        for role in ("FunctionsDeployChallengerRole", "FunctionsShiftTrafficRole", "FunctionsPromoteChallengerRole")
    },
    ("FunctionsTriggerPipelineRole", "CompleteOwnWaits"): (
        "TriggerPipeline completes its own task only when a retried step adopts its job already ended; a job runs "
        "for minutes, and every scenario's job is still running when the step checks."
    ),
    ("FunctionsCheckDataQualityRole", "CompleteOwnWaits"): (
        "CheckDataQuality completes its own task only when the catalog has no data_quality section (Skipped) or a "
        "retried step adopts its job already ended; every scenario's model has one, and its job is still running "
        "when the step checks (tests/e2e/test_data_quality.py runs the check's failures)."
    ),
    ("FunctionsCompareWithChampionRole", "ReadReports"): (
        "CompareWithChampion reads the report itself only when a retried step adopts its job already ended; "
        "otherwise ResumeWaitingStep does, on SageMaker's event."
    ),
    ("FunctionsPublishResultRole", "DescribePromotionExecutions"): (
        "PublishResult asks whether a lock holder still runs only when another execution holds the model's lock."
    ),
    ("FunctionsRollbackRequestRole", "DescribePromotionExecutions"): (
        "The operator rollback asks whether the lock holder still runs only while a promotion holds the lock."
    ),
    ("FunctionsClaimPromotionRole", "DescribePromotionExecutions"): (
        "ClaimPromotion asks whether a claim's or lock's owner still runs only when another execution holds it."
    ),
    ("FunctionsApprovalDecisionRole", "sqs:SendMessage"): (
        "Lambda's on-failure destination (EventInvokeConfig): the Lambda service sends a failed asynchronous "
        "invocation's record to the queue with the function's role; the local runtime does not model destinations."
    ),
    ("FunctionsRollbackRequestRole", "sqs:SendMessage"): (
        "Lambda's on-failure destination, as for the approval function; not modelled by the local runtime."
    ),
    ("FunctionsResumeWaitingStepRole", "sqs:SendMessage"): (
        "Lambda's on-failure destination, as for the approval function; not modelled by the local runtime."
    ),
    ("FunctionsShiftTrafficRole", "UpdateEndpoints"): (
        "ShiftTraffic puts the A/B config on the endpoint only after a shadow stage (rollout.shadow), which the "
        "default catalog has none of; tests/e2e/test_shadow_stage.py runs it with IAM enforced."
    ),
    ("FunctionsCleanRetiredRole", "sqs:SendMessage"): (
        "Lambda's on-failure destination, as for the approval function; not modelled by the local runtime."
    ),
    ("FunctionsOperatorControlRole", "sqs:SendMessage"): (
        "Lambda's on-failure destination, as for the approval function; not modelled by the local runtime."
    ),
    ("FunctionsAwaitOperatorRole", "AnswerOwnHold"): (
        "AwaitOperator answers its own task only when an operator's abort, promote-now or cancelled pause came in "
        "between EvaluateStage's look and the hold; the survey's operator answers once the rollout is held "
        "(tests/integration/test_operator_control.py drives that race)."
    ),
    ("FunctionsStartDriftChecksRole", "WatchDriftChecks"): (
        "StartDriftChecks reads a drift check back only when a repeated schedule finds its window's job already "
        "made (it adopts its own); the survey's schedule fires once per window."
    ),
    ("FunctionsStartDriftChecksRole", "sqs:SendMessage"): (
        "Lambda's on-failure destination, as for the approval function; not modelled by the local runtime."
    ),
    ("FunctionsActOnDriftCheckRole", "sqs:SendMessage"): (
        "Lambda's on-failure destination, as for the approval function; not modelled by the local runtime."
    ),
    ("Training", "PullTrainingImage"): (
        "SageMaker pulls the job's image from ECR with the execution role; the local runtime runs no image."
    ),
    ("Training", "EcrLogin"): "The ECR login before that pull; no image runs locally.",
    ("DataScientists", "FindPromotionStack"): (  # the catalog approvers' role, with the approvers' policy
        "`promote --stack NAME` reads the stack's outputs from CloudFormation, which the local world does not have."
    ),
    **{
        (role, "PlanTellsNoChampion"): TELLS_ABSENT_FROM_FORBIDDEN
        for role in ("DataScientists", "PlatformOnCall")  # `promote plan` of a model without a config yet
    },
    ("PlatformOnCall", "FindPromotionStack"): (  # the catalog operator's role, with the operators' policy
        "`promote --stack NAME` reads the stack's outputs from CloudFormation, which the local world does not have."
    ),
    ("promotion-", "FindPromotionStack"): (  # the approver's and the operator's managed policies
        "`promote --stack NAME` reads the stack's outputs from CloudFormation, which the local world does not have."
    ),
}


def kept_reason(role: str, statement: str, actions: list[str]) -> str | None:
    label = statement.rsplit(" ", 1)[-1]
    if label.startswith("#") and actions:
        label = actions[0]
    return next(
        (
            why
            for (prefix, kept), why in KEPT_WITHOUT_A_SCENARIO.items()
            if role.startswith(prefix) and kept in (label, "*")
        ),
        None,
    )


@pytest.fixture(scope="session")
def surveyed(synthesized: Path, tmp_path_factory: pytest.TempPathFactory) -> Survey:
    """The survey, made once per test run (its nine scenarios take half a minute)."""
    return once_per_run(
        tmp_path_factory, "least-privilege", lambda _folder: survey(*run_scenarios(synthesized, event(), world()))
    )


def every_scenario_reaches_its_outcome_with_every_call_authorized(surveyed: Survey) -> None:
    assert surveyed.scenarios == {
        "promotion, then drift starts a retraining": "PROMOTED",
        "rejection": "REJECTED",
        "failed rollout stage": "ROLLED_BACK",
        "challenger loses the comparison": "ROLLED_BACK",
        "first release fails": "ROLLED_BACK",
        "operator rollback after a promotion": "PROMOTED",
        "a non-approver's decision is refused": "PROMOTED",
        "an operator pauses and resumes the rollout": "PROMOTED",
        "the rollback window ends after a promotion": "PROMOTED",
    }
    assert surveyed.requests > 1000


def every_statement_is_needed_by_a_scenario_or_kept_with_a_reason(surveyed: Survey) -> None:
    unexplained = [
        f"{f.role} {f.statement} {f.actions} ({f.verdict})"
        for f in surveyed.findings
        if f.verdict != "needed" and kept_reason(f.role, f.statement, f.actions) is None
    ]
    assert unexplained == []
    # A kept statement that a scenario now needs is no longer an exception: the list must not go stale.
    stale = [
        f"{f.role} {f.statement}"
        for f in surveyed.findings
        if f.verdict == "needed" and kept_reason(f.role, f.statement, f.actions) is not None
    ]
    assert stale == []


def a_needed_statement_names_the_request_that_fails_without_it(surveyed: Survey) -> None:
    backup_archive = next(
        f
        for f in surveyed.findings
        if f.role.startswith("FunctionsBackupProductionRole") and f.statement.endswith("WriteArchive")
    )
    assert backup_archive.verdict == "needed"
    assert backup_archive.example is not None
    assert backup_archive.example.startswith(
        "s3:PutObject on arn:aws:s3:::storageconfigbucket/archive/fraud-detection/"
    )


def test_least_privilege_both_ways(surveyed: Survey) -> None:
    """One test over the survey, so that one xdist worker makes it (each worker running a test of it would make its
    own, or wait half a minute for another's): every scenario reaches its outcome with every call authorized, every
    statement is needed or kept with a reason, and a needed statement names the request that fails without it."""
    every_scenario_reaches_its_outcome_with_every_call_authorized(surveyed)
    every_statement_is_needed_by_a_scenario_or_kept_with_a_reason(surveyed)
    a_needed_statement_names_the_request_that_fails_without_it(surveyed)
