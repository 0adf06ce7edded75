"""CPU thread policy under contention: wall time of a one-shot `attnad detect` on a shared machine.

Issue 19, item 7: with every core given to torch (`train.threads: 0`), a one-shot `detect` on a 12k
row table ran 9x slower than with `train.threads=1` while another process used the CPU. Torch's
CPU build runs its intra-op parallelism on OpenMP (libgomp); libgomp's idle threads spin-wait
(GOMP_SPINCOUNT, about 3 ms, when OMP_WAIT_POLICY is unset) before they sleep, and every parallel
region ends at a barrier that waits for its slowest thread. With another process on one of the
cores, that thread is time-sliced with it, and the others burn their share spinning.

What it does: writes a seeded mixed table (ROWS x 16: 12 correlated numeric columns, 3
categoricals, 1 count; a few injected anomalies) and times `attnad detect FILE -o OUT` (fit on the
file, then score it; the full default config unless --max-steps) in a fresh child process, wall
clock from process start to exit, under several thread policies, each alone and with N competing
CPU-bound processes (`while True: pass`, started by this script before the run and killed after;
same session, so the same scheduler autogroup as attnad). Variants are interleaved and repeated
(--rounds, order reversed every other round) so noise from other users of the machine shows as a
spread, not as a difference between policies. For each run it records wall, user and system CPU
seconds of the child (os.wait4), voluntary/involuntary context switches, the most threads seen
in /proc/PID/task, and the load average before the run.

Policies (train.threads and the OpenMP environment of the child):

- spin:     train.threads=0 (all cores), GOMP_SPINCOUNT=300000: libgomp's own default when
            OMP_WAIT_POLICY is unset (OMP_DISPLAY_ENV shows the same), i.e. attnad before this
            benchmark's fix, whatever attnad now sets.
- active:   train.threads=0, OMP_WAIT_POLICY=ACTIVE: idle threads spin for minutes (evidence).
- passive:  train.threads=0, OMP_WAIT_POLICY=PASSIVE: idle threads sleep at once (futex).
- spin10k, spin1k: train.threads=0, GOMP_SPINCOUNT=10000 or 1000: a shorter spin, then sleep.
- threads1: train.threads=1 and OMP_NUM_THREADS=1: no OpenMP team at all.
- default:  no OMP_*/GOMP_* variables, no --set: what attnad does out of the box today.

Scores: runs with the same thread count must give identical anomaly_score columns (checked over
every policy, round and competition level); the two thread counts may differ in the last bits
(reduction order), reported as the largest absolute and relative difference.

    python benchmarks/threads.py                                  # full: ~40 min on 2 busy cores
    python benchmarks/threads.py --rounds 1 --competitors 0,1 --max-steps 200   # quick look
    python benchmarks/threads.py --policies spin,passive --competitors 1 --rounds 3

Writes benchmarks/results/threads.json and threads.md (--out, --md) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ATTNAD = [sys.executable, "-m", "attnad"] if not (Path(sys.executable).parent / "attnad").exists() \
    else [str(Path(sys.executable).parent / "attnad")]
BUSY = "while True: pass"
OMP_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "OMP_PROC_BIND", "OMP_DYNAMIC")

POLICIES = {  # name: (environment added to the child's, --set overrides, thread count or 0 = cores)
    "spin": ({"GOMP_SPINCOUNT": "300000"}, ["train.threads=0"], 0),
    "active": ({"OMP_WAIT_POLICY": "ACTIVE"}, ["train.threads=0"], 0),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, ["train.threads=0"], 0),
    "spin10k": ({"GOMP_SPINCOUNT": "10000"}, ["train.threads=0"], 0),
    "spin1k": ({"GOMP_SPINCOUNT": "1000"}, ["train.threads=0"], 0),
    "threads1": ({"OMP_NUM_THREADS": "1"}, ["train.threads=1"], 1),  # env: score -m too
    "default": ({}, [], None),  # None: whatever the library picks
}


def make_table(rows: int, seed: int) -> pd.DataFrame:
    """Seeded mixed table: 12 numeric columns driven by 3 latent factors, 3 categoricals (one tied
    to a factor), one Poisson count; the first 0.5% of rows are shifted anomalies."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, 3))
    cols = {f"x{i}": z @ rng.normal(size=3) + 0.3 * rng.normal(size=rows) for i in range(12)}
    cols["region"] = rng.choice(["north", "south", "east", "west", "centre"], rows)
    cols["tier"] = np.where(z[:, 0] > 0.5, "gold", np.where(z[:, 0] > -0.5, "silver", "bronze"))
    cols["channel"] = rng.choice(["web", "app", "store", "phone"], rows, p=[.5, .3, .15, .05])
    cols["items"] = rng.poisson(np.exp(0.5 + 0.3 * z[:, 1]))
    df = pd.DataFrame(cols)
    k = max(1, rows // 200)
    df.iloc[:k, :4] += 6.0
    df.loc[: k - 1, "tier"] = "bronze"
    return df


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_one(policy: str, competitors: int, base: list[str], out: Path, extra: list[str]) -> dict:
    env_add, sets, _ = POLICIES[policy]
    if base[0] == "score":  # train.* is fixed in the model: only the environment applies
        sets = []
    env = {k: v for k, v in os.environ.items() if k not in OMP_VARS}
    env.update(env_add)
    cmd = ATTNAD + base + ["-o", str(out), "--quiet"]
    for s in sets + extra:
        cmd += ["--set", s]
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(competitors)]
    try:
        if busy:
            time.sleep(1.0)  # let them reach full speed
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak = [0]
        done = threading.Event()

        def watch():
            task = Path(f"/proc/{child.pid}/task")
            while not done.wait(0.25):
                try:
                    peak[0] = max(peak[0], len(os.listdir(task)))
                except OSError:
                    return
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, ru = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        err = child.stderr.read().decode(errors="replace")
        child.returncode = os.waitstatus_to_exitcode(status)
    finally:
        for b in busy:
            b.kill()
        for b in busy:
            b.wait()
    if child.returncode not in (0, 1):  # 1: a --fail-on gate, not an error (none is set here)
        raise SystemExit(f"{' '.join(cmd)} failed ({child.returncode}):\n{err}")
    return {"policy": policy, "competitors": competitors, "wall_s": round(wall, 2),
            "user_s": round(ru.ru_utime, 2), "sys_s": round(ru.ru_stime, 2),
            "cpu_per_wall": round((ru.ru_utime + ru.ru_stime) / wall, 2),
            "voluntary_switches": ru.ru_nvcsw, "involuntary_switches": ru.ru_nivcsw,
            "max_threads_seen": peak[0], "load_before": round(load, 2), "output": str(out)}


def score_check(runs: list[dict], ncores: int) -> dict:
    """Identical scores within a thread count; the largest difference between thread counts."""
    groups: dict[int, list[np.ndarray]] = {}
    for r in runs:
        groups.setdefault(r["threads"], []).append(
            pd.read_parquet(r["output"], columns=["anomaly_score"])["anomaly_score"].to_numpy()
            if r["output"].endswith(".parquet") else
            pd.read_csv(r["output"], usecols=["anomaly_score"])["anomaly_score"].to_numpy())
    same = {str(t): all(np.array_equal(s[0], x) for x in s[1:]) for t, s in groups.items()}
    res = {"identical_within_thread_count": same, "runs_per_thread_count":
           {str(t): len(s) for t, s in groups.items()}}
    if len(groups) > 1:
        a, b = (groups[t][0] for t in sorted(groups)[:2])
        diff = np.abs(a - b)
        res["between_thread_counts"] = {
            "threads": sorted(groups)[:2], "max_abs_diff": float(diff.max()),
            "max_rel_diff": float((diff / np.maximum(np.abs(a), 1e-12)).max()),
            "rows_different": int((diff > 0).sum()), "rows": int(len(a)),
            "spearman": float(pd.Series(a).corr(pd.Series(b), method="spearman"))}
    return res


def summarise(runs: list[dict], policies: list[str], levels: list[int]) -> list[dict]:
    rows = []
    for c in levels:
        base = [r["wall_s"] for r in runs if r["competitors"] == c and r["policy"] == "threads1"]
        for p in policies:
            rs = [r for r in runs if r["competitors"] == c and r["policy"] == p]
            if not rs:
                continue
            walls = [r["wall_s"] for r in rs]
            rows.append({"competitors": c, "policy": p, "threads": rs[0]["threads"],
                         "wall_s": walls, "median_wall_s": float(np.median(walls)),
                         "median_user_s": float(np.median([r["user_s"] for r in rs])),
                         "median_cpu_per_wall": float(np.median([r["cpu_per_wall"] for r in rs])),
                         "max_threads_seen": max(r["max_threads_seen"] for r in rs),
                         "vs_threads1": round(float(np.median(walls) / np.median(base)), 2)
                         if base else None})
    return rows


def table(summary: list[dict]) -> str:
    head = ("| competing procs | policy | threads | wall s (each round) | median wall s | "
            "median user s | CPU/wall | x threads1 | max threads |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for s in summary:
        lines.append(f"| {s['competitors']} | {s['policy']} | {s['threads']} | "
                     f"{', '.join(f'{w:.1f}' for w in s['wall_s'])} | {s['median_wall_s']:.1f} | "
                     f"{s['median_user_s']:.1f} | {s['median_cpu_per_wall']:.2f} | "
                     f"{s['vs_threads1'] if s['vs_threads1'] is not None else '-'} | "
                     f"{s['max_threads_seen']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", choices=["detect", "score"], default="detect",
                    help="score: time `attnad score` of --score-rows rows with one saved model")
    ap.add_argument("--rows", type=int, default=12_000)
    ap.add_argument("--score-rows", type=int, default=400_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--policies", default="spin,passive,threads1,default")
    ap.add_argument("--competitors", default=None,
                    help="comma list of competing busy processes per run (default: 0,1,CORES)")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="--set train.max_steps=N for a quicker, shorter training (default: full)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/threads.json")
    ap.add_argument("--md", type=Path, default=ROOT / "benchmarks/results/threads.md")
    args = ap.parse_args()

    ncores = cores()
    policies = args.policies.split(",")
    for p in policies:
        if p not in POLICIES:
            ap.error(f"unknown policy {p!r}; one of {', '.join(POLICIES)}")
    levels = [int(x) for x in (args.competitors or f"0,1,{ncores}").split(",")]
    levels = list(dict.fromkeys(levels))
    extra = [f"train.max_steps={args.max_steps}"] if args.max_steps else []

    work = Path(args.workdir or tempfile.mkdtemp(prefix="attnad-threads-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "table.csv"
    make_table(args.rows, args.seed).to_csv(data, index=False)
    if args.task == "detect":
        base, suffix = ["detect", str(data)], ".csv"
    else:  # one model (1 thread, short training: only scoring is timed), a big Parquet file
        model = work / "model"
        subprocess.run(ATTNAD + ["train", str(data), "-o", str(model), "--quiet", "--set",
                                 "train.threads=1", "--set", "train.max_steps=200"], check=True)
        big = work / "score.parquet"
        make_table(args.score_rows, args.seed + 1).to_parquet(big, index=False)
        base, suffix = ["score", str(big), "-m", str(model)], ".parquet"
    probe = subprocess.run([sys.executable, "-c", "import attnad.training as t, torch; "
                            "t.set_threads(0); print(torch.get_num_threads())"],
                           env={k: v for k, v in os.environ.items() if k not in OMP_VARS},
                           capture_output=True, text=True)
    default_threads = int(probe.stdout.strip() or 0) if probe.returncode == 0 else None

    runs: list[dict] = []
    start = time.time()
    for rnd in range(args.rounds):
        order = policies if rnd % 2 == 0 else policies[::-1]
        for c in levels:
            for p in order:
                out = work / f"{args.task}_{p}_c{c}_r{rnd}{suffix}"
                r = run_one(p, c, base, out, extra)
                t = POLICIES[p][2]
                r["threads"] = (ncores if t == 0 else t) if t is not None else default_threads
                r["round"] = rnd
                runs.append(r)
                print(f"round {rnd} competitors {c} {p:9s} wall {r['wall_s']:7.1f}s user "
                      f"{r['user_s']:7.1f}s sys {r['sys_s']:5.1f}s threads<= "
                      f"{r['max_threads_seen']:3d} load {r['load_before']:.1f}", flush=True)

    summary = summarise(runs, policies, levels)
    scores = score_check(runs, ncores)
    result = {
        "benchmark": "benchmarks/threads.py", "argv": sys.argv[1:],
        "machine": {"cores": ncores, "cpu": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
        "rows": args.rows, "cols": 16, "max_steps": args.max_steps or "config default",
        "task": args.task, "command": " ".join(["attnad"] + [Path(x).name for x in base]
                                               + ["-o", "OUT", "--quiet", "[--set ...]"]),
        "score_rows": args.score_rows if args.task == "score" else None,
        "policies": {p: {"env": POLICIES[p][0], "set": POLICIES[p][1]} for p in policies},
        "default_threads": default_threads, "total_seconds": round(time.time() - start, 1),
        "summary": summary, "scores": scores,
        "runs": [{k: v for k, v in r.items() if k != "output"} for r in runs],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    what = (f"one-shot `attnad detect`, {args.rows} x 16 table" if args.task == "detect" else
            f"`attnad score -m MODEL`, {args.score_rows} x 16 Parquet file")
    md = [f"# Thread policy under contention ({what})", "",
          f"`python benchmarks/threads.py {' '.join(sys.argv[1:])}` on {ncores} cores; "
          f"{args.rounds} rounds, variants interleaved; max_steps: {result['max_steps']}. "
          f"Competing processes: `python -c '{BUSY}'`.", "", table(summary), "",
          f"Scores: {json.dumps(scores)}", ""]
    args.md.write_text("\n".join(md))
    print()
    print(table(summary))
    print(json.dumps(scores, indent=1))
    print(f"\n{args.out}\n{args.md}  ({result['total_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
