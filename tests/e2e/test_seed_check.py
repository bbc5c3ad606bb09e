"""Seed sensitivity on the synthesized state machine: the champion in production is the challenger's own
configuration trained with another seed, so the challenger's gain is seed noise, though the holdout's interval lies
above 0. The comparison job retrains the configuration with the catalog's seeds, finds the gain inside their spread,
and the comparison ends INCONCLUSIVE: the promotion rolls back and production is as it was."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import event, runtime_with, world


def test_a_gain_inside_the_seeds_spread_is_inconclusive_and_rolls_back(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, world(), champion="twin") as runtime:
        result = runtime.run(event(), seed=True)
    comparison = result.output["comparison"]
    assert comparison["decision"] == "INCONCLUSIVE", comparison
    assert comparison["ci_low"] > 0  # the holdout alone would have passed it: the seed check decided
    assert len(comparison["seed_values"]) == 3
    assert abs(comparison["difference"]) <= comparison["seed_spread"]
    assert "inside the spread of its own configuration retrained with 3 seeds" in comparison["reason"]
    assert result.error == "ROLLED_BACK"
    assert result.production_after == result.production_before


def test_the_demo_promotions_gain_is_far_beyond_the_seeds_spread(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, world()) as runtime:
        result = runtime.run(event(), seed=True)
    comparison = result.output["comparison"]
    assert result.outcome == "PROMOTED", result.cause
    assert comparison["decision"] == "PASS" and len(comparison["seed_values"]) == 3
    assert comparison["difference"] > 5 * comparison["seed_spread"]
