"""The job image (jobs/Dockerfile) runs what the tests ran: the Python minor version the local jobs run with, and
exactly the library versions the tests pin, for every library the entry points import."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import sys
from pathlib import Path

from tests.conftest import ROOT

JOBS = ROOT / "jobs"
DOCKERFILE = JOBS / "Dockerfile"
ENTRY_POINTS = (
    JOBS / "training" / "train.py",
    JOBS / "comparison" / "compare.py",
    JOBS / "data_quality" / "check.py",
    JOBS / "monitoring" / "drift.py",
    JOBS / "serving" / "serve.py",
)
PIN = re.compile(r"^([A-Za-z0-9_.\[\],-]+?)(?:\[[^\]]*\])?==([^\s;#]+)")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """name -> version of a requirements file, following `-r` includes."""
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("-r "):
            found.update(pins(path.parent / line[3:].strip()))
        elif match := PIN.match(line):
            found[_normalized(match.group(1).split("[")[0])] = match.group(2)
    return found


def imported_libraries(entry_points: tuple[Path, ...]) -> set[str]:
    """Top-level third-party modules imported (anywhere, lazily too) by the entry points and the promotion_ml modules
    they reach."""
    return _walk(entry_points)[0]


def _walk(entry_points: tuple[Path, ...]) -> tuple[set[str], set[Path]]:
    """The third-party modules the entry points import, and every file of theirs and of promotion_ml they reach."""
    seen: set[Path] = set()
    pending = list(entry_points)
    third_party: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                top = name.split(".")[0]
                if top == "promotion_ml":
                    module = JOBS / Path(*name.split("."))
                    for candidate in (module.with_suffix(".py"), module / "__init__.py"):
                        if candidate.is_file():
                            pending.append(candidate)
                elif top not in sys.stdlib_module_names and top != "__future__":
                    third_party.add(top)
    return third_party, seen


def test_every_image_library_is_pinned_to_the_version_the_tests_use() -> None:
    image, tested = pins(JOBS / "requirements.txt"), pins(ROOT / "requirements-dev.txt")
    assert image, "jobs/requirements.txt pins nothing"
    for name, version in image.items():
        assert tested.get(name) == version, f"{name}: image {version}, tests {tested.get(name)}"
        assert importlib.metadata.version(name) == version, f"{name}: image {version}, installed here differs"


def test_every_library_the_entry_points_import_is_in_the_image() -> None:
    distributions = importlib.metadata.packages_distributions()
    image = pins(JOBS / "requirements.txt")
    libraries = imported_libraries(ENTRY_POINTS)
    assert {"numpy", "xgboost", "sklearn", "scipy", "matplotlib"} <= libraries  # the walk does see the imports
    for module in sorted(libraries):
        provided_by = {_normalized(name) for name in distributions.get(module, [module])}
        assert provided_by & set(image), f"{module} is imported by a job but no library of the image provides it"
    # ...and every library of the image is used (nothing installed for nothing).
    used = {_normalized(d) for module in libraries for d in distributions.get(module, [module])}
    assert set(image) <= used, f"the image installs {sorted(set(image) - used)} that no job imports"


def test_the_image_python_is_the_python_the_local_jobs_run_with() -> None:
    base = next(line for line in DOCKERFILE.read_text().splitlines() if line.startswith("FROM "))
    match = re.search(r"/python:(\d+)\.(\d+)", base)
    assert match is not None, f"the job image is not built on an official python image: {base}"
    # local.sagemaker_jobs.LocalJobs runs the entry points with sys.executable, this interpreter.
    assert (int(match.group(1)), int(match.group(2))) == sys.version_info[:2]


def test_the_image_holds_the_programs_sagemaker_starts() -> None:
    text = DOCKERFILE.read_text()
    for folder in ("promotion_ml", "training", "comparison", "serving", "bin"):
        assert f"COPY {folder} /opt/program/{folder}" in text
    assert 'PATH="/opt/program/bin:' in text  # `docker run image train` / `serve` find the programs
    for program in ("train", "serve"):
        path = JOBS / "bin" / program
        assert path.is_file() and os.access(path, os.X_OK), f"jobs/bin/{program} is not an executable file"


def test_the_image_ships_only_code_the_jobs_import() -> None:
    """What ships is what runs: every Python file of jobs/ is an entry point or a promotion_ml module one of them
    reaches. The data scientists' toolkit (toolkit/promotion_toolkit) builds on promotion_ml from outside the image."""
    reached = {path.resolve() for path in _walk(ENTRY_POINTS)[1]}
    shipped = {path.resolve() for path in JOBS.rglob("*.py") if "__pycache__" not in path.parts}
    package = (JOBS / "promotion_ml" / "__init__.py").resolve()  # imported with any of its modules
    assert shipped - reached - {package} == set(), "jobs/ ships Python no job imports"
    assert not (JOBS / "promotion_toolkit").exists()
