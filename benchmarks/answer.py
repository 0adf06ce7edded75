#!/usr/bin/env python
"""Time to an answer: a one-shot `attnad detect FILE` (fit and score, no model) against an
IsolationForest script that reads, fits, scores and writes the same file.

    python benchmarks/answer.py                       # 1k, 10k, 100k, 1M rows x 16 columns
    python benchmarks/answer.py --rows 1000 10000 100000

Each file is a CSV of `--cols` numeric columns driven by a few shared factors (so columns are
related), with 1% planted anomalies (half far out on a few columns, half breaking the relations
inside the usual ranges) and an `is_anomaly` label that neither detector models. Both run as
child processes, timed from process start to exit with the output written; AUROC is computed on
the written scores. What users of CI checks and shell pipelines wait for, so it includes Python
and torch start-up. Writes benchmarks/results/answer.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attnad.metrics import auroc  # noqa: E402

IFOREST = r"""
import sys
import pandas as pd
from sklearn.ensemble import IsolationForest
df = pd.read_csv(sys.argv[1])
x = df.drop(columns=["is_anomaly"]).to_numpy()
model = IsolationForest(n_estimators=100, random_state=0).fit(x)
df["anomaly_score"] = -model.score_samples(x)
df.to_csv(sys.argv[2], index=False)
"""


def generate(path: Path, rows: int, cols: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(rows, 3))
    x = factors @ rng.normal(size=(3, cols)) + 0.3 * rng.normal(size=(rows, cols))
    y = np.zeros(rows, np.int8)
    bad = rng.choice(rows, max(1, rows // 100), replace=False)
    y[bad] = 1
    far, broken = bad[: len(bad) // 2], bad[len(bad) // 2:]
    for i in far:  # far out on two or three columns
        cs = rng.choice(cols, rng.integers(2, 4), replace=False)
        x[i, cs] += rng.choice([-1, 1], len(cs)) * rng.uniform(4, 6, len(cs)) * x[:, cs].std(0)
    for i in broken:  # each value usual on its own, the row inconsistent with the factors
        x[i] = x[rng.integers(rows), :] * rng.choice([-1, 1], cols)
    df = pd.DataFrame(x.astype(np.float32), columns=[f"x{j}" for j in range(cols)])
    df["is_anomaly"] = y
    df.to_csv(path, index=False)


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed ({done.returncode}):\n{done.stderr}")
    return seconds


def _without_out(args: list[str]) -> list[str]:
    """The arguments less --out and its value (a machine path)."""
    out, skip = [], False
    for a in args:
        if skip or a.startswith("--out="):
            skip = False
            continue
        if a == "--out":
            skip = True
            continue
        out.append(a)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    ap.add_argument("--cols", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/answer.json")
    args = ap.parse_args(argv)
    attnad = str(Path(sys.executable).with_name("attnad"))
    results = []
    print(f"{'rows':>9} {'attnad s':>9} {'AUROC':>6} {'iforest s':>9} {'AUROC':>6} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            data, a_out, i_out = (Path(tmp) / f"{n}_{rows}.csv" for n in ("data", "attnad", "if"))
            generate(data, rows, args.cols, args.seed)
            a_s = timed([attnad, "detect", str(data), "-o", str(a_out), "--quiet",
                         "--set", "data.label_column=is_anomaly", "--seed", str(args.seed)])
            i_s = timed([sys.executable, "-c", IFOREST, str(data), str(i_out)])
            a, i = pd.read_csv(a_out), pd.read_csv(i_out)
            r = {"rows": rows, "cols": args.cols, "attnad_seconds": a_s, "iforest_seconds": i_s,
                 "attnad_auroc": auroc(a.is_anomaly.to_numpy(), a.anomaly_score.to_numpy()),
                 "iforest_auroc": auroc(i.is_anomaly.to_numpy(), i.anomaly_score.to_numpy())}
            results.append(r)
            print(f"{rows:9,d} {a_s:9.1f} {r['attnad_auroc']:6.3f} {i_s:9.1f} "
                  f"{r['iforest_auroc']:6.3f} {a_s / i_s:6.1f}", flush=True)
    args.out.write_text(json.dumps({
        "command": " ".join(["python benchmarks/answer.py"] + _without_out(argv or sys.argv[1:])),
        "cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
        "machine": platform.machine(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
