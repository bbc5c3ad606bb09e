"""Which image a model's SageMaker jobs and endpoint run, and the metric definitions its training jobs carry.

`project`, the catalogs' default, is the stack's own job image: jobs/Dockerfile, built by `cdk deploy` and pushed to
the CDK bootstrap's ECR repository of the deployment's region (its URI reaches the Lambdas as JOB_IMAGE_URI). It
runs jobs/training/train.py (`train`), jobs/comparison/compare.py and jobs/serving/serve.py (`serve`) with the Python
and library versions the tests run with. Any other value is an ECR image URI with `{region}` in place of the region:
SageMaker pulls images only from the region of the job or endpoint, and the stack deploys to any region.

SageMaker reads a custom image's metrics from the job's log only through the training job's MetricDefinitions
(Name, Regex): a metric without a definition never exists. train.py prints XGBoost's per-round evaluation metrics in
the built-in algorithm's format (`[17]#011train-auc:0.98#011validation-auc:0.97`, "#011" being the tab as CloudWatch
shows it) and the final validation metrics once at the end (`validation-accuracy:0.984700`); the definitions below
read exactly those lines, for the production training job and for the data scientists' tuning job alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promotion.contract.catalog import ModelCatalog

PROJECT_IMAGE = "project"
REGION_PLACEHOLDER = "{region}"
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+|\{region\})\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*)(?::(?P<tag>[A-Za-z0-9_.-]{1,128})|@(?P<digest>sha256:[0-9a-f]{64}))$"
)
# XGBoost's evaluation metrics train.py logs every round (auc always, the rest when eval_metric asks for them).
PER_ROUND_METRICS = frozenset({"auc", "aucpr", "logloss", "error", "rmse", "mae", "map", "ndcg"})
# The final validation metrics train.py prints once; equal to promotion_ml.evaluation.METRIC_NAMES, which the Lambda
# layer cannot import (tests/toolkit/test_launcher.py holds them equal).
FINAL_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")
# What the project image emits whatever the hyperparameters: train-auc/validation-auc each round, and the finals.
ALWAYS_EMITTED = ("train:auc", "validation:auc", *(f"validation:{name}" for name in FINAL_METRICS))

MAX_TRAINING_METRIC_DEFINITIONS = 40  # CreateTrainingJob's limit
MAX_TUNING_METRIC_DEFINITIONS = 20  # CreateHyperParameterTuningJob's limit
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def project_image_reports(metric: str) -> bool:
    """Whether train.py can report `metric`: always for ALWAYS_EMITTED; a per-round metric other than auc only when
    the job's `eval_metric` hyperparameter asks for it (a trial whose eval_metric leaves it out reports none)."""
    channel, _, name = metric.partition(":")
    return metric in ALWAYS_EMITTED or (channel in ("train", "validation") and name in PER_ROUND_METRICS)


class ImageError(ValueError):
    """An image setting cannot be resolved to an image SageMaker can pull in this region."""


def check_image(value: str) -> str:
    """`project`, or an ECR image URI whose region is `{region}`; the reason otherwise."""
    if value == PROJECT_IMAGE:
        return value
    match = ECR_IMAGE.match(value)
    if match is None:
        raise ImageError(f"{value!r} is neither {PROJECT_IMAGE!r} nor an ECR image URI (<account>.dkr.ecr....)")
    if match["region"] != REGION_PLACEHOLDER:
        raise ImageError(
            f"{value!r} names the region {match['region']}; write {REGION_PLACEHOLDER} instead: SageMaker pulls "
            "images only from the region of the job or endpoint, and the stack deploys to any region"
        )
    return value


def resolve_image(value: str, *, project_image_uri: str | None, region: str) -> str:
    """The image URI SageMaker gets for a catalog's image setting in `region`."""
    if value == PROJECT_IMAGE:
        if not project_image_uri:
            raise ImageError("the catalog uses the project's job image, but JOB_IMAGE_URI is not set")
        return project_image_uri
    return check_image(value).replace(REGION_PLACEHOLDER, region)


@dataclass(frozen=True)
class Images:
    """Where the images of this deployment are: the project image's URI and the region `{region}` stands for."""

    project_image_uri: str | None
    region: str

    def resolve(self, value: str) -> str:
        return resolve_image(value, project_image_uri=self.project_image_uri, region=self.region)


def metric_regex(metric_name: str) -> str:
    """The regex that reads `channel:metric` (e.g. `validation:auc`) from train.py's log lines."""
    channel, separator, metric = metric_name.partition(":")
    if not separator or not re.fullmatch(r"[a-z_]+", channel) or not re.fullmatch(r"[a-z_@0-9]+", metric):
        raise ImageError(f"metric {metric_name!r} is not of the form channel:metric")
    token = f"{channel}-{metric}"  # both parts checked above: nothing to escape
    if metric in PER_ROUND_METRICS:
        return rf".*\[[0-9]+\].*#011{token}:{_NUMBER}.*"
    return rf".*{token}:{_NUMBER}.*"


def metric_names(catalog: ModelCatalog, extra: tuple[str, ...] = ()) -> list[str]:
    """The metrics a training job of the model reports: the objective and threshold metrics first."""
    declared = catalog.training.metric_definitions
    names = [definition.name for definition in declared] if declared is not None else list(ALWAYS_EMITTED)
    return list(dict.fromkeys([catalog.objective.metric, catalog.thresholds.metric, *names, *extra]))


def metric_definitions(
    catalog: ModelCatalog, extra: tuple[str, ...] = (), limit: int = MAX_TRAINING_METRIC_DEFINITIONS
) -> list[dict[str, str]]:
    """MetricDefinitions (Name, Regex) for the model's training and tuning jobs: the catalog's own when it declares
    them (an image other than the project's), else the project image's, objective and threshold metrics first."""
    declared = {d.name: d.regex for d in catalog.training.metric_definitions or []}
    names = metric_names(catalog, extra)[:limit]
    return [{"Name": name, "Regex": declared.get(name) or metric_regex(name)} for name in names]
