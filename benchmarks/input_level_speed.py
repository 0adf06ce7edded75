#!/usr/bin/env python
"""What reading each window against its recent level costs when scoring a series.

    python benchmarks/input_level_speed.py          # 3 entities x 100,000 steps x 8 signals

Two models fitted on the same rows (model.input_level local, the default, and entity, how models
scored before the option), then the whole file scored in memory by each, alternating, three
times; the median time of each and their throughput ratio. Writes
benchmarks/results/input_level_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attnad.config import Config  # noqa: E402
from attnad.detector import Detector  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=100_000, help="steps per entity")
    ap.add_argument("--entities", type=int, default=3)
    ap.add_argument("--signals", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/input_level_speed.json")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    t = np.arange(args.steps)
    df = pd.concat([pd.DataFrame({"host": f"h{e}", "t": t, **{
        f"s{j}": np.sin(t / 50 + j + e) + rng.normal(0, 0.1, args.steps)
        for j in range(args.signals)}}) for e in range(args.entities)], ignore_index=True)
    train = df.groupby("host").head(20_000)
    dets = {}
    for level in ("local", "entity"):
        cfg = Config.model_validate({"data": {"time_column": "t", "group_column": "host"},
                                     "model": {"input_level": level},
                                     "train": {"threads": args.threads, "seed": 0,
                                               "min_steps": 100, "max_steps": 100}})
        dets[level] = Detector(cfg).fit(train)
    seconds: dict[str, list[float]] = {k: [] for k in dets}
    for _ in range(args.repeats):
        for level, det in dets.items():
            t0 = time.perf_counter()
            det.score_with_contributions(df)
            seconds[level].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in seconds.items()}
    out = {"command": "python benchmarks/input_level_speed.py " + " ".join(argv or sys.argv[1:]),
           "rows": len(df), "signals": args.signals, "threads": args.threads,
           "python": platform.python_version(), "machine": platform.machine(),
           "seconds": seconds, "rows_per_s": {k: len(df) / v for k, v in med.items()},
           "throughput_ratio_local_over_entity": med["entity"] / med["local"]}
    print(f"{'input_level':12} {'median s':>9} {'rows/s':>9}")
    for k, v in med.items():
        print(f"{k:12} {v:9.2f} {len(df) / v:9,.0f}")
    print(f"throughput local / entity: {out['throughput_ratio_local_over_entity']:.3f}")
    args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
