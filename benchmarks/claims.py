#!/usr/bin/env python
"""Re-measure the README's figures for cross-fitting and fine-tuning, over several seeds.

    python benchmarks/claims.py                    # seeds 0 1 2, ~3 min on 1 core
    python benchmarks/claims.py --seeds 0 1 2 3 4

The set-ups are the tests' (imported from them, so a figure and its test cannot drift apart):

- cross-fitting, memorising (README "Tables"; tests/tabular/test_crossfit.py,
  `_small_correlated`): the default model fitted on 130 rows, `train.cross_fit` 1 and 2. Median
  reconstruction error of the training rows over that of 2,000 fresh rows of the same source,
  and the share of those fresh rows above the default 1% threshold.
- cross-fitting, what it is for (`_small_with_cluster`): 130 rows of which 10 are a planted
  cluster; the file is scored by the model fitted on it. AUROC of the planted rows, for the
  reconstruction part (the part that is cross-fitted) and for the final score.
- fine-tuning (README "Fine-tuning"; tests/test_transfer.py): a model fitted on make_table's
  1,200 rows, then data with levels, spreads and one relation shifted. Held-out masked-cell loss
  after 25 steps fine-tuned, 25 steps from scratch and 100 steps from scratch.

Seed s: data seed s (the fine-tuning data: make_table(seed=s), shifted(11 + 10 s) to train on,
shifted(12 + 10 s) held out) and train.seed s; seed 0 is exactly the tests' set-up. Threads: 1.
Writes benchmarks/results/claims.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from attnad import __version__  # noqa: E402
from attnad.config import Config  # noqa: E402
from attnad.detector import Detector  # noqa: E402
from attnad.metrics import auroc  # noqa: E402
from tests.factories import FAST, make_table  # noqa: E402
from tests.tabular.test_crossfit import _small_correlated, _small_with_cluster  # noqa: E402
from tests.test_transfer import held_out_loss, shifted, short_config  # noqa: E402


def _config(seed: int, cross_fit: int) -> Config:
    return Config.model_validate({"train": {"threads": 1, "seed": seed, "cross_fit": cross_fit}})


def memorising(seed: int) -> dict:
    df, fresh = _small_correlated(130, seed=seed)
    out = {}
    for k in (1, 2):
        det = Detector(_config(seed, k)).fit(df)
        own = det.reconstruction(det.encode(df)[0])[0]
        new = det.reconstruction(det.encode(fresh)[0])[0]
        out[f"cross_fit_{k}"] = {
            "own_over_fresh_error": float(np.median(own) / np.median(new)),
            "fresh_flagged": float((det.score(fresh) > det.threshold_["value"]).mean())}
    return out


def planted_cluster(seed: int) -> dict:
    df, planted = _small_with_cluster(130, 10, seed)
    y = np.zeros(len(df), int)
    y[planted] = 1
    out = {}
    for k in (1, 2):
        det = Detector(_config(seed, k)).fit(df)
        recon = det.reconstruction(det.encode(df)[0])[0]
        out[f"cross_fit_{k}"] = {"auroc_reconstruction": auroc(y, recon),
                                 "auroc_score": auroc(y, det.score(df))}
    return out


def fine_tuning(seed: int, tmp: Path) -> dict:
    base_cfg = Config.model_validate({**FAST, "data": {"id_columns": ["id"]},
                                      "train": {**FAST["train"], "seed": seed}})
    base = Detector(base_cfg).fit(make_table(1200, seed=seed)[0])
    model_dir = tmp / f"base{seed}"
    base.save(model_dir)
    new, fresh = shifted(seed=11 + 10 * seed), shifted(seed=12 + 10 * seed)
    runs = {"tuned_25": (25, model_dir), "scratch_25": (25, None), "scratch_100": (100, None)}
    out = {}
    for name, (steps, init) in runs.items():
        cfg = short_config(seed=seed, min_steps=steps, max_steps=steps)
        det = Detector(cfg).fit(new, init_from=init)
        out[name] = held_out_loss(det, fresh)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "claims.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    import tempfile
    rows, start = {}, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for s in args.seeds:
            t = time.perf_counter()
            rows[s] = {"memorising": memorising(s), "planted_cluster": planted_cluster(s),
                       "fine_tuning": fine_tuning(s, Path(tmp))}
            rows[s]["seconds"] = round(time.perf_counter() - t, 1)
            print(f"seed {s} done in {rows[s]['seconds']} s", file=sys.stderr)

    def col(path):
        vals = []
        for r in rows.values():
            v = r
            for key in path:
                v = v[key]
            vals.append(v)
        return vals

    lines = [f"seeds {args.seeds} · attnad {__version__} · torch {torch.__version__} · 1 thread",
             "", f"{'figure':52} " + " ".join(f"{'seed ' + str(s):>9}" for s in args.seeds)
             + f" {'mean':>9}"]
    table = [
        ("130 rows, one model: own/fresh error", ("memorising", "cross_fit_1",
                                                  "own_over_fresh_error"), "{:.2f}"),
        ("130 rows, cross-fitted: own/fresh error", ("memorising", "cross_fit_2",
                                                     "own_over_fresh_error"), "{:.2f}"),
        ("130 rows, one model: fresh rows flagged", ("memorising", "cross_fit_1",
                                                     "fresh_flagged"), "{:.2%}"),
        ("130 rows, cross-fitted: fresh rows flagged", ("memorising", "cross_fit_2",
                                                        "fresh_flagged"), "{:.2%}"),
        ("10 planted of 130, one model: AUROC reconstruction", ("planted_cluster", "cross_fit_1",
                                                                "auroc_reconstruction"), "{:.3f}"),
        ("10 planted of 130, cross-fitted: AUROC reconstruction", (
            "planted_cluster", "cross_fit_2", "auroc_reconstruction"), "{:.3f}"),
        ("10 planted of 130, one model: AUROC score", ("planted_cluster", "cross_fit_1",
                                                       "auroc_score"), "{:.3f}"),
        ("10 planted of 130, cross-fitted: AUROC score", ("planted_cluster", "cross_fit_2",
                                                          "auroc_score"), "{:.3f}"),
        ("fine-tuning: held-out loss, tuned 25 steps", ("fine_tuning", "tuned_25"), "{:.2f}"),
        ("fine-tuning: held-out loss, scratch 25 steps", ("fine_tuning", "scratch_25"), "{:.2f}"),
        ("fine-tuning: held-out loss, scratch 100 steps", ("fine_tuning", "scratch_100"),
         "{:.2f}"),
    ]
    means = {}
    for label, path, fmt in table:
        vals = col(path)
        means[".".join(path)] = float(np.mean(vals))
        lines.append(f"{label:52} " + " ".join(f"{fmt.format(v):>9}" for v in vals)
                     + f" {fmt.format(np.mean(vals)):>9}")
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": "python benchmarks/claims.py --seeds " + " ".join(map(str, args.seeds)),
        "attnad": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "threads": 1,
        "seconds": round(time.perf_counter() - start, 1),
        "seeds": {str(s): r for s, r in rows.items()}, "means": means}, indent=1) + "\n")
    print(f"-> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
