"""Properties of the flow's bookkeeping: duplicates make one promotion (ours), a waiting task is answered once (ours),
and every approved promotion leaves one complete audit record (seed property 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promotion.claim.store import ClaimStore
from promotion.contract.state import (
    Approval,
    Backup,
    Candidate,
    Claim,
    ClaimStatus,
    Outcome,
    Pipeline,
    PromotionState,
    Validation,
)
from promotion.result.audit import list_audit_records
from tests.conftest import TABLE
from tests.integration.helpers import publish_on
from tests.property.test_seed_properties import CATALOG
from tests.strategies import examples, valid_hyperparameters

WITH_AWS = settings(
    max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
T0 = datetime(2026, 11, 20, tzinfo=UTC)


def clear_table(aws: dict[str, Any]) -> None:
    for item in aws["dynamodb"].scan(TableName=TABLE, ConsistentRead=True).get("Items", []):
        aws["dynamodb"].delete_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})


@WITH_AWS
@given(deliveries=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 9)), min_size=1, max_size=25))
def test_duplicate_events_make_one_promotion(aws: dict[str, Any], deliveries: list[tuple[int, int]]) -> None:
    """However often each tuning job's event is delivered (each delivery its own execution), exactly one execution
    ever owns a tuning job, and the model's lock has at most one holder at a time."""
    clear_table(aws)
    store = ClaimStore(aws["dynamodb"], TABLE)
    owners: dict[int, str] = {}
    holder: str | None = None
    for delivery, (tuning_job, execution) in enumerate(deliveries):
        execution_arn = f"arn:aws:states:us-east-1:1:execution:promotion:e{delivery}-{execution}"
        attempt = store.claim(
            model=CATALOG.id,
            tuning_job_arn=f"arn:aws:sagemaker:us-east-1:1:hyper-parameter-tuning-job/job-{tuning_job}",
            release_id=f"r{tuning_job}",
            execution_arn=execution_arn,
            event_time=T0 + timedelta(minutes=tuning_job),
            lease_seconds=3600,
        )
        if tuning_job in owners:
            assert attempt.status == ClaimStatus.DUPLICATE
            continue
        owners[tuning_job] = execution_arn
        if attempt.status == ClaimStatus.CLAIMED:
            assert holder is None
            holder = execution_arn
            # the promotion ends: the next one may take the lock
            store.finish(
                model=CATALOG.id,
                tuning_job_arn=f"arn:aws:sagemaker:us-east-1:1:hyper-parameter-tuning-job/job-{tuning_job}",
                execution_arn=execution_arn,
                outcome="PROMOTED",
            )
            holder = None
        else:
            assert attempt.status == ClaimStatus.WAIT
    assert len(set(owners.values())) == len(owners)


@WITH_AWS
@given(
    hyperparameters=valid_hyperparameters(CATALOG),
    approver=st.sampled_from([one.name for one in CATALOG.approval.approvers]),
    comment=st.text(max_size=80),
    previous=st.one_of(st.none(), st.from_regex(r"2026\d{4}-\d{6}-[0-9a-f]{6}", fullmatch=True)),
    minutes=st.integers(0, 10_000),
)
def test_property_4_promotion_event_logging(
    aws: dict[str, Any],
    hyperparameters: dict[str, Any],
    approver: str,
    comment: str,
    previous: str | None,
    minutes: int,
) -> None:
    """Every approved, completed promotion leaves one audit record: who, when, what, from which tuning job, and
    the previous release."""
    clear_table(aws)
    decided_at = T0 + timedelta(minutes=minutes)
    release = f"{decided_at:%Y%m%d-%H%M%S}-abcdef"
    state = PromotionState(
        claim=Claim(
            status=ClaimStatus.CLAIMED,
            execution_name="e",
            execution_arn="arn:aws:states:us-east-1:1:execution:p:e",
            model=CATALOG.id,
            release_id=release,
            tuning_job_name="job-1",
            tuning_job_arn="arn:aws:sagemaker:us-east-1:1:hyper-parameter-tuning-job/job-1",
            event_time=T0,
        ),
        validation=Validation(
            verdict="PASSED",
            candidate=Candidate(
                tuning_job_name="job-1",
                tuning_job_arn="arn:job-1",
                training_job_name="job-1-007",
                objective_metric="validation:auc",
                objective_type="Maximize",
                objective_value=0.97,
                hyperparameters=hyperparameters,
                metrics={"validation:auc": 0.97, "validation:accuracy": 0.95},
            ),
        ),
        approval=Approval(decision="approve", decided_by=approver, comment=comment, decided_at=decided_at),
        backup=Backup(
            release_id=release,
            backup_key="k",
            parameters_present=0,
            parameters_absent=[],
            config_existed=previous is not None,
            previous_release_id=previous,
        ),
        pipeline=Pipeline(training_job_name="t", training_job_arn="arn:t", status="Completed"),
    )
    result = publish_on(aws, state, now=decided_at)
    assert result.outcome == Outcome.PROMOTED
    records = list_audit_records(aws["dynamodb"], TABLE, CATALOG.id)
    assert len(records) == 1
    record = records[0]
    assert (record.approved_by, record.approved_at, record.approval_comment) == (approver, decided_at, comment)
    assert record.hyperparameters == hyperparameters
    assert record.tuning_job_name == "job-1"
    assert record.training_job_name == "job-1-007"
    assert record.previous_release_id == previous
    assert record.release_id == release
    assert record.report_key == f"reports/{CATALOG.id}/{release}/decision.json"


# One answerer's turn: ("event", the job's status SageMaker reports then) or ("retry", status): Step Functions
# retried the waiting step, which gets a new token, registers it and checks once.
ANSWERERS = st.lists(
    st.tuples(st.sampled_from(["event", "retry"]), st.sampled_from(["InProgress", "Completed"])),
    min_size=1,
    max_size=10,
)


@WITH_AWS
@given(first_status=st.sampled_from(["InProgress", "Completed"]), turns=ANSWERERS)
def test_a_waiting_task_is_answered_once(aws: dict[str, Any], first_status: str, turns: list[tuple[str, str]]) -> None:
    """Ours (promotion.jobs.callbacks): whatever the number and order of SageMaker's events and of the step's retries,
    exactly the tokens a simple model says are answered: the live one (the last registered), once, only when
    SageMaker says the job ended; a token a retry replaced before that, never."""
    from promotion.jobs.callbacks import await_change, resume
    from tests.fakes import RecordingStepFunctions
    from tests.integration.test_callbacks import started, training_event, training_world

    clear_table(aws)
    sfn = RecordingStepFunctions()
    expected: list[str] = []
    live: str | None = None  # the model: the token the wait record holds

    def step(token: str, status: str) -> None:
        nonlocal live
        waiting, result = started(token)
        await_change(
            aws["dynamodb"], sfn, training_world(status), aws["s3"], table=TABLE, waiting=waiting, result=result
        )
        live = token
        if status == "Completed":
            expected.append(token)
            live = None

    step("attempt-0", first_status)
    for index, (kind, status) in enumerate(turns, start=1):
        if kind == "retry":
            step(f"attempt-{index}", status)
            continue
        resume(aws["dynamodb"], sfn, training_world(status), aws["s3"], table=TABLE, event=training_event(status))
        if status == "Completed" and live is not None:
            expected.append(live)
            live = None
    assert [call["taskToken"] for _, call in sfn.calls] == expected
    assert all(kind == "success" for kind, _ in sfn.calls)
    assert len(expected) == len(set(expected))
