"""ValidateCandidate: look up the tuning job's best training job and judge it against the catalog and the champion.

The tuning-job event has no best training job, so it is looked up (DescribeHyperParameterTuningJob), then its
final metrics and hyperparameters (DescribeTrainingJob). Every problem is collected, so one rejection says all.
"""

from __future__ import annotations

import math
from typing import Any

from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.contract.hyperparameters import HyperparameterValue, validate_hyperparameters
from promotion.contract.state import Candidate, Champion, Check, Validation
from promotion.core.errors import ConfigSchemaError, HyperparameterValidationError, aws_error_code, aws_error_message
from promotion.jobs.callbacks import CALLBACK_MARGIN_SECONDS
from promotion.production.config import parse_config
from promotion.production.read import read_config


def meets_production_threshold(accuracy: float, threshold: float) -> bool:
    """Seed property 15: a model is production-ready when accuracy >= the pass threshold (0.90 by default)."""
    return math.isfinite(accuracy) and accuracy >= threshold


def low_accuracy_warning(accuracy: float, threshold: float) -> bool:
    """Seed property 17: accuracy below the warn threshold (0.80 by default) raises a warning."""
    return not math.isfinite(accuracy) or accuracy < threshold


def objective_gain(challenger: float, champion: float, objective_type: str) -> float:
    """How much better the challenger is, positive = better, whatever the objective's direction."""
    return challenger - champion if objective_type == "Maximize" else champion - challenger


def _not_found(error: ClientError) -> bool:
    code, message = aws_error_code(error), aws_error_message(error)
    return code in ("ResourceNotFound", "ValidationException") and "not" in message.lower()


def _final_metrics(training_job: dict[str, Any]) -> tuple[dict[str, float], list[str]]:
    metrics: dict[str, float] = {}
    problems: list[str] = []
    for item in training_job.get("FinalMetricDataList") or []:
        name, value = item.get("MetricName"), item.get("Value")
        if not isinstance(name, str):
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            problems.append(f"metric {name} has no finite value ({value!r})")
            continue
        metrics[name] = float(value)
    return metrics, problems


def read_champion(s3: Any, bucket: str, catalog: ModelCatalog) -> tuple[Champion | None, str | None]:
    """The release in production (None if there is none), or a problem when its config cannot be read."""
    current = read_config(s3, bucket, catalog.config.key)
    if current.body is None:
        return None, None
    try:
        config = parse_config(current.body)
    except ConfigSchemaError as error:
        return None, f"the current production config s3://{bucket}/{catalog.config.key} is unreadable: {error}"
    return (
        Champion(
            release_id=config.release_id,
            objective_value=config.performance.get(catalog.objective.metric),
            performance=dict(config.performance),
            model_package_arn=config.model_package_arn,
        ),
        None,
    )


def _same_value(left: str, right: str) -> bool:
    """SageMaker passes hyperparameters as strings; "3" and "3.0" are the same number."""
    if left == right:
        return True
    try:
        return float(left) == float(right)
    except ValueError:
        return False


def _tuned_disagreements(
    tuned: dict[str, Any], trained: dict[str, Any], training_name: str, tuning_job_name: str
) -> list[str]:
    """The tuning job says which values it chose for its best training job; the training job says what it ran
    with. Production gets one of them, so they must agree: otherwise neither is trusted."""
    return [
        f"best training job {training_name} ran with {name}={trained.get(name)!r}, but tuning job {tuning_job_name} "
        f"reports {name}={value!r} as the tuned value (TunedHyperParameters)"
        for name, value in sorted(tuned.items())
        if trained.get(name) is None or not _same_value(str(trained[name]), str(value))
    ]


def validate_candidate(sagemaker: Any, s3: Any, bucket: str, catalog: ModelCatalog, tuning_job_name: str) -> Validation:
    """Judge the tuning job's best candidate: schema, accuracy thresholds, objective, and gain over the champion."""
    reasons: list[str] = []
    warnings: list[str] = []
    checks: list[Check] = []
    try:
        tuning = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_job_name)
    except ClientError as error:
        if _not_found(error):
            return Validation(verdict="REJECTED", reasons=[f"tuning job {tuning_job_name} not found: {error}"])
        raise
    if tuning.get("HyperParameterTuningJobStatus") != "Completed":
        reasons.append(f"tuning job {tuning_job_name} is {tuning.get('HyperParameterTuningJobStatus')}, not Completed")
    best = tuning.get("BestTrainingJob")
    if not best or not best.get("TrainingJobName"):
        reasons.append(f"tuning job {tuning_job_name} has no BestTrainingJob (no training job succeeded)")
        return Validation(verdict="REJECTED", reasons=reasons)

    objective = (tuning.get("HyperParameterTuningJobConfig") or {}).get("HyperParameterTuningJobObjective") or {}
    objective_metric = objective.get("MetricName") or catalog.objective.metric
    objective_type = objective.get("Type") or catalog.objective.type
    if objective_type not in ("Maximize", "Minimize"):
        reasons.append(f"tuning objective type {objective_type!r} is neither Maximize nor Minimize")
        objective_type = catalog.objective.type
    if (objective_metric, objective_type) != (catalog.objective.metric, catalog.objective.type):
        reasons.append(
            f"tuning objective {objective_type} {objective_metric} differs from the catalog's "
            f"{catalog.objective.type} {catalog.objective.metric}"
        )

    training_name = best["TrainingJobName"]
    try:
        training = sagemaker.describe_training_job(TrainingJobName=training_name)
    except ClientError as error:
        if _not_found(error):
            reasons.append(f"best training job {training_name} not found: {error}")
            return Validation(verdict="REJECTED", reasons=reasons)
        raise
    if training.get("TrainingJobStatus") != "Completed":
        reasons.append(f"best training job {training_name} is {training.get('TrainingJobStatus')}, not Completed")

    hyperparameters: dict[str, HyperparameterValue] = {}
    raw = training.get("HyperParameters") or {}
    reasons.extend(_tuned_disagreements(best.get("TunedHyperParameters") or {}, raw, training_name, tuning_job_name))
    try:
        hyperparameters = validate_hyperparameters(raw, catalog.hyperparameters)
        checks.append(Check(name="hyperparameter_schema", passed=True, detail=f"{len(hyperparameters)} valid"))
    except HyperparameterValidationError as error:
        reasons.append(str(error))
        checks.append(Check(name="hyperparameter_schema", passed=False, detail="; ".join(error.problems)))

    metrics, metric_problems = _final_metrics(training)
    reasons.extend(metric_problems)
    objective_value = metrics.get(objective_metric)
    if objective_value is None:
        reported = (best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value")
        if isinstance(reported, (int, float)) and not isinstance(reported, bool) and math.isfinite(reported):
            objective_value = float(reported)
            metrics[objective_metric] = objective_value
        else:
            reasons.append(f"objective metric {objective_metric} is missing from the best training job's final metrics")

    thresholds = catalog.thresholds
    accuracy = metrics.get(thresholds.metric)
    if accuracy is None:
        reasons.append(f"accuracy metric {thresholds.metric} is missing from the best training job's final metrics")
    else:
        passed = meets_production_threshold(accuracy, thresholds.pass_)
        checks.append(Check(name="accuracy_threshold", passed=passed, value=accuracy, threshold=thresholds.pass_))
        if not passed:
            reasons.append(f"{thresholds.metric} {accuracy:.4f} is below the production threshold {thresholds.pass_}")
        if low_accuracy_warning(accuracy, thresholds.warn):
            warnings.append(f"low accuracy: {thresholds.metric} {accuracy:.4f} is below {thresholds.warn}")

    champion, champion_problem = read_champion(s3, bucket, catalog)
    if champion_problem:
        reasons.append(champion_problem)
    if champion is not None and objective_value is not None:
        if champion.objective_value is None:
            checks.append(Check(name="beats_champion", passed=True, detail="champion has no objective value on record"))
        else:
            gain = objective_gain(objective_value, champion.objective_value, objective_type)
            beats = gain >= thresholds.min_gain_over_champion and gain > 0
            checks.append(
                Check(
                    name="beats_champion",
                    passed=beats,
                    value=round(gain, 10),
                    threshold=thresholds.min_gain_over_champion,
                    detail=f"{objective_metric} {objective_value} vs champion {champion.objective_value} "
                    f"({objective_type})",
                )
            )
            if not beats:
                reasons.append(
                    f"challenger {objective_metric} {objective_value} does not beat champion {champion.release_id} "
                    f"({champion.objective_value}) by the required {thresholds.min_gain_over_champion} "
                    f"({objective_type}); gain {gain:.6f}"
                )

    candidate = Candidate(
        tuning_job_name=tuning_job_name,
        tuning_job_arn=tuning.get("HyperParameterTuningJobArn", ""),
        training_job_name=training_name,
        training_job_arn=training["TrainingJobArn"],  # required in DescribeTrainingJob's answer
        model_data_url=(training.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
        training_image=(training.get("AlgorithmSpecification") or {}).get("TrainingImage"),
        objective_metric=objective_metric,
        objective_type=objective_type,
        objective_value=objective_value,
        hyperparameters=hyperparameters,
        metrics=metrics,
    )
    return Validation(
        verdict="REJECTED" if reasons else "PASSED",
        reasons=reasons,
        warnings=warnings,
        checks=checks,
        candidate=candidate,
        champion=champion,
        approval_timeout_seconds=int(catalog.approval.timeout_hours * 3600),
        training_wait_seconds=catalog.training.max_runtime_seconds + CALLBACK_MARGIN_SECONDS,
        comparison_wait_seconds=(catalog.comparison.max_runtime_seconds if catalog.comparison is not None else 0)
        + CALLBACK_MARGIN_SECONDS,
        data_quality_wait_seconds=(catalog.data_quality.max_runtime_seconds if catalog.data_quality else 0)
        + CALLBACK_MARGIN_SECONDS,
    )
