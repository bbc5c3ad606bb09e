"""What a promotion of a tuning job would do, before anyone starts one (`promote plan`): the validation verdict as
ValidateCandidate would give it, the hyperparameters against production, the rollout schedule with its bake
times, how long each phase may take, and what the SageMaker compute it starts may cost. Only reads: the tuning and
training jobs, the production parameters and config."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from promotion.contract.catalog import ModelCatalog
from promotion.contract.state import Validation
from promotion.intake.candidate import validate_candidate
from promotion.production.read import read_parameters
from promotion.result.cost import PRICE_TABLE_DATE, SAGEMAKER_HOURLY


class _Plan(BaseModel):
    model_config = ConfigDict(frozen=True)


class ParameterChange(_Plan):
    """One hyperparameter: its production value, the candidate's, and whether the promotion changes it."""

    name: str
    production: str | None
    candidate: str | None

    @property
    def changed(self) -> bool:
        return self.production != self.candidate


class StagePlan(_Plan):
    """One rollout stage: the challenger's share, and the shortest and longest it may take (minutes)."""

    stage: int
    percent: float
    looks: int
    shortest_minutes: float
    longest_minutes: float


class Phase(_Plan):
    """How long one phase of the promotion may take (hours)."""

    name: str
    shortest_hours: float
    longest_hours: float
    note: str = ""


class ComputeCost(_Plan):
    """SageMaker compute the promotion starts, priced at its longest (on demand, PRICE_TABLE_DATE's prices)."""

    what: str
    instance_type: str
    instance_count: int
    shortest_hours: float
    longest_hours: float
    hourly_usd: float | None

    @property
    def shortest_usd(self) -> float | None:
        return None if self.hourly_usd is None else self.hourly_usd * self.instance_count * self.shortest_hours

    @property
    def longest_usd(self) -> float | None:
        return None if self.hourly_usd is None else self.hourly_usd * self.instance_count * self.longest_hours


class PromotionPlan(_Plan):
    model: str
    tuning_job: str
    validation: Validation
    parameters: list[ParameterChange]
    stages: list[StagePlan]
    phases: list[Phase]
    costs: list[ComputeCost]
    price_table_date: str = PRICE_TABLE_DATE

    @property
    def would_start(self) -> bool:
        return self.validation.verdict == "PASSED"

    def total_usd(self) -> tuple[float, float]:
        """(shortest, longest) priced compute; instance types without a recorded price count as 0 (and say so)."""
        return (
            sum(cost.shortest_usd or 0.0 for cost in self.costs),
            sum(cost.longest_usd or 0.0 for cost in self.costs),
        )

    def summary(self) -> dict[str, Any]:
        shortest, longest = self.total_usd()
        return {
            **self.model_dump(mode="json"),
            "parameters": [{**one.model_dump(), "changed": one.changed} for one in self.parameters],
            "costs": [
                {**one.model_dump(), "shortest_usd": one.shortest_usd, "longest_usd": one.longest_usd}
                for one in self.costs
            ],
            "total_usd": {"shortest": round(shortest, 4), "longest": round(longest, 4)},
            "would_start": self.would_start,
        }


def rollout_schedule(catalog: ModelCatalog) -> list[StagePlan]:
    """Each stage ends at the first look that decides: at the earliest the first look after min_bake_minutes, at the
    latest the last look of its extended bakes (plus a hold for an operator when on_inconclusive is hold). A shadow
    stage, when the catalog has one, comes first as stage 0 (0 % served)."""
    settings = catalog.rollout
    if settings is None:
        return []
    looks = max(1, round(settings.bake_minutes / settings.look_minutes))
    first_pass = max(1, math.ceil(settings.shortest_bake_minutes / settings.look_minutes)) * settings.look_minutes
    longest = looks * (1 + settings.max_bake_extensions) * settings.look_minutes
    if settings.on_inconclusive == "hold":
        longest += settings.hold_hours * 60
    live = [(index + 1, percent) for index, percent in enumerate(settings.stages)]
    shadow = [(0, 0.0)] if settings.shadow is not None else []  # the shadow stage serves nobody, judged like stage 1
    return [
        StagePlan(
            stage=stage,
            percent=percent,
            looks=looks * (1 + settings.max_bake_extensions),
            shortest_minutes=first_pass,
            longest_minutes=longest,
        )
        for stage, percent in [*shadow, *live]
    ]


def _compute_cost(
    what: str, kind: str, instance_type: str, instance_count: int, hours: tuple[float, float]
) -> ComputeCost:
    """One piece of compute, priced by SAGEMAKER_HOURLY[kind] ("training", "processing" or "hosting")."""
    return ComputeCost(
        what=what,
        instance_type=instance_type,
        instance_count=instance_count,
        shortest_hours=hours[0],
        longest_hours=hours[1],
        hourly_usd=SAGEMAKER_HOURLY[kind].get(instance_type),
    )


def plan_promotion(
    sagemaker: Any, s3: Any, ssm: Any, bucket: str, catalog: ModelCatalog, tuning_job_name: str
) -> PromotionPlan:
    """The plan of a promotion of `tuning_job_name` for `catalog`'s model, from reads only."""
    validation = validate_candidate(sagemaker, s3, bucket, catalog, tuning_job_name)
    production = {
        path.removeprefix(f"{catalog.parameter_store.prefix}/"): stored.value
        for path, stored in read_parameters(ssm, catalog).items()
    }
    candidate = (
        {name: str(value) for name, value in validation.candidate.hyperparameters.items()}
        if validation.candidate
        else {}
    )
    parameters = [
        ParameterChange(name=name, production=production.get(name), candidate=candidate.get(name))
        for name in sorted(set(production) | set(candidate))
    ]
    stages = rollout_schedule(catalog)
    rollout_shortest = sum(one.shortest_minutes for one in stages) / 60
    rollout_longest = sum(one.longest_minutes for one in stages) / 60
    training_hours = catalog.training.max_runtime_seconds / 3600
    comparison_hours = catalog.comparison.max_runtime_seconds / 3600 if catalog.comparison else 0.0
    phases = [
        Phase(
            name="approval",
            shortest_hours=0,
            longest_hours=catalog.approval.timeout_hours,
            note="until an approver decides; expires after approval.timeout_hours",
        ),
        Phase(name="training", shortest_hours=0, longest_hours=training_hours, note="training.max_runtime_seconds"),
        Phase(
            name="comparison",
            shortest_hours=0,
            longest_hours=comparison_hours,
            note="comparison.max_runtime_seconds" if catalog.comparison else "no comparison settings: skipped",
        ),
        Phase(
            name="rollout",
            shortest_hours=rollout_shortest,
            longest_hours=rollout_longest,
            note=f"{len(stages)} stages" if stages else "no rollout settings: skipped",
        ),
    ]
    costs = [
        _compute_cost(
            "production training job",
            "training",
            catalog.training.instance_type,
            catalog.training.instance_count,
            (0, training_hours),
        )
    ]
    if catalog.comparison is not None:
        costs.append(
            _compute_cost("comparison job", "processing", catalog.comparison.instance_type, 1, (0, comparison_hours))
        )
    if catalog.rollout is not None:
        costs.append(
            _compute_cost(
                "the challenger's variant beside the champion, during the rollout",
                "hosting",
                catalog.rollout.instance_type,
                catalog.rollout.initial_instance_count,
                (rollout_shortest, rollout_longest),
            )
        )
    return PromotionPlan(
        model=catalog.id,
        tuning_job=tuning_job_name,
        validation=validation,
        parameters=parameters,
        stages=stages,
        phases=phases,
        costs=costs,
    )
