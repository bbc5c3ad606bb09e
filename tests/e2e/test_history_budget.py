"""The synth-time history budget bounds what a real execution records (a loose check that the counting is sane)."""

from __future__ import annotations

from local.runtime import LocalRuntime
from promotion.contract.catalog import ModelCatalog
from stacks.history import worst_case
from tests.e2e.conftest import event


def test_a_full_promotion_records_fewer_events_than_its_worst_case(
    runtime: LocalRuntime, catalog: ModelCatalog
) -> None:
    result = runtime.run(event(), seed=True)
    assert result.outcome == "PROMOTED", result.cause
    assert result.execution_arn is not None
    recorded = len(runtime.history(result.execution_arn))
    budget = worst_case(catalog)
    # The rollout's looks alone (every stage, every look): what this run had to do at least.
    assert 100 < recorded < budget.total
    assert budget.phases["rollout looks"][0] < budget.total
