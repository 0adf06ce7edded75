"""Thresholds and score calibration, fitted on training scores without labels and saved with the model.

Three ways to pick the threshold (`threshold.method`):

- `quantile`: flag the top `contamination` share of the training scores.
- `pot` (peaks over threshold, extreme value theory; Siffer et al., "Anomaly detection in streams
  with extreme value theory", KDD 2017): the scores above a high quantile u
  (`threshold.pot_quantile`, raised when the fit is rejected: see `fit_tail`) are fitted with a
  generalised Pareto distribution (GPD), and the threshold is the score a normal row exceeds
  with probability `threshold.risk`. It extrapolates beyond the training sample, so
  `risk: 1e-4` works with 20,000 calibration rows.
- `fixed`: `threshold.value`.

`anomaly_probability` is P(a training row scores lower): the empirical distribution of the
training scores up to u, and the fitted GPD tail beyond it, so a score past every training score
still gets a graded value (0.9999 is ten times rarer than 0.999) instead of a flat 1.0. It is a
rank calibration, comparable across models and data sets, not a posterior probability of being
an anomaly: on normal data, `anomaly_probability > 0.999` flags about 0.1% of rows.

    state = fit_threshold(train_scores, cfg.threshold)
    flags = scores > state["value"]; prob = probability(scores, state)
"""

from __future__ import annotations

import warnings

import numpy as np

N_QUANTILES = 1001
N_ENTITY_QUANTILES = 201  # per-entity calibration (time series): kept small, one per entity
MIN_EXCEEDANCES = 20  # fewer scores above u: the tail is exponential with their mean excess
TAIL_LEVEL_STEPS = (1, 2, 5, 10)  # u at pot_quantile, then 1/2, 1/5, 1/10 as many rows above it
MIN_LEVEL_EXCEEDANCES = 40  # a raised level must keep at least this many scores above u
MIN_ENTITY_ROWS = 200  # entities with fewer calibration rows use the pooled threshold
# GPD shapes outside this are artefacts of small samples. Shapes above 1 (no finite mean) are
# real: squared reconstruction errors of heavy-tailed data give them (1.4 to 3 on adbench sets),
# and the maximum likelihood fit extrapolates them well (tests: a shape-1.4 tail).
SHAPE_RANGE = (-1.0, 5.0)  # -1: a uniform tail (a bounded cluster of scores)


def fit_tail(scores: np.ndarray, level: float) -> dict | None:
    """GPD fitted to the excesses of `scores` over a high quantile u, at `level` or higher.

    Returns {"u", "level", "shape", "scale", "n", "fit_pvalue"}:
    P(S > u + y) = (1 - level) * GPD.sf(y). None when there are too few scores for a tail.

    Real score distributions are not always one smooth tail: a cluster of unusual-but-normal rows
    can sit far above the rest (adbench_http: 1% of rows score 100x the 99th percentile). A GPD
    fitted across that jump extrapolates wildly, so the level is raised step by step
    (TAIL_LEVEL_STEPS) until a Kolmogorov-Smirnov test no longer rejects the fit at 5%; if none
    passes, the best-fitting level is used. Each level needs MIN_LEVEL_EXCEEDANCES scores above u.
    """
    s = np.sort(np.asarray(scores, dtype=np.float64))
    if s.size < 10:
        return None
    fits = []
    for i, step in enumerate(TAIL_LEVEL_STEPS):
        lv = 1.0 - (1.0 - level) / step
        if i and (1.0 - lv) * s.size < MIN_LEVEL_EXCEEDANCES:
            break
        fits.append(_fit_at(s, lv))
        if fits[-1]["fit_pvalue"] is None or fits[-1]["fit_pvalue"] > 0.05:
            return fits[-1]
    return max(fits, key=lambda f: f["fit_pvalue"])


def _fit_at(s: np.ndarray, level: float) -> dict:
    u = float(np.quantile(s, level))
    exc = s[s > u] - u
    if exc.size == 0:  # a flat top: nothing is ever above u
        return {"u": u, "level": level, "shape": 0.0, "scale": 0.0, "n": 0, "fit_pvalue": None}
    shape, scale, pvalue = 0.0, float(exc.mean()), None
    if exc.size >= MIN_EXCEEDANCES:
        from scipy.stats import genpareto, kstest
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                c, _, sc = genpareto.fit(exc, floc=0.0)
                if c < -0.5:  # short tail: the likelihood degenerates towards -1, use moments
                    c, sc = _pwm(exc)
                elif c > SHAPE_RANGE[1]:  # refit the scale at the bound
                    c, _, sc = genpareto.fit(exc, fc=SHAPE_RANGE[1], floc=0.0)
                if np.isfinite(c) and np.isfinite(sc) and sc > 0:
                    shape, scale = float(c), float(sc)
                pvalue = float(kstest(exc, genpareto(shape, 0.0, scale).cdf).pvalue)
        except (ValueError, RuntimeError, FloatingPointError):
            pass  # keep the exponential tail
    return {"u": u, "level": level, "shape": shape, "scale": scale, "n": int(exc.size),
            "fit_pvalue": pvalue}


def _pwm(exc: np.ndarray) -> tuple[float, float]:
    """GPD shape and scale by probability-weighted moments (Hosking & Wallis 1987), which stay
    sensible for short tails where maximum likelihood does not: a0 = E[Y] = scale / (1 - shape),
    a1 = E[Y (1 - F(Y))] = scale / (2 (2 - shape))."""
    y = np.sort(exc)
    n = y.size
    a0 = y.mean()
    a1 = float(np.sum((n - np.arange(1, n + 1)) / (n - 1) * y) / n)
    shape = 2.0 - a0 / (a0 - 2.0 * a1)
    scale = 2.0 * a0 * a1 / (a0 - 2.0 * a1)
    shape = float(np.clip(shape, *SHAPE_RANGE))
    return shape, float(max(scale, 1e-12))


def tail_sf(y: np.ndarray, shape: float, scale: float) -> np.ndarray:
    """GPD survival function of excesses y >= 0 (0 past the upper end point when shape < 0)."""
    y = np.maximum(np.asarray(y, dtype=np.float64), 0.0)
    if scale <= 0:
        return np.where(y > 0, 0.0, 1.0)
    if abs(shape) < 1e-9:
        return np.exp(-y / scale)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        base = 1.0 + shape * y / scale
        return np.where(base > 0, np.power(np.maximum(base, 1e-300), -1.0 / shape), 0.0)


def tail_quantile(tail: dict, risk: float) -> float:
    """The score exceeded with probability `risk` (< 1 - level) under the fitted tail."""
    ratio = (1.0 - tail["level"]) / risk
    shape, scale = tail["shape"], tail["scale"]
    if scale <= 0:
        return tail["u"]
    if abs(shape) < 1e-9:
        return float(tail["u"] + scale * np.log(ratio))
    return float(tail["u"] + scale / shape * (ratio ** shape - 1.0))


def fit_calibration(train_scores: np.ndarray, pot_quantile: float,
                    n_quantiles: int = N_QUANTILES) -> dict:
    """Quantiles of the training scores and the GPD tail above their `pot_quantile` quantile."""
    s = np.asarray(train_scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    qs = np.linspace(0.0, 1.0, n_quantiles)
    quantiles = np.quantile(s, qs).tolist() if s.size else [0.0] * n_quantiles
    return {"calibration_quantiles": quantiles, "tail": fit_tail(s, pot_quantile),
            "n_training_scores": int(s.size)}


def threshold_value(calib: dict, cfg) -> float:
    """The threshold `cfg` (a ThresholdConfig) asks for, from a fitted calibration."""
    if cfg.method == "fixed":
        return float(cfg.value)
    if cfg.method == "pot":
        return pot_threshold(calib, cfg.risk)
    return quantile_threshold(calib, cfg.contamination)


def pot_threshold(calib: dict, risk: float) -> float:
    tail = calib.get("tail")
    if tail is None or risk >= 1.0 - tail["level"]:  # inside the sample: the plain quantile
        return quantile_threshold(calib, risk)
    return tail_quantile(tail, risk)


def fit_threshold(train_scores: np.ndarray, cfg) -> dict:
    state = {"method": cfg.method, "contamination": cfg.contamination, "risk": cfg.risk,
             "pot_quantile": cfg.pot_quantile,
             **fit_calibration(train_scores, cfg.pot_quantile)}
    state["value"] = threshold_value(state, cfg)
    return state


def fit_entity_thresholds(scores: np.ndarray, keys: np.ndarray, cfg) -> dict:
    """Per-entity calibration and threshold (time series, `threshold.per_entity`), for entities
    with at least MIN_ENTITY_ROWS training rows; the others use the pooled threshold."""
    out = {}
    keys = np.asarray(keys).astype(str)
    for k in np.unique(keys):
        s = scores[keys == k]
        if np.isfinite(s).sum() < MIN_ENTITY_ROWS:
            continue
        calib = fit_calibration(s, cfg.pot_quantile, N_ENTITY_QUANTILES)
        out[str(k)] = {**calib, "value": threshold_value(calib, cfg)}
    return out


def refit_threshold(state: dict, cfg) -> dict:
    """A new threshold config on stored calibration (`--set threshold.*` on a trained model)."""
    if cfg.pot_quantile != state.get("pot_quantile", cfg.pot_quantile):
        raise ValueError("threshold.pot_quantile was fixed when the model was trained")
    new = {**state, "method": cfg.method, "contamination": cfg.contamination, "risk": cfg.risk}
    new["value"] = threshold_value(state, cfg)
    ents = state.get("entities")
    if ents is not None and getattr(cfg, "per_entity", False):
        new["entities"] = {k: {**e, "value": threshold_value(e, cfg)} for k, e in ents.items()}
    else:
        new.pop("entities", None)  # a pooled threshold asked for; the fitted ones stay in the file
    return new


def quantile_threshold(state: dict, contamination: float) -> float:
    """The threshold that flags `contamination` of the training rows, from stored quantiles."""
    qs = np.linspace(0.0, 1.0, len(state["calibration_quantiles"]))
    return float(np.interp(1.0 - contamination, qs, state["calibration_quantiles"]))


def probability(scores: np.ndarray, state: dict) -> np.ndarray:
    """P(training score < score): empirical up to the tail's u, the fitted GPD beyond it."""
    q = np.asarray(state["calibration_quantiles"], dtype=np.float64)
    levels = np.linspace(0.0, 1.0, q.size)
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=np.inf)
    # np.interp needs increasing x; ties in q (flat score regions) are fine for it
    p = np.interp(s, q, levels, left=0.0, right=1.0)
    tail = state.get("tail")
    if tail is not None:
        above = s > tail["u"]
        if above.any():
            sf = tail_sf(s[above] - tail["u"], tail["shape"], tail["scale"])
            p[above] = 1.0 - (1.0 - tail["level"]) * sf
    return p


def row_thresholds(state: dict, keys: np.ndarray | None, n: int) -> np.ndarray:
    """The threshold of each row: its entity's when per-entity thresholds were fitted."""
    t = np.full(n, float(state["value"]))
    ents = state.get("entities")
    if ents and keys is not None:
        keys = np.asarray(keys).astype(str)
        for k in np.unique(keys):
            if k in ents:
                t[keys == k] = ents[k]["value"]
    return t


def row_probability(scores: np.ndarray, state: dict, keys: np.ndarray | None) -> np.ndarray:
    """`probability`, with each entity's own calibration where per-entity thresholds exist."""
    p = probability(scores, state)
    ents = state.get("entities")
    if ents and keys is not None:
        keys = np.asarray(keys).astype(str)
        for k in np.unique(keys):
            if k in ents:
                sel = keys == k
                p[sel] = probability(scores[sel], ents[k])
    return p
