"""The data scientists' notebooks run top to bottom on small generated data, each in a fresh kernel, with their
MLflow store and outputs in a temporary folder (nothing is left in the repository)."""

from __future__ import annotations

import time

import nbformat
import pytest
from nbclient import NotebookClient

from promotion_toolkit.tracking import PROMOTIONS_EXPERIMENT, TRACKING_URI_ENV, Tracker
from tests.toolkit.conftest import MLFLOW_WARNINGS, ROOT, scratch_folder

pytestmark = MLFLOW_WARNINGS

NOTEBOOKS = ROOT / "notebooks"
NAMES = (
    "01-data-exploration",
    "02-feature-engineering",
    "03-algorithm-comparison",
    "04-tuning",
    "05-production-promotion",
)
CELL_TIMEOUT_S = 180
# Each takes 5-15 s on an idle 2-core machine; the bound is for a loaded CI and catches a notebook left on full data.
NOTEBOOK_BUDGET_S = 120


def test_every_notebook_is_tested() -> None:
    assert sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(
    name: str, tracking_uri: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = scratch_folder(tmp_path_factory, f"notebook-{name}")
    # The kernel inherits this environment: small data, outputs in the scratch folder, and this worker's temporary
    # MLflow store (shared, so MLflow creates its tables once; the worker waits while the kernel writes to it).
    monkeypatch.setenv("PROMOTION_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("PROMOTION_NOTEBOOK_OUTPUT", str(scratch / "output"))
    monkeypatch.setenv(TRACKING_URI_ENV, tracking_uri)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    before = sorted(str(p.relative_to(ROOT)) for p in NOTEBOOKS.rglob("*"))
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "commit it clean"

    if name == "05-production-promotion":
        # The local runtime synthesizes cdk.out when the stack's sources changed: do that first (under its lock),
        # so the notebook's own time is what is measured.
        from local.template import load_stack

        load_stack(ROOT)
    started = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    seconds = time.perf_counter() - started

    errors = [output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors
    assert seconds < NOTEBOOK_BUDGET_S, f"{name} took {seconds:.1f} s"
    experiment = PROMOTIONS_EXPERIMENT if name == "05-production-promotion" else f"notebooks/{name}"
    assert Tracker(tracking_uri, experiment=experiment).search(), "it tracked its runs, into the temporary store"
    assert sorted(str(p.relative_to(ROOT)) for p in NOTEBOOKS.rglob("*") if "__pycache__" not in p.parts) == [
        p for p in before if "__pycache__" not in p
    ]
    assert not (ROOT / "mlruns").exists() and not (ROOT / "mlflow.db").exists()
