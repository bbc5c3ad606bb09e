"""Names and keys the product writes: release ids, archive and report keys, and every SageMaker resource name
(training and comparison jobs, models, endpoint configs, variants).

One module so every step (and the local runtime, and operators' tools) agrees on where things are.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

# SageMaker's limit and pattern for job, model, endpoint config and variant names.
MAX_NAME_LENGTH = 63
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
MAX_RELEASE_ID_LENGTH = 32
HASH_LENGTH = 8
RELEASES_PREFIX = "releases/"  # each release's model artifact as deployed (promotion.rollout.artifacts)
TUNING_PREFIX = "tuning/"  # tuning jobs' trial models, in the models bucket beside (never in) production's prefix
ARCHIVE_PREFIX = "archive/"  # backups and archived configs, per model and release (never expire)
CAPTURE_PREFIX = "capture/"  # SageMaker data capture of the production endpoints, per model (promotion.monitoring)
REPORTS_PREFIX = "reports/"  # decision reports and the comparison jobs' outputs (expire per the storage rules)
# Powertools' service name and the CloudWatch namespace of the product's own metrics (the dashboard reads them).
SERVICE = "model-promotion"
METRICS_NAMESPACE = "ModelPromotion"
# Where SageMaker writes training jobs' logs (its own log group); the pipeline's summary links to it.
TRAINING_JOB_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def release_id_for(tuning_job_arn: str, event_time: datetime) -> str:
    """Deterministic release id: the same tuning job event (even delivered twice) always gets the same id."""
    moment = event_time.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256(tuning_job_arn.encode()).hexdigest()[:6]
    return f"{moment}-{digest}"


def archive_prefix(model: str, release_id: str) -> str:
    return f"{ARCHIVE_PREFIX}{model}/{release_id}/"


def backup_key(model: str, release_id: str) -> str:
    """The backup record (parameters + config metadata) taken before the release touched production."""
    return f"{archive_prefix(model, release_id)}backup.json"


def previous_config_key(model: str, release_id: str) -> str:
    """Exact bytes of the config that was in production before the release."""
    return f"{archive_prefix(model, release_id)}previous-config.yaml"


def promoted_config_key(model: str, release_id: str) -> str:
    """Archived copy of the config the release wrote."""
    return f"{archive_prefix(model, release_id)}promoted-config.yaml"


def release_artifact_key(model: str, release_id: str) -> str:
    """The release's model artifact as deployed: a copy of the training job's output, checked against the digest of
    what the comparison evaluated (promotion.rollout.artifacts)."""
    return f"{RELEASES_PREFIX}{model}/{release_id}/model.tar.gz"


def report_prefix(model: str, release_id: str) -> str:
    return f"{REPORTS_PREFIX}{model}/{release_id}/"


def job_environment(model: str, release_id: str) -> dict[str, str]:
    """What a pipeline or comparison job is told about its promotion (jobs/training/train.py and
    jobs/comparison/compare.py read these variables; the job image does not ship this layer)."""
    return {"PROMOTION_MODEL": model, "PROMOTION_RELEASE_ID": release_id}


def _job_name(model: str, release_id: str, suffix: str = "") -> str:
    """`<model>-<release id><suffix>`, within SageMaker's 63 characters (model ids are at most 32 characters and
    release ids 22): a job's name says which promotion started it, and a retried step finds its job by it."""
    name = f"{model}-{release_id}{suffix}"
    if len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"SageMaker job name {name!r} must match {NAME_PATTERN.pattern} within {MAX_NAME_LENGTH}")
    return name


def training_job_name(model: str, release_id: str) -> str:
    """The production pipeline's training job of one release."""
    return _job_name(model, release_id)


def comparison_job_name(model: str, release_id: str) -> str:
    """CompareWithChampion's processing job of one release."""
    return _job_name(model, release_id, "-cmp")


def data_quality_job_name(model: str, release_id: str) -> str:
    """CheckDataQuality's processing job of one release."""
    return _job_name(model, release_id, "-dq")


def drift_check_job_name(model: str, window_end: datetime) -> str:
    """The drift check of one model's capture window, named by the window's end hour: a retried or repeated
    schedule finds the same job instead of starting a second."""
    return f"{model}-drift-{window_end.strftime('%y%m%d%H')}"


MAX_TUNING_JOB_NAME = 32  # SageMaker's limit for tuning job names


def tuning_job_name(model_id: str, now: datetime) -> str:
    """``<model id>-<yymmdd-HHMMSS>``, cut to SageMaker's 32 characters (the model id is shortened, not the time):
    the data scientists' launcher and drift's retraining name their tuning jobs alike."""
    stamp = now.strftime("%y%m%d-%H%M%S")
    prefix = model_id[: MAX_TUNING_JOB_NAME - len(stamp) - 1].rstrip("-")
    return f"{prefix}-{stamp}"


def capture_prefix(model: str) -> str:
    """Where the model's endpoint configs tell SageMaker to write captured requests (in the config bucket)."""
    return f"{CAPTURE_PREFIX}{model}"


# Rollout resources: `<model id>-<role>-<release id>-<hash8>`, cut to fit.


def _check_part(label: str, value: str, max_length: int) -> None:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ValueError(f"{label} {value!r} must match {NAME_PATTERN.pattern}")
    if len(value) > max_length:
        raise ValueError(f"{label} {value!r} is longer than {max_length} characters")


def _resource_name(role: str, model_id: str, release_id: str) -> str:
    """`<model id>-<role>-<release id>-<hash8>`, at most 63 characters, matching SageMaker's name pattern.

    The release id is always kept whole; the model id is cut to the room left. The hash covers role, full model id
    and release id (newline-separated, a character no valid part contains), so names that the cut or an ambiguous
    dash split make look alike still differ unless 32 bits of sha256 collide.
    """
    _check_part("model id", model_id, MAX_NAME_LENGTH)
    _check_part("release id", release_id, MAX_RELEASE_ID_LENGTH)
    digest = hashlib.sha256(f"{role}\n{model_id}\n{release_id}".encode()).hexdigest()[:HASH_LENGTH]
    suffix = f"-{role}-{release_id}-{digest}"
    return model_id[: MAX_NAME_LENGTH - len(suffix)] + suffix


def challenger_variant_name(model_id: str, release_id: str) -> str:
    """Production variant that serves the release under test."""
    return _resource_name("challenger", model_id, release_id)


def champion_variant_name(model_id: str, release_id: str) -> str:
    """Production variant that serves the current release (pass the champion's release id)."""
    return _resource_name("champion", model_id, release_id)


def endpoint_config_name(model_id: str, release_id: str) -> str:
    """Endpoint config holding both variants during the rollout of `release_id`."""
    return _resource_name("config", model_id, release_id)


def final_endpoint_config_name(model_id: str, release_id: str) -> str:
    """Endpoint config holding the promoted challenger alone, once the rollout of `release_id` is done."""
    return f"{endpoint_config_name(model_id, release_id)[:55]}-final"


def shadow_endpoint_config_name(model_id: str, release_id: str) -> str:
    """Endpoint config of the shadow stage: the champion alone in production, the challenger as its shadow."""
    return f"{endpoint_config_name(model_id, release_id)[:54]}-shadow"


def model_name(model_id: str, release_id: str) -> str:
    """SageMaker Model (container + artefact) of one release."""
    return _resource_name("model", model_id, release_id)


def name_pattern(role: str, model_id: str) -> str:
    """An IAM resource-name pattern that every name `role` ("model", "config") gets for `model_id`, whatever the
    release id, matches (and the final endpoint configs): the model id as far as the longest release id leaves it
    uncut, then `-<role>-`. The product's grants to create and delete models and endpoint configs name these, so
    they reach no other SageMaker model or endpoint config in the account."""
    uncut = MAX_NAME_LENGTH - len(f"-{role}-") - MAX_RELEASE_ID_LENGTH - 1 - HASH_LENGTH
    kept = model_id[:uncut]
    return f"{model_id}-{role}-*" if kept == model_id else f"{kept}*-{role}-*"
