#!/usr/bin/env python
"""attnad accuracy benchmark: attnad against classical baselines on the developer suite.

    python benchmarks/accuracy.py                                 # tabular + time series
    python benchmarks/accuracy.py --suite tabular --protocol both
    python benchmarks/accuracy.py --suite timeseries --detectors iforest,pca,knn
    python benchmarks/accuracy.py --only adbench_wine adbench_glass --detectors iforest,ecod

Reads ``manifest.json`` of the data folder (default ``../shared/data``, see its README.md) and
writes ``<out>/accuracy_<suite>.md`` and ``<out>/accuracy_<suite>.json``; the markdown is also
printed.  Everything is seeded (``--seed``): the same seed gives the same numbers.

Protocols
---------
Tabular (both reported with ``--protocol both``):

* **U** (unsupervised / contaminated): fit on the whole file and score it (transductive, as in
  ADBench).  NSL-KDD: fit on the train file (47 % attacks), score the test file.
* **S** (semi-supervised / clean): fit on a seeded half of the normal rows, score the other
  half plus every anomaly.  NSL-KDD: fit on the normal rows of the train file, score the
  test file (it holds attack types that are absent from the train file).

Files with more than ``--max-rows`` rows (default 50,000) are first reduced to a seeded
stratified subsample of that size (NSL-KDD: each file separately); the table says which.

Time series: fit on the train part where the file has one; NAB has none, so fit on the first
15 % of rows (NAB's own "probationary period") and score the remaining 85 %.  Stacked
multi-entity files (``smd_dev``, ``asd_dev``) are fitted as one data set; windows never
cross entities.  Metrics are computed on the scored rows in file order.

Baselines (need the optional ``bench`` extra: ``pip install -e '.[bench]'``)
---------------------------------------------------------------------------
Tabular, on numeric matrices (numeric columns robust-scaled with the fit rows' median/IQR -
falling back to the std, then 1, for constant-IQR columns - NaN -> 0 after scaling;
categorical columns one-hot encoded over their ``--top-categories`` most frequent fit values
plus an "other" column):

* ``iforest``  sklearn IsolationForest(random_state=seed)
* ``ecod``     PyOD ECOD (Li et al., TKDE 2022)
* ``knn``      PyOD KNN defaults (distance to the 5th neighbour)
* ``pca``      PyOD PCA (weighted distance to the principal hyperplanes), with
               ``n_components`` = numerical rank of the standardised fit matrix: PyOD's default
               (all components) divides by zero eigenvalues on data with constant or collinear
               columns, so every score became inf (AUROC 0.5 on mnist, cardio, fault, NSL-KDD)
* ``copod``    PyOD COPOD (Li et al., ICDM 2020)

In protocol U the PyOD models report their training scores ``decision_scores_`` (for kNN that
excludes each row from its own neighbours).

Time series, on sliding windows (length ``--window`` = 32, stride 1, a window ending at every
step from the 32nd on; features robust-scaled per entity on its train part; a step's score is the
mean of the scores of all windows covering it):

* ``iforest``  IsolationForest on flattened windows
* ``pca``      window PCA (90 % variance) reconstruction error
* ``pca_norm`` window PCA, each feature's reconstruction error divided by its mean on the
               training windows, averaged over features (stops high-variance features from
               drowning the rest)
* ``knn``      distance to the 5th nearest training window (training windows subsampled to
               at most 5,000)

Event-level evaluation (time series): each detector's flags are grouped into events per entity
by attnad's own rule (``attnad.metrics.flag_runs`` with ``threshold.merge_gap`` and
``threshold.min_event_steps``, as ``detect --events`` groups them); a labelled range is found
when an event overlaps it, an event overlapping no range is a false alarm
(``attnad.metrics.event_scores``): event precision, recall and F1, never point-adjusted F1.
attnad flags at its own fitted threshold; a baseline flags above the (1 - threshold.contamination)
quantile of its own step scores on the train part, the rule attnad's default quantile threshold
applies to its training scores. The JSON also holds event F1 at other merge gaps.

Fitting uses at most ``--max-train-windows`` (10,000) seeded training windows for iforest/PCA.
``--detectors`` names that do not exist for a suite (``ecod``/``copod`` for time series,
``pca_norm`` for tabular) are skipped there.

attnad is called through its Python API (``attnad.config.Config`` / ``attnad.detector.Detector``)
with defaults plus ``train.seed`` and ``train.threads``; ``--attnad-set KEY=VALUE`` overrides
config keys.  If it cannot be imported the attnad column says so and the baselines still run.

Metrics (attnad/metrics.py): AUROC, AUPRC (average precision); time series also VUS-PR with
buffer lengths 0..2*window (Paparrizos et al., VLDB 2022) and best-F1 without point adjustment.
Means are over the data sets where the detector produced scores and the metric is defined
(the ``n`` column).  Ranks are per data set (AUROC for tabular, VUS-PR for time series; 1 =
best; ties averaged); a detector that failed on a data set is ranked last there, data sets
where the metric is undefined (single-class labels) are left out of the ranking.
"""

from __future__ import annotations

import os

# one thread per BLAS/OpenMP pool before numpy is imported (``--threads`` overrides for torch)
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from attnad.metrics import auprc, auroc, best_f1, event_scores, flag_runs, segments, vus  # noqa: E402

LABEL = "is_anomaly"
TAB_BASELINES = ["iforest", "ecod", "knn", "pca", "copod"]
TS_BASELINES = ["iforest", "pca", "pca_norm", "knn"]
ALL_DETECTORS = ["attnad"] + TAB_BASELINES + ["pca_norm"]
DEFAULT_DETECTORS = "attnad,iforest,ecod,knn,pca,copod,pca_norm"
NAB_FIT_FRACTION = 0.15
EVENT_GAPS = (1, 3, 10, 30, 100)  # merge gaps the JSON also reports event F1 at
KNN_MAX_TRAIN_WINDOWS = 5000


# ======================================================================================
# small helpers
# ======================================================================================
def stable_rng(seed: int, *keys: str) -> np.random.Generator:
    """RNG seeded by the run seed and names (crc32, not Python's salted hash())."""
    return np.random.default_rng([seed] + [zlib.crc32(k.encode()) for k in keys])


def stratified_subsample(y: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted row indices of a stratified (by label) subsample of at most ``max_rows`` rows."""
    n = y.size
    if n <= max_rows:
        return np.arange(n)
    keep = []
    classes = np.unique(y)
    for c in classes:
        idx = np.flatnonzero(y == c)
        k = max(1, int(round(max_rows * idx.size / n)))
        keep.append(rng.choice(idx, size=min(k, idx.size), replace=False))
    return np.sort(np.concatenate(keep))


def robust_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column median and scale (IQR; std where the IQR is 0; 1 where both are 0); NaN ignored."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        med = np.nanmedian(x, axis=0)
        q75, q25 = np.nanpercentile(x, [75, 25], axis=0)
        iqr = q75 - q25
        std = np.nanstd(x, axis=0)
    med = np.where(np.isfinite(med), med, 0.0)
    scale = np.where(np.isfinite(iqr) & (iqr > 0), iqr, np.where(np.isfinite(std) & (std > 0), std, 1.0))
    return med, scale


def robust_apply(x: np.ndarray, med: np.ndarray, scale: np.ndarray) -> np.ndarray:
    z = (x - med) / scale
    z[~np.isfinite(z)] = 0.0
    return z


def fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def short_error(e: BaseException) -> str:
    msg = f"{type(e).__name__}: {e}".replace("\n", " ").replace("|", "/")
    return msg[:300]


# ======================================================================================
# tabular feature preparation for the baselines
# ======================================================================================
class TabularEncoder:
    """Robust-scaled numeric columns + one-hot top categories, fitted on the fit rows."""

    def __init__(self, features: list[str], categorical: list[str], top: int):
        self.features = features
        self.categorical = categorical
        self.top = top

    def fit(self, df: pd.DataFrame) -> "TabularEncoder":
        cat = [c for c in self.features if c in self.categorical or not pd.api.types.is_numeric_dtype(df[c])]
        if any(pd.api.types.is_bool_dtype(df[c]) for c in self.features):
            cat += [c for c in self.features if pd.api.types.is_bool_dtype(df[c]) and c not in cat]
        self.cat_ = cat
        self.num_ = [c for c in self.features if c not in cat]
        x = df[self.num_].to_numpy(dtype=np.float64, na_value=np.nan) if self.num_ else np.zeros((len(df), 0))
        self.med_, self.scale_ = robust_stats(x) if self.num_ else (np.zeros(0), np.zeros(0))
        self.vocab_ = {}
        for c in cat:
            vc = df[c].astype("string").fillna("<NA>").value_counts()
            # most frequent first, ties broken by value so the vocabulary ignores row order
            ranked = sorted(zip(vc.index.tolist(), vc.tolist()), key=lambda kv: (-kv[1], str(kv[0])))
            self.vocab_[c] = [str(k) for k, _ in ranked[: self.top]]
        return self

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        parts = []
        if self.num_:
            x = df[self.num_].to_numpy(dtype=np.float64, na_value=np.nan)
            parts.append(robust_apply(x, self.med_, self.scale_))
        for c in self.cat_:
            v = df[c].astype("string").fillna("<NA>").to_numpy()
            vocab = self.vocab_[c]
            onehot = np.zeros((len(df), len(vocab) + 1))
            pos = {k: i for i, k in enumerate(vocab)}
            col = np.fromiter((pos.get(s, len(vocab)) for s in v), dtype=np.int64, count=len(v))
            onehot[np.arange(len(df)), col] = 1.0
            parts.append(onehot)
        return np.hstack(parts) if parts else np.zeros((len(df), 0))


def numerical_rank(x: np.ndarray) -> int:
    """Rank of the column-standardised matrix (what PyOD PCA decomposes)."""
    std = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return max(1, int(np.linalg.matrix_rank(z)))


def make_tabular_baseline(name: str, seed: int, x_fit: np.ndarray | None = None):
    if name == "iforest":
        from sklearn.ensemble import IsolationForest

        return IsolationForest(random_state=seed, n_jobs=1)
    if name == "ecod":
        from pyod.models.ecod import ECOD

        return ECOD()
    if name == "knn":
        from pyod.models.knn import KNN

        return KNN()
    if name == "pca":
        from pyod.models.pca import PCA

        # PyOD's default keeps every component and divides by its explained variance, so a
        # constant or collinear column (one-hot groups, duplicated features) makes every score
        # inf (AUROC 0.5).  Keep the components the data actually span.
        n_comp = None if x_fit is None else min(numerical_rank(x_fit), x_fit.shape[1])
        return PCA(n_components=n_comp, random_state=seed)
    if name == "copod":
        from pyod.models.copod import COPOD

        return COPOD()
    raise KeyError(name)


def run_tabular_baseline(name: str, seed: int, x_fit: np.ndarray, x_score: np.ndarray | None) -> np.ndarray:
    """Scores (higher = more anomalous).  ``x_score is None`` means: score the fit rows."""
    model = make_tabular_baseline(name, seed, x_fit)
    model.fit(x_fit)
    if name == "iforest":
        return -model.score_samples(x_fit if x_score is None else x_score)
    if x_score is None:
        return np.asarray(model.decision_scores_, dtype=np.float64)
    return np.asarray(model.decision_function(x_score), dtype=np.float64)


# ======================================================================================
# time-series baselines on sliding windows
# ======================================================================================
@dataclass
class Series:
    """One entity's rows: scaled features, shape (n, d)."""

    x: np.ndarray


def windows_of(x: np.ndarray, w: int) -> np.ndarray:
    """View of all length-``w`` windows (stride 1), shape (n - w + 1, w * d); pads short series
    at the front by repeating the first row."""
    if x.shape[0] < w:
        x = np.concatenate([np.repeat(x[:1], w - x.shape[0], axis=0), x], axis=0)
    v = np.lib.stride_tricks.sliding_window_view(x, w, axis=0)  # (n-w+1, d, w)
    return v


def flat(v: np.ndarray) -> np.ndarray:
    """Window view (m, d, w) -> (m, w*d) copy, time-major."""
    return np.ascontiguousarray(np.transpose(v, (0, 2, 1))).reshape(v.shape[0], -1)


def window_to_step(ws: np.ndarray, n: int, w: int) -> np.ndarray:
    """Step score = mean of the scores of the windows covering it (window j covers j..j+w-1)."""
    m = ws.size
    if n < w:  # front-padded: windows cover padded positions; keep the last n
        full = window_to_step(ws, w, w)
        return full[w - n :]
    c = np.concatenate([[0.0], np.cumsum(ws)])
    t = np.arange(n)
    lo = np.maximum(0, t - w + 1)
    hi = np.minimum(t, m - 1)
    return (c[hi + 1] - c[lo]) / (hi - lo + 1)


def train_windows(train: list[Series], w: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Flattened training windows from every entity, seeded subsample of at most ``cap``."""
    views = [windows_of(s.x, w) for s in train]
    counts = np.array([v.shape[0] for v in views])
    total = int(counts.sum())
    if total <= cap:
        return np.concatenate([flat(v) for v in views], axis=0)
    pick = np.sort(rng.choice(total, size=cap, replace=False))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    out = []
    for i, v in enumerate(views):
        sel = pick[(pick >= offsets[i]) & (pick < offsets[i + 1])] - offsets[i]
        if sel.size:
            out.append(flat(v[sel]))
    return np.concatenate(out, axis=0)


def score_windows(test: list[Series], w: int, fn: Callable[[np.ndarray], np.ndarray], chunk: int = 4096) -> np.ndarray:
    """Apply ``fn`` to the test windows chunk by chunk; return per-step scores (all entities)."""
    out = []
    for s in test:
        v = windows_of(s.x, w)
        ws = np.concatenate([fn(flat(v[i : i + chunk])) for i in range(0, v.shape[0], chunk)])
        out.append(window_to_step(ws.astype(np.float64), s.x.shape[0], w))
    return np.concatenate(out)


class WindowPCA:
    def __init__(self, seed: int, d: int, variance: float = 0.9):
        self.seed, self.d, self.variance = seed, d, variance

    def fit(self, xw: np.ndarray) -> "WindowPCA":
        from sklearn.decomposition import PCA

        self.pca_ = PCA(n_components=self.variance, svd_solver="full", random_state=self.seed).fit(xw)
        self.train_feat_err_ = self._feat_err(xw).mean(axis=0) + 1e-12
        return self

    def _sq_err(self, xw: np.ndarray) -> np.ndarray:
        rec = self.pca_.inverse_transform(self.pca_.transform(xw))
        return (xw - rec) ** 2

    def _feat_err(self, xw: np.ndarray) -> np.ndarray:
        e = self._sq_err(xw)  # (m, w*d), time-major: position p, feature f at p*d + f
        return e.reshape(e.shape[0], -1, self.d).mean(axis=1)  # (m, d)

    def score(self, xw: np.ndarray) -> np.ndarray:
        return self._sq_err(xw).mean(axis=1)

    def score_norm(self, xw: np.ndarray) -> np.ndarray:
        return (self._feat_err(xw) / self.train_feat_err_).mean(axis=1)


def knn_kth_distance(train: np.ndarray, query: np.ndarray, k: int = 5) -> np.ndarray:
    """Euclidean distance from each query row to its k-th nearest training row (brute force)."""
    tn = (train**2).sum(axis=1)
    qn = (query**2).sum(axis=1)
    d2 = qn[:, None] + tn[None, :] - 2.0 * (query @ train.T)
    k = min(k, train.shape[0])
    kth = np.partition(d2, k - 1, axis=1)[:, k - 1]
    return np.sqrt(np.maximum(kth, 0.0))


def run_ts_baseline(name: str, seed: int, train: list[Series], test: list[Series], w: int, cap: int,
                    score_train: bool = False):
    """Step scores of the test series; with ``score_train`` also of the train series (for a
    threshold: the event-level evaluation flags at a quantile of the train-part scores)."""
    d = train[0].x.shape[1]
    rng = stable_rng(seed, "ts-windows", name)
    chunk = 4096
    if name == "iforest":
        from sklearn.ensemble import IsolationForest

        xw = train_windows(train, w, cap, rng)
        m = IsolationForest(random_state=seed, n_jobs=1).fit(xw)
        fn = lambda z: -m.score_samples(z)  # noqa: E731
    elif name in ("pca", "pca_norm"):
        xw = train_windows(train, w, cap, rng)
        m = WindowPCA(seed, d).fit(xw)
        fn = m.score if name == "pca" else m.score_norm
    elif name == "knn":
        xw = train_windows(train, w, min(cap, KNN_MAX_TRAIN_WINDOWS), rng)
        fn, chunk = (lambda z: knn_kth_distance(xw, z, 5)), 1024
    else:
        raise KeyError(name)
    scores = score_windows(test, w, fn, chunk=chunk)
    return (scores, score_windows(train, w, fn, chunk=chunk)) if score_train else scores


# ======================================================================================
# attnad
# ======================================================================================
_ATTNAD_IMPORT_ERROR: str | None = None


def attnad_available() -> str | None:
    """None if attnad's Python API imports, else the reason."""
    global _ATTNAD_IMPORT_ERROR
    if _ATTNAD_IMPORT_ERROR is None:
        try:
            from attnad.config import Config  # noqa: F401
            from attnad.detector import Detector  # noqa: F401

            _ATTNAD_IMPORT_ERROR = ""
        except Exception as e:  # ImportError, or a half-written module
            _ATTNAD_IMPORT_ERROR = f"attnad API not importable ({short_error(e)})"
    return _ATTNAD_IMPORT_ERROR or None


def _set_dotted(d: dict, key: str, value) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def attnad_config(args, data_cfg: dict):
    import yaml

    from attnad.config import Config

    raw: dict = {"data": dict(data_cfg), "train": {"seed": args.seed, "threads": args.threads}}
    for item in args.attnad_set:
        k, _, v = item.partition("=")
        _set_dotted(raw, k.strip(), yaml.safe_load(v) if v.strip() else None)
    return Config.model_validate(raw)


def run_attnad(args, data_cfg: dict, fit_df: pd.DataFrame, score_df: pd.DataFrame,
               with_flags: bool = False, res: "Result | None" = None):
    """attnad's scores of score_df; with ``with_flags`` also its flags at its own fitted
    threshold (per entity when threshold.per_entity), as ``detect`` flags them. With ``res``,
    the fit's seconds go to res.fit_seconds (the rest of res.seconds is scoring)."""
    from attnad.detector import Detector
    from attnad.threshold import row_thresholds

    cfg = attnad_config(args, data_cfg)
    # fitted on the rows it scores (protocol U on one file), as `attnad detect DATA` does
    t0 = time.perf_counter()
    det = Detector(cfg).fit(fit_df, one_shot=fit_df is score_df)
    if res is not None:
        res.fit_seconds = time.perf_counter() - t0
    scores = np.asarray(det.score(score_df), dtype=np.float64).reshape(-1)
    if scores.size != len(score_df):
        raise RuntimeError(f"attnad returned {scores.size} scores for {len(score_df)} rows")
    if not with_flags:
        return scores
    ent = data_cfg.get("group_column")
    keys = score_df[ent].astype(str).to_numpy() if ent else None
    return scores, scores > row_thresholds(det.threshold_, keys, len(scores))


# ======================================================================================
# results
# ======================================================================================
@dataclass
class Result:
    dataset: str
    section: str  # "tabular-U", "tabular-S", "timeseries"
    detector: str
    n_fit: int = 0
    n_score: int = 0
    anomaly_rate: float = float("nan")
    auroc: float = float("nan")
    auprc: float = float("nan")
    vus_pr: float | None = None
    vus_roc: float | None = None
    best_f1: float | None = None
    event_precision: float | None = None
    event_recall: float | None = None
    event_f1: float | None = None
    events: int | None = None
    flag_rate: float | None = None  # share of scored steps flagged: long events can cover many ranges
    event_f1_by_gap: dict | None = None  # event F1 at other merge gaps (JSON only): the default's evidence
    seconds: float = float("nan")
    fit_seconds: float | None = None  # attnad: the fit's share of seconds (JSON only)
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        for k, v in d.items():
            if isinstance(v, float) and math.isnan(v):
                d[k] = None
        return d


def save_scores(args, res: Result, scores: np.ndarray) -> None:
    """--save-scores DIR: each detector's raw scores as DIR/<data set>.<section>.<detector>.npy,
    so a refactoring can be checked bit for bit (benchmarks/same_scores.py compares two DIRs)."""
    if args.save_scores:
        out = Path(args.save_scores)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / f"{res.dataset}.{res.section}.{res.detector}.npy",
                np.asarray(scores, dtype=np.float64))


def evaluate(res: Result, y: np.ndarray, s: np.ndarray, timeseries: bool, max_window: int) -> None:
    res.auroc = auroc(y, s)
    res.auprc = auprc(y, s)
    if timeseries:
        res.vus_roc, res.vus_pr = vus(y, s, max_window=max_window)
        res.best_f1 = best_f1(y, s)


def evaluate_events(res: Result, y: np.ndarray, flags: np.ndarray, blocks: list[tuple[int, int]],
                    merge_gap: int, min_steps: int) -> None:
    """Event-wise precision / recall / F1 of flags: events by attnad's own rule
    (attnad.metrics.flag_runs, as ``detect --events`` makes them) within each entity's block of
    rows, labelled ranges within the same blocks (attnad.metrics.event_scores)."""
    truth = np.concatenate([segments(y[a:b]) + a for a, b in blocks])

    def at(gap: int) -> dict:
        pred = [flag_runs(flags[a:b], gap, min_steps) + a for a, b in blocks]
        return event_scores(np.concatenate(pred), truth)

    got = at(merge_gap)
    res.flag_rate = float(np.mean(flags)) if len(flags) else None
    res.event_precision, res.event_recall, res.event_f1 = (
        None if math.isnan(got[k]) else got[k] for k in ("precision", "recall", "f1"))
    res.events = got["events"]
    res.event_f1_by_gap = {g: {k: None if isinstance(v, float) and math.isnan(v) else v
                               for k, v in at(g).items() if k in ("f1", "precision", "recall", "events")}
                           for g in EVENT_GAPS}


def entity_blocks(df: pd.DataFrame, ent: str | None) -> list[tuple[int, int]]:
    """[start, end) row ranges of each entity (the rows are in entity blocks here)."""
    if not ent or ent not in df.columns:
        return [(0, len(df))]
    codes = pd.factorize(df[ent])[0]
    cuts = np.flatnonzero(np.diff(codes)) + 1
    edges = np.r_[0, cuts, len(df)]
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def rank_row(values: list[float | None], failed: list[bool]) -> list[float]:
    """Ranks (1 = best = highest value), ties averaged; failed detectors share the last places."""
    from scipy.stats import rankdata

    key = np.array([-(v if v is not None else -np.inf) if not f else np.inf for v, f in zip(values, failed)], dtype=float)
    return list(rankdata(key, method="average"))


# ======================================================================================
# data
# ======================================================================================
def load_manifest(data_dir: Path) -> list[dict]:
    with open(data_dir / "manifest.json", encoding="utf-8") as f:
        m = json.load(f)
    if isinstance(m, dict):  # tolerate {"datasets": [...]}
        m = m.get("datasets", [])
    # CSV copies reuse the names of the Parquet sets; they test the reader, not accuracy
    return [d for d in m if "csv_copy_of" not in d and set(d.get("files", {})) != {"csv"}]


def read_file(data_dir: Path, rel: str) -> pd.DataFrame:
    p = data_dir / rel
    if p.suffix == ".parquet":
        return pd.read_parquet(p)
    return pd.read_csv(p)


def feature_columns(ds: dict, df: pd.DataFrame) -> list[str]:
    feats = ds.get("feature_columns") or [c for c in df.columns if c != LABEL]
    skip = {LABEL, ds.get("entity_column"), ds.get("timestamp_column")}
    return [c for c in feats if c not in skip and c in df.columns]


# ======================================================================================
# tabular suite
# ======================================================================================
def tabular_splits(ds: dict, data_dir: Path, args) -> dict[str, tuple[pd.DataFrame, pd.DataFrame | None, list[str]]]:
    """protocol -> (fit_df, score_df or None (= score the fit rows), notes)."""
    files = ds["files"]
    out = {}
    name = ds["name"]
    if "train" in files and "test" in files:
        tr = read_file(data_dir, files["train"])
        te = read_file(data_dir, files["test"])
        notes = []
        n_tr, n_te = len(tr), len(te)
        i_tr = stratified_subsample(tr[LABEL].to_numpy(), args.max_rows, stable_rng(args.seed, name, "cap-train"))
        i_te = stratified_subsample(te[LABEL].to_numpy(), args.max_rows, stable_rng(args.seed, name, "cap-test"))
        if i_tr.size < n_tr:
            notes.append(f"train file subsampled {n_tr:,} -> {i_tr.size:,} rows (stratified)")
        if i_te.size < n_te:
            notes.append(f"test file subsampled {n_te:,} -> {i_te.size:,} rows (stratified)")
        tr = tr.iloc[i_tr].reset_index(drop=True)
        te = te.iloc[i_te].reset_index(drop=True)
        if "U" in args.protocols:
            out["U"] = (tr, te, notes + ["fit on train file (contaminated), score test file"])
        if "S" in args.protocols:
            normal = tr[tr[LABEL] == 0].reset_index(drop=True)
            out["S"] = (normal, te, notes + ["fit on normal rows of train file, score test file"])
        return out
    key = "full" if "full" in files else next(iter(files))
    df = read_file(data_dir, files[key])
    n = len(df)
    idx = stratified_subsample(df[LABEL].to_numpy(), args.max_rows, stable_rng(args.seed, name, "cap"))
    notes = []
    if idx.size < n:
        notes.append(f"subsampled {n:,} -> {idx.size:,} rows (stratified)")
        df = df.iloc[idx].reset_index(drop=True)
    if "U" in args.protocols:
        out["U"] = (df, None, notes)
    if "S" in args.protocols:
        y = df[LABEL].to_numpy()
        normal = np.flatnonzero(y == 0)
        rng = stable_rng(args.seed, name, "clean-split")
        fit_idx = np.sort(rng.choice(normal, size=normal.size // 2, replace=False))
        mask = np.ones(len(df), dtype=bool)
        mask[fit_idx] = False
        out["S"] = (df.iloc[fit_idx].reset_index(drop=True), df[mask].reset_index(drop=True), notes)
    return out


def run_tabular(ds: dict, data_dir: Path, args, detectors: list[str], log) -> list[Result]:
    results = []
    name = ds["name"]
    try:
        splits = tabular_splits(ds, data_dir, args)
    except Exception as e:
        err = "data: " + short_error(e)
        return [Result(name, f"tabular-{p}", d, error=err) for p in args.protocols for d in detectors]
    for proto, (fit_df, score_df, notes) in splits.items():
        section = f"tabular-{proto}"
        eval_df = fit_df if score_df is None else score_df
        y = eval_df[LABEL].to_numpy().astype(int)
        feats = feature_columns(ds, fit_df)
        cats = [c for c in (ds.get("categorical_columns") or []) if c in feats]
        x_fit = x_score = None
        prep_s = 0.0
        prep_err = None
        if any(d != "attnad" for d in detectors):
            t0 = time.perf_counter()
            try:
                enc = TabularEncoder(feats, cats, args.top_categories).fit(fit_df)
                x_fit = enc.transform(fit_df)
                x_score = None if score_df is None else enc.transform(score_df)
            except Exception as e:
                prep_err = "features: " + short_error(e)
            prep_s = time.perf_counter() - t0
        for det in detectors:
            res = Result(name, section, det, n_fit=len(fit_df), n_score=len(eval_df), anomaly_rate=float(y.mean()), notes=list(notes))
            try:
                t0 = time.perf_counter()
                if det == "attnad":
                    reason = attnad_available()
                    if reason:
                        raise RuntimeError(reason)
                    scores = run_attnad(args, {"label_column": LABEL}, fit_df, eval_df, res=res)
                    res.seconds = time.perf_counter() - t0
                else:
                    if prep_err:
                        raise RuntimeError(prep_err)
                    scores = run_tabular_baseline(det, args.seed, x_fit, x_score)
                    res.seconds = time.perf_counter() - t0 + prep_s
                save_scores(args, res, scores)
                evaluate(res, y, scores, False, 0)
            except Exception as e:
                res.error = short_error(e)
                if args.verbose:
                    traceback.print_exc()
            log(res)
            results.append(res)
    return results


# ======================================================================================
# time-series suite
# ======================================================================================
def ts_parts(ds: dict, data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    files = ds["files"]
    if "train" in files and "test" in files:
        return read_file(data_dir, files["train"]), read_file(data_dir, files["test"]), []
    key = "full" if "full" in files else next(iter(files))
    df = read_file(data_dir, files[key])
    ent = ds.get("entity_column")
    if ent:  # first 15 % of each entity
        fit_parts, score_parts = [], []
        for _, g in df.groupby(ent, sort=False):
            k = int(math.ceil(len(g) * NAB_FIT_FRACTION))
            fit_parts.append(g.iloc[:k])
            score_parts.append(g.iloc[k:])
        fit, score = pd.concat(fit_parts), pd.concat(score_parts)
    else:
        k = int(math.ceil(len(df) * NAB_FIT_FRACTION))
        fit, score = df.iloc[:k], df.iloc[k:]
    notes = [f"no train part: fit on first {NAB_FIT_FRACTION:.0%} of rows ({len(fit):,}), score the rest ({len(score):,})"]
    n_lab_fit = int(fit[LABEL].sum())
    if n_lab_fit:
        notes.append(f"{n_lab_fit} labelled rows fall in the fit part")
    return fit.reset_index(drop=True), score.reset_index(drop=True), notes


def entity_series(df: pd.DataFrame, feats: list[str], ent: str | None, stats: dict | None) -> tuple[list[Series], dict, list]:
    """Split into entities (order of first appearance), robust-scale per entity.  ``stats``:
    per-entity (median, scale) from the train part; computed here when None."""
    groups = [(None, df)] if not ent else list(df.groupby(ent, sort=False))
    new_stats = {} if stats is None else stats
    out, keys = [], []
    for key, g in groups:
        x = g[feats].to_numpy(dtype=np.float64, na_value=np.nan)
        if stats is None:
            new_stats[key] = robust_stats(x)
        med, scale = new_stats.get(key) or robust_stats(x)  # unseen entity: its own stats
        out.append(Series(robust_apply(x, med, scale)))
        keys.append(key)
    return out, new_stats, keys


def run_timeseries(ds: dict, data_dir: Path, args, detectors: list[str], log) -> list[Result]:
    name = ds["name"]
    section = "timeseries"
    try:
        fit_df, score_df, notes = ts_parts(ds, data_dir)
        ent = ds.get("entity_column")
        if ent and ent in score_df.columns:
            # keep entity blocks contiguous so the step scores line up with the rows
            order = np.argsort(pd.factorize(score_df[ent])[0], kind="stable")
            if not np.array_equal(order, np.arange(len(order))):
                score_df = score_df.iloc[order].reset_index(drop=True)
                notes.append("test rows regrouped by entity")
        feats = feature_columns(ds, fit_df)
        y = score_df[LABEL].to_numpy().astype(int)
        blocks = entity_blocks(score_df, ent)
    except Exception as e:
        err = "data: " + short_error(e)
        return [Result(name, section, d, error=err) for d in detectors]
    series = None
    data_cfg = {"label_column": LABEL, "time_column": ds.get("timestamp_column") or "timestamp", "group_column": ent}
    rules = attnad_config(args, data_cfg).threshold  # events: merge_gap, min_event_steps
    results: list[Result] = []
    for det in detectors:
        res = Result(name, section, det, n_fit=len(fit_df), n_score=len(score_df), anomaly_rate=float(y.mean()), notes=list(notes))
        try:
            t0 = time.perf_counter()
            if det == "attnad":
                reason = attnad_available()
                if reason:
                    raise RuntimeError(reason)
                scores, flags = run_attnad(args, data_cfg, fit_df, score_df, with_flags=True,
                                           res=res)
            else:
                if series is None:
                    tr, stats, _ = entity_series(fit_df, feats, ent, None)
                    te, _, _ = entity_series(score_df, feats, ent, stats)
                    series = (tr, te)
                scores, train_scores = run_ts_baseline(det, args.seed, series[0], series[1], args.window,
                                                       args.max_train_windows, score_train=True)
                # flags at a comparable threshold: the quantile of the train-part scores that
                # attnad's default quantile threshold takes of its own training scores
                flags = scores > np.quantile(train_scores, 1 - rules.contamination)
            res.seconds = time.perf_counter() - t0
            save_scores(args, res, scores)
            evaluate(res, y, scores, True, 2 * args.window)
            evaluate_events(res, y, flags, blocks, rules.merge_gap, rules.min_event_steps)
        except Exception as e:
            res.error = short_error(e)
            if args.verbose:
                traceback.print_exc()
        log(res)
        results.append(res)
    return results


# ======================================================================================
# report
# ======================================================================================
SECTION_TITLES = {
    "tabular-U": "Tabular, protocol U (contaminated: fit on the whole file, score it; NSL-KDD: fit train, score test)",
    "tabular-S": "Tabular, protocol S (clean: fit on a seeded half of the normal rows, score the rest + all anomalies; NSL-KDD: fit normal train rows, score test)",
    "timeseries": "Time series (fit on the train part, score the test part)",
}


def summarise(results: list[Result], section: str, detectors: list[str]) -> dict:
    rs = [r for r in results if r.section == section]
    datasets = list(dict.fromkeys(r.dataset for r in rs))
    rank_metric = "vus_pr" if section == "timeseries" else "auroc"
    metrics = ["auroc", "auprc"] + (["vus_pr", "best_f1", "event_f1", "event_precision", "event_recall"]
                                    if section == "timeseries" else []) + ["seconds"]
    by = {(r.dataset, r.detector): r for r in rs}
    ranks: dict[str, list[float]] = {d: [] for d in detectors}
    per_ds_rank: dict[tuple[str, str], float] = {}
    for ds in datasets:
        vals, failed = [], []
        for d in detectors:
            r = by.get((ds, d))
            v = None if r is None or r.error else getattr(r, rank_metric)
            if v is not None and isinstance(v, float) and math.isnan(v):
                v = None
            vals.append(v)
            failed.append(r is None or r.error is not None)
        if all(v is None for v in vals):
            continue  # metric undefined (or everything failed): not ranked
        for d, rk in zip(detectors, rank_row(vals, failed)):
            ranks[d].append(rk)
            per_ds_rank[(ds, d)] = rk
    summary = {}
    for d in detectors:
        row = {}
        for m in metrics:
            v = [getattr(by[(ds, d)], m) for ds in datasets if (ds, d) in by and not by[(ds, d)].error]
            v = [x for x in v if x is not None and not (isinstance(x, float) and math.isnan(x))]
            row[f"mean_{m}"] = float(np.mean(v)) if v else None
            row[f"n_{m}"] = len(v)
        row["mean_rank"] = float(np.mean(ranks[d])) if ranks[d] else None
        row["n_ranked"] = len(ranks[d])
        row["n_errors"] = sum(1 for ds in datasets if (ds, d) in by and by[(ds, d)].error)
        summary[d] = row
    return {"datasets": datasets, "metrics": metrics, "rank_metric": rank_metric, "summary": summary, "ranks": {f"{k[0]}|{k[1]}": v for k, v in per_ds_rank.items()}}


def markdown_section(results: list[Result], section: str, detectors: list[str], summ: dict, args) -> str:
    rs = {(r.dataset, r.detector): r for r in results if r.section == section}
    datasets = summ["datasets"]
    lines = [f"## {SECTION_TITLES[section]}", ""]
    if section == "timeseries":
        lines.append(
            f"Baselines on sliding windows (w={args.window}, stride 1, step score = mean of covering windows); "
            f"VUS with buffer lengths 0..{2 * args.window}; best-F1 without point adjustment; ranked by VUS-PR. "
            "Event metrics: flags grouped into events per entity by attnad's rule (threshold.merge_gap, "
            "threshold.min_event_steps); a labelled range is found when an event overlaps it, an event "
            "overlapping none is a false alarm. attnad flags at its own fitted threshold; each baseline at "
            "the (1 - threshold.contamination) quantile of its own train-part step scores."
        )
    else:
        lines.append(f"Rows capped at {args.max_rows:,} per file (seeded stratified subsample); ranked by AUROC.")
    lines.append("")
    names = {"auroc": "AUROC", "auprc": "AUPRC", "vus_pr": "VUS-PR", "best_f1": "best F1", "seconds": "fit+score seconds",
             "event_f1": "event F1", "event_precision": "event precision", "event_recall": "event recall"}
    for m in summ["metrics"]:
        lines.append(f"### {names[m]}")
        lines.append("")
        lines.append("| dataset | rows fit/score | anom % | " + " | ".join(detectors) + " |")
        lines.append("|---|---|---|" + "---|" * len(detectors))
        for ds in datasets:
            first = next((rs[(ds, d)] for d in detectors if (ds, d) in rs), None)
            vals = []
            for d in detectors:
                r = rs.get((ds, d))
                v = None if r is None or r.error else getattr(r, m)
                vals.append(v)
            good = [v for v in vals if v is not None and not math.isnan(v)]
            best = (min(good) if m == "seconds" else max(good)) if good else None
            cells = []
            for d, v in zip(detectors, vals):
                r = rs.get((ds, d))
                if r is not None and r.error:
                    cells.append("err")
                else:
                    c = fmt(v, 1 if m == "seconds" else 3)
                    if m != "seconds" and best is not None and v is not None and c == fmt(best) and len(good) > 1:
                        c = f"**{c}**"
                    cells.append(c)
            star = " *" if first and first.notes else ""
            rate = fmt(100 * first.anomaly_rate, 2) if first else "-"
            size = f"{first.n_fit:,}/{first.n_score:,}" if first else "-"
            lines.append(f"| {ds}{star} | {size} | {rate} | " + " | ".join(cells) + " |")
        means = [fmt(summ["summary"][d][f"mean_{m}"], 1 if m == "seconds" else 3) for d in detectors]
        lines.append("| **mean** | | | " + " | ".join(means) + " |")
        if m == summ["rank_metric"]:
            rk = [fmt(summ["summary"][d]["mean_rank"], 2) for d in detectors]
            lines.append("| **mean rank** | | | " + " | ".join(rk) + " |")
        lines.append("")
    lines.append("### Summary")
    lines.append("")
    mcols = summ["metrics"]
    lines.append("| detector | " + " | ".join(f"mean {names[m]}" for m in mcols) + f" | mean rank ({names[summ['rank_metric']]}) | ok | errors |")
    lines.append("|---|" + "---|" * (len(mcols) + 3))
    for d in detectors:
        s = summ["summary"][d]
        cells = [fmt(s[f"mean_{m}"], 1 if m == "seconds" else 3) for m in mcols]
        ok = max(s[f"n_{m}"] for m in mcols)
        lines.append(f"| {d} | " + " | ".join(cells) + f" | {fmt(s['mean_rank'], 2)} | {ok} | {s['n_errors']} |")
    lines.append("")
    noted = [(ds, rs[(ds, d)].notes) for ds in datasets for d in detectors[:1] if (ds, d) in rs and rs[(ds, d)].notes]
    if noted:
        lines.append("Notes (`*`):")
        lines.append("")
        for ds, nt in noted:
            lines.append(f"* {ds}: " + "; ".join(nt))
        lines.append("")
    undefined = [ds for ds in datasets if all(
        (ds, d) not in rs or rs[(ds, d)].error or rs[(ds, d)].auroc is None or math.isnan(rs[(ds, d)].auroc) for d in detectors)]
    undefined = [ds for ds in undefined if any((ds, d) in rs and not rs[(ds, d)].error for d in detectors)]
    if undefined:
        lines.append("Metrics undefined (single-class labels in the scored rows; not ranked, not in means): " + ", ".join(undefined))
        lines.append("")
    errs = [(ds, d, rs[(ds, d)].error) for ds in datasets for d in detectors if (ds, d) in rs and rs[(ds, d)].error]
    if errs:
        lines.append("Errors:")
        lines.append("")
        seen = {}
        for ds, d, e in errs:
            seen.setdefault((d, e), []).append(ds)
        for (d, e), dss in seen.items():
            where = ", ".join(dss) if len(dss) <= 6 else f"{len(dss)} data sets ({', '.join(dss[:3])}, ...)"
            lines.append(f"* {d} on {where}: {e}")
        lines.append("")
    return "\n".join(lines)


# ======================================================================================
# main
# ======================================================================================
def reuse_results(path: str, results: list[Result], ran: list[str]) -> list[str]:
    """Append to `results` an earlier run's results of the detectors not in `ran`, for the
    (section, data set) pairs run now; returns those detectors in their earlier order."""
    earlier = json.loads(Path(path).read_text(encoding="utf-8"))["results"]
    here = {(r.section, r.dataset) for r in results}
    fields = set(Result.__dataclass_fields__)
    reused: list[str] = []
    for d in earlier:
        if d["detector"] in ran or (d["section"], d["dataset"]) not in here:
            continue
        d = {k: (float("nan") if v is None and k in ("auroc", "auprc", "seconds", "anomaly_rate")
                 else v) for k, v in d.items() if k in fields}
        results.append(Result(**d))
        if d["detector"] not in reused:
            reused.append(d["detector"])
    return reused


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data", help="folder with manifest.json (default ../shared/data)")
    p.add_argument("--suite", choices=["tabular", "timeseries", "all"], default="all")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="only these data sets (exact names)")
    p.add_argument("--detectors", default=DEFAULT_DETECTORS, help=f"comma list (default {DEFAULT_DETECTORS})")
    p.add_argument("--protocol", choices=["U", "S", "both"], default="both", help="tabular protocols")
    p.add_argument("--max-rows", type=int, default=50_000, help="cap rows per file (seeded stratified)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window", type=int, default=32, help="time-series window (baselines; VUS max buffer = 2*window)")
    p.add_argument("--max-train-windows", type=int, default=10_000)
    p.add_argument("--top-categories", type=int, default=20, help="one-hot columns per categorical column")
    p.add_argument("--threads", type=int, default=1, help="torch threads for attnad (BLAS pools are set to 1)")
    p.add_argument("--attnad-set", action="append", default=[], metavar="KEY=VALUE", help="attnad config override, e.g. train.epochs=5")
    p.add_argument("--reuse", default=None, metavar="JSON",
                   help="add the results of detectors not run here from an earlier results JSON "
                        "(same data sets and sections only), e.g. the baselines when only attnad "
                        "changed; the report says which detectors were reused")
    p.add_argument("--save-scores", default=None, metavar="DIR",
                   help="also write each detector's raw scores to DIR as .npy (see same_scores.py)")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of failures")
    args = p.parse_args(argv)
    args.protocols = ["U", "S"] if args.protocol == "both" else [args.protocol]
    return args


def resolve_data(path: str) -> Path:
    p = Path(path)
    for cand in (p, REPO / path, REPO.parent / "shared" / "data"):
        if (cand / "manifest.json").exists():
            return cand.resolve()
    raise SystemExit(f"no manifest.json in {path!r} (also tried {REPO / path})")


def main(argv=None) -> int:
    args = parse_args(argv)
    data_dir = resolve_data(args.data)
    try:
        import torch

        torch.set_num_threads(max(1, args.threads))
    except Exception:
        pass
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    unknown = [d for d in detectors if d not in ALL_DETECTORS]
    if unknown:
        raise SystemExit(f"unknown detector(s) {unknown}; choose from {ALL_DETECTORS}")
    needs_pyod = any(d in ("ecod", "knn", "pca", "copod") for d in detectors)
    if needs_pyod:
        try:
            import pyod  # noqa: F401
        except ImportError:
            print("note: PyOD is not installed (pip install -e '.[bench]'); PyOD baselines will fail", file=sys.stderr)
    if "attnad" in detectors and attnad_available():
        print(f"note: {attnad_available()}; the attnad column will show errors", file=sys.stderr)

    manifest = load_manifest(data_dir)
    kinds = ["tabular", "timeseries"] if args.suite == "all" else [args.suite]
    chosen = [d for d in manifest if d.get("kind") in kinds]
    if args.only:
        missing = [n for n in args.only if n not in {d["name"] for d in chosen}]
        if missing:
            print(f"warning: not in the {args.suite} suite: {missing}", file=sys.stderr)
        chosen = [d for d in chosen if d["name"] in set(args.only)]
    if not chosen:
        raise SystemExit("no data sets selected")

    tab_det = [d for d in detectors if d in ["attnad"] + TAB_BASELINES]
    ts_det = [d for d in detectors if d in ["attnad"] + TS_BASELINES]

    def log(r: Result) -> None:
        if r.error:
            msg = f"ERROR {r.error[:120]}"
        else:
            extra = (f" vus_pr={fmt(r.vus_pr)} f1={fmt(r.best_f1)} event_f1={fmt(r.event_f1)}"
                     f" (p={fmt(r.event_precision)} r={fmt(r.event_recall)}, {r.events} events,"
                     f" {fmt(100 * r.flag_rate if r.flag_rate is not None else None, 2)}% flagged)"
                     if r.section == "timeseries" else "")
            msg = f"auroc={fmt(r.auroc)} auprc={fmt(r.auprc)}{extra} {r.seconds:.1f}s"
        print(f"[{r.section:10s}] {r.dataset:42s} {r.detector:9s} {msg}", file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    results: list[Result] = []
    for ds in chosen:
        if ds["kind"] == "tabular" and tab_det:
            results += run_tabular(ds, data_dir, args, tab_det, log)
        elif ds["kind"] == "timeseries" and ts_det:
            results += run_timeseries(ds, data_dir, args, ts_det, log)
    wall = time.perf_counter() - t_start
    reused = reuse_results(args.reuse, results, detectors) if args.reuse else []
    tab_det += [d for d in reused if d in TAB_BASELINES and d not in tab_det]
    ts_det += [d for d in reused if d in TS_BASELINES and d not in ts_det]

    sections = [s for s in ("tabular-U", "tabular-S", "timeseries") if any(r.section == s for r in results)]
    versions = {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__}
    for mod in ("sklearn", "pyod", "torch", "scipy"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            pass
    header = [
        f"# attnad accuracy benchmark: {args.suite}",
        "",
        f"data `{args.data}` · seed {args.seed} · max rows {args.max_rows:,} · window {args.window} · "
        f"threads {args.threads} · {len(chosen)} data sets · wall {wall:.0f} s · "
        + " ".join(f"{k} {v}" for k, v in versions.items()),
        "",
    ]
    if "attnad" in detectors and attnad_available():
        header += [f"attnad: {attnad_available()}", ""]
    if reused:
        header += [f"Not rerun, results taken from `{Path(args.reuse).name}`: {', '.join(reused)}.",
                   ""]
    body, summaries = [], {}
    for s in sections:
        det_s = tab_det if s.startswith("tabular") else ts_det
        summ = summarise(results, s, det_s)
        summaries[s] = summ
        body.append(markdown_section(results, s, det_s, summ, args))
    md = "\n".join(header + body)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"accuracy_{args.suite}.md").write_text(md + "\n", encoding="utf-8")
    payload = {
        "suite": args.suite,
        "args": {k: v for k, v in vars(args).items()},
        "data": str(args.data),  # as given: no machine paths in committed results
        "versions": versions,
        "wall_seconds": wall,
        "results": [r.as_dict() for r in results],
        "summary": {s: {"rank_metric": v["rank_metric"], "detectors": v["summary"], "ranks": v["ranks"]} for s, v in summaries.items()},
    }
    with open(out / f"accuracy_{args.suite}.json", "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1, allow_nan=False, default=lambda o: None)
    print(md)
    print(f"\nwrote {out / f'accuracy_{args.suite}.md'} and .json ({wall:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
