"""Step Functions keeps at most 25,000 events in a Standard execution's history; an execution that would need more
fails with `States.Runtime` wherever it is, possibly in the middle of a rollout. So the catalogs are checked at synth:
the worst case of one execution (every lock wait, every look of every stage with all its bake extensions, every poll
of a rollback's endpoint calls; the jobs and endpoint changes are one callback task each) must fit, or synth fails
naming the catalog field that drives it.

Events per state visit, as Step Functions records them: a Lambda task with the function as Resource 5 (Entered,
LambdaFunctionScheduled, Started, Succeeded, Exited); a `.waitForTaskToken` task 6 (adds TaskSubmitted); a Choice,
Wait or Pass 2. A retry adds 3 per attempt; occasional retries fit in the margin, a retry storm on every look would
not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from promotion.claim.claim import MAX_LOCK_WAITS
from promotion.contract.catalog import ModelCatalog
from promotion.core.errors import CatalogError
from promotion.production.restore import RESTORE_STEPS
from promotion.rollout.control import MAX_PAUSES
from promotion.rollout.steps import MAX_ENDPOINT_POLLS

HISTORY_LIMIT = 25_000
MARGIN = 1_000  # occasional retries of transient errors, and states the phases below do not count one by one
TASK, CALLBACK_TASK, FLOW = 5, 6, 2


@dataclass(frozen=True)
class HistoryBudget:
    """The worst case of one execution, by phase; `field` names the catalog setting behind each phase."""

    phases: dict[str, tuple[int, str]]

    @property
    def total(self) -> int:
        return sum(events for events, _ in self.phases.values()) + MARGIN


def worst_case(catalog: ModelCatalog) -> HistoryBudget:
    poll_loop = FLOW + TASK + FLOW  # Wait, Rollback, its Choice (only Rollback still polls the endpoint)
    phases: dict[str, tuple[int, str]] = {
        "lock waits": (
            (MAX_LOCK_WAITS + 1) * (TASK + FLOW) + MAX_LOCK_WAITS * FLOW,
            "MAX_LOCK_WAITS (not a catalog field)",
        ),
        "validation, approval, production writes": (
            TASK + FLOW + CALLBACK_TASK + FLOW + 4 * TASK,
            "(fixed)",
        ),
        # The jobs and the endpoint changes are waited for by callback (promotion.jobs.callbacks): one visit each,
        # however long SageMaker takes.
        "data quality, training and comparison": (3 * CALLBACK_TASK + FLOW, "(fixed)"),
        "end": (TASK + TASK + FLOW + 2, "(fixed)"),  # Rollback or RetireChampion, PublishResult, Outcome, start/end
    }
    rollout = catalog.rollout
    if rollout is not None:
        looks = math.ceil(rollout.bake_minutes / rollout.look_minutes) * (1 + rollout.max_bake_extensions)
        look = FLOW + TASK + FLOW  # Bake, EvaluateStage, StageVerdict
        stages = len(rollout.stages) + (1 if rollout.shadow is not None else 0)  # the shadow stage judges like one
        phases["rollout looks"] = (
            stages * (TASK + looks * look),
            "rollout.bake_minutes / rollout.look_minutes, rollout.max_bake_extensions, rollout.stages",
        )
        # Each hold: AwaitOperator (OperatorHoldExpired when nobody answers), the look EvaluateStage takes at the
        # answer, StageVerdict. Operators may pause MAX_PAUSES times; a stage holds once when inconclusive.
        holds = MAX_PAUSES + (len(rollout.stages) if rollout.on_inconclusive == "hold" else 0)
        phases["operator holds"] = (
            holds * (CALLBACK_TASK + FLOW + TASK + FLOW),
            "rollout.on_inconclusive, MAX_PAUSES (promotion.rollout.control)",
        )
        # DeployChallenger, every ShiftTraffic and PromoteChallenger: one callback task and EndpointStatus each;
        # Rollback waits for each of its endpoint calls (Wait, Rollback, its Choice).
        phases["endpoint changes"] = ((stages + 2) * (CALLBACK_TASK + FLOW), "rollout.stages, rollout.shadow")
        phases["rollback endpoint waits"] = (RESTORE_STEPS * (MAX_ENDPOINT_POLLS + 1) * poll_loop, "(fixed)")
    return HistoryBudget(phases)


def check_history_budget(catalogs: Mapping[str, ModelCatalog]) -> dict[str, int]:
    """Each model's worst-case history size; a CatalogError naming the field when one would exceed the limit."""
    totals = {}
    for model, catalog in sorted(catalogs.items()):
        budget = worst_case(catalog)
        if budget.total > HISTORY_LIMIT:
            tunable = {name: value for name, value in budget.phases.items() if "." in value[1]}
            phase, (events, field) = max(tunable.items(), key=lambda item: item[1][0])
            raise CatalogError(
                f"model {model}: a promotion could need {budget.total:,} execution history events, over Step "
                f"Functions' limit of {HISTORY_LIMIT:,}; the largest part is {phase} ({events:,} events), set by "
                f"{field}: lower it"
            )
        totals[model] = budget.total
    return totals
