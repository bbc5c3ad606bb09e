"""Launch a SageMaker Automatic Model Tuning job for a catalog model, with the ``sagemaker`` SDK 3.x.

The job is what the promotion flow waits for: its ranges, objective and training settings come from the model
catalog, its metric definitions read what ``jobs/training/train.py`` prints, and it carries the tag
``promotion:model=<id>`` that makes the product's EventBridge rule start a promotion when it completes.

    python -m promotion_toolkit.launcher fraud-detection --role-arn ARN [--strategy Bayesian|Random|Grid|Hyperband]
        [--max-jobs 20] [--max-parallel-jobs 2] [--include eta --include max_depth] [--static num_round=200]
        [--scaling eta=Logarithmic] [--image-uri URI] [--dry-run]

with ``PYTHONPATH=toolkit:jobs:layers/promotion/python`` from the repository root (the toolkit, the jobs' library
and the domain package).

The training jobs run the production pipeline's image with its metric definitions (promotion.contract.job_image): for a
catalog with ``image: project`` that is the stack's job image, whose URI is the stack output ``JobImageUri``.

``--dry-run`` (and :func:`plan_tuning_job`) runs the same SDK code against a boto3 session whose calls are answered
in process, and prints the CreateHyperParameterTuningJob request the SDK would send: no AWS account is needed.
A real launch needs credentials and ``AWS_DEFAULT_REGION`` (the SDK's ``sagemaker.serve``/``mlops`` modules fail
at import without a region; ``sagemaker.train.tuner`` is imported only when a job is built).

Grid search on SageMaker accepts categorical ranges only, so for ``Grid`` every numeric range becomes the same
points a local grid search uses (:meth:`promotion_toolkit.tuning.Dimension.grid`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from promotion.contract import names
from promotion.contract.catalog import ModelCatalog, load_catalog
from promotion.contract.events import MODEL_TAG  # the promotion's EventBridge rule matches tuning jobs by it
from promotion.contract.job_image import (
    MAX_TUNING_METRIC_DEFINITIONS,
    PROJECT_IMAGE,
    ImageError,
    resolve_image,
)
from promotion.contract.job_image import metric_definitions as definitions
from promotion.monitoring.retraining import tuning_output_path  # the tuning roles may write only there
from promotion_toolkit.tuning import Dimension, Scaling, SearchSpace, Value

if TYPE_CHECKING:
    import boto3

Strategy = Literal["Bayesian", "Random", "Grid", "Hyperband"]
STRATEGIES: tuple[str, ...] = ("Bayesian", "Random", "Grid", "Hyperband")
# A dry run's stand-in for the stack output JobImageUri (nothing is deployed).
DRY_RUN_IMAGE = (
    "000000000000.dkr.ecr.{region}.amazonaws.com/cdk-hnb659fds-container-assets-000000000000-{region}:dry-run"
)
_REPO = Path(__file__).resolve().parents[2]


class LaunchError(ValueError):
    """The tuning job cannot be built from these settings."""


def metric_definitions(catalog: ModelCatalog, extra: Sequence[str] = ()) -> list[dict[str, str]]:
    """The tuning job's metric definitions: the production training job's (promotion.contract.job_image), objective and
    threshold metrics first, within the tuning job's limit of 20."""
    try:
        return definitions(catalog, tuple(extra), limit=MAX_TUNING_METRIC_DEFINITIONS)
    except ImageError as error:
        raise LaunchError(str(error)) from None


def training_image(catalog: ModelCatalog, image_uri: str | None, region: str) -> str:
    """The image the tuning job's training jobs run: the production pipeline's (`project` is the stack's job image,
    whose URI is the stack output JobImageUri)."""
    if catalog.training.image == PROJECT_IMAGE and not image_uri:
        raise LaunchError(
            "the catalog trains with the project's job image: pass --image-uri (the stack output JobImageUri)"
        )
    try:
        return resolve_image(catalog.training.image, project_image_uri=image_uri, region=region)
    except ImageError as error:
        raise LaunchError(str(error)) from None


def default_output_path(catalog: ModelCatalog) -> str:
    """``s3://<the catalog's models bucket>/tuning/``: tuning artifacts beside, never inside, production's prefix
    (drift's retraining writes there too: promotion.monitoring.retraining)."""
    return tuning_output_path(catalog)


def tuning_job_name(model_id: str, now: datetime | None = None) -> str:
    """``<model id>-<yymmdd-HHMMSS>``, cut to SageMaker's 32 characters (promotion.contract.names.tuning_job_name)."""
    return names.tuning_job_name(model_id, now or datetime.now(UTC))


def _text(value: Value) -> str:
    """A hyperparameter as SageMaker passes it: a string (booleans lower-case, as the built-in algorithms read)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parameter_ranges(space: SearchSpace, strategy: Strategy, *, grid_points: int = 3) -> dict[str, Any]:
    """SDK parameter ranges (Integer / Continuous / Categorical) for the space's dimensions."""
    from sagemaker.core.parameter import (  # type: ignore[import-untyped]
        CategoricalParameter,
        ContinuousParameter,
        IntegerParameter,
    )

    ranges: dict[str, Any] = {}
    for name, dimension in space.dimensions.items():
        if dimension.kind == "categorical" or strategy == "Grid":
            ranges[name] = CategoricalParameter([_text(value) for value in dimension.grid(grid_points)])
        elif dimension.kind == "int":
            low, high = _int_bounds(dimension)
            ranges[name] = IntegerParameter(low, high, scaling_type=dimension.scaling)
        else:
            low_f, high_f = dimension.bounds
            ranges[name] = ContinuousParameter(low_f, high_f, scaling_type=dimension.scaling)
    return ranges


def _int_bounds(dimension: Dimension) -> tuple[int, int]:
    low, high = dimension.bounds
    return int(low), int(high)


@dataclass(frozen=True)
class TuningJobSettings:
    """Everything a launch needs besides the catalog; defaults suit a first Bayesian search."""

    role_arn: str
    strategy: Strategy = "Bayesian"
    max_jobs: int | None = 20
    max_parallel_jobs: int = 2
    include: tuple[str, ...] | None = None
    static: Mapping[str, Value] | None = None
    scaling: Mapping[str, Scaling] | None = None
    grid_points: int = 3
    output_path: str | None = None
    job_name: str | None = None
    random_seed: int | None = None
    early_stopping: Literal["Off", "Auto"] = "Off"
    hyperband_min_resource: int | None = None
    hyperband_max_resource: int | None = None
    extra_metrics: tuple[str, ...] = ()
    tags: Mapping[str, str] | None = None
    image_uri: str | None = None  # the stack output JobImageUri, for a catalog with `image: project`

    def check(self) -> None:
        if self.strategy not in STRATEGIES:
            raise LaunchError(f"strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/.+", self.role_arn):
            raise LaunchError(f"role_arn {self.role_arn!r} is not an IAM role ARN")
        if self.strategy != "Grid" and (self.max_jobs is None or self.max_jobs < 1):
            raise LaunchError(f"{self.strategy} needs max_jobs >= 1")
        if self.max_parallel_jobs < 1:
            raise LaunchError("max_parallel_jobs must be at least 1")
        if self.strategy != "Hyperband" and (self.hyperband_min_resource or self.hyperband_max_resource):
            raise LaunchError("hyperband_min_resource/max_resource apply to the Hyperband strategy only")
        if MODEL_TAG in (self.tags or {}):
            raise LaunchError(f"the {MODEL_TAG} tag is set from the catalog, not by hand")


def build_tuner(catalog: ModelCatalog, settings: TuningJobSettings, boto_session: boto3.Session) -> Any:
    """A ``sagemaker.train.tuner.HyperparameterTuner`` for the catalog model (nothing is sent until ``tune``)."""
    settings.check()
    from sagemaker.core.helper.session_helper import Session  # type: ignore[import-untyped]
    from sagemaker.core.shapes import (  # type: ignore[import-untyped]
        HyperbandStrategyConfig,
        HyperParameterTuningJobStrategyConfig,
    )
    from sagemaker.core.training.configs import (  # type: ignore[import-untyped]
        Compute,
        OutputDataConfig,
        StoppingCondition,
    )
    from sagemaker.train.model_trainer import ModelTrainer  # type: ignore[import-untyped]
    from sagemaker.train.tuner import HyperparameterTuner  # type: ignore[import-untyped]

    space = SearchSpace.from_catalog(
        catalog, include=settings.include, static=settings.static, scaling=settings.scaling
    )
    training = catalog.training
    trainer = ModelTrainer(
        training_image=training_image(catalog, settings.image_uri, str(boto_session.region_name)),
        role=settings.role_arn,
        sagemaker_session=Session(boto_session=boto_session),
        base_job_name=catalog.id,
        compute=Compute(
            instance_type=training.instance_type,
            instance_count=training.instance_count,
            volume_size_in_gb=training.volume_gb,
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=training.max_runtime_seconds),
        output_data_config=OutputDataConfig(s3_output_path=settings.output_path or default_output_path(catalog)),
        hyperparameters={name: _text(value) for name, value in space.static.items()},
    )
    strategy_config = None
    if settings.strategy == "Hyperband" and (settings.hyperband_min_resource or settings.hyperband_max_resource):
        strategy_config = HyperParameterTuningJobStrategyConfig(
            hyperband_strategy_config=HyperbandStrategyConfig(
                min_resource=settings.hyperband_min_resource, max_resource=settings.hyperband_max_resource
            )
        )
    tags = [{"Key": MODEL_TAG, "Value": catalog.id}]
    tags += [{"Key": key, "Value": value} for key, value in sorted((settings.tags or {}).items())]
    return HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name=catalog.objective.metric,
        objective_type=catalog.objective.type,
        hyperparameter_ranges=parameter_ranges(space, settings.strategy, grid_points=settings.grid_points),
        metric_definitions=metric_definitions(catalog, settings.extra_metrics),
        strategy=settings.strategy,
        strategy_config=strategy_config,
        max_jobs=None if settings.strategy == "Grid" else settings.max_jobs,
        max_parallel_jobs=settings.max_parallel_jobs,
        early_stopping_type=settings.early_stopping,
        random_seed=settings.random_seed,
        tags=tags,
        base_tuning_job_name=catalog.id,
    )


def training_inputs(catalog: ModelCatalog) -> list[Any]:
    """The ``train`` and ``validation`` channels of the catalog, as CSV (built-in XGBoost's ``text/csv``)."""
    from sagemaker.core.training.configs import InputData

    return [
        InputData(channel_name="train", data_source=catalog.training.train_data, content_type="text/csv"),
        InputData(channel_name="validation", data_source=catalog.training.validation_data, content_type="text/csv"),
    ]


@dataclass(frozen=True)
class LaunchedJob:
    name: str
    arn: str


def launch_tuning_job(
    catalog: ModelCatalog, settings: TuningJobSettings, boto_session: boto3.Session | None = None, *, wait: bool = False
) -> LaunchedJob:
    """Create the tuning job (``CreateHyperParameterTuningJob``) and return its name and ARN.

    ``boto_session`` defaults to a session on the standard credential chain and ``AWS_DEFAULT_REGION``.
    """
    if boto_session is None:
        import boto3

        if not (os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")):
            raise LaunchError("set AWS_DEFAULT_REGION: the sagemaker SDK needs a region")
        boto_session = boto3.Session()
    tuner = build_tuner(catalog, settings, boto_session)
    name = settings.job_name or tuning_job_name(catalog.id)
    tuner.tune(inputs=training_inputs(catalog), job_name=name, wait=wait)
    job = tuner.latest_tuning_job
    return LaunchedJob(name=str(job.hyper_parameter_tuning_job_name), arn=str(job.hyper_parameter_tuning_job_arn))


# ------------------------------------------------------------------------------------------------- dry run


class DryRunError(RuntimeError):
    """The SDK tried to call AWS for something a dry run does not answer."""


@contextlib.contextmanager
def _role_validation_off() -> Iterator[None]:
    # The SDK checks the role with iam:SimulatePrincipalPolicy unless this documented switch is off; a dry run
    # has no IAM to ask.
    previous = os.environ.get("SAGEMAKER_VALIDATE_ROLE")
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SAGEMAKER_VALIDATE_ROLE", None)
        else:
            os.environ["SAGEMAKER_VALIDATE_ROLE"] = previous


def _describe_answer(request: Mapping[str, Any], region: str) -> dict[str, Any]:
    """What DescribeHyperParameterTuningJob would answer right after the create (the SDK reads it back)."""
    name = request["HyperParameterTuningJobName"]
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": f"arn:aws:sagemaker:{region}:000000000000:hyper-parameter-tuning-job/{name}",
        "HyperParameterTuningJobConfig": request["HyperParameterTuningJobConfig"],
        "TrainingJobDefinition": request.get("TrainingJobDefinition"),
        "HyperParameterTuningJobStatus": "InProgress",
        "CreationTime": datetime.now(UTC),
        "TrainingJobStatusCounters": {},
        "ObjectiveStatusCounters": {},
    }


def offline_session(region: str = "us-east-1") -> tuple[boto3.Session, list[dict[str, Any]]]:
    """A boto3 session that never reaches AWS: CreateHyperParameterTuningJob requests are recorded in the returned
    list and answered, DescribeHyperParameterTuningJob answers from the recorded request, anything else raises."""
    import boto3
    from botocore.awsrequest import AWSResponse

    session = boto3.Session(region_name=region, aws_access_key_id="dry-run", aws_secret_access_key="dry-run")
    requests: list[dict[str, Any]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "CreateHyperParameterTuningJob":
            requests.append(copy.deepcopy(params))

    def answer(model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        ok = AWSResponse("https://dry-run.invalid", 200, {}, None)
        if model.name == "CreateHyperParameterTuningJob" and requests:
            return ok, {
                "HyperParameterTuningJobArn": _describe_answer(requests[-1], region)["HyperParameterTuningJobArn"]
            }
        if model.name == "DescribeHyperParameterTuningJob" and requests:
            return ok, _describe_answer(requests[-1], region)
        raise DryRunError(f"a dry run does not answer {model.service_model.service_name}:{model.name}")

    session.events.register("provide-client-params.sagemaker.CreateHyperParameterTuningJob", record)
    session.events.register("before-call", answer)
    return session, requests


def plan_tuning_job(catalog: ModelCatalog, settings: TuningJobSettings, region: str = "us-east-1") -> dict[str, Any]:
    """The CreateHyperParameterTuningJob request a launch would send, built by the SDK without reaching AWS."""
    session, requests = offline_session(region)
    if settings.image_uri is None:  # nothing is deployed for a dry run: a stand-in of the stack's image URI
        settings = dataclasses.replace(settings, image_uri=DRY_RUN_IMAGE.format(region=region))
    with _role_validation_off():
        launch_tuning_job(catalog, settings, session)
    if len(requests) != 1:
        raise DryRunError(f"expected one CreateHyperParameterTuningJob request, the SDK sent {len(requests)}")
    return requests[0]


# ----------------------------------------------------------------------------------------------------- CLI


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise LaunchError(f"{what} {item!r} is not NAME=VALUE")
        pairs[key] = value
    return pairs


def _typed_static(catalog: ModelCatalog, raw: Mapping[str, str]) -> dict[str, Value]:
    typed: dict[str, Value] = {}
    for name, text in raw.items():
        spec = catalog.hyperparameters.get(name)
        kind = spec.type if spec is not None else "str"
        typed[name] = int(text) if kind == "int" else float(text) if kind == "float" else text
    return typed


def _load_catalog(model_id: str, models_dir: Path) -> ModelCatalog:
    return load_catalog(models_dir / f"{model_id}.yaml")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m promotion_toolkit.launcher", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="model id: models/<id>.yaml")
    parser.add_argument("--role-arn", required=True, help="execution role of the training jobs")
    parser.add_argument("--image-uri", help="the job image: stack output JobImageUri (catalogs with image: project)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="Bayesian")
    parser.add_argument("--max-jobs", type=int, default=20)
    parser.add_argument("--max-parallel-jobs", type=int, default=2)
    parser.add_argument("--include", action="append", help="a hyperparameter to tune (repeat); default: numeric ones")
    parser.add_argument("--static", action="append", default=[], help="NAME=VALUE kept fixed (repeat)")
    parser.add_argument("--scaling", action="append", default=[], help="NAME=Auto|Linear|Logarithmic (repeat)")
    parser.add_argument("--grid-points", type=int, default=3)
    parser.add_argument("--output-path", help="S3 prefix of the trial models (default: <models bucket>/tuning/)")
    parser.add_argument("--job-name")
    parser.add_argument("--random-seed", type=int)
    parser.add_argument("--models-dir", type=Path, default=_REPO / "models")
    parser.add_argument("--dry-run", action="store_true", help="print the request instead of sending it")
    args = parser.parse_args(argv)
    try:
        catalog = _load_catalog(args.model, args.models_dir)
        scaling = _pairs(args.scaling, "--scaling")
        bad = [value for value in scaling.values() if value not in ("Auto", "Linear", "Logarithmic")]
        if bad:
            raise LaunchError(f"scaling must be Auto, Linear or Logarithmic, got {', '.join(bad)}")
        settings = TuningJobSettings(
            role_arn=args.role_arn,
            strategy=args.strategy,
            max_jobs=args.max_jobs,
            max_parallel_jobs=args.max_parallel_jobs,
            include=tuple(args.include) if args.include else None,
            static=_typed_static(catalog, _pairs(args.static, "--static")),
            scaling=cast(dict[str, Scaling], scaling),
            grid_points=args.grid_points,
            output_path=args.output_path,
            job_name=args.job_name,
            random_seed=args.random_seed,
            image_uri=args.image_uri,
        )
        if args.dry_run:
            print(json.dumps(plan_tuning_job(catalog, settings), indent=2, default=str))
        else:
            job = launch_tuning_job(catalog, settings)
            print(json.dumps({"name": job.name, "arn": job.arn}))
    except Exception as error:  # one line for a person at a terminal; the SDK's traceback says little more
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 2 if isinstance(error, (LaunchError, ValueError)) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
