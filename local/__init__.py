"""The embedded local runtime: the synthesized stack on moto, real handlers in process, EventBridge routing,
the SageMaker world, compressed time and fault injection. `python -m local` is its CLI; `LocalRuntime` its API.

    from local import Decision, LocalRuntime, TimeCompression

    with LocalRuntime(world=Path("tests/data/events/world.json")) as runtime:
        result = runtime.run(event, seed=True, decision=Decision.approve("Alice Martin"))
        assert result.promoted, result.contract()
"""

from local.lambdas import InjectedFault
from local.production import ProductionSnapshot
from local.runtime import Decision, LocalRuntime, RunResult
from local.sfn_bridge import TimeCompression

__all__ = ["Decision", "InjectedFault", "LocalRuntime", "ProductionSnapshot", "RunResult", "TimeCompression"]
