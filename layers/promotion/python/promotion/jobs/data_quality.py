"""CheckDataQuality: the processing job (jobs/data_quality/check.py) that checks the data a promotion is about to
train and compare on, right after the approval and before anything in production is written, and its verdict read
back from the job's report.json once SageMaker's state-change event says the job ended (`check_data_quality`, run
by promotion.jobs.callbacks).

A FAIL fails the step with DataQualityFailed, naming each failed check with its channel, column, measured value and
limit; nothing has been written, so the promotion ends there. Each release's training data profile stays in its
report folder: once promoted, it is what the next promotion's data is compared with.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.contract.job_image import Images
from promotion.contract.names import data_quality_job_name, report_prefix
from promotion.contract.state import ClaimedState, DataQuality
from promotion.core.errors import PromotionError, aws_error_code
from promotion.jobs.comparison import create_or_adopt_processing_job, processing_request
from promotion.production.config import parse_config
from promotion.production.read import read_config

ENTRYPOINT = ["python3", "/opt/program/data_quality/check.py"]
SKIPPED = "Skipped"
PROFILE = "data-quality/profile.json"


class DataQualityFailed(PromotionError):
    """A data-quality check failed: the message names the check, channel, column, value and limit of each."""


class DataQualityJobFailed(PromotionError):
    """The data-quality job itself failed or stopped; the message names its log stream."""


def reference_profile(s3: Any, catalog: ModelCatalog, bucket: str) -> tuple[str | None, str | None]:
    """(champion release, S3 URI of its training data profile): the release the production config names, and its
    profile when this check wrote one for it. (None, None) without a champion or a profile."""
    current = read_config(s3, bucket, catalog.config.key)
    if current.body is None:
        return None, None
    release = parse_config(current.body).release_id
    key = f"{report_prefix(catalog.id, release)}{PROFILE}"
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if aws_error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return release, None
        raise
    return release, f"s3://{bucket}/{key}"


def data_quality_request(
    catalog: ModelCatalog,
    state: ClaimedState,
    *,
    role_arn: str,
    bucket: str,
    images: Images,
    reference_uri: str | None,
) -> dict[str, Any]:
    """The CreateProcessingJob request: the catalog's channels (and the champion's profile) in, report out."""
    settings = catalog.data_quality
    assert settings is not None
    claim = state.claim
    channels = {"train": catalog.training.train_data, "validation": catalog.training.validation_data}
    if catalog.comparison is not None:
        channels["holdout"] = catalog.comparison.holdout_data
    if reference_uri is not None:
        channels["reference"] = reference_uri
    return processing_request(
        claim.model,
        claim.release_id,
        name=data_quality_job_name(claim.model, claim.release_id),
        role_arn=role_arn,
        image=images.resolve(settings.image),
        entrypoint=ENTRYPOINT,
        arguments=job_arguments(settings.thresholds(), settings.feature_names),
        inputs=channels,
        output_uri=f"s3://{bucket}/{report_prefix(claim.model, claim.release_id)}data-quality",
        instance_type=settings.instance_type,
        max_runtime_seconds=settings.max_runtime_seconds,
    )


def job_arguments(limits: dict[str, Any], feature_names: list[str] | None) -> list[str]:
    """`--limit name=<json>` per limit and `--feature name` per feature: SageMaker takes at most 256 container
    arguments of at most 256 characters each (the catalog keeps both within), so nothing is joined into one."""
    arguments = [item for name, value in sorted(limits.items()) for item in ("--limit", f"{name}={json.dumps(value)}")]
    for name in feature_names or []:
        arguments += ["--feature", name]
    return arguments


IDENTITY: tuple[tuple[str, ...], ...] = (("RoleArn",), ("AppSpecification", "ImageUri"), ("Environment",))


def start_data_quality(
    sagemaker: Any,
    s3: Any,
    catalog: ModelCatalog,
    state: ClaimedState,
    *,
    role_arn: str,
    bucket: str,
    images: Images,
) -> DataQuality:
    """Start the job, or PASS at once when the catalog asks for no data-quality gate."""
    if catalog.data_quality is None:
        return DataQuality(status=SKIPPED, decision="PASS", reason="the catalog has no data_quality settings")
    reference_release, reference_uri = reference_profile(s3, catalog, bucket)
    request = data_quality_request(
        catalog, state, role_arn=role_arn, bucket=bucket, images=images, reference_uri=reference_uri
    )
    create_or_adopt_processing_job(sagemaker, request, IDENTITY)
    return DataQuality(
        processing_job_name=request["ProcessingJobName"],
        image=request["AppSpecification"]["ImageUri"],
        status="InProgress",
        reference_release=reference_release if reference_uri is not None else None,
    )


def check_data_quality(sagemaker: Any, s3: Any, previous: DataQuality) -> DataQuality:
    """The job's status; when complete, its verdict from report.json. DataQualityFailed when a check failed,
    DataQualityJobFailed when the job did."""
    if previous.status == SKIPPED or previous.processing_job_name is None:
        return previous
    name = previous.processing_job_name
    job = sagemaker.describe_processing_job(ProcessingJobName=name)
    status = job.get("ProcessingJobStatus", "InProgress")
    if status in ("Failed", "Stopped"):
        reason = job.get("ExitMessage") or job.get("FailureReason") or "no reason given"
        raise DataQualityJobFailed(
            f"data-quality job {name} {status}: {reason}; logs: CloudWatch Logs group /aws/sagemaker/ProcessingJobs, "
            f"streams {name}/*"
        )
    if status != "Completed":
        return previous.model_copy(update={"status": status, "polls": previous.polls + 1})
    output = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].rstrip("/")
    bucket, _, prefix = output.removeprefix("s3://").partition("/")
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/report.json")["Body"].read())
    failures = [str(f.get("sentence") or f.get("check")) for f in report.get("failures", [])]
    reference = previous.reference_release
    compared = f"against release {reference}'s training data" if reference else "without a reference profile"
    checked = len(report.get("findings", []))
    unmeasured = sorted({f["column"] for f in report.get("findings", []) if f.get("check") == "shift.unmeasured"})
    if unmeasured and reference:
        compared += f"; not in that profile, so not measured: {', '.join(unmeasured)}"
    if failures:
        listed = "; ".join(failures[:5])
        more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
        raise DataQualityFailed(
            f"{len(failures)} of {checked} data-quality checks failed ({compared}): {listed}{more}; "
            f"report: {output}/report.json"
        )
    return DataQuality(
        processing_job_name=name,
        image=previous.image,
        status=status,
        decision="PASS",
        reason=f"all {checked} data-quality checks passed ({compared})",
        reference_release=reference,
        checks=checked,
        rows={channel: int(v.get("rows", 0)) for channel, v in (report.get("channels") or {}).items()},
        report_uri=f"{output}/report.json",
        profile_uri=f"{output}/profile.json",
        polls=previous.polls + 1,
    )
