"""The embedded local runtime: the synthesized stack on moto, real handlers in process, EventBridge routing,
the SageMaker world, compressed time and fault injection. `python -m local` is its CLI; `LocalRuntime` its API.

    from local import Decision, LocalRuntime, TimeCompression

    with LocalRuntime(world=Path("tests/data/events/world.json")) as runtime:
        result = runtime.run(event, seed=True, decision=Decision.approve("Alice Martin"))
        assert result.promoted, result.contract()

Importing the package puts the promotion layer's source on sys.path (`local.paths`), so the runtime and the CLI read
the product's contract (`promotion.contract`) from its one definition, from a fresh checkout too. The names below
are imported on first use: `python -m local --help` does not start by loading moto.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from local.paths import put_promotion_layer_on_path

put_promotion_layer_on_path()

if TYPE_CHECKING:
    from local.lambdas import InjectedFault
    from local.people import Decision
    from local.production import ProductionSnapshot
    from local.reporting import RunResult
    from local.runtime import LocalRuntime
    from local.sfn_bridge import TimeCompression

_EXPORTS = {
    "Decision": "local.people",
    "InjectedFault": "local.lambdas",
    "LocalRuntime": "local.runtime",
    "ProductionSnapshot": "local.production",
    "RunResult": "local.reporting",
    "TimeCompression": "local.sfn_bridge",
}
__all__ = ["Decision", "InjectedFault", "LocalRuntime", "ProductionSnapshot", "RunResult", "TimeCompression"]


def __getattr__(name: str) -> Any:
    """The public names, imported from their modules when first asked for (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'local' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
