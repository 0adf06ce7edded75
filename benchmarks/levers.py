#!/usr/bin/env python
"""The levers measured for the cost of an answer (issue 21), each in isolation, in one run.

    python benchmarks/levers.py                 # ~1 min on 2 cores
    python benchmarks/levers.py --compile       # adds torch.compile (inductor): ~1 more minute

- training: two default table models (16 numeric columns, batches of 256 rows), a fixed number
  of AdamW steps each, (a) one after the other on one torch thread, (b) one after the other on
  2 torch threads (how attnad trained before), (c) at once on two Python threads with one torch
  thread each (attnad.parallel, how it trains now). OMP_WAIT_POLICY=PASSIVE, as attnad sets it.
- attention: the model's cross-attention (256 rows, 4 heads of 8, 32 queries, 33 keys, a mask)
  through torch's scaled_dot_product_attention and written out as softmax(q k^T + mask) v.
- compile (--compile): the default model's scoring pass at 32 columns eager and compiled by
  torch.compile (inductor, CPU), and the compile time, on one thread.

Prints a table and writes benchmarks/results/levers.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from attnad.config import LeaveOneOutConfig  # noqa: E402
from attnad.models.leave_one_out import LeaveOneOutTransformer  # noqa: E402
from attnad.tabular.training import row_losses  # noqa: E402
from attnad.training import trimmed_loss  # noqa: E402

COLS, BATCH = 16, 256


def _model(cols: int = COLS) -> LeaveOneOutTransformer:
    torch.manual_seed(0)
    return LeaveOneOutTransformer(LeaveOneOutConfig(), n_numeric=cols, cardinalities=[])


def _train(model, steps: int) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(4096, COLS, generator=gen)
    miss = torch.zeros(BATCH, COLS, dtype=torch.bool)
    cat = torch.zeros(BATCH, 0, dtype=torch.long)
    mask = model.training_masks(BATCH, gen, "cpu")
    for _ in range(steps):
        idx = torch.randint(0, len(data), (BATCH,), generator=gen)
        loss = trimmed_loss(row_losses(model, data[idx], miss, cat, mask), 0.05)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()


def training(steps: int) -> dict:
    _train(_model(), 5)  # warm-up
    out = {}
    for name, threads in (("sequential_1_thread", 1), ("sequential_2_threads", 2)):
        torch.set_num_threads(threads)
        models = [_model(), _model()]
        t = time.perf_counter()
        for m in models:
            _train(m, steps)
        out[name] = time.perf_counter() - t
    torch.set_num_threads(1)
    models = [_model(), _model()]
    workers = [threading.Thread(target=_train, args=(m, steps)) for m in models]
    t = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out["two_python_threads_1_thread_each"] = time.perf_counter() - t
    return {k: round(v, 3) for k, v in out.items()}


def _per_call(fn, n: int = 50) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def attention() -> dict:
    torch.set_num_threads(1)
    B, H, Q, K, dh = 256, 4, 32, 33, 8
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, n, dh, generator=g) for n in (Q, K, K))
    allowed = torch.cat([~torch.eye(Q, dtype=torch.bool), torch.ones(Q, 1, dtype=torch.bool)], 1)
    bias = torch.zeros(Q, K).masked_fill(~allowed, -math.inf)
    sdpa = _per_call(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=allowed))
    manual = _per_call(lambda: torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + bias, -1)
                       @ v)
    return {"sdpa_ms": round(1000 * sdpa, 3), "written_out_ms": round(1000 * manual, 3)}


def compiled(cols: int = 32) -> dict:
    torch.set_num_threads(1)
    model = _model(cols).eval()
    num = torch.randn(BATCH, cols)
    miss = torch.zeros(BATCH, cols, dtype=torch.bool)
    cat = torch.zeros(BATCH, 0, dtype=torch.long)

    def eager():
        with torch.inference_mode():
            return model.cell_errors(num, miss, cat, None)

    t = time.perf_counter()
    fast = torch.compile(model.cell_errors, dynamic=False)
    with torch.inference_mode():
        fast(num, miss, cat, None)
    compile_s = time.perf_counter() - t

    def run():
        with torch.inference_mode():
            return fast(num, miss, cat, None)

    diff = (run() - eager()).abs().max().item() / eager().abs().max().item()
    e, c = _per_call(eager, 40), _per_call(run, 40)
    return {"eager_rows_per_s": round(BATCH / e), "compiled_rows_per_s": round(BATCH / c),
            "compile_seconds": round(compile_s, 1), "max_relative_difference": diff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60, help="AdamW steps per model")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/levers.json")
    args = ap.parse_args()
    result = {"cpus": len(os.sched_getaffinity(0)), "torch": torch.__version__,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "steps": args.steps,
              "training_seconds": training(args.steps), "attention": attention()}
    if args.compile:
        result["compile"] = compiled()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    tr = result["training_seconds"]
    print(f"training 2 models x {args.steps} steps (s): " + ", ".join(
        f"{k} {v:.2f}" for k, v in tr.items()))
    print(f"  two Python threads vs 2 torch threads: "
          f"{tr['sequential_2_threads'] / tr['two_python_threads_1_thread_each']:.2f}x; "
          f"2 torch threads vs 1: {tr['sequential_1_thread'] / tr['sequential_2_threads']:.2f}x")
    a = result["attention"]
    print(f"attention per call (ms): sdpa {a['sdpa_ms']}, written out {a['written_out_ms']}")
    if args.compile:
        c = result["compile"]
        print(f"scoring pass, 32 columns, 1 thread: eager {c['eager_rows_per_s']:,} rows/s, "
              f"compiled {c['compiled_rows_per_s']:,} rows/s after {c['compile_seconds']} s of "
              f"compiling (max relative difference {c['max_relative_difference']:.1e})")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
