"""ClaimPromotion's rules to the letter: what each refusal says, how looks are counted, when a waiting execution
gives up and what it leaves behind, how long a lock is leased, and what the lock tells operators."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from promotion.claim.claim import LEASE_MARGIN_SECONDS, MAX_LOCK_WAITS, claim, lock_lease_seconds
from promotion.claim.store import (
    OPERATOR_LOCK_LEASE_SECONDS,
    ClaimAttempt,
    ClaimStore,
    condition_held,
    execution_liveness,
)
from promotion.contract.catalog import load_catalog
from promotion.contract.state import ClaimInput, ClaimStatus
from promotion.jobs.callbacks import CALLBACK_MARGIN_SECONDS
from tests.conftest import REGION, ROOT, TABLE, load_event

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:promotion:exec-1"
TUNING_JOB = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/fraud-xgb-tuning-0042"
LOCK_KEY = {"pk": {"S": "MODEL#fraud-detection"}, "sk": {"S": "LOCK"}}
CLAIM_KEY = {"pk": {"S": "MODEL#fraud-detection"}, "sk": {"S": f"CLAIM#{TUNING_JOB}"}}


def request(event: Any = None, state: dict[str, Any] | None = None, execution: str = "exec-1") -> ClaimInput:
    return ClaimInput(
        event=load_event("tuning-job-completed.json") if event is None else event,
        execution_name=execution,
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:promotion:{execution}",
        state=state or {},
    )


def looked(previous: Any) -> dict[str, Any]:
    """The execution document of the next look, as WaitForModelLock's loop passes it back."""
    return {"claim": previous.model_dump(mode="json")}


def hold_lock(aws: dict[str, Any], holder: str, release: str = "r-holder") -> ClaimStore:
    store = ClaimStore(aws["dynamodb"], TABLE)
    taken = store.claim(
        model="fraud-detection",
        tuning_job_arn="arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/older",
        release_id=release,
        execution_arn=holder,
        event_time=datetime(2026, 12, 1, tzinfo=UTC),  # newer than the event's tuning job: only the lock blocks it
        lease_seconds=3600,
    )
    assert taken.status == ClaimStatus.CLAIMED
    return store


def test_a_malformed_event_names_every_field_it_lacks(catalog_dir: Path) -> None:
    event = load_event("tuning-job-completed.json")
    del event["detail"]["HyperParameterTuningJobName"]
    del event["time"]
    rejected = claim(request(event), catalog_dir, store=None)  # type: ignore[arg-type]
    assert rejected.status == ClaimStatus.REJECTED
    assert rejected.reason == (
        "malformed tuning job event: time: Field required; detail.HyperParameterTuningJobName: Field required"
    )


def test_an_event_that_is_not_an_object_is_named_as_the_event(catalog_dir: Path) -> None:
    rejected = claim(request(["not", "an", "event"]), catalog_dir, store=None)  # type: ignore[arg-type]
    assert rejected.reason.startswith("malformed tuning job event: <event>: Input should be")


def test_refusals_say_why_and_keep_the_model_they_named(catalog_dir: Path) -> None:
    event = load_event("tuning-job-completed.json")
    failed = {**event, "detail": {**event["detail"], "HyperParameterTuningJobStatus": "Stopped"}}
    untagged = {**event, "detail": {**event["detail"], "Tags": {"team": "fraud"}}}
    unknown = {**event, "detail": {**event["detail"], "Tags": {"promotion:model": "churn"}}}
    no_store: Any = None
    stopped = claim(request(failed), catalog_dir, no_store)
    assert stopped.reason == "tuning job fraud-xgb-tuning-0042 is Stopped; only Completed tuning jobs are promoted"
    assert (stopped.model, stopped.tuning_job_arn, stopped.attempts) == (None, TUNING_JOB, 1)
    assert claim(request(untagged), catalog_dir, no_store).reason == (
        "tuning job has no 'promotion:model' tag naming the model"
    )
    churn = claim(request(unknown), catalog_dir, no_store)
    assert (churn.status, churn.model, churn.tuning_job_name) == (
        ClaimStatus.REJECTED,
        "churn",
        "fraud-xgb-tuning-0042",
    )
    assert churn.reason.startswith("no catalog for model 'churn'")


def test_the_first_look_only_writes_the_claim_and_the_next_takes_the_lock(
    aws: dict[str, Any], catalog_dir: Path
) -> None:
    """The settle look happens once, on the execution's first look, even when the lock is free."""
    store = ClaimStore(aws["dynamodb"], TABLE)
    first = claim(request(), catalog_dir, store)
    assert (first.status, first.attempts) == (ClaimStatus.WAIT, 1)
    assert first.reason == (
        f"claimed tuning job {TUNING_JOB}; waiting one lock period for older tuning jobs of model fraud-detection "
        "whose events may still be on their way"
    )
    assert aws["dynamodb"].get_item(TableName=TABLE, Key=LOCK_KEY, ConsistentRead=True).get("Item") is None
    second = claim(request(state=looked(first)), catalog_dir, store)
    assert (second.status, second.attempts, second.release_id) == (ClaimStatus.CLAIMED, 2, first.release_id)
    assert second.reason == f"claimed tuning job {TUNING_JOB} and the lock of model fraud-detection"
    third = claim(request(state=looked(second)), catalog_dir, store)
    assert (third.status, third.attempts) == (ClaimStatus.CLAIMED, 3)


def test_the_claim_carries_why_the_tuning_job_started_checked_against_drifts_record(
    aws: dict[str, Any], catalog_dir: Path
) -> None:
    """A retraining drift started says so in its tags; the claim keeps them (not the model tag, nor other tags) for
    the promotion's report, audit record and MLflow run, and says whether drift's own record of the retraining names
    the job: anyone who may tag a tuning job may write the tag. A data scientist's own job has no trigger."""
    from promotion.monitoring.retraining import record_key, started_by_drift

    event = load_event("tuning-job-completed.json")
    event["detail"]["Tags"] |= {"promotion:trigger": "drift", "promotion:drift-feature": "amount"}
    store = ClaimStore(aws["dynamodb"], TABLE)

    def checked(model: str, job: str) -> bool:
        return started_by_drift(aws["dynamodb"], TABLE, model, job)

    forged = claim(request(event=event), catalog_dir, store, checked)
    assert forged.trigger == {
        "promotion:trigger": "drift",
        "promotion:drift-feature": "amount",
        "promotion:trigger-verified": "false: no retraining record of the model names this job",
    }
    record = {**record_key("fraud-detection"), "tuning_job_name": {"S": "fraud-xgb-tuning-0042"}}
    aws["dynamodb"].put_item(TableName=TABLE, Item=record)
    verified = claim(request(event=event, execution="exec-2"), catalog_dir, store, checked)
    assert verified.trigger["promotion:trigger-verified"] == "true"
    assert claim(request(execution="exec-3"), catalog_dir, store, checked).trigger == {}


@pytest.mark.parametrize("state", [{}, {"claim": "not a claim"}, {"claim": {"status": "WAIT"}}])
def test_a_look_without_a_previous_count_is_the_first(catalog_dir: Path, state: dict[str, Any]) -> None:
    event = load_event("tuning-job-completed.json")
    event["detail"]["Tags"] = {}
    assert claim(request(event, state=state), catalog_dir, store=None).attempts == 1  # type: ignore[arg-type]


def test_a_waiting_execution_names_the_holder_and_gives_up_after_its_last_look(
    aws: dict[str, Any], catalog_dir: Path
) -> None:
    """After MAX_LOCK_WAITS looks the execution stops waiting and drops its claim, so the tuning job's event can be
    sent again; one look earlier it still waits."""
    holder = "arn:aws:states:us-east-1:123456789012:execution:promotion:holder"
    store = hold_lock(aws, holder)
    previous = claim(request(), catalog_dir, store).model_copy(update={"attempts": MAX_LOCK_WAITS - 2})
    still = claim(request(state=looked(previous)), catalog_dir, store)
    locked = f"model fraud-detection is locked by execution {holder} (release r-holder); waiting for it to finish"
    assert (still.status, still.attempts, still.reason) == (ClaimStatus.WAIT, MAX_LOCK_WAITS - 1, locked)
    assert aws["dynamodb"].get_item(TableName=TABLE, Key=CLAIM_KEY, ConsistentRead=True).get("Item") is not None
    gave_up = claim(request(state=looked(still)), catalog_dir, store)
    assert (gave_up.status, gave_up.attempts) == (ClaimStatus.REJECTED, MAX_LOCK_WAITS)
    assert gave_up.reason == (
        f"gave up after {MAX_LOCK_WAITS} looks at the model lock: {locked}; send the tuning job event again to retry"
    )
    assert gave_up.release_id == still.release_id
    assert aws["dynamodb"].get_item(TableName=TABLE, Key=CLAIM_KEY, ConsistentRead=True).get("Item") is None
    # The lock is the holder's, untouched; the event sent again claims afresh.
    assert store.lock_holder("fraud-detection") == {"holder": holder, "release_id": "r-holder"}
    assert claim(request(execution="resent"), catalog_dir, store).status == ClaimStatus.WAIT


def test_a_takeover_carries_the_new_release_id_into_the_claim(aws: dict[str, Any], catalog_dir: Path) -> None:
    alive: dict[str, bool] = {}
    store = ClaimStore(aws["dynamodb"], TABLE, is_execution_running=lambda arn: alive.get(arn, True))
    dead = claim(request(execution="crashed"), catalog_dir, store)
    alive[dead.execution_arn] = False
    first = claim(request(execution="again"), catalog_dir, store)
    assert first.release_id == f"{dead.release_id}-t1"
    taken = claim(request(execution="again", state=looked(first)), catalog_dir, store)
    assert (taken.status, taken.release_id) == (ClaimStatus.CLAIMED, f"{dead.release_id}-t1")
    alive[taken.execution_arn] = False
    store.finish(model="fraud-detection", tuning_job_arn=None, execution_arn=taken.execution_arn, outcome="FAILED")
    assert claim(request(execution="third"), catalog_dir, store).release_id == f"{dead.release_id}-t2"


def test_a_duplicate_names_the_owner_and_its_status(aws: dict[str, Any], catalog_dir: Path) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    claim(request(), catalog_dir, store)
    duplicate = claim(request(execution="second"), catalog_dir, store)
    assert (duplicate.status, duplicate.reason) == (
        ClaimStatus.DUPLICATE,
        f"tuning job {TUNING_JOB} is already claimed by execution {EXECUTION} (status WAITING); "
        "this event is a duplicate and was ignored",
    )


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / f"{document['id']}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_the_lease_is_the_sum_of_the_longest_waits_plus_the_margin(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    full = load_catalog(_write(tmp_path, document))
    assert full.comparison is not None and full.rollout is not None
    rollout = full.rollout
    assert lock_lease_seconds(full) == (
        full.approval.timeout_hours * 3600
        + full.training.max_runtime_seconds
        + CALLBACK_MARGIN_SECONDS
        + full.comparison.max_runtime_seconds
        + CALLBACK_MARGIN_SECONDS
        + len(rollout.stages) * rollout.bake_minutes * 60 * (1 + rollout.max_bake_extensions)
        + (len(rollout.stages) + 2) * 2 * 3600
        + LEASE_MARGIN_SECONDS
    )
    bare = {key: value for key, value in document.items() if key not in ("comparison", "rollout", "monitoring")}
    plain = load_catalog(_write(tmp_path, bare))
    assert (plain.comparison, plain.rollout) == (None, None)
    assert lock_lease_seconds(plain) == (
        plain.approval.timeout_hours * 3600
        + plain.training.max_runtime_seconds
        + CALLBACK_MARGIN_SECONDS
        + LEASE_MARGIN_SECONDS
    )


def test_an_operators_lock_lives_exactly_until_its_lease_ends(aws: dict[str, Any]) -> None:
    now = [2_000_000.0]
    store = ClaimStore(aws["dynamodb"], TABLE, clock=lambda: now[0])
    assert store.lock_for_operator("fraud-detection", "evt-1") is None
    holder = {"holder": "operator-rollback:evt-1", "release_id": "operator-rollback"}
    assert store.lock_holder("fraud-detection") == holder
    now[0] += OPERATOR_LOCK_LEASE_SECONDS  # the last second of the lease
    assert store.lock_holder("fraud-detection") == holder
    assert store.lock_for_operator("fraud-detection", "evt-2") == (
        "model fraud-detection is locked by execution operator-rollback:evt-1 (release operator-rollback); "
        "waiting for it to finish"
    )
    now[0] += 1
    assert store.lock_holder("fraud-detection") is None
    assert store.lock_for_operator("fraud-detection", "evt-2") is None


def test_an_operators_lock_without_a_lease_is_not_alive(aws: dict[str, Any]) -> None:
    aws["dynamodb"].put_item(
        TableName=TABLE, Item={**LOCK_KEY, "holder": {"S": "operator-rollback:x"}, "release_id": {"S": "r"}}
    )
    assert ClaimStore(aws["dynamodb"], TABLE).lock_holder("fraud-detection") is None


def test_a_lock_without_holder_details_is_still_reported(aws: dict[str, Any]) -> None:
    """A lock item written by hand (or by an older version) without its release still makes a claim wait."""
    aws["dynamodb"].put_item(TableName=TABLE, Item={**LOCK_KEY, "holder": {"S": "arn:someone"}})
    attempt = ClaimStore(aws["dynamodb"], TABLE).claim(
        model="fraud-detection",
        tuning_job_arn=TUNING_JOB,
        release_id="r1",
        execution_arn=EXECUTION,
        event_time=datetime(2026, 11, 20, tzinfo=UTC),
        lease_seconds=60,
    )
    assert attempt.reason == (
        "model fraud-detection is locked by execution arn:someone (release ?); waiting for it to finish"
    )


def test_an_operators_lock_is_released_only_by_its_own_request(aws: dict[str, Any]) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    store.lock_for_operator("fraud-detection", "evt-1")
    store.release_operator_lock("fraud-detection", "evt-2")
    assert store.lock_holder("fraud-detection") is not None
    store.release_operator_lock("fraud-detection", "evt-1")
    assert store.lock_holder("fraud-detection") is None


def test_a_write_refused_for_another_reason_than_its_condition_is_raised(aws: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as raised:
        condition_held(aws["dynamodb"].put_item, TableName="no-such-table", Item=LOCK_KEY)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_liveness_follows_step_functions(aws: dict[str, Any]) -> None:
    stepfunctions = aws["stepfunctions"]
    role = "arn:aws:iam::123456789012:role/sfn"
    machine = stepfunctions.create_state_machine(
        name="m", definition='{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":600,"End":true}}}', roleArn=role
    )["stateMachineArn"]
    running = stepfunctions.start_execution(stateMachineArn=machine, name="running")["executionArn"]
    stopped = stepfunctions.start_execution(stateMachineArn=machine, name="stopped")["executionArn"]
    stepfunctions.stop_execution(executionArn=stopped)
    is_running = execution_liveness(stepfunctions)
    assert is_running(running) is True
    assert is_running(stopped) is False
    assert is_running(machine.replace(":stateMachine:", ":execution:") + ":never-started") is False


def test_liveness_does_not_guess_when_step_functions_refuses(aws: dict[str, Any]) -> None:
    """AccessDenied (or any refusal) is not 'not running': a lock must not be taken from a live promotion."""
    denied = boto3.client("stepfunctions", region_name=REGION)

    def refuse(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeExecution")

    denied.describe_execution = refuse  # type: ignore[method-assign]
    with pytest.raises(ClientError):
        execution_liveness(denied)(EXECUTION)


class TakenAndReleasedMeanwhile:
    """moto's DynamoDB, except that another promotion takes the free lock just before this claim's put, and releases
    it before this claim reads who holds it."""

    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb
        self._raced = False

    def put_item(self, **request: Any) -> Any:
        if request["Item"]["sk"] != {"S": "LOCK"} or self._raced:
            return self._dynamodb.put_item(**request)
        self._raced = True
        other = {**LOCK_KEY, "holder": {"S": "arn:other"}, "release_id": {"S": "r-other"}}
        self._dynamodb.put_item(TableName=request["TableName"], Item=other)
        try:
            return self._dynamodb.put_item(**request)
        finally:
            self._dynamodb.delete_item(TableName=request["TableName"], Key=LOCK_KEY)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamodb, name)


def test_a_lock_taken_and_released_between_the_look_and_the_put_is_waited_for_once(aws: dict[str, Any]) -> None:
    racing = ClaimStore(TakenAndReleasedMeanwhile(aws["dynamodb"]), TABLE)
    attempt = racing.claim(
        model="fraud-detection",
        tuning_job_arn=TUNING_JOB,
        release_id="r1",
        execution_arn=EXECUTION,
        event_time=datetime(2026, 12, 2, tzinfo=UTC),
        lease_seconds=60,
    )
    assert (attempt.status, attempt.reason) == (
        ClaimStatus.WAIT,
        "model fraud-detection is locked by execution ? (release ?); waiting for it to finish",
    )
    again = racing.claim(
        model="fraud-detection",
        tuning_job_arn=TUNING_JOB,
        release_id="r1",
        execution_arn=EXECUTION,
        event_time=datetime(2026, 12, 2, tzinfo=UTC),
        lease_seconds=60,
    )
    assert again.status == ClaimStatus.CLAIMED


def test_giving_up_drops_only_this_executions_claim(aws: dict[str, Any]) -> None:
    store = hold_lock(aws, EXECUTION)
    older = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/older"
    store.forget(model="fraud-detection", tuning_job_arn=older, execution_arn="arn:someone-else")
    key = {"pk": {"S": "MODEL#fraud-detection"}, "sk": {"S": f"CLAIM#{older}"}}
    assert aws["dynamodb"].get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item") is not None
    store.forget(model="fraud-detection", tuning_job_arn=older, execution_arn=EXECUTION)
    assert aws["dynamodb"].get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item") is None


def claim_of(store: ClaimStore, job: str, execution: str, when: datetime, lease: int = 3600) -> Any:
    return store.claim(
        model="fraud-detection",
        tuning_job_arn=f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{job}",
        release_id=f"r-{job}",
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:promotion:{execution}",
        event_time=when,
        lease_seconds=lease,
    )


def claim_item(aws: dict[str, Any], job: str) -> dict[str, Any]:
    key = {
        "pk": {"S": "MODEL#fraud-detection"},
        "sk": {"S": f"CLAIM#arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{job}"},
    }
    return dict(aws["dynamodb"].get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"])


def test_the_claim_records_who_which_release_when_and_until_when_and_a_next_look_renews_it(
    aws: dict[str, Any],
) -> None:
    now = [1_000_000.0]
    store = ClaimStore(aws["dynamodb"], TABLE, clock=lambda: now[0])
    when = datetime(2026, 11, 20, 14, 5, 41, tzinfo=UTC)
    claim_of(store, "a", "exec-a", when, lease=600)
    item = claim_item(aws, "a")
    assert {key: item[key] for key in ("execution_arn", "release_id", "event_time", "status", "lease_expires_at")} == {
        "execution_arn": {"S": "arn:aws:states:us-east-1:123456789012:execution:promotion:exec-a"},
        "release_id": {"S": "r-a"},
        "event_time": {"S": "2026-11-20T14:05:41+00:00"},
        "status": {"S": "ACTIVE"},
        "lease_expires_at": {"N": "1000600"},
    }
    now[0] += 300
    assert claim_of(store, "a", "exec-a", when, lease=600).release_id == "r-a"
    assert claim_item(aws, "a")["lease_expires_at"] == {"N": "1000900"}


def test_an_older_claim_is_waited_for_only_while_its_lease_runs_and_its_execution_runs(aws: dict[str, Any]) -> None:
    now = [1_000_000.0]
    alive = {"arn:aws:states:us-east-1:123456789012:execution:promotion:old": True}
    store = ClaimStore(aws["dynamodb"], TABLE, is_execution_running=lambda a: alive.get(a, True), clock=lambda: now[0])
    early, late = datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 11, 20, 11, tzinfo=UTC)
    store.claim(
        model="fraud-detection",
        tuning_job_arn="arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/old",
        release_id="r-old",
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:promotion:old",
        event_time=early,
        lease_seconds=600,
        settle=True,
    )
    waiting = claim_of(store, "new", "new", late)
    assert waiting.reason == (
        "an older tuning job of model fraud-detection (arn:aws:sagemaker:us-east-1:123456789012:"
        "hyper-parameter-tuning-job/old) is still being promoted; waiting for it"
    )
    now[0] += 600  # the last second of its lease: still waited for
    assert claim_of(store, "new", "new", late).status == ClaimStatus.WAIT
    now[0] += 1
    assert claim_of(store, "new", "new", late).status == ClaimStatus.CLAIMED


def test_an_older_claim_whose_execution_ended_is_not_waited_for(aws: dict[str, Any]) -> None:
    old = "arn:aws:states:us-east-1:123456789012:execution:promotion:old"
    store = ClaimStore(aws["dynamodb"], TABLE, is_execution_running=lambda a: a != old)
    early, late = datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 11, 20, 11, tzinfo=UTC)
    store.claim(
        model="fraud-detection",
        tuning_job_arn="arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/old",
        release_id="r-old",
        execution_arn=old,
        event_time=early,
        lease_seconds=3600,
        settle=True,
    )
    assert claim_of(store, "new", "new", late).status == ClaimStatus.CLAIMED


def test_tuning_jobs_that_completed_at_the_same_second_go_in_arn_order(aws: dict[str, Any]) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    same = datetime(2026, 11, 20, 10, tzinfo=UTC)
    store.claim(
        model="fraud-detection",
        tuning_job_arn="arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/b",
        release_id="r-b",
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:promotion:b",
        event_time=same,
        lease_seconds=3600,
        settle=True,
    )
    assert claim_of(store, "a", "a", same).status == ClaimStatus.CLAIMED  # a sorts before b
    store.finish(
        model="fraud-detection",
        tuning_job_arn=None,
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:promotion:a",
        outcome="PROMOTED",
    )
    store2 = ClaimStore(aws["dynamodb"], TABLE)
    store2.claim(
        model="fraud-detection",
        tuning_job_arn="arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/c",
        release_id="r-c",
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:promotion:c",
        event_time=same,
        lease_seconds=3600,
        settle=True,
    )
    assert claim_of(store2, "d", "d", same).status == ClaimStatus.WAIT  # c sorts before d: d waits


def test_finishing_marks_the_owners_claim_done_with_its_outcome_and_releases_only_its_own_lock(
    aws: dict[str, Any],
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    claim_of(store, "a", "exec-a", datetime(2026, 11, 20, tzinfo=UTC))
    job = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/a"
    owner = "arn:aws:states:us-east-1:123456789012:execution:promotion:exec-a"
    assert store.finish(model="fraud-detection", tuning_job_arn=job, execution_arn="arn:other", outcome="X") is False
    assert claim_item(aws, "a")["status"] == {"S": "ACTIVE"}
    assert store.finish(model="fraud-detection", tuning_job_arn=job, execution_arn=owner, outcome="ROLLED_BACK")
    item = claim_item(aws, "a")
    assert (item["status"], item["outcome"]) == ({"S": "DONE"}, {"S": "ROLLED_BACK"})
    assert store.finish(model="fraud-detection", tuning_job_arn=job, execution_arn=owner, outcome="X") is False


class TakenMeanwhile:
    """moto's DynamoDB, except that another promotion takes the free lock just before this claim's put."""

    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb
        self._raced = False

    def put_item(self, **request: Any) -> Any:
        if request["Item"]["sk"] == {"S": "LOCK"} and not self._raced:
            self._raced = True
            other = {**LOCK_KEY, "holder": {"S": "arn:other"}, "release_id": {"S": "r-other"}}
            self._dynamodb.put_item(TableName=request["TableName"], Item=other)
        return self._dynamodb.put_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamodb, name)


def test_a_lock_taken_between_the_look_and_the_put_names_its_new_holder(aws: dict[str, Any]) -> None:
    attempt = ClaimStore(TakenMeanwhile(aws["dynamodb"]), TABLE).claim(
        model="fraud-detection",
        tuning_job_arn=TUNING_JOB,
        release_id="r1",
        execution_arn=EXECUTION,
        event_time=datetime(2026, 12, 2, tzinfo=UTC),
        lease_seconds=60,
    )
    assert (attempt.status, attempt.reason, attempt.release_id) == (
        ClaimStatus.WAIT,
        "model fraud-detection is locked by execution arn:other (release r-other); waiting for it to finish",
        "r1",
    )


class ClaimVanishes:
    """moto's DynamoDB, except that another delivery's claim is in the way of this one's put and is gone (its owner
    gave up) before this one reads it, `times` times."""

    def __init__(self, dynamodb: Any, times: int) -> None:
        self._dynamodb, self._times = dynamodb, times

    def put_item(self, **request: Any) -> Any:
        if request["Item"]["sk"]["S"].startswith("CLAIM#") and self._times:
            self._times -= 1
            blocking = {**request["Item"], "execution_arn": {"S": "arn:gave-up"}}
            self._dynamodb.put_item(TableName=request["TableName"], Item=blocking)
            try:
                return self._dynamodb.put_item(**request)
            finally:
                self._dynamodb.delete_item(TableName=request["TableName"], Key=CLAIM_KEY)
        return self._dynamodb.put_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamodb, name)


def test_a_claim_that_vanished_before_it_was_read_is_written_again(aws: dict[str, Any]) -> None:
    def claim_through(dynamodb: Any) -> Any:
        return ClaimStore(dynamodb, TABLE).claim(
            model="fraud-detection",
            tuning_job_arn=TUNING_JOB,
            release_id="r1",
            execution_arn=EXECUTION,
            event_time=datetime(2026, 12, 2, tzinfo=UTC),
            lease_seconds=60,
        )

    assert claim_through(ClaimVanishes(aws["dynamodb"], times=1)).status == ClaimStatus.CLAIMED
    assert claim_item(aws, "fraud-xgb-tuning-0042")["execution_arn"] == {"S": EXECUTION}
    aws["dynamodb"].delete_item(TableName=TABLE, Key=CLAIM_KEY)
    with pytest.raises(AssertionError) as raised:
        claim_through(ClaimVanishes(aws["dynamodb"], times=2))
    assert str(raised.value) == f"the claim of {TUNING_JOB} neither exists nor can be written"


class TakenOverWhileLocking:
    """moto's DynamoDB, except that another delivery takes this execution's claim over just before the claim is
    marked ACTIVE (after this execution took the lock)."""

    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb

    def update_item(self, **request: Any) -> Any:
        if request.get("UpdateExpression") == "SET #status = :status":
            self._dynamodb.update_item(
                TableName=request["TableName"],
                Key=request["Key"],
                UpdateExpression="SET execution_arn = :other",
                ExpressionAttributeValues={":other": {"S": "arn:redelivered"}},
            )
        return self._dynamodb.update_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamodb, name)


def test_a_claim_taken_over_while_locking_gives_the_lock_back_as_a_duplicate(aws: dict[str, Any]) -> None:
    store = ClaimStore(TakenOverWhileLocking(aws["dynamodb"]), TABLE)
    attempt = store.claim(
        model="fraud-detection",
        tuning_job_arn=TUNING_JOB,
        release_id="r1",
        execution_arn=EXECUTION,
        event_time=datetime(2026, 12, 2, tzinfo=UTC),
        lease_seconds=60,
    )
    assert attempt == ClaimAttempt(
        ClaimStatus.DUPLICATE,
        f"tuning job {TUNING_JOB} was taken over by another delivery while this execution waited",
    )
    assert ClaimStore(aws["dynamodb"], TABLE).lock_holder("fraud-detection") is None


def test_a_taken_over_claim_keeps_its_new_release_id_while_it_waits(aws: dict[str, Any], catalog_dir: Path) -> None:
    alive: dict[str, bool] = {}
    store = ClaimStore(aws["dynamodb"], TABLE, is_execution_running=lambda arn: alive.get(arn, True))
    dead = claim(request(execution="crashed"), catalog_dir, store)
    alive[dead.execution_arn] = False
    first = claim(request(execution="again"), catalog_dir, store)
    aws["dynamodb"].put_item(
        TableName=TABLE, Item={**LOCK_KEY, "holder": {"S": "arn:holder"}, "release_id": {"S": "r"}}
    )
    waiting = claim(request(execution="again", state=looked(first)), catalog_dir, store)
    assert (waiting.status, waiting.release_id) == (ClaimStatus.WAIT, f"{dead.release_id}-t1")


def test_a_finished_claim_listed_first_does_not_hide_an_older_pending_one(aws: dict[str, Any]) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    done_job = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/a-done"
    store.claim(
        model="fraud-detection", tuning_job_arn=done_job, release_id="r-a", execution_arn="arn:exec-a",
        event_time=datetime(2026, 11, 19, tzinfo=UTC), lease_seconds=3600,
    )  # fmt: skip
    store.finish(model="fraud-detection", tuning_job_arn=done_job, execution_arn="arn:exec-a", outcome="PROMOTED")
    store.claim(
        model="fraud-detection",
        tuning_job_arn="arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/b-older",
        release_id="r-b", execution_arn="arn:exec-b", event_time=datetime(2026, 11, 20, tzinfo=UTC),
        lease_seconds=3600, settle=True,
    )  # fmt: skip
    assert claim_of(store, "c-newer", "exec-c", datetime(2026, 11, 21, tzinfo=UTC)).status == ClaimStatus.WAIT


def test_a_taken_over_claim_waiting_for_an_older_tuning_job_carries_its_new_release_id(aws: dict[str, Any]) -> None:
    crashed, older = "arn:exec-crashed", "arn:exec-older"
    store = ClaimStore(aws["dynamodb"], TABLE, is_execution_running=lambda arn: arn != crashed)
    store.claim(
        model="fraud-detection", tuning_job_arn=TUNING_JOB, release_id="r-crashed", execution_arn=crashed,
        event_time=datetime(2026, 11, 21, tzinfo=UTC), lease_seconds=3600, settle=True,
    )  # fmt: skip
    store.claim(
        model="fraud-detection",
        tuning_job_arn="arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/older",
        release_id="r-older", execution_arn=older, event_time=datetime(2026, 11, 20, tzinfo=UTC),
        lease_seconds=3600, settle=True,
    )  # fmt: skip
    attempt = store.claim(
        model="fraud-detection", tuning_job_arn=TUNING_JOB, release_id="r-again", execution_arn=EXECUTION,
        event_time=datetime(2026, 11, 21, tzinfo=UTC), lease_seconds=3600,
    )  # fmt: skip
    assert attempt == ClaimAttempt(
        ClaimStatus.WAIT,
        "an older tuning job of model fraud-detection (arn:aws:sagemaker:us-east-1:123456789012:"
        "hyper-parameter-tuning-job/older) is still being promoted; waiting for it",
        "r-again-t1",
    )
    assert claim_item(aws, "fraud-xgb-tuning-0042")["release_id"] == {"S": "r-again-t1"}


def test_an_expired_claim_listed_first_does_not_hide_an_older_live_one(aws: dict[str, Any]) -> None:
    now = [1_000_000.0]
    store = ClaimStore(aws["dynamodb"], TABLE, clock=lambda: now[0])
    claim_of(store, "a-expired", "exec-a", datetime(2026, 11, 19, tzinfo=UTC), lease=60)
    store.release_lock(
        model="fraud-detection", execution_arn="arn:aws:states:us-east-1:123456789012:execution:promotion:exec-a"
    )
    store.claim(
        model="fraud-detection",
        tuning_job_arn="arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/b-older",
        release_id="r-b", execution_arn="arn:exec-b", event_time=datetime(2026, 11, 20, tzinfo=UTC),
        lease_seconds=3600, settle=True,
    )  # fmt: skip
    now[0] += 120  # a-expired's lease ended a minute ago; b-older's runs
    waiting = claim_of(store, "c-newer", "exec-c", datetime(2026, 11, 21, tzinfo=UTC))
    assert (waiting.status, waiting.reason) == (
        ClaimStatus.WAIT,
        "an older tuning job of model fraud-detection (arn:aws:sagemaker:us-east-1:123456789012:"
        "hyper-parameter-tuning-job/b-older) is still being promoted; waiting for it",
    )


def test_an_owner_that_finishes_between_the_look_and_the_takeover_keeps_its_claim(aws: dict[str, Any]) -> None:
    """The claim is read WAITING; then its owner publishes (DONE) and ends, so Step Functions says it is not
    running. Taking it over now would promote a finished tuning job again: the takeover's condition refuses."""
    owner = "arn:exec-owner"
    store = ClaimStore(aws["dynamodb"], TABLE)
    store.claim(
        model="fraud-detection", tuning_job_arn=TUNING_JOB, release_id="r-owner", execution_arn=owner,
        event_time=datetime(2026, 11, 21, tzinfo=UTC), lease_seconds=3600, settle=True,
    )  # fmt: skip

    def finished_meanwhile(arn: str) -> bool:
        store.finish(model="fraud-detection", tuning_job_arn=TUNING_JOB, execution_arn=arn, outcome="PROMOTED")
        return False

    racing = ClaimStore(aws["dynamodb"], TABLE, is_execution_running=finished_meanwhile)
    attempt = racing.claim(
        model="fraud-detection", tuning_job_arn=TUNING_JOB, release_id="r-again", execution_arn=EXECUTION,
        event_time=datetime(2026, 11, 21, tzinfo=UTC), lease_seconds=3600,
    )  # fmt: skip
    assert attempt == ClaimAttempt(
        ClaimStatus.DUPLICATE,
        f"tuning job {TUNING_JOB} is already claimed by execution {owner} (status WAITING); this event is a "
        "duplicate and was ignored",
    )
    item = claim_item(aws, "fraud-xgb-tuning-0042")
    assert (item["execution_arn"], item["release_id"], item["status"], item["outcome"]) == (
        {"S": owner},
        {"S": "r-owner"},
        {"S": "DONE"},
        {"S": "PROMOTED"},
    )
