"""Run all benchmarks (or those named): python -m bench [name ...] [--option value ...]."""
from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = [m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")]
    # names come first, options after them go to each benchmark: python -m bench api --points 50000
    first_opt = next((k for k, a in enumerate(argv) if a.startswith("-")), len(argv))
    wanted, options = argv[:first_opt], argv[first_opt:]
    if wanted:
        names = [n for n in names if any(w in n for w in wanted)]
    for name in sorted(names):
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").main(options)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
