"""How surprising a score is among the training rows' own: -log of the share of training rows that
scored at least as high. Series use it to bound each signal's term (model.signal_terms:
bounded; attnad.timeseries.state.row_scores), tables to add the parts of a row's score
(model.combine: surprise; attnad.tabular.scorer.combine_components). Both are off by default:
benchmarks/results/accuracy_issue23.md has the figures.

Dividing an error by its typical training size treats every signal as if its errors had a
normal's tails. A binary command signal beside spacecraft telemetry has none: it is off in all
but a handful of training rows, so its typical error is almost nothing, and each time it switches
in the normal stretches of a new file its error counts thousands of typical errors. Read against
the signal's own training errors, a switch counts a few nats: in smap_A-4, command switches of
up to 27,600 typical errors count at most 4 to 7 (the top 5% is worth log(20) = 3.0, and each
mean excess past it one more). The same holds for a table's score parts: one with rare huge values
swamps the others at the top of the ranking when parts are added as z-scores.

For series, only as a bound (the term is the smaller of the typical-error ratio and its
surprise): where a signal's errors have lighter tails than an exponential, as the mean error of
the windows covering a step has, the surprise would turn a small rise of every error into a
large one.

The body of each training distribution is kept as the score at fixed surprise levels (quantile
knots); past the top TAIL share the surprise grows linearly at the rate of an exponential fitted
to the excesses there (their mean), so a score larger than any in training still counts more the
larger it is.

    tails = TermTails.fit(train_terms)      # (n, K) training scores, one column per term
    s = tails.surprise(terms)               # (m, K), NaN kept where a term is missing
"""

from __future__ import annotations

import numpy as np

TAIL = 0.05  # past this top share of training terms, the exponential tail takes over
KNOTS = 16  # surprise levels 0 .. log(1 / TAIL) at which each signal's training errors are kept
NO_SPREAD = 1.0  # mean excess used where the training terms have no tail (all equal): a term
# above them counts one nat per typical error


def levels(tail: float, knots: int) -> np.ndarray:
    """The surprise at each knot: 0 (every training row scored at least this) to -log(tail)."""
    return np.linspace(0.0, np.log(1.0 / tail), knots)


class TermTails:
    def __init__(self, knots: np.ndarray, excess: np.ndarray, tail: float = TAIL):
        self.knots = np.asarray(knots, np.float64)  # (K, KNOTS), nondecreasing per row
        self.excess = np.asarray(excess, np.float64)  # (K,) mean excess over the top knot
        self.tail = float(tail)
        self.levels = levels(self.tail, self.knots.shape[1])

    @classmethod
    def fit(cls, terms: np.ndarray) -> "TermTails":
        """From the training rows' terms (n, K), NaN where a row has none for a signal."""
        at = levels(TAIL, KNOTS)
        K = terms.shape[1]
        knots = np.zeros((K, KNOTS))
        excess = np.full(K, NO_SPREAD)
        for k in range(K):
            a = terms[:, k]
            a = a[np.isfinite(a)]
            if a.size == 0:
                continue
            knots[k] = np.quantile(a, 1.0 - np.exp(-at))
            over = a[a > knots[k, -1]] - knots[k, -1]
            if over.size and over.mean() > 0:
                excess[k] = over.mean()
        return cls(knots, excess)

    def surprise(self, terms: np.ndarray) -> np.ndarray:
        """-log P_train(term >= t) per cell, piecewise linear between the knots; NaN stays NaN."""
        out = np.empty(terms.shape, np.float64)
        top = self.levels[-1]
        for k in range(terms.shape[1]):
            t = terms[:, k]
            v = self.knots[k]
            # the first knot at or above t: a tie of many training terms at one value (a signal
            # always predicted exactly) maps to the lowest surprise of the tie, as -log P(T >= t)
            i = np.clip(np.searchsorted(v, t, side="left"), 1, len(v) - 1)
            lo, hi = v[i - 1], v[i]
            width = hi - lo
            frac = np.where(width > 0, (t - lo) / np.where(width > 0, width, 1.0), 1.0)
            s = self.levels[i - 1] + np.clip(frac, 0.0, 1.0) * (self.levels[i] - self.levels[i - 1])
            s = np.where(t <= v[0], 0.0, s)
            s = np.where(t > v[-1], top + (t - v[-1]) / self.excess[k], s)
            out[:, k] = np.where(np.isfinite(t), s, np.nan)
        return out

    def to_dict(self) -> dict:
        return {"tail": self.tail, "knots": self.knots.tolist(), "excess": self.excess.tolist()}

    @classmethod
    def from_dict(cls, d: dict, n_terms: int) -> "TermTails":
        if not 0.0 < float(d["tail"]) < 1.0:
            raise ValueError("term tails: tail share must be between 0 and 1")
        tails = cls(np.asarray(d["knots"], np.float64), np.asarray(d["excess"], np.float64),
                    float(d["tail"]))
        if tails.knots.ndim != 2 or tails.knots.shape[0] != n_terms or \
                tails.excess.shape != (n_terms,) or tails.knots.shape[1] < 2:
            raise ValueError(f"term tails do not match the model's {n_terms} error terms")
        if not (np.all(np.isfinite(tails.knots)) and np.all(np.diff(tails.knots, axis=1) >= 0)
                and np.all(tails.excess > 0)):
            raise ValueError("term tails are not increasing, finite and positive")
        return tails
