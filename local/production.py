"""Production as the local runtime sees it: a seeded champion before a run, and snapshots before and after.

The champion is written the way production holds it (one SSM parameter per hyperparameter under the catalog's
prefix, and a schema-valid `production-model-config.yaml` in the config bucket), built with the domain package's
own config model so a run starts from a production the handlers accept. The domain package is imported lazily:
the local runtime finds it on the promotion layer's path once started.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from local.errors import UsageError

if TYPE_CHECKING:
    from promotion.contract.catalog import HyperparameterSpec, ModelCatalog


class ProductionSnapshot(BaseModel):
    """What production holds for one model: parameters {path: value}, config text (None: absent), and the endpoint's
    config and served weights (None / {}: no endpoint)."""

    model_config = ConfigDict(frozen=True)

    parameters: dict[str, str]
    config: str | None
    endpoint_config: str | None = None
    endpoint_weights: dict[str, float] = {}


class Champion(BaseModel):
    """The release seeded as current production."""

    model_config = ConfigDict(frozen=True)

    release_id: str
    parameters: dict[str, str]
    config_key: str
    config: str


def model_of(event: dict[str, Any]) -> str | None:
    """The model id an event is for: the tuning job's `promotion:model` tag, or an approval/rollback's `model`."""
    from promotion.contract.events import MODEL_TAG  # the `local` package put the layer on sys.path

    detail = event.get("detail") or {}
    tags = detail.get("Tags") or {}
    model = tags.get(MODEL_TAG) if isinstance(tags, dict) else None
    return model or detail.get("model")


def load_model_catalog(models_dir: Path, model_id: str) -> ModelCatalog:
    """The catalog `models/<id>.yaml`, validated by the domain package."""
    from promotion.contract.catalog import load_catalog
    from promotion.core.errors import CatalogError

    try:
        return load_catalog(models_dir / f"{model_id}.yaml")
    except CatalogError as error:
        raise UsageError(f"model {model_id!r}: {error}") from error


def _older_value(spec: HyperparameterSpec) -> int | float | str | bool:
    """A plausible value of an older release: 30 % into the allowed range, or the first allowed choice."""
    if spec.choices:
        return spec.choices[0]
    if spec.type == "bool":
        return False
    low = spec.min if spec.min is not None else 0.0
    high = spec.max if spec.max is not None else low + 10
    value = low + (high - low) * 0.3
    return round(value) if spec.type == "int" else round(value, 4)


def default_performance(catalog: ModelCatalog) -> dict[str, float]:
    """Older-release metrics: good enough to be production, beaten by a good candidate."""
    objective = 0.9601 if catalog.objective.type == "Maximize" else 0.1
    return {catalog.objective.metric: objective, catalog.thresholds.metric: 0.9352}


def seed_champion(
    ssm: Any,
    s3: Any,
    bucket: str,
    catalog: ModelCatalog,
    *,
    account: str,
    region: str,
    performance: dict[str, float] | None = None,
) -> Champion:
    """Write a champion release into production: SSM parameters and the config object."""
    from promotion.contract.hyperparameters import to_parameter_value
    from promotion.contract.names import release_id_for
    from promotion.production.config import ConfigSource, ProductionConfig, render_config

    tested = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    tuning_job = f"{catalog.id}-champion"[:32]
    tuning_job_arn = f"arn:aws:sagemaker:{region}:{account}:hyper-parameter-tuning-job/{tuning_job}"
    training_job = f"{tuning_job}-001-00000000"
    hyperparameters = {name: _older_value(spec) for name, spec in catalog.hyperparameters.items()}
    release_id = release_id_for(tuning_job_arn, tested)
    config = ProductionConfig(
        model=catalog.id,
        release_id=release_id,
        algorithm=catalog.algorithm,
        hyperparameters=hyperparameters,
        performance=performance or default_performance(catalog),
        tested_date=tested,
        approved_by=catalog.approval.demo_approver or catalog.approval.approvers[0].name,
        approved_at=tested,
        source=ConfigSource(
            tuning_job_arn=tuning_job_arn,
            training_job_name=training_job,
            model_data_url=f"{catalog.training.output_path.rstrip('/')}/{training_job}/output/model.tar.gz",
        ),
        previous_release_id=None,
    )
    parameters = {catalog.parameter_path(name): to_parameter_value(value) for name, value in hyperparameters.items()}
    for path, value in parameters.items():
        ssm.put_parameter(Name=path, Value=value, Type="String", Overwrite=True)
    text = render_config(config)
    s3.put_object(Bucket=bucket, Key=catalog.config.key, Body=text.encode(), ContentType="application/yaml")
    return Champion(release_id=release_id, parameters=parameters, config_key=catalog.config.key, config=text)


def snapshot(ssm: Any, s3: Any, bucket: str, catalog: ModelCatalog) -> ProductionSnapshot:
    """Production for one model now, read with the same domain functions the handlers use."""
    from promotion.production.read import read_config, read_parameters

    parameters = {path: stored.value for path, stored in sorted(read_parameters(ssm, catalog).items())}
    body = read_config(s3, bucket, catalog.config.key).body
    return ProductionSnapshot(parameters=parameters, config=body.decode() if body is not None else None)
