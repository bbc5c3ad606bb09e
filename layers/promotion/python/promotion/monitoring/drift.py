"""The drift check: every `monitoring.schedule_hours` the schedule starts, per monitored model, a processing job
(jobs/monitoring/drift.py, the project image) that compares the features of the requests the endpoint captured in
the last window with the live release's training data profile (the one the data-quality gate wrote when that release
was promoted), by the population stability index per feature. SageMaker's state-change event of the job brings its
verdict back (`read_drift_check`), which publishes the metrics and, on drift, asks for a retraining.

Whatever is live is what is watched: the release the production config names, on the endpoint's single variant.
After a rollback that is the restored champion, with no change to any schedule. A check that cannot run says why
(SKIPPED): no release, no profile, a rollout under way, an endpoint config that captures nothing, no requests.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel

from promotion.contract.catalog import ModelCatalog
from promotion.contract.job_image import Images
from promotion.contract.names import REPORTS_PREFIX, capture_prefix, drift_check_job_name, report_prefix
from promotion.core.errors import aws_error_code, aws_error_message
from promotion.jobs.comparison import create_or_adopt_processing_job, processing_request
from promotion.jobs.data_quality import PROFILE, reference_profile
from promotion.monitoring.capture import hour_prefix, window_hours

ENTRYPOINT = ["python3", "/opt/program/monitoring/drift.py"]
PURPOSE_TAG = "promotion:purpose"
DRIFT_CHECK_PURPOSE = "drift-check"
REPORT = "drift.json"
IDENTITY: tuple[tuple[str, ...], ...] = (("RoleArn",), ("AppSpecification", "ImageUri"), ("Environment",))


class DriftCheck(BaseModel):
    """What the schedule did for one model: a job started (STARTED), or why none could run (SKIPPED)."""

    model: str
    status: Literal["STARTED", "SKIPPED", "FAILED"]
    reason: str
    release_id: str | None = None
    processing_job_name: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    captured_hours: int = 0


def _skipped(catalog: ModelCatalog, reason: str, release: str | None = None) -> DriftCheck:
    return DriftCheck(model=catalog.id, status="SKIPPED", reason=reason, release_id=release)


def _served_variant(sagemaker: Any, endpoint_name: str) -> tuple[str | None, dict[str, Any] | None, str]:
    """(the variant serving alone, its endpoint config's DataCaptureConfig, why not when the first is None)."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if "could not find" in str(error).lower():
            return None, None, f"endpoint {endpoint_name} does not exist"
        raise
    if endpoint.get("EndpointStatus") != "InService":
        return None, None, f"endpoint {endpoint_name} is {endpoint.get('EndpointStatus')}: a change is under way"
    variants = endpoint.get("ProductionVariants") or []
    if len(variants) != 1 or endpoint.get("ShadowProductionVariants"):
        return None, None, f"endpoint {endpoint_name} serves a rollout (its gates judge it): the check waits for it"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    return str(variants[0]["VariantName"]), config.get("DataCaptureConfig"), ""


def start_drift_check(
    sagemaker: Any,
    s3: Any,
    catalog: ModelCatalog,
    *,
    bucket: str,
    role_arn: str,
    images: Images,
    now: datetime,
) -> DriftCheck:
    """Start the check of the window that ended at `now`'s hour, or say why it cannot run."""
    settings, rollout = catalog.monitoring, catalog.rollout
    if settings is None or rollout is None:
        return _skipped(catalog, "the catalog does not monitor this model")
    # The live release, and the profile the data-quality gate wrote of its training data (the gate's reference too).
    release, profile_uri = reference_profile(s3, catalog, bucket)
    if release is None:
        return _skipped(catalog, "no release is in production")
    if profile_uri is None:
        return _skipped(
            catalog,
            f"release {release} has no training data profile (s3://{bucket}/{report_prefix(catalog.id, release)}"
            f"{PROFILE}): it was promoted without the data-quality gate, so there is nothing to compare its requests "
            "with",
            release,
        )
    variant, capture, why = _served_variant(sagemaker, rollout.endpoint_name)
    if variant is None:
        return _skipped(catalog, why, release)
    destination = f"s3://{bucket}/{capture_prefix(catalog.id)}"
    if (
        not capture
        or not capture.get("EnableCapture", True)
        or capture.get("DestinationS3Uri", "").rstrip("/") != (destination)
    ):
        return _skipped(
            catalog,
            f"endpoint {rollout.endpoint_name}'s config captures no requests to {destination} (a config the product "
            "did not create: the next promotion's configs capture)",
            release,
        )
    hours = window_hours(now, settings.schedule_hours)
    inputs: dict[str, str] = {"reference": profile_uri}
    for hour in hours:
        prefix = hour_prefix(destination, rollout.endpoint_name, variant, hour)
        key = prefix.removeprefix(f"s3://{bucket}/")
        if s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount", 0):
            inputs[f"capture-{hour.strftime('%Y%m%d%H')}"] = prefix
    window_start, window_end = hours[0], hours[-1] + timedelta(hours=1)
    if len(inputs) == 1:
        return DriftCheck(
            model=catalog.id,
            status="SKIPPED",
            reason=f"no requests captured on variant {variant} between {window_start:%Y-%m-%d %H:%M} and "
            f"{window_end:%H:%M} UTC",
            release_id=release,
            window_start=window_start,
            window_end=window_end,
        )
    name = drift_check_job_name(catalog.id, window_end)
    request = processing_request(
        catalog.id,
        release,
        name=name,
        role_arn=role_arn,
        image=images.resolve(settings.image),
        entrypoint=ENTRYPOINT,
        arguments=job_arguments(catalog),
        inputs=inputs,
        output_uri=f"s3://{bucket}/{report_prefix(catalog.id, release)}monitoring/{name}",
        instance_type=settings.instance_type,
        max_runtime_seconds=settings.max_runtime_seconds,
        tags={PURPOSE_TAG: DRIFT_CHECK_PURPOSE},
    )
    # The window's job of this model's role and image is its own, whatever hours late capture files add.
    adopted = create_or_adopt_processing_job(sagemaker, request, IDENTITY[:2], same_inputs=False)
    return DriftCheck(
        model=catalog.id,
        status="STARTED",
        reason=("already started for this window: adopted; " if adopted else "")
        + f"comparing {len(inputs) - 1} captured hour(s) of variant {variant} with release {release}'s training data",
        release_id=release,
        processing_job_name=name,
        window_start=window_start,
        window_end=window_end,
        captured_hours=len(inputs) - 1,
    )


def job_arguments(catalog: ModelCatalog) -> list[str]:
    """One container argument per value (SageMaker: at most 256 of at most 256 characters; the catalog keeps the
    features within 100)."""
    assert catalog.monitoring is not None and catalog.data_quality is not None
    arguments = ["--max-psi", str(catalog.monitoring.max_psi), "--min-rows", str(catalog.monitoring.min_rows)]
    for name in catalog.data_quality.feature_names or []:
        arguments += ["--feature", name]
    return arguments


# ------------------------------------------------------------------------------------------------ the verdict


class DriftVerdict(BaseModel):
    """What a finished drift check found, read from SageMaker and the job's report (never from the event)."""

    model: str
    processing_job_name: str
    status: Literal["DRIFT", "NO_DRIFT", "TOO_FEW_ROWS", "JOB_FAILED"]
    reason: str
    release_id: str | None = None
    rows: int = 0
    unreadable: int = 0  # captured requests that were not CSV rows of the catalog's features
    psi: dict[str, float] = {}
    drifted: list[str] = []  # features above the limit, the largest first
    max_psi: float | None = None
    report_uri: str | None = None
    window_end: datetime | None = None

    @property
    def worst(self) -> tuple[str, float] | None:
        """The feature that drifted most, and its PSI."""
        return (self.drifted[0], self.psi[self.drifted[0]]) if self.drifted else None


class NotADriftCheck(Exception):
    """The processing job is not one of the product's drift checks (its role, name or output say otherwise)."""


def read_drift_check(
    sagemaker: Any, s3: Any, name: str, *, catalogs: dict[str, ModelCatalog], bucket: str, role_arns: dict[str, str]
) -> DriftVerdict | None:
    """The verdict of drift check `name` once it ended (None while it runs). NotADriftCheck for a job that is not
    the product's: a job someone else named alike must not start a retraining."""
    # <model>-drift-<yymmddhh>: the fixed suffix makes the model unambiguous (model "a" never reads "a-drift-...").
    model = next((m for m in catalogs if re.fullmatch(rf"{re.escape(m)}-drift-\d{{8}}", name)), "")
    catalog = catalogs.get(model)
    if catalog is None or catalog.monitoring is None:
        raise NotADriftCheck(
            f"processing job {name} is not a drift check of the product: its name is not <monitored model>-drift-"
            "<yymmddhh>"
        )
    job = sagemaker.describe_processing_job(ProcessingJobName=name)
    outputs = (job.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    output = outputs[0]["S3Output"]["S3Uri"].rstrip("/") if outputs else ""
    # reports/<model>/<release>/monitoring/<name>: the release the check compared with
    reports = f"s3://{re.escape(bucket)}/{REPORTS_PREFIX}{re.escape(model)}"
    found = re.fullmatch(rf"{reports}/([^/]+)/monitoring/{name}", output)
    release = found.group(1) if found else None
    refusal = (
        f"its role {job.get('RoleArn')} is not {model}'s pipeline role"
        if job.get("RoleArn") != role_arns.get(model)
        else f"its output {output or 'none'} is not under s3://{bucket}/{report_prefix(model, '<release>')}monitoring/"
        if release is None
        else None
    )
    if refusal is not None:
        raise NotADriftCheck(f"processing job {name} is not a drift check of the product: {refusal}")
    window_end = datetime.strptime(name.rsplit("-", 1)[1], "%y%m%d%H").replace(tzinfo=UTC)

    def failed(reason: str) -> DriftVerdict:
        return DriftVerdict(
            model=model,
            release_id=release,
            processing_job_name=name,
            window_end=window_end,
            status="JOB_FAILED",
            reason=reason,
        )

    status = job.get("ProcessingJobStatus")
    if status in ("Failed", "Stopped"):
        reason = job.get("ExitMessage") or job.get("FailureReason") or "no reason given"
        return failed(f"drift check {name} {status}: {reason}; logs: /aws/sagemaker/ProcessingJobs, streams {name}/*")
    if status != "Completed":
        return None
    key = f"{output.removeprefix(f's3://{bucket}/')}/{REPORT}"
    problem = ""
    try:
        report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        psi = {str(feature): float(value) for feature, value in (report.get("psi") or {}).items()}
        rows, unreadable = int(report.get("rows", 0)), int(report.get("unreadable", 0))
    except ClientError as error:
        if aws_error_code(error) not in ("NoSuchKey", "404", "AccessDenied"):
            raise
        problem = f"{aws_error_code(error)}: {aws_error_message(error)}"
    except (ValueError, TypeError, AttributeError) as error:  # not JSON, or not the report's shape
        problem = f"{type(error).__name__}: {error}"
    if problem:
        return failed(f"drift check {name} completed but its report s3://{bucket}/{key} cannot be read ({problem})")
    limit = catalog.monitoring.max_psi
    drifted = sorted((f for f, value in psi.items() if value > limit), key=lambda f: -psi[f])
    common = {
        "model": model,
        "release_id": release,
        "processing_job_name": name,
        "rows": rows,
        "unreadable": unreadable,
        "psi": psi,
        "drifted": drifted,
        "max_psi": limit,
        "report_uri": f"{output}/{REPORT}",
        "window_end": window_end,
    }
    if rows < catalog.monitoring.min_rows:
        width = len(catalog.data_quality.feature_names or []) if catalog.data_quality else 0
        unread = (
            f"; {unreadable} captured requests could not be read as CSV rows of the catalog's {width} features (is "
            "the endpoint sent another payload?)"
            if unreadable
            else ""
        )
        return DriftVerdict(
            **common,
            status="TOO_FEW_ROWS",
            reason=f"{rows} captured requests, fewer than the {catalog.monitoring.min_rows} a window needs: not "
            f"judged{unread}",
        )
    if drifted:
        listed = ", ".join(f"{f} PSI {psi[f]:.4f}" for f in drifted[:5])
        return DriftVerdict(
            **common,
            status="DRIFT",
            reason=f"{len(drifted)} of {len(psi)} features drifted from release {release}'s training data over "
            f"{rows} requests (limit {limit:g}): {listed}",
        )
    largest = max(psi.items(), key=lambda item: item[1]) if psi else None
    return DriftVerdict(
        **common,
        status="NO_DRIFT",
        reason=f"no feature drifted over {rows} requests (largest: {largest[0]} PSI {largest[1]:.4f}, limit {limit:g})"
        if largest
        else f"no feature measured over {rows} requests",
    )
