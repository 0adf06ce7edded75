"""Time-series mode: what `Detector.fit / score / save / load` do when `data.time_column` is set.

One model is shared by all entities (`data.group_column`); what differs between entities is kept
as statistics in the model:

- Inputs are robust-scaled per entity and per signal (median, IQR) on the entity's training rows,
  so a machine that always runs hot is normal for itself. Entities with too few training rows, and
  entities first seen when scoring (a warning says which), use statistics pooled over all rows.
- A row's error on a signal is the mean of its reconstruction errors over the windows covering it
  (each window hides every cell once, under one of 1/mask_ratio fixed masks). It is divided by that
  signal's typical error on the entity's training rows (a trimmed mean, pulled towards the pooled
  value for entities with few rows), so a noisy sensor does not drown the others and a score of 1
  means "as unusual as a typical training row" on every machine: one threshold fits all entities.
  The row score is the mean over signals; the per-signal terms explain it.

Scoring a file streams it twice: pass 1 reads batches, carries each entity's recent steps into
the next batch (`attnad.data.windows`) and stores each row's score by row number in a temporary
file; pass 2 reads the file again and writes every row with its score, in input order. If pass 1
finds a row earlier in time than the previous row of its entity, the input is not in time order:
it then reads the time, group and signal columns of the whole file into memory, sorts them by
(entity, time), scores, and still writes the output by streaming the original file, in input
order. Sorted input keeps memory bounded; unsorted input needs about 8 bytes per cell in memory.

    det = Detector({"data": {"time_column": "ts", "group_column": "host"}}).fit(df)
    det.score(df)   # one score per row, input order
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import torch

from attnad.artifact import write_artifact
from attnad.data.io import CsvFormat, iter_batches
from attnad.data.preprocess import squash
from attnad.data.schema import Column, Schema, infer_schema
from attnad.data.windows import (Group, WindowStream, entity_keys, parse_times, recent_rows,
                                 series_order, time_kind)
from attnad.errors import DataError, ModelError, UserError
from attnad.limits import check_model_size
from attnad.models import build_series_model
from attnad.threshold import fit_entity_thresholds, fit_threshold
from attnad.train import (one_cycle, resolve_device, seed_everything, set_threads,
                          trimmed_mean)

SERIES_ROLES = ("numeric", "boolean")  # modelled as signals; other columns are copied only
MIN_ENTITY_ROWS = 32  # fewer training rows: the entity's inputs use the pooled statistics
SHRINK_ROWS = 200  # error scales are pulled towards the pooled ones with this weight in rows
SCALE_TRIM = 0.05  # highest training errors left out of each typical error
SCORE_GROUP = 32  # windows per forward pass when scoring (fixed, see attnad.data.windows)
TRUNCATED_SHARE = 0.1  # training windows cut short at the left, like a series' first windows
TOP_KEEP = 64  # rows whose per-signal contributions are kept for the summary
ERROR_FLOOR = 1e-2  # error scales are at least this share of the median signal's


def n_masks(mask_ratio: float) -> int:
    return max(2, round(1.0 / mask_ratio))


def stride_of(model_cfg) -> int:
    return model_cfg.stride or max(1, model_cfg.window // 4)


def cell_patterns(window: int, n_features: int, masks: int, seed: int) -> torch.Tensor:
    """Fixed scoring masks (M, W, F) that hide every cell exactly once.

    Cell (p, f) is hidden by mask (a_p + b_f) mod M: each mask hides 1/M of the signals at each
    step and each signal at 1/M of the steps, so a hidden cell is predicted from its own signal's
    neighbours and from the other signals at the same step. Training draws a and b at random.
    """
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, masks, (window,), generator=g)
    b = torch.randint(0, masks, (n_features,), generator=g)
    group = (a[:, None] + b[None, :]) % masks  # (W, F)
    return group[None] == torch.arange(masks)[:, None, None]  # (M, W, F)


def signal_patterns(window: int, n_features: int, masks: int, seed: int) -> torch.Tensor:
    """Fixed scoring masks (min(M, F), W, F) that hide groups of whole signals across the window.

    A hidden signal can then only be predicted from the other signals (and, with one signal, not
    at all: the model falls back on what a window usually looks like). Cell masks alone let the
    model copy a signal's own neighbours, which also copies a shifted level, a new state or a
    frozen value; these masks make such a window hard to fill in, as a window PCA would find it.
    """
    g = torch.Generator().manual_seed(seed + 1)
    m2 = min(masks, n_features)
    group = torch.randperm(n_features, generator=g) % m2  # (F,)
    hide = group[None, :] == torch.arange(m2)[:, None]  # (M2, F)
    return hide[:, None, :].expand(m2, window, n_features).clone()  # (M2, W, F)


def span_patterns(window: int, n_features: int, masks: int) -> torch.Tensor:
    """Fixed scoring masks (M, W, F) that hide one contiguous block of W/M steps in every signal.

    A hidden block can only be filled in from the steps before and after it: a spike is then no
    easier to spot, but a stretch that does not continue its context (a changed shape, a level
    that drifts off, a frozen run) is, where neighbour cells would let the model copy it.
    """
    block = torch.arange(window) * masks // window  # (W,) block of each step
    hide = block[None, :] == torch.arange(masks)[:, None]  # (M, W)
    return hide[:, :, None].expand(masks, window, n_features).clone()


# ---- fitted state ------------------------------------------------------------------------------
@dataclass
class SeriesState:
    """Everything besides the weights that scoring needs; plain JSON in the model directory."""
    features: list[str]
    time_column: str
    group_column: str | None
    time_kind: str
    window: int
    stride: int
    n_masks: int
    seed: int
    entities: dict  # key -> {"rows", "center", "scale" (F floats), "error_scale" (K floats)}
    pooled: dict  # {"center", "scale", "error_scale"} for unseen and small entities
    signal_masks: bool = False  # error families: cells, + whole signals, + spans: K = F per family
    span_masks: bool = False
    row_score: str = "step"  # "window": each step gets the mean error of the windows covering it
    # (models saved before the option existed scored steps)
    error_units: str = "squashed"  # "robust": errors measured after undoing the input squash
    # (models saved before the option existed measured them squashed)

    @property
    def n_families(self) -> int:
        return 1 + int(self.signal_masks) + int(self.span_masks)

    @property
    def n_errors(self) -> int:
        return len(self.features) * self.n_families

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SeriesState":
        s = cls(**d)
        for stats in [s.pooled, *s.entities.values()]:
            for k, n in (("center", len(s.features)), ("scale", len(s.features)),
                         ("error_scale", s.n_errors)):
                if len(stats[k]) != n:
                    raise ValueError(f"{k} has {len(stats[k])} values, expected {n}")
        return s

    def lookup(self, keys: list[str], what: str) -> np.ndarray:
        """(len(keys), F) statistics; unseen entities get the pooled ones."""
        pooled = self.pooled[what]
        return np.asarray([self.entities.get(k, {}).get(what, pooled) for k in keys], np.float64)


def robust_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column median and spread (IQR / 1.349; the std, then 1, where that is 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns
        med = np.nanmedian(x, axis=0)
        q1, q3 = np.nanpercentile(x, [25, 75], axis=0)
        std = np.nanstd(x, axis=0)
    scale = (q3 - q1) / 1.349
    scale = np.where(np.isfinite(scale) & (scale > 0), scale,
                     np.where(np.isfinite(std) & (std > 0), std, 1.0))
    return np.where(np.isfinite(med), med, 0.0), scale


def typical_error(err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trimmed mean of each column's finite errors (the top SCALE_TRIM left out), and counts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cut = np.nanquantile(err, 1.0 - SCALE_TRIM, axis=0)
    keep = np.isfinite(err) & (err <= cut)
    n = keep.sum(0)
    mean = np.where(keep, err, 0.0).sum(0) / np.maximum(n, 1)
    return np.where(n > 0, mean, np.nan), np.isfinite(err).sum(0)


def scaled(raw: np.ndarray, center: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs: robust z-scores, extremes squashed; missing cells 0 and flagged."""
    miss = ~np.isfinite(raw)
    with np.errstate(invalid="ignore", over="ignore"):
        z = np.clip((raw - center) / scale, -1e6, 1e6)
    return squash(np.where(miss, 0.0, z)).astype(np.float32), miss


def row_scores(err: np.ndarray, error_scale: np.ndarray, n_features: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Row score = mean of the normalised errors (n, K); a signal's contribution is the sum of its
    terms (K = F, or 2F with the cell and whole-signal families), shape (n, F).
    A row whose signals are all missing has no evidence against it and scores 0."""
    norm = err / error_scale
    ok = np.isfinite(norm)
    terms = np.where(ok, norm, 0.0)
    count = ok.sum(1)
    score = np.where(count > 0, terms.sum(1) / np.maximum(count, 1), 0.0)
    return score, terms.reshape(len(terms), -1, n_features).sum(1)


# ---- columns of a table or batch ---------------------------------------------------------------
def series_schema(table: pa.Table, data_cfg, source: str) -> tuple[Schema, list[str]]:
    """Column roles as in tables; only numeric and boolean columns are modelled as signals."""
    schema = infer_schema(table, data_cfg, source)
    cols = []
    for c in schema.columns:
        if c.role in ("categorical", "datetime"):
            warnings.warn(f"{source}: column {c.name!r} ({c.role}) is not modelled in time-series "
                          "mode (only numeric and boolean signals are)", stacklevel=3)
            c = Column(c.name, "excluded", f"{c.role}: not modelled in time-series mode")
        cols.append(c)
    schema = Schema(cols)
    features = [c.name for c in schema.modelled]
    if not features:
        raise DataError(f"{source}: no numeric or boolean column to model as a signal")
    return schema, features


def read_columns(table, schema: Schema, state_or_cfg, kind: str | None, source: str,
                 first_row: int = 0):
    """Entity keys, times, raw signals (n, F) float64 with NaN, invalid-cell counts, time kind."""
    names = table.schema.names
    tcol, gcol = state_or_cfg.time_column, state_or_cfg.group_column
    for col, what in ((tcol, "data.time_column"), (gcol, "data.group_column")):
        if col and col not in names:
            raise DataError(f"{source}: column {col!r} ({what}) is not in the file")
    tarr = table.column(names.index(tcol))
    kind = kind or time_kind(tarr)
    times = parse_times(tarr, kind, tcol, source, first_row)
    keys = entity_keys(table.column(names.index(gcol)) if gcol else None, table.num_rows)
    typed, invalid = schema.coerce(table)
    raw = np.empty((table.num_rows, len(typed)), dtype=np.float64)
    for j, (name, arr) in enumerate(typed.items()):
        v = arr.to_numpy(zero_copy_only=False)
        if schema.role_of(name) == "boolean":  # codes: 0/1, -1 missing
            v = np.where(v < 0, np.nan, v.astype(np.float64))
        raw[:, j] = v
    return keys, times, raw, invalid, kind


# ---- training ----------------------------------------------------------------------------------
def train_series(model, x: np.ndarray, miss: np.ndarray, starts: np.ndarray, cfg,
                 device: torch.device, progress=None, trainable: np.ndarray | None = None,
                 ddp=None) -> dict:
    """Masked-cell training on random windows of the (entity, time)-sorted rows.

    starts[i] is the first row of row i's entity: windows never cross entities. A window ends at
    a uniformly drawn row (so long entities weigh more); some are cut short at the left so the
    model also knows the first steps of a series. The highest-loss windows of each batch are left
    out of the gradient (train.trim_fraction), as in the tabular loop.

    `ddp` (attnad.engines.distributed.Context, under torchrun): every rank holds the same rows
    and takes the same number of steps, each drawing its own windows, and DistributedDataParallel
    averages the gradients: a batch of model.batch_windows per process.
    """
    t0 = time.perf_counter()
    tc, mc = cfg.train, cfg.model
    W, M, B = mc.window, n_masks(mc.mask_ratio), mc.batch_windows
    seed_everything(tc.seed)
    gen = torch.Generator().manual_seed(tc.seed + (7919 * ddp.rank if ddp is not None else 0))
    X = torch.from_numpy(x).to(device)  # (N, F)
    MISS = torch.from_numpy(miss).to(device)
    START = torch.from_numpy(starts).to(device)
    N, F = X.shape
    # windows end on trainable rows only (held-out calibration rows never shape the weights)
    END = torch.from_numpy(np.flatnonzero(trainable) if trainable is not None else np.arange(N))
    model.to(device)
    steps_per_epoch = max(1, math.ceil(len(END) / stride_of(mc) / B))  # each row in ~1 window
    total = tc.epochs * steps_per_epoch if tc.epochs else max(tc.min_steps, 2 * steps_per_epoch)
    total = min(total, tc.max_steps)
    net = ddp.wrap(model) if ddp is not None else model
    opt = torch.optim.AdamW(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    sched = one_cycle(opt, tc.lr, total)
    pos = torch.arange(W)
    last = float("nan")
    net.train()
    for step in range(total):
        ends = END[torch.randint(0, len(END), (B,), generator=gen)]
        cut = torch.randint(0, W - 1, (B,), generator=gen) * \
            (torch.rand(B, generator=gen) < TRUNCATED_SHARE)
        a = torch.randint(0, M, (B, W, 1), generator=gen)
        b = torch.randint(0, M, (B, 1, F), generator=gen)
        m = torch.randint(0, M, (B, 1, 1), generator=gen)
        pattern = ((a + b) % M) == m  # (B, W, F) cell masks, as cell_patterns draws them
        if mc.signal_masks:  # half the windows hide whole signals, as signal_patterns does
            m2 = min(M, F)
            groups = torch.rand(B, 1, F, generator=gen).argsort(-1) % m2
            whole = groups == torch.randint(0, m2, (B, 1, 1), generator=gen)  # (B, 1, F)
            pick = torch.rand(B, 1, 1, generator=gen) < 0.5
            pattern = torch.where(pick, whole.expand(B, W, F), pattern)
        if mc.span_masks:  # some windows hide one block of W/M steps, as span_patterns does
            span = max(1, W // M)
            first = torch.randint(0, W - span + 1, (B, 1, 1), generator=gen)
            steps = torch.arange(W)[None, :, None]
            block = (steps >= first) & (steps < first + span)  # (B, W, 1)
            pick = torch.rand(B, 1, 1, generator=gen) < 1.0 / (1 + mc.signal_masks + 1)
            pattern = torch.where(pick, block.expand(B, W, F), pattern)
        ends, cut, pattern = ends.to(device), cut.to(device), pattern.to(device)
        rows = ends[:, None] - W + 1 + pos.to(device)  # (B, W)
        valid = (rows >= START[ends][:, None]) & (pos.to(device)[None] >= cut[:, None])
        idx = rows.clamp_min(0)
        xb = X[idx] * valid[..., None]  # (B, W, F)
        mb = MISS[idx] | ~valid[..., None]
        hidden, target = pattern | mb, pattern & ~mb
        err = net.cell_errors(xb, hidden, target, valid)
        per_window = err.sum((1, 2)) / target.sum((1, 2)).clamp_min(1)  # (B,)
        loss = trimmed_mean(per_window, tc.trim_fraction)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        last = float(loss.detach())
        if progress:
            progress(step + 1, total, last)
    net.eval()
    return {"rows": int(len(END)), "epochs": math.ceil(total / steps_per_epoch), "steps": total,
            "best_validation_loss": None, "final_train_loss": last,
            "seconds": round(time.perf_counter() - t0, 3), "device": str(device)}


# ---- scoring -----------------------------------------------------------------------------------
class SeriesScorer:
    """Streams rows through windows and the model; returns normalised row scores as they finish."""

    def __init__(self, model, state: SeriesState, device: torch.device, normalise: bool = True):
        self.model = model.to(device).eval()
        self.state = state
        self.device = device
        self.normalise = normalise
        F = len(state.features)
        pats = [cell_patterns(state.window, F, state.n_masks, state.seed)]
        if state.signal_masks:
            pats.append(signal_patterns(state.window, F, state.n_masks, state.seed))
        if state.span_masks:
            pats.append(span_patterns(state.window, F, state.n_masks))
        self.family_sizes = [len(p) for p in pats]
        self.patterns = torch.cat(pats).to(device)  # (P, W, F)
        self.stream = WindowStream(F, state.window, state.stride, SCORE_GROUP, self._evaluate,
                                   n_outputs=state.n_errors)
        self.unseen: dict[str, int] = {}

    @torch.inference_mode()
    def _evaluate(self, g: Group) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(g.x).to(self.device)  # (G, W, F)
        miss = torch.from_numpy(g.miss).to(self.device)
        valid = torch.from_numpy(g.valid).to(self.device)  # (G, W)
        M, (G, W, F) = self.patterns.shape[0], x.shape
        pat = self.patterns[:, None]  # (M, 1, W, F)
        hidden = (pat | miss[None]).reshape(M * G, W, F)
        target = (pat & ~miss[None]).reshape(M * G, W, F)
        xs = x[None].expand(M, G, W, F).reshape(M * G, W, F)
        err = self.model.cell_errors(xs, hidden, target, valid.repeat(M, 1),
                                     robust=self.state.error_units == "robust").view(M, G, W, F)
        # every present cell is a target under exactly one mask of each family
        fams = [part.sum(0) for part in err.split(self.family_sizes)]
        if self.state.row_score == "window":
            present = (~miss).to(err.dtype)  # padding is marked missing too
            count = present.sum(1, keepdim=True).clamp_min(1)  # (G, 1, F)
            fams = [((f * present).sum(1, keepdim=True) / count).expand(G, W, F) for f in fams]
        has = np.concatenate([~g.miss] * len(fams), axis=-1)
        return torch.cat(fams, -1).double().cpu().numpy(), has  # (G, W, K)

    def _finished(self, chunks) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
        out = []
        for key, rows, err in chunks:
            if self.normalise:
                scale = self.state.lookup([key], "error_scale")[0]
                scores, contrib = row_scores(err, scale, len(self.state.features))
                out.append((key, rows, scores, contrib))
            else:
                out.append((key, rows, None, err))
        return out

    def push(self, keys: np.ndarray, raw: np.ndarray, rows: np.ndarray) -> list:
        """Rows in time order within each entity -> [(entity, rows, scores, contributions)]."""
        uniq, inv = np.unique(keys.astype(str), return_inverse=True)
        for k in uniq:
            if k not in self.state.entities:
                self.unseen[k] = self.unseen.get(k, 0) + int(np.sum(keys == k))
        center = self.state.lookup(list(uniq), "center")[inv]
        scale = self.state.lookup(list(uniq), "scale")[inv]
        x, miss = scaled(raw, center, scale)
        return self._finished(self.stream.push(keys, x, miss, rows))

    def finish(self) -> list:
        return self._finished(self.stream.finish())

    def warnings(self, source: str) -> list[str]:
        if not self.unseen:
            return []
        names = sorted(str(k) for k in self.unseen)
        shown = ", ".join(repr(k) for k in names[:10]) + (" ..." if len(names) > 10 else "")
        return [f"{source}: {len(names)} entit{'y' if len(names) == 1 else 'ies'} not seen in "
                f"training ({shown}) scored with statistics pooled over the training entities"]


def _collect(results, n: int, F: int) -> tuple[np.ndarray, np.ndarray]:
    scores = np.zeros(n)
    contrib = np.zeros((n, F))
    for _, rows, s, c in results:
        scores[rows] = s
        contrib[rows] = c
    return scores, contrib


def _series_scorer(det) -> SeriesScorer:
    return SeriesScorer(det.model_, det.series_, det.device_)


def score_table(det, data, source: str = "data"):
    """Scores and per-signal contributions of an in-memory table, in its row order."""
    from attnad.detector import as_table
    det._check_fitted()
    table = as_table(data)
    st = det.series_
    keys, times, raw, invalid, _ = read_columns(table, det.schema_, st, st.time_kind, source)
    order = series_order(keys, times)
    scorer = _series_scorer(det)
    done = scorer.push(keys[order], raw[order], order) + scorer.finish()
    for w in scorer.warnings(source):
        warnings.warn(w, stacklevel=3)
    scores, contrib = _collect(done, table.num_rows, len(st.features))
    return scores, contrib, invalid


# ---- fit ---------------------------------------------------------------------------------------
def holdout_rows(starts_of: np.ndarray, ends_of: np.ndarray, fraction: float, window: int
                 ) -> np.ndarray:
    """The last `fraction` of each entity's training rows (train.calibration_fraction), kept out
    of training to measure error scales and the threshold on.

    Errors on rows the model was fitted to are smaller than on new rows, which held-out rows
    avoid; but one contiguous tail can be unlike the rest of a series (on SMD machine-1-6 a quiet
    tail gave a threshold that flagged 45% of later normal rows at a 1% target), so it is off by
    default. An entity keeps all its rows for training when the rest would be shorter than one
    window.
    """
    held = np.zeros(int(ends_of[-1]) if len(ends_of) else 0, bool)
    for s, e in zip(starts_of, ends_of):
        k = int((e - s) * fraction)
        if k > 0 and (e - s) - k >= window:
            held[e - k:e] = True
    return held


def fit_series(det, data, *, device: str | None = None, progress=None, source: str = "data",
               init_from=None, ddp=None):
    from attnad.detector import MIN_TRAIN_ROWS, as_table
    cfg = det.config
    set_threads(cfg.train.threads)
    table = as_table(data)
    if table.num_rows < MIN_TRAIN_ROWS:
        raise UserError(f"{source}: {table.num_rows} row(s) are too few to learn what is "
                        f"normal; train on at least {MIN_TRAIN_ROWS} rows (hundreds are better)")
    det.device_ = ddp.device if ddp is not None else resolve_device(device or cfg.train.device)
    schema, features = series_schema(table, cfg.data, source)
    keys, times, raw, invalid, kind = read_columns(table, schema, cfg.data, None, source)
    order = series_order(keys, times)
    keys, raw = keys[order], raw[order]
    keep = recent_rows(keys, cfg.train.max_rows)
    keys, raw = keys[keep], raw[keep]

    # per-entity input statistics (pooled for small entities)
    starts_of = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends_of = np.r_[starts_of[1:], len(keys)]
    p_center, p_scale = robust_stats(raw)
    entities = {}
    center = np.empty_like(raw)
    scale = np.empty_like(raw)
    starts = np.empty(len(keys), dtype=np.int64)
    for s, e in zip(starts_of, ends_of):
        c, sc = robust_stats(raw[s:e]) if e - s >= MIN_ENTITY_ROWS else (p_center, p_scale)
        entities[str(keys[s])] = {"rows": int(e - s), "center": c.tolist(), "scale": sc.tolist()}
        center[s:e], scale[s:e], starts[s:e] = c, sc, s
    x, miss = scaled(raw, center, scale)

    mc = cfg.model
    held = holdout_rows(starts_of, ends_of, cfg.train.calibration_fraction, mc.window)
    check_model_size(lambda: build_series_model(mc, len(features)), mc, source=source,
                     batch=mc.batch_windows, tokens=mc.window)
    seed_everything(cfg.train.seed)  # weight initialisation is part of the seeded fit
    det.model_ = build_series_model(mc, len(features))
    started = None
    if init_from is not None:
        from attnad.transfer import init_from as start_from, series_features
        started = start_from(det.model_, init_from, series_features(features), timeseries=True)
    det.training_ = train_series(det.model_, x, miss, starts, cfg, det.device_, progress,
                                 trainable=~held, ddp=ddp)
    det.training_["calibration_rows"] = int(held.sum())
    det.training_["invalid_cells"] = invalid
    from attnad.detector import data_fingerprint
    det.training_["fingerprint"] = data_fingerprint(table, schema)
    if started is not None:
        det.training_["init_from"] = started
    det.training_["entities"] = len(entities)

    state = SeriesState(features, cfg.data.time_column, cfg.data.group_column, kind, mc.window,
                        stride_of(mc), n_masks(mc.mask_ratio), cfg.train.seed, entities,
                        {"center": p_center.tolist(), "scale": p_scale.tolist()},
                        signal_masks=mc.signal_masks, span_masks=mc.span_masks,
                        row_score=mc.row_score, error_units=mc.error_units)
    state.pooled["error_scale"] = [1.0] * state.n_errors
    # typical errors on the training rows, per entity and pooled -> error scales -> threshold
    scorer = SeriesScorer(det.model_, state, det.device_, normalise=False)
    # the inputs are scaled already: feed the window stream directly
    done = scorer._finished(scorer.stream.push(keys, x, miss, np.arange(len(keys)))) \
        + scorer.finish()
    err = np.full((len(keys), state.n_errors), np.nan)
    for _, rows, _, e in done:
        err[rows] = e
    calib = held if held.any() else np.ones(len(keys), bool)
    err[~calib] = np.nan  # with a holdout, scales and threshold come from the held-out rows only
    pooled, _ = typical_error(err)
    typical = float(np.nanmedian(pooled)) if np.isfinite(pooled).any() else 0.0
    floor = max(ERROR_FLOOR * typical, 1e-6)
    pooled = np.maximum(np.where(np.isfinite(pooled), pooled, floor), floor)
    state.pooled["error_scale"] = pooled.tolist()
    train_scores = np.empty(len(keys))
    for s, e in zip(starts_of, ends_of):
        typ, n = typical_error(err[s:e])
        typ = np.where(np.isfinite(typ), typ, pooled)
        shrunk = np.maximum((n * typ + SHRINK_ROWS * pooled) / (n + SHRINK_ROWS), floor)
        entities[str(keys[s])]["error_scale"] = shrunk.tolist()
        train_scores[s:e] = row_scores(err[s:e], shrunk, len(features))[0]
    det.schema_ = schema
    det.series_ = state
    det.threshold_ = fit_threshold(train_scores[calib], cfg.threshold)
    if cfg.threshold.per_entity:
        det.threshold_["entities"] = fit_entity_thresholds(train_scores[calib], keys[calib],
                                                           cfg.threshold)
    return det


# ---- file scoring (two passes) -----------------------------------------------------------------
class RowStore:
    """Per-row values (`width` floats a row) by row number in a temporary file, so pass 1 holds no
    per-row state in memory."""

    def __init__(self, width: int = 1):
        self._dir = tempfile.TemporaryDirectory(prefix="attnad-scores-")
        self._path = os.path.join(self._dir.name, "scores.f64")
        self._width = width
        self._cap = 0
        self._arr = None
        self.written = 0

    def put(self, rows: np.ndarray, values: np.ndarray) -> None:
        if not len(rows):
            return
        need = int(rows.max()) + 1
        if need > self._cap:
            cap = max(need, 2 * self._cap, 1 << 16)
            if self._arr is not None:
                self._arr.flush()
                self._arr = None
            with open(self._path, "ab") as fh:
                fh.truncate(cap * 8 * self._width)
            self._arr = np.memmap(self._path, dtype=np.float64, mode="r+",
                                  shape=(cap, self._width))
            self._cap = cap
        self._arr[rows] = np.asarray(values).reshape(len(rows), self._width)
        self.written += len(rows)

    def get(self, start: int, n: int) -> np.ndarray:
        out = np.array(self._arr[start:start + n]) if n else np.zeros((0, self._width))
        return out[:, 0] if self._width == 1 else out

    def close(self) -> None:
        self._arr = None
        self._dir.cleanup()


class TopRows:
    """The highest-scoring rows with their per-signal contributions (for the summary)."""

    def __init__(self, n_features: int, k: int = TOP_KEEP):
        self.k = k
        self.rows = np.zeros(0, np.int64)
        self.scores = np.zeros(0)
        self.contrib = np.zeros((0, n_features))

    def add(self, rows, scores, contrib) -> None:
        rows = np.concatenate([self.rows, rows])
        scores = np.concatenate([self.scores, scores])
        contrib = np.concatenate([self.contrib, contrib])
        top = np.lexsort((rows, -scores))[:self.k]
        self.rows, self.scores, self.contrib = rows[top], scores[top], contrib[top]

    def block(self, start: int, n: int) -> np.ndarray:
        out = np.zeros((n, self.contrib.shape[1]))
        inside = (self.rows >= start) & (self.rows < start + n)
        out[self.rows[inside] - start] = self.contrib[inside]
        return out


def _in_time_order(keys: np.ndarray, times: np.ndarray, last: dict) -> bool:
    """True when each entity's times do not go back, within the batch and since the last one."""
    uniq, inv = np.unique(keys.astype(str), return_inverse=True)
    order = np.argsort(inv, kind="stable")
    c, t = inv[order], times[order]
    same = c[1:] == c[:-1]
    if np.any(t[1:][same] < t[:-1][same]):
        return False
    first = np.r_[True, ~same]
    lastpos = np.r_[~same, True]
    for j, tf, tl in zip(c[first], t[first], t[lastpos]):
        if tf < last.get(uniq[j], -np.inf):
            return False
        last[uniq[j]] = tl
    return True


def scored_batches(det, path, batch_size: int, warnings_out: list[str],
                   all_contributions: bool = False):
    """Yield (batch, scores, contributions, invalid counts) for the file, in input order.

    Contributions are kept for the top rows only, unless `all_contributions` (for --explain):
    then every row's are stored beside its score in the temporary file (8 bytes per signal)."""
    st = det.series_
    F = len(st.features)
    csv = CsvFormat.of(det.config.data)
    store, top = RowStore(1 + F if all_contributions else 1), TopRows(F)
    invalid_total: dict[str, int] = {}

    def add(results):
        for _, rows, s, c in results:
            store.put(rows, np.column_stack([s, c]) if all_contributions else s)
            top.add(rows, s, c)

    try:
        scorer, last, offset, in_order = _series_scorer(det), {}, 0, True
        for batch in iter_batches(path, batch_size, csv):
            keys, times, raw, invalid, _ = read_columns(batch, det.schema_, st, st.time_kind,
                                                        str(path), offset)
            if not _in_time_order(keys, times, last):
                in_order = False
                break
            for k, v in invalid.items():
                invalid_total[k] = invalid_total.get(k, 0) + v
            add(scorer.push(keys, raw, offset + np.arange(len(keys))))
            offset += len(keys)
        if not in_order:
            warnings_out.append(
                f"{path}: rows are not in time order within each entity; read the time, group and "
                "signal columns of the whole file into memory to sort them (sort the file by "
                f"({st.group_column or 'entity'}, {st.time_column}) to stream it in bounded memory)")
            store.close()
            store, top, invalid_total = RowStore(1 + F if all_contributions else 1), TopRows(F), {}
            parts, offset = [], 0
            for batch in iter_batches(path, batch_size, csv):
                keys, times, raw, invalid, _ = read_columns(batch, det.schema_, st, st.time_kind,
                                                            str(path), offset)
                parts.append((keys, times, raw))
                for k, v in invalid.items():
                    invalid_total[k] = invalid_total.get(k, 0) + v
                offset += len(keys)
            keys, times, raw = (np.concatenate([p[i] for p in parts]) for i in range(3))
            del parts
            order = series_order(keys, times)
            scorer = _series_scorer(det)
            for i in range(0, len(order), batch_size):
                o = order[i:i + batch_size]
                add(scorer.push(keys[o], raw[o], o))
        add(scorer.finish())
        warnings_out += scorer.warnings(str(path))
        if store.written != offset:
            raise AssertionError(f"scored {store.written} of {offset} rows")  # a bug, not input
        start = 0
        for batch in iter_batches(path, batch_size, csv):
            n = batch.num_rows
            got = store.get(start, n)
            scores, contrib = (got[:, 0], got[:, 1:]) if all_contributions else \
                (got, top.block(start, n))
            yield batch, scores, contrib, (invalid_total if start == 0 else {})
            start += n
    finally:
        store.close()


# ---- persistence -------------------------------------------------------------------------------
def save_series(det, path) -> None:
    det._check_fitted()
    meta = {
        "config": det.config.model_dump(mode="json"),
        "schema": det.schema_.to_dict(),
        "timeseries": det.series_.to_dict(),
        "threshold": det.threshold_,
        "training": det.training_,
    }
    write_artifact(path, meta, det.model_.state_dict())


def load_series(cls, path, meta: dict, tensors: dict, device: str):
    from attnad.config import build_config
    try:
        det = cls(build_config(meta["config"], f"{path}/attnad.json"))
        det.schema_ = Schema.from_dict(meta["schema"])
        det.series_ = SeriesState.from_dict(meta["timeseries"])
        check_model_size(lambda: build_series_model(det.config.model, len(det.series_.features)),
                         det.config.model, source=f"{path}/attnad.json")
        det.model_ = build_series_model(det.config.model, len(det.series_.features))
        det.model_.load_state_dict(tensors, strict=True)
        det.threshold_ = meta["threshold"]
        det.training_ = meta.get("training", {})
    except UserError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
        raise ModelError(f"{path}: model directory is inconsistent ({str(e)[:200]}); "
                         "retrain it") from None
    det.device_ = resolve_device(device)
    det.model_.to(det.device_).eval()
    return det
