#!/usr/bin/env python
"""Tables with anomalies of a known kind, built from the normal rows of real tables (ADBench's
synthetic protocol, Han et al. 2022, section 4.3), for the families the developer suite lacks.

For each source table, a Gaussian mixture is fitted to its normal rows (components chosen by BIC,
1-6) and new rows are drawn from it:

- `local`: anomalies from the same mixture with every covariance scaled by 5: inside every
  column's range, far only from their own neighbours (where kNN beats density-by-subsample);
- `cluster`: anomalies from the mixture with every mean scaled by 5 and covariances kept, a
  tight group that shields itself from detectors that trust training rows;
- `global`: anomalies uniform over 1.1x each column's range.

Each set gets min(2,000, its normal rows) normal rows and 5% anomalies, as Parquet with the
suite's label column, plus a manifest.json, so `benchmarks/accuracy.py --data DIR` runs on it.

    python benchmarks/synthetic_tables.py --out DIR --seed 0
    python benchmarks/accuracy.py --data DIR --suite tabular
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import accuracy as acc  # noqa: E402

SOURCES = ["adbench_cardio", "adbench_fault", "adbench_pageblocks", "adbench_spambase",
           "adbench_wilt", "adbench_annthyroid", "adbench_pima", "adbench_stamps",
           "adbench_wdbc", "adbench_cardiotocography"]
KINDS = ["local", "cluster", "global"]
NORMAL_ROWS = 2000
ANOMALY_SHARE = 0.05
SCALE = 5.0  # ADBench's alpha for local (covariance) and clustered (mean) anomalies


def mixture(x: np.ndarray, seed: int):
    from sklearn.mixture import GaussianMixture

    best = None
    for k in range(1, 7):
        gm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(x)
        bic = gm.bic(x)
        if best is None or bic < best[0]:
            best = (bic, gm)
    return best[1]


def draw(gm, n: int, rng: np.random.Generator, cov_scale: float = 1.0, mean_scale: float = 1.0):
    comp = rng.choice(len(gm.weights_), size=n, p=gm.weights_)
    out = np.empty((n, gm.means_.shape[1]))
    for j in range(len(gm.weights_)):
        idx = np.flatnonzero(comp == j)
        if idx.size:
            out[idx] = rng.multivariate_normal(gm.means_[j] * mean_scale,
                                               gm.covariances_[j] * cov_scale, size=idx.size)
    return out


def build(data_dir: Path, out: Path, seed: int) -> list[dict]:
    manifest = {d["name"]: d for d in acc.load_manifest(data_dir)}
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for name in SOURCES:
        ds = manifest[name]
        df = acc.read_file(data_dir, ds["files"]["full"])
        feats = acc.feature_columns(ds, df)
        x = df.loc[df[acc.LABEL] == 0, feats].to_numpy(np.float64)
        mu, sd = x.mean(0), x.std(0)
        sd[sd == 0] = 1.0
        z = (x - mu) / sd
        gm = mixture(z, seed)
        rng = np.random.default_rng([seed, SOURCES.index(name)])
        n = min(NORMAL_ROWS, len(z))
        k = max(1, int(round(n * ANOMALY_SHARE)))
        normal = draw(gm, n, rng)
        lo, hi = z.min(0), z.max(0)
        for kind in KINDS:
            if kind == "local":
                anom = draw(gm, k, rng, cov_scale=SCALE)
            elif kind == "cluster":
                anom = draw(gm, k, rng, mean_scale=SCALE)
            else:
                mid, half = (lo + hi) / 2, (hi - lo) / 2 * 1.1
                anom = rng.uniform(mid - half, mid + half, size=(k, z.shape[1]))
            rows = np.vstack([normal, anom]) * sd + mu
            label = np.r_[np.zeros(n, int), np.ones(k, int)]
            order = rng.permutation(len(rows))
            table = pd.DataFrame(rows[order], columns=feats)
            table[acc.LABEL] = label[order]
            set_name = f"synth_{kind}_{name.removeprefix('adbench_')}"
            path = out / f"{set_name}.parquet"
            table.to_parquet(path, index=False)
            entries.append({"name": set_name, "kind": "tabular", "files": {"full": path.name},
                            "feature_columns": feats, "categorical_columns": [],
                            "entity_column": None, "timestamp_column": None,
                            "source": f"{name}: Gaussian mixture of its normal rows "
                                      f"({len(gm.weights_)} components), {kind} anomalies"})
        print(f"{name}: {len(gm.weights_)} components, {n} normal + {k} anomalies per kind",
              flush=True)
    (out / "manifest.json").write_text(json.dumps(entries, indent=1))
    return entries


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data", help="the developer data (source tables)")
    p.add_argument("--out", required=True, help="folder for the tables and manifest.json")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    build(acc.resolve_data(args.data), Path(args.out), args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
