"""`promote`: the data scientists' and operators' command line (approve, reject, roll back, status, history)."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("promotion") is None:
    # The domain package lives in the Lambda layer's source tree; the CLI runs from a checkout.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layers" / "promotion" / "python"))
