"""Thresholds and score calibration, fitted on training scores and saved with the model.

`anomaly_probability` is the share of training rows that scored lower than the row, interpolated
over stored quantiles of the training scores: 0.99 means "higher than 99% of what the model saw in
training". It is a rank calibration, comparable across models and files, not a posterior.

    state = fit_threshold(train_scores, cfg.threshold)
    flags = scores > state["value"]; prob = probability(scores, state)
"""

from __future__ import annotations

import numpy as np

N_QUANTILES = 1001


def fit_threshold(train_scores: np.ndarray, cfg) -> dict:
    s = np.asarray(train_scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    qs = np.linspace(0.0, 1.0, N_QUANTILES)
    quantiles = np.quantile(s, qs).tolist() if s.size else [0.0] * N_QUANTILES
    if cfg.method == "fixed":
        value = float(cfg.value)
    else:
        value = float(np.quantile(s, 1.0 - cfg.contamination)) if s.size else 0.0
    return {"method": cfg.method, "contamination": cfg.contamination, "value": value,
            "calibration_quantiles": quantiles, "n_training_scores": int(s.size)}


def quantile_threshold(state: dict, contamination: float) -> float:
    """The threshold that flags `contamination` of the training rows, from stored quantiles."""
    qs = np.linspace(0.0, 1.0, len(state["calibration_quantiles"]))
    return float(np.interp(1.0 - contamination, qs, state["calibration_quantiles"]))


def probability(scores: np.ndarray, state: dict) -> np.ndarray:
    q = np.asarray(state["calibration_quantiles"], dtype=np.float64)
    levels = np.linspace(0.0, 1.0, q.size)
    # np.interp needs increasing x; ties in q (flat score regions) are fine for it
    p = np.interp(np.nan_to_num(scores, nan=np.inf), q, levels, left=0.0, right=1.0)
    return p
