"""Evaluation metrics for anomaly scores.

Every function takes ground-truth ``labels`` (1 = anomaly, 0 = normal) and real-valued
``scores`` where *higher means more anomalous*, and returns a plain ``float``.  A metric that
is undefined for the given labels (for example only one class present) returns
``float('nan')`` instead of raising, so a benchmark table can show the gap and carry on.

Why these metrics
-----------------
* :func:`auroc` - threshold-free ranking quality; the headline metric of tabular benchmarks
  (ADBench, Han et al., NeurIPS 2022).  It is insensitive to the anomaly rate, which makes it
  comparable across data sets but flattering when anomalies are rare.
* :func:`auprc` - average precision (sklearn's step-wise estimator, not the trapezoidal
  one, which is optimistic: Davis & Goadrich, ICML 2006).  Its chance level is the anomaly
  rate, so it exposes the false-positive burden AUROC hides on rare-anomaly data
  (Saito & Rehmsmeier, PLoS ONE 2015).
* :func:`best_f1` - the F1 of the best threshold, *without* point adjustment.  Point
  adjustment (marking a whole labelled segment as detected when a single point in it fires)
  inflates F1 so much that random scores look state of the art (Kim et al., "Towards a
  Rigorous Evaluation of Time-series Anomaly Detection", AAAI 2022), so it is not offered.
* :func:`vus_pr` / :func:`vus_roc` - "Volume Under the Surface" (Paparrizos, Boniol,
  Palpanas, Tsay, Elmore, Franklin, "Volume Under the Surface: A New Accuracy Evaluation
  Measure for Time-Series Anomaly Detection", PVLDB 15(11), 2022; implementation in
  TheDatumOrg/TSB-UAD and TheDatumOrg/TSB-AD).  Time-series labels mark *segments* whose
  borders are fuzzy and detectors (especially windowed ones) fire slightly early or late.
  Range-AUC gives partial credit to detections in a buffer around each segment and rewards
  detecting every segment (existence); VUS averages Range-AUC over buffer lengths
  0..``max_window`` so no single buffer length has to be chosen.  The TSB-AD study
  (Liu & Paparrizos, NeurIPS 2024 D&B) found VUS-PR the most robust and discriminative
  of the time-series measures it compared, which is why the benchmark ranks on it.
* :func:`event_scores` - event-wise precision / recall / F1 of *flags* (not scores):
  flagged steps are grouped into events (:func:`flag_runs`, the rule of ``detect --events``),
  a labelled range counts as found when any event overlaps it, an event overlapping no range
  is a false alarm.  Unlike point-adjusted F1 it charges every false event, so flagging
  everything does not score well.

The VUS implementation here is an independent, vectorised numpy re-implementation of the
TSB-AD ``RangeAUC_volume_opt`` semantics (see :func:`range_auc_curves`); it evaluates each
buffer length in O(n) after one sort, so a 100k-point series with ``max_window=200`` takes
well under a few seconds.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

__all__ = [
    "DEFAULT_SLIDING_WINDOW",
    "DEFAULT_N_THRESHOLDS",
    "auroc",
    "auprc",
    "best_f1",
    "segments",
    "range_auc_curves",
    "vus_pr",
    "vus_roc",
    "vus",
    "flag_runs",
    "event_scores",
]

#: TSB-AD's ``get_metrics`` default ``slidingWindow`` (it normally passes a period estimate).
#: VUS uses buffer lengths ``0 .. 2 * slidingWindow``.
DEFAULT_SLIDING_WINDOW = 100
#: Number of score thresholds TSB-UAD/TSB-AD sample for the range curves.
DEFAULT_N_THRESHOLDS = 250


# --------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------
def _prepare(labels, scores) -> Tuple[np.ndarray, np.ndarray]:
    """Validate and convert inputs.

    Labels become an int array of 0/1 (any non-zero value counts as anomalous).  Scores become
    float64; NaN raises ``ValueError`` (a detector emitting NaN is a bug worth surfacing), while
    +/-inf are replaced by finite values just beyond the finite range so the ranking is kept.
    """
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape[0] != s.shape[0]:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} != {s.shape[0]}")
    if y.dtype == bool:
        y = y.astype(np.int64)
    else:
        y_f = y.astype(np.float64)
        if np.isnan(y_f).any():
            raise ValueError("labels contain NaN")
        y = (y_f != 0).astype(np.int64)
    if np.isnan(s).any():
        raise ValueError(f"scores contain {int(np.isnan(s).sum())} NaN value(s)")
    if not np.isfinite(s).all():
        s = s.copy()
        fin = s[np.isfinite(s)]
        lo, hi = (float(fin.min()), float(fin.max())) if fin.size else (0.0, 0.0)
        span = max(hi - lo, 1.0)
        s[np.isposinf(s)] = hi + span
        s[np.isneginf(s)] = lo - span
    return y, s


def _single_class(y: np.ndarray) -> bool:
    return y.size == 0 or y.min() == y.max()


# --------------------------------------------------------------------------------------
# point-wise metrics
# --------------------------------------------------------------------------------------
def auroc(labels, scores) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``); ties count one half.

    0.5 = random ranking, 1.0 = every anomaly scores above every normal point.
    NaN when only one class is present (the curve is undefined).
    """
    from sklearn.metrics import roc_auc_score

    y, s = _prepare(labels, scores)
    if _single_class(y):
        return float("nan")
    return float(roc_auc_score(y, s))


def auprc(labels, scores) -> float:
    """Average precision (``sklearn.metrics.average_precision_score``).

    AP = sum_k (R_k - R_{k-1}) P_k over score thresholds; it is the step-wise area under the
    precision-recall curve, without the optimistic linear interpolation of the trapezoidal
    rule (Davis & Goadrich 2006).  Chance level equals the anomaly rate.
    NaN when only one class is present.
    """
    from sklearn.metrics import average_precision_score

    y, s = _prepare(labels, scores)
    if _single_class(y):
        return float("nan")
    return float(average_precision_score(y, s))


def best_f1(labels, scores) -> float:
    """Best point-wise F1 over all score thresholds, **no point adjustment**.

    Every distinct score is tried as a threshold (``score >= t`` flags an anomaly) via
    ``sklearn.metrics.precision_recall_curve``.  This is an oracle-threshold upper bound
    (the threshold is picked on the test labels), reported as "Standard-F1" in TSB-AD;
    point adjustment is deliberately not applied (Kim et al., AAAI 2022).
    NaN when only one class is present.
    """
    from sklearn.metrics import precision_recall_curve

    y, s = _prepare(labels, scores)
    if _single_class(y):
        return float("nan")
    precision, recall, _ = precision_recall_curve(y, s)
    denom = precision + recall
    f1 = np.divide(2.0 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    return float(f1.max())


# --------------------------------------------------------------------------------------
# range metrics (VUS)
# --------------------------------------------------------------------------------------
def segments(labels) -> np.ndarray:
    """Maximal runs of non-zero labels as an ``(k, 2)`` int array of inclusive ``[start, end]``."""
    y = (np.asarray(labels).reshape(-1) != 0).astype(np.int8)
    if y.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    d = np.diff(np.concatenate(([0], y, [0])))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return np.stack([starts, ends], axis=1).astype(np.int64)


def _soft_labels(base: np.ndarray, segs: np.ndarray, ell: int) -> np.ndarray:
    """Range-AUC label for buffer length ``ell`` (Paparrizos et al. 2022, Sec. 4.1).

    1 inside each labelled segment; ``h = ell // 2`` points on each side get
    ``sqrt(1 - d / ell)`` where ``d`` (1..h) is the distance to the segment edge.
    Overlapping contributions add up and are clipped at 1 (as in TSB-AD ``sequencing``).
    """
    n = base.size
    out = base.astype(np.float64)  # copy: 1 inside the segments
    h = ell // 2
    if h <= 0 or segs.shape[0] == 0:
        return out
    d = np.arange(1, h + 1, dtype=np.float64)
    w = np.sqrt(1.0 - d / ell)
    d_int = d.astype(np.int64)
    left = (segs[:, 0:1] - d_int[None, :]).ravel()  # positions s - d
    right = (segs[:, 1:2] + d_int[None, :]).ravel()  # positions e + d
    ww = np.tile(w, segs.shape[0])
    idx = np.concatenate([left, right])
    wts = np.concatenate([ww, ww])
    ok = (idx >= 0) & (idx < n)
    out += np.bincount(idx[ok], weights=wts[ok], minlength=n)
    np.minimum(out, 1.0, out=out)
    return out


def _merged_ranges(n: int, segs: np.ndarray, h: int) -> Tuple[np.ndarray, np.ndarray]:
    """Segments widened by ``h`` on each side, merged where they touch (TSB-AD ``new_sequence``)."""
    starts = np.maximum(segs[:, 0] - h, 0)
    ends = np.minimum(segs[:, 1] + h, n - 1)
    if segs.shape[0] > 1:
        # a new merged range begins where the widened segment does not touch the previous one
        # (TSB-AD keeps them separate iff e_i + h < s_{i+1} - h)
        new = np.concatenate(([True], segs[:-1, 1] + h < segs[1:, 0] - h))
        group = np.cumsum(new) - 1
        g_start = starts[new]
        g_end = np.zeros(int(group[-1]) + 1, dtype=np.int64)
        np.maximum.at(g_end, group, ends)
        return g_start, g_end
    return starts, ends


def range_auc_curves(
    labels,
    scores,
    max_window: int | None = None,
    n_thresholds: int | None = DEFAULT_N_THRESHOLDS,
) -> Tuple[np.ndarray, np.ndarray]:
    """Range-AUC-ROC and Range-AUC-PR for every buffer length ``ell = 0 .. max_window``.

    Returns two arrays of length ``max_window + 1`` (ROC areas, PR areas); their means are
    VUS-ROC and VUS-PR.  Semantics follow TSB-AD's ``RangeAUC_volume_opt`` (Paparrizos et al.,
    PVLDB 2022; Liu & Paparrizos, NeurIPS 2024): for a buffer length ``ell`` with soft label
    ``w`` (see :func:`_soft_labels`) and a threshold ``t`` (``pred = score >= t``):

    * ``TP = sum(w * pred)``; ``FP = sum(pred) - TP``
    * ``P_ell = P + 0.5 * sum(w * pred over the buffer)`` where ``P`` is the number of labelled
      points: the buffer only counts as "positive mass" where it was actually hit, so a
      wide buffer does not punish recall;
    * ``recall = min(TP / P_ell, 1)``; ``existence`` = fraction of (buffer-widened, merged)
      segments with at least one flagged point; ``TPR = recall * existence``;
      ``FPR = FP / (n - P_ell)``; ``precision = TP / sum(pred)``.

    Thresholds are the scores at ``n_thresholds`` evenly spaced ranks of the descending sorted
    scores (TSB-AD uses 250); ``None`` uses every distinct score.  The ROC curve is closed with
    (0, 0) and (1, 1) and integrated with the trapezoid rule; the PR area is
    ``sum_j (TPR_j - TPR_{j-1}) * precision_j`` starting from (TPR 0, precision 1), as in the
    reference.

    Implementation: scores are sorted once; for each ``ell`` cumulative sums over the sorted
    soft labels give TP at every threshold, and the maximum score inside each merged range
    tells at which threshold that range is first detected, so each buffer length costs O(n).
    """
    y, s = _prepare(labels, scores)
    n = y.size
    if max_window is None:
        max_window = 2 * DEFAULT_SLIDING_WINDOW
    max_window = int(max_window)
    if max_window < 0:
        raise ValueError("max_window must be >= 0")
    if _single_class(y):
        nan = np.full(max_window + 1, np.nan)
        return nan, nan.copy()

    segs = segments(y)
    P = float(y.sum())

    order = np.argsort(-s, kind="mergesort")  # descending, deterministic
    s_desc = s[order]
    if n_thresholds is None:
        thr = np.unique(s_desc)[::-1]
    else:
        idx = np.linspace(0, n - 1, int(n_thresholds)).astype(np.int64)
        thr = s_desc[idx]
    # number of points with score >= thr  (ties all included, as with `score >= threshold`)
    s_asc = s_desc[::-1]
    k = n - np.searchsorted(s_asc, thr, side="left")  # >= 1 for every threshold
    n_pred = k.astype(np.float64)

    y_desc = y[order].astype(np.float64)
    s_pad = np.concatenate([s, [-np.inf]])

    rocs = np.empty(max_window + 1)
    prs = np.empty(max_window + 1)
    for ell in range(max_window + 1):
        w = _soft_labels(y, segs, ell)
        w_desc = w[order]
        cum_w = np.cumsum(w_desc)
        cum_buf = cum_w - np.cumsum(y_desc * w_desc)  # soft-label mass outside the segments
        tp = cum_w[k - 1]
        tp_buf = cum_buf[k - 1]
        p_new = P + 0.5 * tp_buf
        recall = np.minimum(tp / p_new, 1.0)

        g_start, g_end = _merged_ranges(n, segs, ell // 2)
        bounds = np.empty(2 * g_start.size, dtype=np.int64)
        bounds[0::2] = g_start
        bounds[1::2] = g_end + 1
        seg_max = np.maximum.reduceat(s_pad, bounds)[0::2]
        seg_max.sort()
        existence = (seg_max.size - np.searchsorted(seg_max, thr, side="left")) / seg_max.size

        tpr = recall * existence
        fpr = (n_pred - tp) / (n - p_new)
        prec = tp / n_pred

        tpr_c = np.concatenate(([0.0], tpr, [1.0]))
        fpr_c = np.concatenate(([0.0], fpr, [1.0]))
        rocs[ell] = float(np.dot(np.diff(fpr_c), 0.5 * (tpr_c[1:] + tpr_c[:-1])))
        prs[ell] = float(np.dot(np.diff(tpr_c[:-1]), prec))
    return rocs, prs


def vus_pr(
    labels,
    scores,
    max_window: int | None = None,
    n_thresholds: int | None = DEFAULT_N_THRESHOLDS,
) -> float:
    """VUS-PR: Range-AUC-PR averaged over buffer lengths ``0 .. max_window``.

    ``max_window`` defaults to ``2 * DEFAULT_SLIDING_WINDOW`` (= 200).  TSB-AD uses
    ``2 * slidingWindow`` with ``slidingWindow`` estimated from the series' period; callers that
    know a natural window (a detector's window, the period) should pass ``2 * window``.
    ``max_window=0`` reduces to a range-PR with no buffer (close to, but not the same as,
    :func:`auprc`, because of the existence factor and the 250-threshold sampling).
    NaN when labels hold a single class.  See :func:`range_auc_curves` for the definition.
    """
    _, prs = range_auc_curves(labels, scores, max_window, n_thresholds)
    return float(np.mean(prs))


def vus_roc(
    labels,
    scores,
    max_window: int | None = None,
    n_thresholds: int | None = DEFAULT_N_THRESHOLDS,
) -> float:
    """VUS-ROC: Range-AUC-ROC averaged over buffer lengths ``0 .. max_window``.

    Same conventions as :func:`vus_pr`.  NaN when labels hold a single class.
    """
    rocs, _ = range_auc_curves(labels, scores, max_window, n_thresholds)
    return float(np.mean(rocs))


def vus(
    labels,
    scores,
    max_window: int | None = None,
    n_thresholds: int | None = DEFAULT_N_THRESHOLDS,
) -> Tuple[float, float]:
    """``(vus_roc, vus_pr)`` computed in one pass (half the cost of calling both)."""
    rocs, prs = range_auc_curves(labels, scores, max_window, n_thresholds)
    return float(np.mean(rocs)), float(np.mean(prs))


# --------------------------------------------------------------------------------------
# events (flags grouped into runs)
# --------------------------------------------------------------------------------------
def flag_runs(flags, merge_gap: int = 1, min_steps: int = 1) -> np.ndarray:
    """Events of one entity's flags in time order, as an ``(k, 2)`` array of inclusive
    ``[start, end]`` positions: runs of flagged steps separated by fewer than ``merge_gap``
    unflagged steps merge (1 = never), and events spanning fewer than ``min_steps`` steps are
    dropped.  ``attnad.timeseries.events.EventBuilder`` applies the same rule to a stream."""
    runs = segments(np.asarray(flags, dtype=bool))
    if len(runs) > 1:
        join = runs[1:, 0] - runs[:-1, 1] - 1 < max(int(merge_gap), 1)  # gap before each run
        first = np.r_[True, ~join]
        last = np.r_[~join, True]
        runs = np.stack([runs[first, 0], runs[last, 1]], axis=1)
    return runs[runs[:, 1] - runs[:, 0] + 1 >= min_steps]


def event_scores(pred, truth) -> dict:
    """Event-wise precision, recall and F1 of predicted events against labelled ranges (both
    ``(k, 2)`` inclusive ``[start, end]``): a range is found when an event overlaps it; an event
    overlapping no range is a false alarm.  Precision is NaN without predicted events; recall and
    F1 are NaN without labelled ranges (undefined, not zero); F1 is 0 when no event is true."""
    pred = np.asarray(pred, dtype=np.int64).reshape(-1, 2)
    truth = np.asarray(truth, dtype=np.int64).reshape(-1, 2)
    overlap = (pred[:, None, 0] <= truth[None, :, 1]) & (truth[None, :, 0] <= pred[:, None, 1])
    hit_events = int(overlap.any(1).sum())
    found = int(overlap.any(0).sum())
    precision = hit_events / len(pred) if len(pred) else float("nan")
    recall = found / len(truth) if len(truth) else float("nan")
    if not len(truth):
        f1 = float("nan")
    elif not hit_events:  # no events, or none of them true: nothing found
        f1 = 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    return {"events": len(pred), "ranges": len(truth), "true_events": hit_events,
            "found_ranges": found, "precision": precision, "recall": recall, "f1": f1}
