"""The monitoring loop's two ends, as the two functions run them: the schedule starts each monitored model's drift
check (`start_drift_checks`), and SageMaker's event of a finished check brings its verdict back (`act_on_drift_check`):
metrics per feature, a notice on drift, and a retraining within the rate limits."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel

from promotion.contract.catalog import ModelCatalog
from promotion.contract.job_image import Images
from promotion.contract.names import METRICS_NAMESPACE, SERVICE
from promotion.core.errors import TransientAwsError
from promotion.core.observability import logger
from promotion.jobs.callbacks import SageMakerStateChange, WaitKind, is_accident
from promotion.jobs.data_quality import reference_profile
from promotion.monitoring.drift import DriftCheck, DriftVerdict, NotADriftCheck, read_drift_check, start_drift_check
from promotion.monitoring.retraining import Retraining, start_retraining
from promotion.result.notify import chat_notification, publish_notice

DRIFT_CHECK_FAILED = "DriftCheckFailed"  # a check that could not start, or whose job failed: an alarm


def start_drift_checks(
    sagemaker: Any,
    s3: Any,
    catalogs: dict[str, ModelCatalog],
    *,
    bucket: str,
    role_arns: dict[str, str],
    images: Images,
    now: datetime,
) -> list[DriftCheck]:
    """One check per monitored model; a model whose check cannot start says why (SKIPPED, or FAILED with the
    error), and the others still run. An error worth another try (throttling, a 5xx) is raised once every model had
    its turn, so Lambda's retry runs the schedule again: the checks that started are then adopted by name."""
    checks = []
    retry: Exception | None = None
    for catalog in catalogs.values():
        if catalog.monitoring is None or now.hour % catalog.monitoring.schedule_hours:
            continue  # not monitored, or not due this hour (every schedule_hours, from midnight UTC)
        try:
            role = role_arns.get(catalog.id)
            if role is None:
                raise ValueError(f"TRAINING_ROLE_ARNS names no pipeline role for model {catalog.id}")
            check = start_drift_check(sagemaker, s3, catalog, bucket=bucket, role_arn=role, images=images, now=now)
        except Exception as error:  # one model's failure must not leave the others unwatched
            check = DriftCheck(model=catalog.id, status="FAILED", reason=f"{type(error).__name__}: {error}")
            if is_accident(error):  # retried with the schedule: said in the log, not counted as a failed check
                retry = retry or error
                logger.warning("drift check to retry", extra=check.model_dump(mode="json"))
                checks.append(check)
                continue
        logger.info("drift check", extra=check.model_dump(mode="json"))
        with single_metric(
            name={"STARTED": "DriftChecksStarted", "SKIPPED": "DriftChecksSkipped", "FAILED": DRIFT_CHECK_FAILED}[
                check.status
            ],
            unit=MetricUnit.Count,
            value=1,
            namespace=METRICS_NAMESPACE,
            default_dimensions={"model": catalog.id, "service": SERVICE},
        ):
            pass
        checks.append(check)
    if retry is not None:
        raise retry
    return checks


class DriftOutcome(BaseModel):
    """What one SageMaker event of a processing job came to."""

    action: Literal["IGNORED", "JUDGED"]
    reason: str
    verdict: DriftVerdict | None = None
    retraining: Retraining | None = None


def _publish_metrics(verdict: DriftVerdict) -> None:
    """FeatureDrift (PSI) per feature, DriftDetected (0 or 1) and CapturedRows per model: the dashboard's and alarms'
    reading of the live release."""
    dimensions = {"model": verdict.model, "service": SERVICE}
    if verdict.status != "JOB_FAILED":
        for counted, count in (("CapturedRows", verdict.rows), ("UnreadableRows", verdict.unreadable)):
            with single_metric(
                name=counted, unit=MetricUnit.Count, value=count, namespace=METRICS_NAMESPACE,
                default_dimensions=dimensions,
            ):  # fmt: skip
                pass
    if verdict.status in ("DRIFT", "NO_DRIFT"):
        with single_metric(
            name="DriftDetected",
            unit=MetricUnit.Count,
            value=1 if verdict.status == "DRIFT" else 0,
            namespace=METRICS_NAMESPACE,
            default_dimensions=dimensions,
        ):
            pass
        for feature, psi in verdict.psi.items():
            with single_metric(
                name="FeatureDrift",
                unit=MetricUnit.NoUnit,
                value=psi,
                namespace=METRICS_NAMESPACE,
                default_dimensions={**dimensions, "feature": feature},
            ):
                pass
    elif verdict.status == "JOB_FAILED":
        with single_metric(
            name=DRIFT_CHECK_FAILED, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE,
            default_dimensions=dimensions,
        ):  # fmt: skip
            pass


def _retrain(
    sagemaker: Any,
    s3: Any,
    dynamodb: Any,
    catalog: ModelCatalog,
    verdict: DriftVerdict,
    bucket: str,
    table: str,
    tuning_roles: dict[str, str],
    images: Images,
    now: datetime,
) -> Retraining:
    """The retraining a DRIFT verdict asks for, unless the release it judged is no longer live (a late verdict, or
    one of a check started just before a promotion): retraining a release that no longer serves answers nothing."""
    try:
        live, _ = reference_profile(s3, catalog, bucket)
        if live != verdict.release_id:
            return Retraining(
                model=catalog.id,
                status="NOT_STARTED",
                reason=f"the drift was measured on release {verdict.release_id}, which is no longer live ({live} "
                "is): the next check watches it",
            )
        role = tuning_roles.get(catalog.id)
        if role is None:
            raise ValueError(f"TUNING_ROLE_ARNS names no tuning role for model {catalog.id}")
        return start_retraining(
            sagemaker,
            dynamodb,
            catalog,
            verdict,
            table=table,
            role_arn=role,
            image_uri=images.resolve(catalog.training.image),
            now=now,
        )
    except Exception as error:
        if is_accident(error):
            raise
        logger.exception("retraining not started")
        return Retraining(
            model=catalog.id, status="NOT_STARTED", reason=f"could not start: {type(error).__name__}: {error}"
        )


def _notify(sns: Any, topic_arn: str | None, verdict: DriftVerdict, retraining: Retraining | None) -> None:
    # Drift, a failed check, and a window that could not be judged because its requests were unreadable.
    payload_mismatch = verdict.status == "TOO_FEW_ROWS" and verdict.unreadable >= max(verdict.rows, 1)
    if topic_arn is None or (verdict.status not in ("DRIFT", "JOB_FAILED") and not payload_mismatch):
        return
    started = retraining is not None and retraining.status == "STARTED"
    title = f"{verdict.model}: " + (
        "drift check failed"
        if verdict.status == "JOB_FAILED"
        else "captured requests unreadable"
        if payload_mismatch
        else "drift, retraining started"
        if started
        else "drift"
    )
    steps = [f"Drift report: {verdict.report_uri}"] if verdict.report_uri else []
    if retraining is not None:
        steps.append(retraining.reason)
    detail = {"verdict": verdict.model_dump(mode="json"), "retraining": retraining.model_dump() if retraining else None}
    publish_notice(
        sns,
        topic_arn,
        subject=title,
        detail=detail,
        chat=chat_notification(
            title=title,
            description=verdict.reason,
            event_type="drift",
            thread_id=f"{verdict.model}-monitoring",
            next_steps=steps,
            context={"model": verdict.model, "release": verdict.release_id},
        ),
    )


def act_on_drift_check(
    sagemaker: Any,
    s3: Any,
    dynamodb: Any,
    sns: Any,
    *,
    event: Any,
    catalogs: dict[str, ModelCatalog],
    bucket: str,
    table: str,
    pipeline_roles: dict[str, str],
    tuning_roles: dict[str, str],
    images: Images,
    topic_arn: str | None,
    now: datetime,
) -> DriftOutcome:
    """SageMaker says a processing job settled: if it is a drift check, read its verdict from SageMaker and its
    report, publish it, and on drift start the model's retraining (promotion.monitoring.retraining)."""
    change = SageMakerStateChange.parse(event)
    resource = change.resource()
    if resource is None or resource[0] is not WaitKind.PROCESSING_JOB:
        return DriftOutcome(action="IGNORED", reason=f"not a processing job's event: {change.detail_type}")
    name = resource[1]
    try:
        verdict = read_drift_check(sagemaker, s3, name, catalogs=catalogs, bucket=bucket, role_arns=pipeline_roles)
    except NotADriftCheck as error:
        return DriftOutcome(action="IGNORED", reason=str(error))
    if verdict is None:
        # The event says the job settled, its Describe does not show it yet: Lambda's asynchronous retry looks again.
        raise TransientAwsError(f"drift check {name}: SageMaker's event says it ended, DescribeProcessingJob does not")
    retraining = None
    if verdict.status == "DRIFT":
        # An error worth another try is raised before anything is published, so the retry publishes once; any other
        # leaves the retraining NOT_STARTED with the reason, and the drift is still published and notified.
        retraining = _retrain(sagemaker, s3, dynamodb, catalogs[verdict.model], verdict, bucket, table, tuning_roles,
                              images, now)  # fmt: skip
    _publish_metrics(verdict)
    if retraining is not None:
        with single_metric(
            name="RetrainingsStarted" if retraining.status == "STARTED" else "RetrainingsHeldBack",
            unit=MetricUnit.Count,
            value=1,
            namespace=METRICS_NAMESPACE,
            default_dimensions={"model": verdict.model, "service": SERVICE},
        ):
            pass
    _notify(sns, topic_arn, verdict, retraining)
    return DriftOutcome(action="JUDGED", reason=verdict.reason, verdict=verdict, retraining=retraining)
