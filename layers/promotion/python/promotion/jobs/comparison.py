"""CompareWithChampion: the SageMaker processing job that scores champion and challenger on
the same held-out rows (jobs/comparison/compare.py), and its verdict read back from the job's report.json once
SageMaker's state-change event says the job ended (`check_comparison`, run by promotion.jobs.callbacks).

Only the numbers an operator judges on are kept in the execution's output; the full report and its plots stay in
S3 under the release's report prefix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.contract.events import MODEL_TAG, RELEASE_TAG
from promotion.contract.hyperparameters import to_parameter_value
from promotion.contract.job_image import Images
from promotion.contract.names import comparison_job_name, job_environment, report_prefix
from promotion.contract.state import Comparison, PipelineState, PromotionState, required
from promotion.core.errors import CatalogError, JobNotOurs, PromotionError, aws_error_code
from promotion.jobs.training import require_same_job

# The comparison's code is in the image (jobs/Dockerfile puts jobs/ at /opt/program): no code input to stage.
ENTRYPOINT = ["python3", "/opt/program/comparison/compare.py"]
SKIPPED_COMPARISON = "Skipped"  # no comparison settings, or no champion model to compare with: nothing evaluated


class ComparisonFailed(PromotionError):
    """The comparison job failed or stopped; the message names its CloudWatch log stream."""


def comparison_request(
    catalog: ModelCatalog,
    state: PipelineState,
    *,
    role_arn: str,
    bucket: str,
    images: Images,
    champion_model_url: str,
) -> dict[str, Any]:
    """The CreateProcessingJob request: champion, challenger and holdout in, report.json and plots out."""
    settings = catalog.comparison
    if settings is None:
        raise CatalogError(f"model {catalog.id}'s catalog has no comparison section: there is no job to start")
    claim = state.claim
    challenger_model_url = required(state.pipeline.model_data_url, "$.pipeline.model_data_url")

    inputs = {"champion": champion_model_url, "challenger": challenger_model_url, "holdout": settings.holdout_data}
    if settings.seed_check_seeds:
        inputs["train"] = catalog.training.train_data
    return processing_request(
        claim.model,
        claim.release_id,
        name=comparison_job_name(claim.model, claim.release_id),
        role_arn=role_arn,
        image=images.resolve(settings.image),
        entrypoint=ENTRYPOINT,
        arguments=[
            "--min-gain",
            str(settings.min_gain),
            "--alpha",
            str(settings.alpha),
            "--bootstrap-resamples",
            str(settings.bootstrap_resamples),
            "--primary-metric",
            settings.primary_metric,
            *_seed_check_arguments(settings.seed_check_seeds, state),
        ],
        inputs=inputs,
        output_uri=f"s3://{bucket}/{report_prefix(claim.model, claim.release_id)}comparison",
        instance_type=settings.instance_type,
        max_runtime_seconds=settings.max_runtime_seconds,
    )


def processing_request(
    model: str,
    release_id: str,
    *,
    name: str,
    role_arn: str,
    image: str,
    entrypoint: list[str],
    arguments: list[str],
    inputs: Mapping[str, str],
    output_uri: str,
    instance_type: str,
    max_runtime_seconds: int,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A release's CreateProcessingJob request (the comparison, the data-quality and drift checks): each input an S3
    prefix at /opt/ml/processing/input/<name>, /opt/ml/processing/output uploaded to `output_uri` when the job ends,
    the release in its environment and tags (and `tags`)."""
    return {
        "ProcessingJobName": name,
        "RoleArn": role_arn,
        "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": entrypoint, "ContainerArguments": arguments},
        "ProcessingInputs": [
            {
                "InputName": input_name,
                "S3Input": {
                    "S3Uri": uri,
                    "LocalPath": f"/opt/ml/processing/input/{input_name}",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
            for input_name, uri in inputs.items()
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "report",
                    "S3Output": {
                        "S3Uri": output_uri,
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": 30}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "Environment": job_environment(model, release_id),
        "Tags": [
            {"Key": MODEL_TAG, "Value": model},
            {"Key": RELEASE_TAG, "Value": release_id},
            *({"Key": key, "Value": value} for key, value in sorted((tags or {}).items())),
        ],
    }


def _seed_check_arguments(seeds: int | None, state: PipelineState) -> list[str]:
    """`--seed-check-seeds K` and the challenger's hyperparameters as training got them, one argument each (a
    container argument is at most 256 characters)."""
    if not seeds:
        return []
    candidate = required(state.validation.candidate if state.validation else None, "$.validation.candidate")
    arguments = ["--seed-check-seeds", str(seeds)]
    for name, value in sorted(candidate.hyperparameters.items()):
        arguments += ["--hyperparameter", f"{name}={to_parameter_value(value)}"]
    return arguments


# What makes an existing processing job the comparison a release asked for: fields DescribeProcessingJob answers as
# they were asked (not those SageMaker completes with defaults, such as the inputs' distribution type).
COMPARISON_IDENTITY: tuple[tuple[str, ...], ...] = (
    ("RoleArn",),
    ("AppSpecification", "ImageUri"),
    ("Environment",),
)


def start_comparison(
    sagemaker: Any,
    s3: Any,
    dynamodb: Any,
    catalog: ModelCatalog,
    state: PipelineState,
    *,
    role_arn: str,
    bucket: str,
    table: str,
    images: Images,
) -> Comparison:
    """Start the comparison job, or PASS at once when there is no champion model to compare with."""
    champion_url = _champion_model_url(s3, dynamodb, bucket, table, state)
    if catalog.comparison is None or champion_url is None:
        why = "the catalog has no comparison settings" if catalog.comparison is None else "there is no champion model"
        return Comparison(status=SKIPPED_COMPARISON, decision="PASS", reason=f"comparison skipped: {why}")
    request = comparison_request(
        catalog, state, role_arn=role_arn, bucket=bucket, images=images, champion_model_url=champion_url
    )
    create_or_adopt_processing_job(sagemaker, request, COMPARISON_IDENTITY)
    return Comparison(
        processing_job_name=request["ProcessingJobName"],
        image=request["AppSpecification"]["ImageUri"],
        status="InProgress",
    )


def create_or_adopt_processing_job(
    sagemaker: Any, request: dict[str, Any], identity: tuple[tuple[str, ...], ...], *, same_inputs: bool = True
) -> bool:
    """CreateProcessingJob; True when a retried step found its own job by name and adopted it. A job someone else
    made with that name (another definition; with `same_inputs`, other data) is refused with JobNotOurs: its report
    would be trusted. A drift check adopts its window's job without `same_inputs`: capture files that arrived late
    change the hours a repeated schedule would read, not whose job it is."""
    try:
        sagemaker.create_processing_job(**request)
    except ClientError as error:
        message = str(error).lower()
        if aws_error_code(error) != "ResourceInUse" and "already exists" not in message and "unique" not in message:
            raise
        existing = sagemaker.describe_processing_job(ProcessingJobName=request["ProcessingJobName"])
        require_same_job("processing job", request["ProcessingJobName"], existing, request, identity)
        if not same_inputs:
            return True
        asked = sorted(i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"] if "S3Input" in i)
        found = sorted(i["S3Input"]["S3Uri"] for i in existing.get("ProcessingInputs", []) if "S3Input" in i)
        if asked != found:
            raise JobNotOurs(
                f"processing job {request['ProcessingJobName']} already exists but reads other data ({found}, not "
                f"{asked}); it is not adopted and its report is not used"
            ) from error
        return True
    return False


def _champion_model_url(s3: Any, dynamodb: Any, bucket: str, table: str, state: PromotionState) -> str | None:
    """The champion's model: what the production pipeline trained for the release in production (its audit record),
    else the artifact its config names (a champion from before the product)."""
    from promotion.production.backup import load_backup
    from promotion.production.config import parse_config
    from promotion.result.audit import read_audit_record

    claim = state.claim
    if claim.model is None or claim.release_id is None:
        return None
    record = load_backup(s3, bucket, claim.model, claim.release_id)
    if not record.config.existed or record.config.archived_key is None:
        return None
    champion = parse_config(s3.get_object(Bucket=bucket, Key=record.config.archived_key)["Body"].read())
    audit = read_audit_record(dynamodb, table, claim.model, champion.release_id)
    if audit is not None and audit.production_model_url:
        return audit.production_model_url
    return champion.source.model_data_url


def check_comparison(sagemaker: Any, s3: Any, previous: Comparison) -> Comparison:
    """The job's status; when complete, its verdict from report.json. ComparisonFailed when the job failed."""
    if previous.status == "Skipped" or previous.processing_job_name is None:
        return previous
    job = sagemaker.describe_processing_job(ProcessingJobName=previous.processing_job_name)
    status = job.get("ProcessingJobStatus", "InProgress")
    polls = previous.polls + 1
    name = previous.processing_job_name
    if status in ("Failed", "Stopped"):
        reason = job.get("ExitMessage") or job.get("FailureReason") or "no reason given"
        raise ComparisonFailed(
            f"comparison job {name} {status}: {reason}; logs: CloudWatch Logs group /aws/sagemaker/ProcessingJobs, "
            f"streams {name}/*"
        )
    image = (job.get("AppSpecification") or {}).get("ImageUri") or previous.image
    if status != "Completed":
        return previous.model_copy(update={"status": status, "polls": polls, "image": image})
    output = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].rstrip("/")
    bucket, _, prefix = output.removeprefix("s3://").partition("/")
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/report.json")["Body"].read())
    decision = report["decision"]
    statistics = report.get("statistics", {})
    return Comparison(
        processing_job_name=name,
        image=image,
        status=status,
        decision=decision["outcome"],
        reason=decision["reason"],
        primary_metric=decision.get("primary_metric"),
        champion_value=decision.get("champion_value"),
        challenger_value=decision.get("challenger_value"),
        difference=decision.get("difference"),
        ci_low=decision.get("ci_low"),
        ci_high=decision.get("ci_high"),
        min_gain=decision.get("min_gain"),
        alpha=decision.get("alpha"),
        mcnemar_p_value=(statistics.get("mcnemar") or {}).get("p_value"),
        delong_p_value=(statistics.get("delong") or {}).get("p_value"),
        holdout_rows=(report.get("holdout") or {}).get("rows"),
        seed_spread=(report.get("seed_check") or {}).get("spread"),
        seed_values=list((report.get("seed_check") or {}).get("values") or []),
        challenger_sha256=((report.get("challenger") or {}).get("artifact") or {}).get("sha256"),
        report_uri=f"{output}/report.json",
        plots={key: f"{output}/{file}" for key, file in (report.get("plots") or {}).items()},
        polls=polls,
    )
