#!/usr/bin/env python
"""How long attnad.metrics takes on long series: the timing that used to be an assert in
tests/test_metrics.py (VUS on 100k points under 8 s), which failed on busy machines.

    python benchmarks/metrics_speed.py                       # n = 10k, 100k, 1M; ~1 min
    python benchmarks/metrics_speed.py --sizes 100000 --repeats 5

Data as in that test: 60 labelled segments of 1-119 points per 100k (scaled with n), scores =
labels + standard normal noise, seeded. Each metric is timed --repeats times in this process;
the table gives the fastest and the median run (the JSON also records the load average, since
other work on the machine slows every figure).
Writes benchmarks/results/metrics_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attnad.metrics import auprc, auroc, best_f1, vus  # noqa: E402

WINDOW = 200  # VUS buffer, as in the test


def series(n: int, seed: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=int)
    for s in rng.integers(0, n - 200, max(1, 60 * n // 100_000)):
        y[s: s + rng.integers(1, 120)] = 1
    return y, rng.normal(size=n) + y


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "metrics_speed.json"))
    args = ap.parse_args()
    metrics = {"auroc": auroc, "auprc": auprc, "best_f1": best_f1,
               f"vus (max_window={WINDOW})": lambda y, s: vus(y, s, max_window=WINDOW)}
    results = []
    print(f"{'metric':24} {'n':>10} {'fastest s':>10} {'median s':>10}")
    for n in args.sizes:
        y, s = series(n)
        for name, fn in metrics.items():
            runs = timed(lambda: fn(y, s), args.repeats)
            results.append({"metric": name, "n": n, "seconds": runs,
                             "fastest": min(runs), "median": float(np.median(runs))})
            print(f"{name:24} {n:>10,} {min(runs):>10.3f} {np.median(runs):>10.3f}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": "python benchmarks/metrics_speed.py --sizes "
                   + " ".join(map(str, args.sizes)) + f" --repeats {args.repeats}",
        "python": platform.python_version(), "numpy": np.__version__,
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "results": results}, indent=1) + "\n")
    print(f"-> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
