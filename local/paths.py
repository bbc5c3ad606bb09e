"""Where the local runtime finds the project, and the product's domain package on sys.path from a fresh checkout.

Kept free of heavy imports: `python -m local` reads its event (and its model tag, `promotion.contract.events`) before
anything starts, and `--help` should not wait for moto.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The promotion layer's source: the domain package (`promotion`) the handlers import from /opt/python on Lambda.
PROMOTION_LAYER = ROOT / "layers" / "promotion" / "python"


def put_promotion_layer_on_path() -> None:
    """Make `promotion` importable, as pytest's `pythonpath` does for the tests: appended, so a package already on
    the path (a test's, a function's layer) wins, and `local` has one spelling of the product's contract."""
    layer = str(PROMOTION_LAYER)
    if layer not in sys.path:
        sys.path.append(layer)
