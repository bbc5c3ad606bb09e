"""The first cell of every notebook: the repository's packages importable (the toolkit included), the data size, an
output folder and the experiment tracker.

Environment (all optional):
- ``PROMOTION_NOTEBOOK_SMALL=1``: small generated data, so a notebook runs in seconds (the tests set it);
- ``PROMOTION_NOTEBOOK_OUTPUT``: where figures and tables go (default ``notebooks/output/``, git-ignored);
- ``MLFLOW_TRACKING_URI``: the tracking store (default: the embedded SQLite store of ``promotion_toolkit.tracking``;
  in AWS, the ARN of the SageMaker MLflow tracking server).
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "models" / "fraud-detection.yaml").is_file())
# The toolkit (promotion_toolkit), the jobs' library it builds on (promotion_ml), the domain package (promotion), and
# the repository root (local, for 05-production-promotion).
for _path in (ROOT / "toolkit", ROOT / "jobs", ROOT / "layers" / "promotion" / "python", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
# MLflow imports tqdm.auto, which warns in a kernel without ipywidgets; the progress bars are off anyway.
warnings.filterwarnings("ignore", message="IProgress not found")


@dataclass(frozen=True)
class NotebookSetup:
    root: Path
    output: Path
    small: bool
    n_train: int
    n_validation: int
    n_holdout: int
    seed: int

    @property
    def catalog_path(self) -> Path:
        return self.root / "models" / "fraud-detection.yaml"


def setup(name: str, *, seed: int = 20_241_120) -> NotebookSetup:
    """Sizes and folders for notebook ``name`` (its outputs go to ``<output>/<name>/``)."""
    small = os.environ.get("PROMOTION_NOTEBOOK_SMALL") == "1"
    output = Path(os.environ.get("PROMOTION_NOTEBOOK_OUTPUT") or ROOT / "notebooks" / "output") / name
    output.mkdir(parents=True, exist_ok=True)
    sizes = (3_000, 1_500, 1_500) if small else (60_000, 20_000, 20_000)
    return NotebookSetup(ROOT, output, small, *sizes, seed=seed)
