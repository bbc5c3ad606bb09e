"""Step Functions' 25,000-event history limit, checked at synth against each catalog's worst case (issue 14)."""

from __future__ import annotations

import pytest

from promotion.contract.catalog import ModelCatalog
from promotion.core.errors import CatalogError
from stacks.history import HISTORY_LIMIT, check_history_budget, worst_case


def test_the_shipped_catalog_fits_with_room(catalog: ModelCatalog) -> None:
    totals = check_history_budget({catalog.id: catalog})
    assert 5_000 < totals[catalog.id] < HISTORY_LIMIT
    # The jobs are waited for by callback: one task visit each, however long the catalog lets them run.
    phases = worst_case(catalog).phases
    assert phases["data quality, training and comparison"][0] == 3 * 6 + 2
    longest = catalog.model_copy(
        update={
            "training": catalog.training.model_copy(update={"max_runtime_seconds": 28 * 24 * 3600}),
        }
    )
    assert worst_case(longest).total == worst_case(catalog).total


@pytest.mark.parametrize(
    ("section", "changes", "field"),
    [
        ("rollout", {"bake_minutes": 7 * 24 * 60, "look_minutes": 5}, "rollout.bake_minutes"),
    ],
)
def test_a_catalog_whose_worst_case_overflows_fails_naming_the_field(
    catalog: ModelCatalog, section: str, changes: dict[str, float], field: str
) -> None:
    settings = getattr(catalog, section).model_copy(update=changes)
    heavy = catalog.model_copy(update={section: settings})
    with pytest.raises(CatalogError, match=rf"model fraud-detection: .* over Step Functions' limit of 25,000.*{field}"):
        check_history_budget({heavy.id: heavy})
