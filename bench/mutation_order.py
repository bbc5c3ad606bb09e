"""A pytest plugin for mutation runs only (bench/bench_mutation.py loads it with `-p`): the cheapest tests first.

mutmut hands pytest a mutant's covering tests in no particular order and stops at the first failure (`-x`), so a
mutant a 10 ms unit test kills can first sit through a property test that takes seconds. The first complete run in
the staged copy (mutmut's stats run) records what each test costs, fixture setup and teardown included (a moto test
spends most of its time there, which mutmut's own durations leave out); every later run orders its tests by that
cost, so a killed mutant costs about its cheapest killing test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COSTS = Path("mutation-test-costs.json")  # in mutants/, where mutmut runs pytest
_measured: dict[str, float] = {}
_recorded: dict[str, float] = {}


def _costs() -> dict[str, float]:
    if not _recorded and COSTS.exists():
        _recorded.update(json.loads(COSTS.read_text()))
    return _recorded


def pytest_runtest_logreport(report: Any) -> None:
    if not COSTS.exists():
        _measured[report.nodeid] = _measured.get(report.nodeid, 0.0) + float(report.duration)


def pytest_sessionfinish(session: Any) -> None:
    if _measured and not COSTS.exists():
        COSTS.write_text(json.dumps(_measured))


def pytest_collection_modifyitems(items: list[Any]) -> None:
    costs = _costs()
    if costs:
        items.sort(key=lambda item: costs.get(item.nodeid, 0.0))
