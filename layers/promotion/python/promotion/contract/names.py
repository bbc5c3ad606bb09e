"""Names and keys the product writes: release ids, archive and report keys, training job names.

One module so every step (and the local runtime, and operators' tools) agrees on where things are.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

MAX_SAGEMAKER_NAME = 63
RELEASES_PREFIX = "releases/"  # each release's model artifact as deployed (promotion.rollout.artifacts)


def release_id_for(tuning_job_arn: str, event_time: datetime) -> str:
    """Deterministic release id: the same tuning job event (even delivered twice) always gets the same id."""
    moment = event_time.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256(tuning_job_arn.encode()).hexdigest()[:6]
    return f"{moment}-{digest}"


def archive_prefix(model: str, release_id: str) -> str:
    return f"archive/{model}/{release_id}/"


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
    return f"reports/{model}/{release_id}/"


def training_job_name(model: str, release_id: str) -> str:
    """`<model>-<release id>`, within SageMaker's 63 characters (model ids are at most 32 characters)."""
    name = f"{model}-{release_id}"
    if len(name) > MAX_SAGEMAKER_NAME:
        raise ValueError(f"training job name {name!r} exceeds {MAX_SAGEMAKER_NAME} characters")
    return name
