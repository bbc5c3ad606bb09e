"""Properties of the data-quality gate (hypothesis, 100+ examples each): PSI is a divergence (never negative, zero
for the same shares), and no data with a label outside the catalog's values, or a column the catalog does not
have, ever passes the gate."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promotion_ml.quality import Thresholds, check_data, population_stability_index

shares = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=2, max_size=12).filter(lambda s: sum(s) > 0)


@settings(max_examples=200, deadline=None)
@given(expected=shares, actual=shares)
def test_psi_is_never_negative_and_zero_for_the_same_shares(expected: list[float], actual: list[float]) -> None:
    n = min(len(expected), len(actual))
    e = np.array(expected[:n]) / sum(expected[:n])
    a = np.array(actual[:n]) / sum(actual[:n]) if sum(actual[:n]) > 0 else e
    assert population_stability_index(e, a) >= 0.0
    assert population_stability_index(e, e) == 0.0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    bad_label=st.sampled_from([-1.0, 2.0, 0.5, 9.0]),
    bad_rows=st.integers(1, 50),
    extra_column=st.booleans(),
)
def test_data_with_a_foreign_label_or_column_never_passes(
    tmp_path: Path, seed: int, bad_label: float, bad_rows: int, extra_column: bool
) -> None:
    rng = np.random.default_rng(seed)
    rows = 400
    table = np.column_stack([(rng.random(rows) < 0.05).astype(float), rng.normal(size=(rows, 3))])
    table[rng.choice(rows, size=bad_rows, replace=False), 0] = bad_label
    if extra_column:
        table = np.column_stack([table, rng.normal(size=rows)])
    folder = Path(tempfile.mkdtemp(dir=tmp_path)) / "train"  # hypothesis may repeat an example
    folder.mkdir()
    np.savetxt(folder / "train.csv", table, delimiter=",", fmt="%.8g")
    report, profile = check_data({"train": folder}, Thresholds(min_rows={"train": 1}), None, ["a", "b", "c"])
    assert not report["passed"] and profile is None
    failed = {f["check"] for f in report["failures"]}
    assert ("schema.columns" in failed) if extra_column else ("label.values" in failed)
