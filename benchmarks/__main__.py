"""Run every benchmark in turn: ``python -m benchmarks`` (what ``make bench`` does).

``python -m benchmarks NAME …`` runs only the named ones (``backfill``, ``core``, ``validate``, …).
Speed is measured here, never asserted in the test suite.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    names = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    chosen = argv or names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(names)}", file=sys.stderr)
        return 2
    for name in chosen:
        print(f"\n== {name} ==", flush=True)
        t0 = time.perf_counter()
        module = importlib.import_module(f"benchmarks.bench_{name}")
        saved, sys.argv = sys.argv, [f"bench_{name}"]
        try:
            module.main()
        finally:
            sys.argv = saved
        print(f"({name}: {time.perf_counter() - t0:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
