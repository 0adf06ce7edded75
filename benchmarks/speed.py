"""Speed and memory benchmark: attnad against the I/O floor and IsolationForest, in one run.

Generates a ROWS x COLS float32 Parquet file (correlated columns), then measures, each in its own
child process so peak RSS is that step's alone (os.wait4 rusage):

- read_floor: pyarrow iter_batches over the file, every column touched, nothing written.
- io_floor: pyarrow iter_batches + ParquetWriter(use_dictionary=False) reading the file and
  writing it back with two added columns: the fastest any scorer can be.
- attnad_train: `attnad train` on a TRAIN_ROWS file (default config; it samples train.max_rows).
- attnad_score: `attnad score` end to end with that model (default tabular config).
- iforest_score: scikit-learn IsolationForest (100 trees) reading the same file in batches and
  scoring it (fit time reported apart).
- attnad_series_train / attnad_series_score: the default time-series model trained on a
  tenth as many rows and scoring a `--series-rows` file of `--series-entities` machines with
  `--series-signals` signals each (daily-periodic, 0.5% spikes); 0 rows skips them.
- rss_*: optional (--rss-rows): peak RSS of `attnad score` on files of several sizes, to show it
  is flat in the file size.

It also counts the model's FLOPs per row (torch.utils.flop_counter), measures an fp32 matmul
ceiling and the model-only throughput, and reports the achieved fraction of the ceiling, all on
the scoring device (--device cuda: train and score on the GPU, the ceiling is the GPU's).

    python benchmarks/speed.py --rows 2000000 --cols 32 --threads 2 --out benchmarks/results/speed.json
    python benchmarks/speed.py --rows 100000 --train-rows 50000 --out /tmp/speed.json   # quick
    python benchmarks/speed.py --rows 10000000 --device cuda --out speed_gpu.json        # GPU
    python benchmarks/speed.py --skip-table --series-rows 1000000 --out /tmp/series.json

Needs the `bench` extra for IsolationForest (pip install -e '.[bench]').
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

ROOT = Path(__file__).resolve().parents[1]

READ = r"""
import sys, pyarrow.compute as pc, pyarrow.parquet as pq
for b in pq.ParquetFile(sys.argv[1]).iter_batches(batch_size=65536):
    for c in b.columns:
        pc.sum(c)
"""

FLOOR = r"""
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
src, dst = sys.argv[1], sys.argv[2]
pf = pq.ParquetFile(src)
schema = pf.schema_arrow.append(pa.field("anomaly_score", pa.float64())).append(
    pa.field("anomaly_flag", pa.bool_()))
with pq.ParquetWriter(dst, schema, use_dictionary=False) as w:
    for b in pf.iter_batches(batch_size=65536):
        s = np.zeros(b.num_rows)
        w.write_batch(pa.RecordBatch.from_arrays(
            b.columns + [pa.array(s), pa.array(s > 1)], schema=schema))
"""

IFOREST = r"""
import sys, time, json, numpy as np, pyarrow.parquet as pq
from sklearn.ensemble import IsolationForest
src, train, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = time.perf_counter()
x = pq.read_table(train).to_pandas().to_numpy(np.float32)
forest = IsolationForest(n_estimators=100, random_state=0, n_jobs=threads).fit(x)
fit_s = time.perf_counter() - t
del x
t = time.perf_counter()
n = 0
for b in pq.ParquetFile(src).iter_batches(batch_size=65536):
    forest.score_samples(np.column_stack([c.to_numpy() for c in b.columns]))
    n += b.num_rows
print(json.dumps({"fit_seconds": fit_s, "score_seconds": time.perf_counter() - t, "rows": n}))
"""


def generate(path: Path, rows: int, cols: int, seed: int) -> None:
    """Rows from 8 latent factors mixed into `cols` columns plus noise; 0.5% shifted rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    rng = np.random.default_rng(seed)
    names = [f"f{j}" for j in range(cols)]
    mix = np.random.default_rng(1).normal(size=(8, cols)).astype(np.float32)
    schema = pa.schema([(n, pa.float32()) for n in names])
    with pq.ParquetWriter(str(path), schema, use_dictionary=False) as w:
        for start in range(0, rows, 262_144):
            n = min(262_144, rows - start)
            x = rng.normal(size=(n, 8)).astype(np.float32) @ mix
            x += 0.1 * rng.normal(size=(n, cols)).astype(np.float32)
            bad = rng.random(n) < 0.005
            x[bad] += rng.normal(0, 3, size=(int(bad.sum()), cols)).astype(np.float32)
            w.write_table(pa.Table.from_arrays([pa.array(x[:, j]) for j in range(cols)], names=names))


def generate_series(path: Path, rows: int, signals: int, entities: int, seed: int) -> None:
    """A multi-entity sensor file: `entities` machines in turn, one row per minute each, with
    `signals` daily-periodic signals driven by 3 shared factors plus noise and 0.5% spikes."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    rng = np.random.default_rng(seed)
    per = rows // entities
    mix = np.random.default_rng(1).normal(size=(3, signals)).astype(np.float32)
    with pq.ParquetWriter(str(path), _series_schema(signals)) as w:
        for e in range(entities):
            n = per + (rows - per * entities if e == entities - 1 else 0)
            t = np.arange(n)
            phase = 2 * np.pi * t / 1440
            f = np.stack([np.sin(phase + k) for k in range(3)], 1).astype(np.float32)
            x = f @ mix + 0.1 * rng.normal(size=(n, signals)).astype(np.float32)
            bad = rng.random(n) < 0.005
            x[bad] += rng.normal(0, 3, size=(int(bad.sum()), signals)).astype(np.float32)
            cols = {"machine": pa.array([f"m{e}"] * n),
                    "time": pa.array(pd.Timestamp("2026-01-01") + pd.to_timedelta(t, "min"))}
            cols.update({f"s{j}": pa.array(x[:, j]) for j in range(signals)})
            w.write_table(pa.table(cols, schema=_series_schema(signals)))


def _series_schema(signals: int):
    import pyarrow as pa
    return pa.schema([("machine", pa.string()), ("time", pa.timestamp("ns"))]
                     + [(f"s{j}", pa.float32()) for j in range(signals)])


def run_child(cmd: list[str], env: dict) -> dict:
    """Run a command; wall seconds and that child's own peak RSS (MiB, from wait4)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    rss = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    return {"seconds": seconds, "peak_rss_mib": round(rss, 1), "stdout": out.decode()}


def model_cost(model_dir: Path, data: Path, threads: int, device: str) -> dict:
    """FLOPs per scored row, fp32 matmul ceiling, model-only rows/s (no file I/O), on `device`."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from attnad.data.io import iter_batches
    from attnad.detector import Detector
    torch.set_num_threads(threads)
    det = Detector.load(model_dir, device=device)
    dev = det.device_
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    batch = next(iter_batches(data, 8192 if dev.type == "cpu" else 262_144))
    enc, _ = det.encode(batch)
    small = enc.take(slice(0, 512))
    # FLOPs are counted in this thread only: score on it (scoring on a CPU splits rows over
    # torch's threads, attnad.parallel)
    torch.set_num_threads(1)
    with FlopCounterMode(display=False) as counter:
        det.scorer.score(small)
    model_flops = counter.get_total_flops() / len(small)
    memory_flops = 0.0
    if det.memory_ is not None:  # a @ m.T per memory: counted the same way
        vec = torch.from_numpy(det.preprocessor_.row_vectors(small))
        with FlopCounterMode(display=False) as counter:
            det.memory_.energy(vec)
        memory_flops = counter.get_total_flops() / len(small)
    torch.set_num_threads(threads)
    n = 2048 if dev.type == "cpu" else 8192
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    a @ b
    sync()
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(5):
            a @ b
        sync()
        best = max(best, 5 * 2 * n**3 / (time.perf_counter() - t))
    del a, b
    det.score_with_contributions(batch.slice(0, 1024))  # warm-up
    t = time.perf_counter()
    det.score_with_contributions(batch)
    model_rps = batch.num_rows / (time.perf_counter() - t)
    flops = model_flops + memory_flops
    return {"flops_per_row": flops, "transformer_flops_per_row": model_flops,
            "memory_flops_per_row": memory_flops, "matmul_ceiling_gflops": best / 1e9,
            "model_only_rows_per_s": model_rps,
            "achieved_fraction_of_ceiling": flops * model_rps / best, "device": str(dev)}


def _command() -> str:
    """The command line, less --workdir/--out values (machine-specific paths)."""
    out, skip = ["benchmarks/speed.py"], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if a in ("--workdir", "--out"):
            skip = True
            continue
        if not a.startswith(("--workdir=", "--out=")):
            out.append(a)
    return " ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows of the scoring file")
    ap.add_argument("--cols", type=int, default=32, help="float32 columns")
    ap.add_argument("--train-rows", type=int, default=1_000_000, help="rows of the training file")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="CPU threads for every step (torch, OpenMP, IsolationForest n_jobs)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/speed.json")
    ap.add_argument("--workdir", type=Path, default=None, help="where data goes (default: temp)")
    ap.add_argument("--skip-iforest", action="store_true", help="without the bench extra")
    ap.add_argument("--rss-rows", default="", help="comma-separated file sizes for the RSS check, "
                    "e.g. 1000000,4000000 (scored with --rss-set, a small model, to save time)")
    ap.add_argument("--rss-set", action="append", default=[],
                    help="--set for the RSS-check model (default: d_model=8, n_layers=1)")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="--set passed to the main attnad train (default config otherwise)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="where attnad trains and scores (--device of train and score)")
    ap.add_argument("--series-rows", type=int, default=1_000_000,
                    help="rows of the time-series scoring file (0: no time-series steps)")
    ap.add_argument("--series-signals", type=int, default=8, help="signals of that file")
    ap.add_argument("--series-entities", type=int, default=3, help="entities (machines) in it")
    ap.add_argument("--skip-table", action="store_true",
                    help="only the time-series steps (no table, floors or IsolationForest)")
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="attnad-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    attnad = [sys.executable, "-m", "attnad"]
    data, train = work / "data.parquet", work / "train.parquet"
    print(f"generating {args.rows:,} x {args.cols} and {args.train_rows:,} training rows in {work}",
          file=sys.stderr)
    if not args.skip_table:
        generate(data, args.rows, args.cols, seed=0)
        generate(train, args.train_rows, args.cols, seed=1)
    rows: dict[str, dict] = {}

    def step(name: str, cmd: list[str], n: int) -> dict:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        r = run_child(cmd, env)
        r["rows"] = n
        r["rows_per_s"] = n / r["seconds"]
        rows[name] = r
        print(f"  {r['seconds']:.1f} s, {r['rows_per_s']:,.0f} rows/s, peak RSS "
              f"{r['peak_rss_mib']:,.0f} MiB", file=sys.stderr, flush=True)  # kept if cut short
        return r

    sets = [f"--set=train.threads={args.threads}"] + [f"--set={s}" for s in args.sets]
    device = ["--device", args.device]
    cost = None
    if not args.skip_table:
        step("read_floor", [sys.executable, "-c", READ, str(data)], args.rows)
        step("io_floor", [sys.executable, "-c", FLOOR, str(data), str(work / "floor.parquet")],
             args.rows)
        tr = step("attnad_train", attnad + ["train", str(train), "-o", str(work / "model"), "-q"]
                  + sets + device, args.train_rows)
        meta = json.loads((work / "model" / "attnad.json").read_text())
        tr["training"] = {k: meta["training"].get(k)
                          for k in ("rows", "epochs", "steps", "seconds")}
        step("attnad_score", attnad + ["score", str(data), "-m", str(work / "model"), "-o",
                                       str(work / "scored.parquet"), "-q"] + device, args.rows)
        if not args.skip_iforest:
            r = step("iforest_score", [sys.executable, "-c", IFOREST, str(data), str(train),
                                       str(args.threads)], args.rows)
            extra = json.loads(r["stdout"].strip().splitlines()[-1])
            r["fit_seconds"] = extra["fit_seconds"]
            r["seconds_with_startup"] = r["seconds"]
            r["seconds"] = extra["score_seconds"]
            r["rows_per_s"] = args.rows / r["seconds"]
        cost = model_cost(work / "model", data, args.threads, args.device)

    if args.series_rows:  # the default time-series model: train on a tenth, score the file
        series, series_train = work / "series.parquet", work / "series_train.parquet"
        generate_series(series, args.series_rows, args.series_signals, args.series_entities, 0)
        generate_series(series_train, max(args.series_rows // 10, 3000), args.series_signals,
                        args.series_entities, 1)
        keys = ["--set=data.time_column=time", "--set=data.group_column=machine"]
        r = step("attnad_series_train", attnad + ["train", str(series_train), "-o",
                                                  str(work / "series_model"), "-q"] + keys
                 + [f"--set=train.threads={args.threads}"] + device,
                 max(args.series_rows // 10, 3000))
        step("attnad_series_score", attnad + ["score", str(series), "-m",
                                              str(work / "series_model"), "-o",
                                              str(work / "series_scored.parquet"), "-q"] + device,
             args.series_rows)
    rss, rss_sets = {}, []
    if args.rss_rows:
        rss_sets = args.rss_set or ["model.d_model=8", "model.n_layers=1", "model.n_heads=1"]
        small = work / "rss_model"
        run_child(attnad + ["train", str(train), "-o", str(small), "-q",
                            f"--set=train.threads={args.threads}", "--set=train.max_steps=200",
                            "--set=train.max_rows=20000"] + [f"--set={s}" for s in rss_sets]
                  + device, env)
        for n in [int(x) for x in args.rss_rows.split(",") if x]:
            f = work / f"rss_{n}.parquet"
            generate(f, n, args.cols, seed=2)
            r = step(f"rss_score_{n}", attnad + ["score", str(f), "-m", str(small), "-o",
                                                 str(work / f"rss_out_{n}.parquet"), "-q"]
                     + device, n)
            rss[n] = r["peak_rss_mib"]
            f.unlink()

    floor = rows["io_floor"]["rows_per_s"] if "io_floor" in rows else None
    for r in rows.values():
        r.pop("stdout", None)
        r["floor_over_this"] = floor / r["rows_per_s"] if floor else None
    result = {"rows": args.rows, "cols": args.cols, "train_rows": args.train_rows,
              "threads": args.threads, "cpu_count": os.cpu_count(), "machine": platform.machine(),
              "python": platform.python_version(), "device": args.device, "steps": rows,
              "model": cost, "rss_by_rows": rss, "rss_model_sets": rss_sets if rss else None,
              "command": _command()}
    if "iforest_score" in rows:
        result["attnad_over_iforest_speed"] = (rows["attnad_score"]["rows_per_s"]
                                               / rows["iforest_score"]["rows_per_s"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{'step':<22}{'rows':>11}{'seconds':>10}{'rows/s':>12}{'peak RSS MiB':>14}"
          f"{'floor/this':>12}")
    for name, r in rows.items():
        ratio = f"{r['floor_over_this']:>12.1f}" if r["floor_over_this"] else f"{'':>12}"
        print(f"{name:<22}{r['rows']:>11,}{r['seconds']:>10.1f}{r['rows_per_s']:>12,.0f}"
              f"{r['peak_rss_mib']:>14,.0f}{ratio}")
    if "iforest_score" in rows:
        print(f"IsolationForest fit: {rows['iforest_score']['fit_seconds']:.1f} s; attnad score "
              f"speed / IsolationForest: {result['attnad_over_iforest_speed']:.3f}")
    if cost:
        print(f"model: {cost['flops_per_row'] / 1e6:.2f} MFLOP/row (transformer "
              f"{cost['transformer_flops_per_row'] / 1e6:.2f}, row memory "
              f"{cost['memory_flops_per_row'] / 1e6:.2f}); fp32 matmul ceiling "
              f"{cost['matmul_ceiling_gflops']:.0f} GFLOP/s on {cost['device']} ({args.threads} CPU "
              "threads); model-only "
              f"{cost['model_only_rows_per_s']:,.0f} rows/s = "
              f"{100 * cost['achieved_fraction_of_ceiling']:.1f}% of the ceiling")
    if rss:
        print(f"peak RSS while scoring (model trained with {' '.join(rss_sets)}): " +
              ", ".join(f"{n:,} rows {v:,.0f} MiB" for n, v in rss.items()))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
