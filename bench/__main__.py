"""`make bench`: run every benchmark; each writes its results to bench/results/<name>.json. Mutation testing runs
only when named (`python -m bench mutation`, `make mutation`): it takes about an hour and needs
requirements-mutation.txt."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ON_REQUEST = {"mutation"}


def main() -> int:
    selected = sys.argv[1:]
    for script in sorted(HERE.glob("bench_*.py")):
        name = script.stem.removeprefix("bench_")
        if (selected and name not in selected) or (not selected and name in ON_REQUEST):
            continue
        print(f"== {name}", flush=True)
        sys.argv = [str(script)]  # each script parses its own options: the names selected here are not among them
        runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
