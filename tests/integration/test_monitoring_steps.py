"""Monitoring's domain functions over moto: a drift check starts only when it can compare something (and says why
not), reads only the captured hours of the live variant, and is adopted when the schedule repeats; a verdict is read
only from the product's own drift checks; a retraining starts within the rate limits, once per window, and gives its
slot back when SageMaker refuses the tuning job."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.sagemaker.models import sagemaker_backends

from promotion.contract.catalog import ModelCatalog
from promotion.monitoring.drift import DriftVerdict, NotADriftCheck, read_drift_check, start_drift_check
from promotion.monitoring.retraining import record_key, start_retraining
from tests.conftest import CONFIG_BUCKET, TABLE
from tests.integration.helpers import ROLE
from tests.integration.test_data_quality_step import IMAGES, seed_config

RELEASE = "20261101-000000-000000"
NOW = datetime(2026, 12, 3, 17, 0, 12, tzinfo=UTC)
ENDPOINT = "fraud-detection-prod"
TUNING_ROLE = "arn:aws:iam::123456789012:role/promotion-tuning"
IMAGE = IMAGES.resolve("project")


def endpoint(aws: dict[str, Any], catalog: ModelCatalog, *, capture: bool = True, variants: int = 1) -> list[str]:
    """The production endpoint serving `variants` variants; its config captures requests as the rollout's do."""
    from promotion.monitoring.capture import data_capture_config

    sagemaker = aws["sagemaker"]
    names = [f"v{index}" for index in range(variants)]
    for name in names:
        sagemaker.create_model(
            ModelName=f"m-{name}",
            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://b/model.tar.gz"},
            ExecutionRoleArn=ROLE,
        )
    sagemaker.create_endpoint_config(
        EndpointConfigName="config",
        ProductionVariants=[
            {
                "VariantName": name,
                "ModelName": f"m-{name}",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
                "InitialVariantWeight": 1.0,
            }
            for name in names
        ],
        **({"DataCaptureConfig": data_capture_config(catalog, CONFIG_BUCKET)} if capture else {}),
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="config")
    return names


def profile(aws: dict[str, Any]) -> None:
    key = f"reports/fraud-detection/{RELEASE}/data-quality/profile.json"
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=key, Body=b'{"features": {}}')


def captured(aws: dict[str, Any], variant: str, hour: datetime) -> None:
    key = f"capture/fraud-detection/{ENDPOINT}/{variant}/{hour:%Y/%m/%d/%H}/a.jsonl"
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=key, Body=b"{}\n")


def check(aws: dict[str, Any], catalog: ModelCatalog) -> Any:
    return start_drift_check(
        aws["sagemaker"], aws["s3"], catalog, bucket=CONFIG_BUCKET, role_arn=ROLE, images=IMAGES, now=NOW
    )


def test_a_check_says_why_it_cannot_run(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    assert check(aws, catalog).reason == "no release is in production"
    seed_config(aws, catalog, RELEASE)
    assert "has no training data profile" in check(aws, catalog).reason
    profile(aws)
    assert check(aws, catalog).reason == f"endpoint {ENDPOINT} does not exist"


def test_an_endpoint_config_that_captures_nothing_is_said(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    seed_config(aws, catalog, RELEASE)
    profile(aws)
    endpoint(aws, catalog, capture=False)
    skipped = check(aws, catalog)
    assert skipped.status == "SKIPPED" and "captures no requests" in skipped.reason


def test_a_rollout_under_way_is_left_to_its_gates(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    seed_config(aws, catalog, RELEASE)
    profile(aws)
    endpoint(aws, catalog, variants=2)
    assert "serves a rollout" in check(aws, catalog).reason


def test_a_check_reads_the_captured_hours_of_the_serving_variant_only(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    seed_config(aws, catalog, RELEASE)
    profile(aws)
    (variant,) = endpoint(aws, catalog)
    skipped = check(aws, catalog)
    assert skipped.status == "SKIPPED" and "no requests captured" in skipped.reason
    captured(aws, variant, NOW - timedelta(hours=1))  # the window: 16:00-17:00
    captured(aws, variant, NOW)  # the hour under way: not yet
    captured(aws, "another-variant", NOW - timedelta(hours=1))
    started = check(aws, catalog)
    assert started.status == "STARTED", started.reason
    assert started.processing_job_name == "fraud-detection-drift-26120317"
    assert (started.window_start, started.window_end) == (NOW.replace(minute=0, second=0) - timedelta(hours=1),
                                                          NOW.replace(minute=0, second=0))  # fmt: skip
    job = aws["sagemaker"].describe_processing_job(ProcessingJobName=started.processing_job_name)
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in job["ProcessingInputs"]}
    assert inputs == {
        "reference": f"s3://{CONFIG_BUCKET}/reports/fraud-detection/{RELEASE}/data-quality/profile.json",
        "capture-2026120316": f"s3://{CONFIG_BUCKET}/capture/fraud-detection/{ENDPOINT}/{variant}/2026/12/03/16/",
    }
    assert job["RoleArn"] == ROLE
    assert job["AppSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/program/monitoring/drift.py"]
    arguments = job["AppSpecification"]["ContainerArguments"]
    assert arguments[:4] == ["--max-psi", "0.25", "--min-rows", "500"]
    assert arguments.count("--feature") == 10
    output = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert output == f"s3://{CONFIG_BUCKET}/reports/fraud-detection/{RELEASE}/monitoring/{started.processing_job_name}"
    # A repeated schedule (a retried delivery) finds the window's job and adopts it.
    assert check(aws, catalog).processing_job_name == started.processing_job_name


def finished_check(aws: dict[str, Any], catalog: ModelCatalog, psi: dict[str, float], rows: int = 900) -> str:
    """A completed drift check of the window ending NOW (moto completes jobs at once) and its report."""
    seed_config(aws, catalog, RELEASE)
    profile(aws)
    (variant,) = endpoint(aws, catalog)
    captured(aws, variant, NOW - timedelta(hours=1))
    started = check(aws, catalog)
    assert started.processing_job_name is not None
    report = {"rows": rows, "psi": psi}
    key = f"reports/fraud-detection/{RELEASE}/monitoring/{started.processing_job_name}/drift.json"
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=key, Body=json.dumps(report).encode())
    return started.processing_job_name


def read(aws: dict[str, Any], catalog: ModelCatalog, name: str, role: str = ROLE) -> DriftVerdict | None:
    return read_drift_check(
        aws["sagemaker"], aws["s3"], name, catalogs={catalog.id: catalog}, bucket=CONFIG_BUCKET,
        role_arns={catalog.id: role},
    )  # fmt: skip


def test_a_verdict_names_the_drifted_features_largest_first(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    name = finished_check(aws, catalog, {"amount": 4.2, "hour_of_day": 0.01, "velocity_1h": 0.3})
    verdict = read(aws, catalog, name)
    assert verdict is not None and verdict.status == "DRIFT"
    assert verdict.drifted == ["amount", "velocity_1h"] and verdict.worst == ("amount", 4.2)
    assert verdict.release_id == RELEASE and verdict.window_end == NOW.replace(minute=0, second=0)
    assert "amount PSI 4.2000, velocity_1h PSI 0.3000" in verdict.reason


def test_too_few_captured_requests_are_not_judged(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    name = finished_check(aws, catalog, {"amount": 4.2}, rows=120)
    verdict = read(aws, catalog, name)
    assert verdict is not None and verdict.status == "TOO_FEW_ROWS" and "fewer than the 500" in verdict.reason


def test_only_the_products_drift_checks_are_read(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    name = finished_check(aws, catalog, {"amount": 4.2})
    with pytest.raises(NotADriftCheck, match="is not fraud-detection's pipeline role"):
        read(aws, catalog, name, role="arn:aws:iam::123456789012:role/someone-else")
    aws["sagemaker"].create_processing_job(
        ProcessingJobName="fraud-detection-drift-26120318",
        RoleArn=ROLE,
        AppSpecification={"ImageUri": IMAGE},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "x",
                    "S3Output": {
                        "S3Uri": "s3://elsewhere/drift",
                        "LocalPath": "/opt/ml/processing/o",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    )
    with pytest.raises(NotADriftCheck, match="its output s3://elsewhere/drift is not under"):
        read(aws, catalog, "fraud-detection-drift-26120318")
    with pytest.raises(NotADriftCheck, match="its name is not"):  # a model no catalog monitors
        read_drift_check(aws["sagemaker"], aws["s3"], name, catalogs={}, bucket=CONFIG_BUCKET, role_arns={})


def verdict(window_end: datetime = NOW) -> DriftVerdict:
    return DriftVerdict(
        model="fraud-detection",
        processing_job_name=f"fraud-detection-drift-{window_end:%y%m%d%H}",
        status="DRIFT",
        reason="amount drifted",
        release_id=RELEASE,
        psi={"amount": 4.2},
        drifted=["amount"],
        window_end=window_end.replace(minute=0, second=0),
    )


def retrain(
    aws: dict[str, Any], catalog: ModelCatalog, drift: DriftVerdict, now: datetime, sagemaker: Any = None
) -> Any:
    return start_retraining(
        sagemaker or aws["sagemaker"], aws["dynamodb"], catalog, drift, table=TABLE, role_arn=TUNING_ROLE,
        image_uri=IMAGE, now=now,
    )  # fmt: skip


def set_status(name: str, status: str) -> None:
    sagemaker_backends["123456789012"]["us-east-1"].hyper_parameter_tuning_jobs[
        name
    ].hyper_parameter_tuning_job_status = status


def test_one_open_retraining_per_model_and_one_per_interval(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    first = retrain(aws, catalog, verdict(), NOW)
    assert first.status == "STARTED" and first.tuning_job_name == "fraud-detection-261203-170000"
    described = aws["sagemaker"].describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=first.tuning_job_name)
    assert described["TrainingJobDefinition"]["RoleArn"] == TUNING_ROLE
    # The same verdict again (a retried delivery): the same job, adopted, not a second one.
    again = retrain(aws, catalog, verdict(), NOW + timedelta(minutes=2))
    assert again.status == "STARTED" and again.tuning_job_name == first.tuning_job_name
    set_status(first.tuning_job_name, "InProgress")
    later = NOW + timedelta(hours=30)
    held = retrain(aws, catalog, verdict(NOW + timedelta(hours=1)), later)
    assert held.status == "NOT_STARTED" and "is still InProgress" in held.reason
    set_status(first.tuning_job_name, "Completed")
    soon = retrain(aws, catalog, verdict(NOW + timedelta(hours=2)), NOW + timedelta(hours=2))
    assert soon.status == "NOT_STARTED" and "the next may start after 2026-12-04 17:00 UTC" in soon.reason
    second = retrain(aws, catalog, verdict(later), later)
    assert second.status == "STARTED" and second.previous_tuning_job == first.tuning_job_name
    listed = aws["sagemaker"].list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    assert len(listed) == 2


class StaleReads:
    """A DynamoDB client whose GetItem answers as before another verdict's write: two verdicts at the same moment."""

    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamodb, name)


def test_two_verdicts_at_once_start_one_retraining(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    assert retrain(aws, catalog, verdict(), NOW).status == "STARTED"
    racing = start_retraining(
        aws["sagemaker"], StaleReads(aws["dynamodb"]), catalog, verdict(NOW + timedelta(hours=1)), table=TABLE,
        role_arn=TUNING_ROLE, image_uri=IMAGE, now=NOW + timedelta(hours=1),
    )  # fmt: skip
    assert racing.status == "NOT_STARTED" and "at the same moment" in racing.reason
    assert len(aws["sagemaker"].list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]) == 1


class RefusingSageMaker:
    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker

    def create_hyper_parameter_tuning_job(self, **_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ResourceLimitExceeded", "Message": "account quota"}}, "CreateHyperParameterTuningJob"
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sagemaker, name)


def test_a_refused_tuning_job_gives_the_slot_back(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    with pytest.raises(ClientError, match="ResourceLimitExceeded"):
        retrain(aws, catalog, verdict(), NOW, sagemaker=RefusingSageMaker(aws["sagemaker"]))
    record = aws["dynamodb"].get_item(TableName=TABLE, Key=record_key("fraud-detection"), ConsistentRead=True)
    assert "Item" not in record
    assert retrain(aws, catalog, verdict(NOW + timedelta(hours=1)), NOW + timedelta(hours=1)).status == "STARTED"


def test_a_report_that_cannot_be_read_is_a_failed_check_and_unreadable_requests_are_said(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    name = finished_check(aws, catalog, {"amount": 0.01}, rows=40)
    key = f"reports/fraud-detection/{RELEASE}/monitoring/{name}/drift.json"
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=key, Body=json.dumps({"rows": 40, "unreadable": 900}).encode())
    verdict = read(aws, catalog, name)
    assert verdict is not None and verdict.status == "TOO_FEW_ROWS" and verdict.unreadable == 900
    assert "900 captured requests could not be read as CSV rows of the catalog's 10 features" in verdict.reason
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=key, Body=b"{not json")
    broken = read(aws, catalog, name)
    assert broken is not None and broken.status == "JOB_FAILED" and "cannot be read (JSONDecodeError" in broken.reason
    aws["s3"].delete_object(Bucket=CONFIG_BUCKET, Key=key)
    missing = read(aws, catalog, name)
    assert missing is not None and missing.status == "JOB_FAILED" and "cannot be read (NoSuchKey" in missing.reason


class UniqueJobNames:
    """SageMaker refuses a second processing job of a name (ResourceInUse); plain moto replaces the first (the local
    runtime refuses it too: local/sagemaker_jobs.py)."""

    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker

    def create_processing_job(self, **request: Any) -> Any:
        try:
            self._sagemaker.describe_processing_job(ProcessingJobName=request["ProcessingJobName"])
        except ClientError:
            return self._sagemaker.create_processing_job(**request)
        raise ClientError(
            {"Error": {"Code": "ResourceInUse", "Message": "Processing job names must be unique"}},
            "CreateProcessingJob",
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sagemaker, name)


def test_a_repeated_schedule_adopts_its_windows_job_but_not_someone_elses(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    from promotion.core.errors import JobNotOurs

    aws = {**aws, "sagemaker": UniqueJobNames(aws["sagemaker"])}

    assert catalog.monitoring is not None
    two_hours = catalog.model_copy(update={"monitoring": catalog.monitoring.model_copy(update={"schedule_hours": 2})})
    seed_config(aws, two_hours, RELEASE)
    profile(aws)
    (variant,) = endpoint(aws, two_hours)
    captured(aws, variant, NOW - timedelta(hours=1))
    first = check(aws, two_hours)
    assert first.captured_hours == 1 and "adopted" not in first.reason
    captured(aws, variant, NOW - timedelta(hours=2))  # a late capture file of the window's first hour
    again = check(aws, two_hours)
    assert again.processing_job_name == first.processing_job_name and again.reason.startswith("already started")
    with pytest.raises(JobNotOurs):
        start_drift_check(
            aws["sagemaker"], aws["s3"], two_hours, bucket=CONFIG_BUCKET, role_arn=TUNING_ROLE, images=IMAGES, now=NOW
        )


def act(aws: dict[str, Any], catalog: ModelCatalog, name: str, *, tuning_roles: dict[str, str] | None = None) -> Any:
    from promotion.monitoring.loop import act_on_drift_check

    topic = aws["sns"].create_topic(Name="notices")["TopicArn"]
    event = {
        "version": "0",
        "id": "e",
        "detail-type": "SageMaker Processing Job State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-12-03T17:05:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"ProcessingJobName": name, "ProcessingJobStatus": "Completed"},
    }
    return act_on_drift_check(
        aws["sagemaker"], aws["s3"], aws["dynamodb"], aws["sns"], event=event, catalogs={catalog.id: catalog},
        bucket=CONFIG_BUCKET, table=TABLE, pipeline_roles={catalog.id: ROLE},
        tuning_roles={catalog.id: TUNING_ROLE} if tuning_roles is None else tuning_roles, images=IMAGES,
        topic_arn=topic, now=NOW + timedelta(minutes=5),
    )  # fmt: skip


def test_drift_on_a_release_no_longer_live_starts_no_retraining(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    name = finished_check(aws, catalog, {"amount": 4.2})
    seed_config(aws, catalog, "20261203-170100-000000")  # a promotion ended since the check started
    outcome = act(aws, catalog, name)
    assert outcome.verdict.status == "DRIFT" and outcome.retraining.status == "NOT_STARTED"
    assert "which is no longer live (20261203-170100-000000 is)" in outcome.retraining.reason
    assert aws["sagemaker"].list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"] == []


def test_a_retraining_that_cannot_start_still_reports_the_drift(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    name = finished_check(aws, catalog, {"amount": 4.2})
    outcome = act(aws, catalog, name, tuning_roles={})
    assert outcome.action == "JUDGED" and outcome.verdict.status == "DRIFT"
    assert outcome.retraining.status == "NOT_STARTED"
    assert "could not start: ValueError: TUNING_ROLE_ARNS names no tuning role" in outcome.retraining.reason
    started = act(aws, catalog, name)  # the same event again, once the stack names the role
    assert started.retraining.status == "STARTED"


def test_an_event_of_a_job_that_is_no_drift_check_is_ignored_unread(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    outcome = act(aws, catalog, "fraud-detection-20261120-140541-481646-cmp")  # a promotion's comparison job
    assert outcome.action == "IGNORED" and "is not <monitored model>-drift-<yymmddhh>" in outcome.reason


def test_one_models_check_failing_leaves_the_others_and_says_why(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    from promotion.monitoring.loop import start_drift_checks

    seed_config(aws, catalog, RELEASE)
    profile(aws)
    (failed,) = start_drift_checks(
        aws["sagemaker"], aws["s3"], {catalog.id: catalog}, bucket=CONFIG_BUCKET, role_arns={}, images=IMAGES, now=NOW
    )
    assert failed.status == "FAILED" and "names no pipeline role for model fraud-detection" in failed.reason


class Throttled:
    """SageMaker answering ThrottlingException to DescribeEndpoint: worth another try."""

    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker

    def describe_endpoint(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DescribeEndpoint")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sagemaker, name)


def test_a_check_worth_another_try_is_raised_after_every_model_had_its_turn(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    from promotion.monitoring.loop import start_drift_checks

    seed_config(aws, catalog, RELEASE)
    profile(aws)
    with pytest.raises(ClientError, match="ThrottlingException"):
        start_drift_checks(
            Throttled(aws["sagemaker"]), aws["s3"], {catalog.id: catalog}, bucket=CONFIG_BUCKET,
            role_arns={catalog.id: ROLE}, images=IMAGES, now=NOW,
        )  # fmt: skip
