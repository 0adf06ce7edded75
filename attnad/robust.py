"""Robust statistics shared by both modes: centre and spread, typical errors, normalised means.

Training data holds a few anomalies, so nothing here is a plain mean or standard deviation: the
spread is the interquartile range (scaled to match a normal's standard deviation), typical errors
leave out their highest share, and a floor keeps near-perfectly predicted cells from turning tiny
errors into huge scores. Tables and time series call the same functions, so a fix made here holds
for both.

    center, scale = center_scale(column)          # floats; robust z = (x - center) / scale
    typical, counts = trimmed_mean(errors, 0.05)  # per column, highest 5% left out
"""

from __future__ import annotations

import warnings

import numpy as np

IQR_TO_STD = 1.349  # a normal distribution's IQR in standard deviations
MIN_ERROR_SCALE = 1e-6  # no typical error below this, whatever the data


def spread(q1, q3, std):
    """IQR / 1.349; where that is not positive (a column with one common value), the standard
    deviation; where that is not positive either, 1. Scalars or arrays."""
    scale = (q3 - q1) / IQR_TO_STD
    scale = np.where(np.isfinite(scale) & (scale > 0), scale,
                     np.where(np.isfinite(std) & (std > 0), std, 1.0))
    return float(scale) if np.ndim(scale) == 0 else scale


def center_scale(x: np.ndarray) -> tuple[float, float]:
    """Median and spread of the finite values of a column; (0, 1) when it has none."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return 0.0, 1.0
    q1, q3 = np.percentile(x, [25, 75])
    return float(np.median(x)), spread(q1, q3, np.std(x))


def column_center_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of (n, F) with NaN for missing: median (0 for an all-missing column) and
    spread."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns
        med = np.nanmedian(x, axis=0)
        q1, q3 = np.nanpercentile(x, [25, 75], axis=0)
        std = np.nanstd(x, axis=0)
    return np.where(np.isfinite(med), med, 0.0), spread(q1, q3, std)


def trimmed_mean(err: np.ndarray, trim: float) -> tuple[np.ndarray, np.ndarray]:
    """Typical error of each column (axis 0 is the rows): the mean of its finite errors without
    the highest `trim` share, so anomalies in the training data do not inflate it. NaN where a
    column has no finite error. Also returns each column's count of finite errors."""
    err = np.asarray(err, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        cut = np.nanquantile(err, 1.0 - trim, axis=0)
    keep = np.isfinite(err) & (err <= cut)
    n = keep.sum(0)
    mean = np.where(keep, err, 0.0).sum(0) / np.maximum(n, 1)
    return np.where(n > 0, mean, np.nan), np.isfinite(err).sum(0)


def error_floor(typical: np.ndarray, share: float) -> float:
    """The smallest typical error allowed: `share` of the median column's (finite ones only)."""
    finite = np.asarray(typical)[np.isfinite(typical)]
    median = float(np.median(finite)) if finite.size else 0.0
    return max(share * median, MIN_ERROR_SCALE)


def normalised_mean(err: np.ndarray, scale, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Errors divided by their typical size, then averaged along `axis` over the finite ones (0
    where there is none: no evidence against the row). Returns the means and the normalised
    terms (non-finite ones as 0), so callers can sum them per feature for explanations."""
    norm = err / scale
    ok = np.isfinite(norm)
    terms = np.where(ok, norm, 0.0)
    if norm.shape[axis] == 1:  # one term: its mean is itself (the scoring hot path of one mask)
        return np.take(terms, 0, axis=axis), terms
    count = ok.sum(axis)
    return np.where(count > 0, terms.sum(axis) / np.maximum(count, 1), 0.0), terms
