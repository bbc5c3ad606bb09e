"""Mutation testing of the code that writes production, decides approvals, claims and locks, validates candidates,
rolls back and publishes the result: the `production`, `claim`, `intake` and `result` concerns of the domain package.

    make mutation                      # or: .venv/bin/python -m bench mutation (after requirements-mutation.txt)
    .venv/bin/python bench/bench_mutation.py [--only production/restore.py] [--max-children 2] [--keep]
    .venv/bin/python bench/bench_mutation.py --report-only   # rewrite the results from the last run

mutmut 3 (requirements-mutation.txt) plants one small bug at a time (an operator, a constant, a removed argument, a
changed string) and runs the tests that cover the mutated function; a mutant no test fails on "survived". It names
mutants by module path and knows `src/`, so the run happens in a staged copy of the repository, build/mutation/,
where the domain package sits at src/promotion (the layer's own folder is left out, so every test imports the
mutated copy). The tests are the unit, property and integration suites: the e2e suite runs the synthesized state
machine from cdk.out, whose layer copy mutmut does not mutate.

What keeps it under an hour on two cores: each property runs with at most PROPERTY_EXAMPLES derandomized examples
and no shrinking (tests/strategies.examples, tests/conftest.py; `make test` runs the full counts), the covering
tests run cheapest first, fixture setup included (bench/mutation_order.py), so a killed mutant costs about its
cheapest killing test, and the moto clients are made once per session (tests/conftest.py).

Writes bench/results/mutation.json: the score per module and overall ((killed + timeout) over every checked mutant
but the reviewed equivalents; a mutant no test reaches counts against it), and every mutant that survived with its
diff. A survivor reviewed as equivalent to the original (no test can tell them apart because no behaviour differs)
carries its one-line reason from bench/mutation_equivalents.json, keyed by module and changed lines. Mutants in log
and metric lines are not generated (`do_not_mutate_patterns`): their text is not behaviour a test should pin.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
STAGE = ROOT / "build" / "mutation"
EQUIVALENTS = ROOT / "bench" / "mutation_equivalents.json"
PACKAGE = ROOT / "layers" / "promotion" / "python" / "promotion"
CONCERNS = ("production", "claim", "intake", "result")
# Presentation, not decisions: the HTML report's markup and the report's cost figures (priced by bench/cost_model.py
# and checked by tests/unit/test_cost.py) are left out of the score.
LEFT_OUT = ("result/report.py", "result/cost.py")
TESTS = ("tests/unit", "tests/property", "tests/integration")
COPIED = (
    "tests",
    "models",
    "jobs",
    "toolkit",
    "local",
    "stacks",
    "functions",
    "bench",
    "promote",
    "app.py",
    "cdk.json",
)
# Lines whose mutants are not generated: log and metric text is not behaviour a test should pin.
NOT_MUTATED = [r"^\s*logger\.", r"^\s*metrics\.", r"^\s*tracer\."]
# Each property runs once per mutant: capped at this many (derandomized) examples, see tests/strategies.examples.
MUTATION_EXAMPLES = "PROMOTION_MUTATION_EXAMPLES"
PROPERTY_EXAMPLES = 10
# mutmut's own verdicts (mutmut.stats.status_by_exit_code), in this report's words.
STATUS = {"caught by type check": "killed"}


def _targets(only: list[str]) -> list[str]:
    """Module paths under src/promotion that are mutated."""
    found = []
    for concern in CONCERNS:
        for path in sorted((PACKAGE / concern).glob("*.py")):
            relative = f"{concern}/{path.name}"
            if path.name == "__init__.py" or relative in LEFT_OUT:
                continue
            if not only or relative in only:
                found.append(relative)
    return found


def stage(targets: list[str]) -> None:
    """A copy of the repository mutmut can run in: the domain package at src/promotion, pytest pointed at it."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "results")
    shutil.copytree(PACKAGE, STAGE / "src" / "promotion", ignore=ignore)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, STAGE / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, STAGE / name)
    pyproject = (ROOT / "pyproject.toml").read_text()
    # The layer's path becomes src/: without it in the copy, nothing imports an unmutated promotion by accident.
    pyproject = pyproject.replace('"layers/promotion/python"', '"src"')
    mutmut = {
        "source_paths": ["src"],
        "only_mutate": [f"src/promotion/{target}" for target in targets],
        "pytest_add_cli_args_test_selection": list(TESTS),
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-p", "bench.mutation_order", "-q", "-x"],
        "do_not_mutate_patterns": NOT_MUTATED,
        "also_copy": [*COPIED],
        "timeout_multiplier": 10.0,
    }
    lines = ["", "[tool.mutmut]"] + [f"{key} = {json.dumps(value)}" for key, value in mutmut.items()]
    (STAGE / "pyproject.toml").write_text(pyproject + "\n".join(lines) + "\n")
    # models/ is where the tests find the catalogs; the layer's catalog folder (not mutated) is copied beside it.
    (STAGE / "layers" / "promotion").mkdir(parents=True)
    layer_catalog = ROOT / "layers" / "promotion" / "catalog"
    if layer_catalog.exists():
        shutil.copytree(layer_catalog, STAGE / "layers" / "promotion" / "catalog")


def run_mutmut(max_children: int, examples: int) -> float:
    """`mutmut run` in the staged copy; returns its wall-clock seconds."""
    started = time.monotonic()
    # No PYTHONPATH: pytest's own `pythonpath` (src, jobs, toolkit, .) resolves inside mutmut's mutants/ copy.
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment[MUTATION_EXAMPLES] = str(examples)
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        raise SystemExit(f"{mutmut} is not installed: `make mutation` installs requirements-mutation.txt first")
    subprocess.run([str(mutmut), "run", "--max-children", str(max_children)], cwd=STAGE, env=environment, check=True)
    return time.monotonic() - started


def collect() -> list[dict[str, Any]]:
    """Every mutant's status (and a survivor's diff), read with mutmut's own API inside the staged copy."""
    script = r"""
import json, sys
from mutmut.__main__ import walk_mutatable_files, get_diff_for_mutant
from mutmut.mutation.data import SourceFileMutationData
from mutmut.stats import status_by_exit_code
out = []
for path in walk_mutatable_files():
    data = SourceFileMutationData(path=path)
    data.load()
    for name, code in data.exit_code_by_key.items():
        status = "not checked" if code is None else status_by_exit_code[code]
        item = {"mutant": name, "path": str(path), "exit_code": code, "status": status}
        if code == 0:
            item["diff"] = get_diff_for_mutant(name, path=path)
        out.append(item)
json.dump(out, sys.stdout)
"""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    printed = subprocess.run(
        [sys.executable, "-c", script], cwd=STAGE, env=environment, check=True, capture_output=True, text=True
    ).stdout
    mutants: list[dict[str, Any]] = json.loads(printed)
    return mutants


def _module(mutant: dict[str, Any]) -> str:
    return str(mutant["path"]).removeprefix("src/promotion/")


def _signature(mutant: dict[str, Any]) -> str:
    """What identifies a reviewed mutant across runs: its module and the changed lines (mutant numbers shift)."""
    changed = [
        line
        for line in str(mutant.get("diff", "")).splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return _module(mutant) + "::" + " | ".join(f"{line[0]} {line[1:].strip()}" for line in changed)


def report(mutants: list[dict[str, Any]], seconds: float, targets: list[str], examples: int) -> dict[str, Any]:
    equivalents: dict[str, str] = json.loads(EQUIVALENTS.read_text()) if EQUIVALENTS.exists() else {}
    by_module: dict[str, Counter[str]] = {}
    survivors = []
    for mutant in mutants:
        status = STATUS.get(mutant["status"], mutant["status"])
        module = _module(mutant)
        reason = equivalents.get(_signature(mutant)) if status == "survived" else None
        if reason is not None:
            status = "equivalent"
        by_module.setdefault(module, Counter())[status] += 1
        if status in ("survived", "equivalent"):
            survivors.append(
                {"mutant": mutant["mutant"], "module": module, "diff": mutant["diff"], "equivalent": reason}
            )

    def score(counts: Counter[str]) -> float | None:
        """Killed over every mutant that is not equivalent: one no test reaches counts as a bug that would ship."""
        judged = sum(counts.values()) - counts["equivalent"] - counts["not checked"]
        return None if judged <= 0 else round((counts["killed"] + counts["timeout"]) / judged * 100, 1)

    total: Counter[str] = sum(by_module.values(), Counter())
    return {
        "benchmark": "mutation testing of production writes, approvals, claims, validation, rollback and result",
        "tool": "mutmut " + _version("mutmut"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "modules": targets,
        "left_out": dict.fromkeys(LEFT_OUT, "presentation or bench-checked pricing, not a production decision"),
        "tests": list(TESTS),
        "property_examples": examples,
        "wall_seconds": round(seconds, 1),
        "score_percent": score(total),
        "score_definition": "(killed + timeout) / every checked mutant but the reviewed equivalents: a mutant no "
        "selected test reaches counts as surviving",
        "totals": dict(total),
        "by_module": {
            module: {**dict(counts), "score_percent": score(counts)} for module, counts in sorted(by_module.items())
        },
        "survivors": [s for s in survivors if s["equivalent"] is None],
        "equivalent": [s for s in survivors if s["equivalent"] is not None],
        "no_tests": sorted(m["mutant"] for m in mutants if m["status"] == "no tests"),
    }


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--only", action="append", default=[], help="a module under promotion/, e.g. claim/store.py")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--examples", type=int, default=PROPERTY_EXAMPLES, help="examples per property test")
    parser.add_argument("--keep", action="store_true", help="reuse build/mutation (mutmut skips mutants it judged)")
    parser.add_argument("--report-only", action="store_true", help="only write the results of the last run")
    arguments = parser.parse_args()
    targets = _targets(arguments.only)
    if not targets:
        parser.error(f"no module matches {arguments.only}")
    name = "mutation.json" if not arguments.only else "mutation-partial.json"
    if arguments.report_only:  # the run's duration stays what it was measured
        previous = RESULTS / name
        seconds = float(json.loads(previous.read_text()).get("wall_seconds", 0.0)) if previous.exists() else 0.0
    else:
        if not (arguments.keep and STAGE.exists()):
            stage(targets)
        seconds = run_mutmut(arguments.max_children, arguments.examples)
    results = report(collect(), seconds, targets, arguments.examples)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"mutation score {results['score_percent']}% over {len(targets)} modules "
        f"({results['totals']}), {results['wall_seconds']} s -> bench/results/{name}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
