#!/usr/bin/env python
"""What counting drift in the scoring pass costs: the same model scores the same file with the
drift counts on and off (a model without a training profile counts nothing), alternately, in one
process, so machine noise hits both alike. Tables (default tabular model) and series (default
time-series model, several entities); the models are trained briefly, which does not change
the cost of scoring.

    python benchmarks/drift_speed.py --rows 200000 --cols 32 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from attnad.detector import Detector
from attnad.pipeline import score_file

ROOT = Path(__file__).resolve().parents[1]


def table_data(rows: int, cols: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, 4))
    x = z @ rng.normal(size=(4, cols)) + 0.3 * rng.normal(size=(rows, cols))
    df = pd.DataFrame(x.astype(np.float32), columns=[f"f{i}" for i in range(cols)])
    df["kind"] = rng.choice(["a", "b", "c", "d"], size=rows)
    return df


def series_data(rows: int, cols: int, entities: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per = rows // entities
    frames = []
    for e in range(entities):
        t = np.arange(per)
        x = np.sin(t[:, None] / 20 + rng.uniform(0, 6, cols)) + 0.1 * rng.normal(size=(per, cols))
        f = pd.DataFrame(x.astype(np.float32), columns=[f"s{i}" for i in range(cols)])
        f.insert(0, "ts", t)
        f.insert(0, "host", f"h{e}")
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def timed(det, path: Path, out: Path, drift: bool) -> float:
    keep, det.profile_ = det.profile_, (det.profile_ if drift else None)
    try:
        start = time.perf_counter()
        score_file(det, path, out, flags=True)
        return time.perf_counter() - start
    finally:
        det.profile_ = keep


def measure(name: str, det, df: pd.DataFrame, repeats: int, work: Path) -> dict:
    path = work / f"{name}.parquet"
    df.to_parquet(path, index=False)
    timed(det, path, work / "warm.parquet", True)  # warm-up: caches, thread pools
    on, off = [], []
    for _ in range(repeats):
        off.append(timed(det, path, work / "off.parquet", False))
        on.append(timed(det, path, work / "on.parquet", True))
    res = {"case": name, "rows": len(df), "seconds_off": float(np.median(off)),
           "seconds_on": float(np.median(on)), "runs_off": off, "runs_on": on}
    res["throughput_ratio"] = res["seconds_off"] / res["seconds_on"]  # on / off rows per second
    print(f"{name}: {len(df):,} rows, drift off {res['seconds_off']:.2f} s, on "
          f"{res['seconds_on']:.2f} s (median of {repeats}); throughput on/off "
          f"{res['throughput_ratio']:.3f}", flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--cols", type=int, default=32)
    ap.add_argument("--entities", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/drift_speed.json")
    args = ap.parse_args()
    brief = {"train": {"max_steps": 30, "min_steps": 30, "threads": args.threads, "seed": 0}}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        df = table_data(args.rows, args.cols, 0)
        det = Detector(brief).fit(df.iloc[:20_000])
        results.append(measure("table", det, table_data(args.rows, args.cols, 1), args.repeats,
                               work))
        s = series_data(args.rows // 4, args.cols, args.entities, 0)
        sdet = Detector({**brief, "data": {"time_column": "ts", "group_column": "host"}}).fit(
            series_data(20_000, args.cols, args.entities, 1))
        results.append(measure("series", sdet, s, args.repeats, work))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    saved = {k: str(v) for k, v in vars(args).items() if k != "out"}  # no machine paths
    args.out.write_text(json.dumps({"args": saved,
                                    "results": results}, indent=1))


if __name__ == "__main__":
    main()
