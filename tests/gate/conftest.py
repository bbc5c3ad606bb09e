"""Put the promotion layer on sys.path so the gate tests run on their own (pytest tests/gate)."""

from __future__ import annotations

import sys
from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "layers" / "promotion" / "python"
if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))
