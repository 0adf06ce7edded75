"""The level each window of a series is read against (model.input_level).

Monitoring signals wander: sensors age, load grows. Read against the entity's training centre, a
signal whose level has slowly left its training range looks anomalous at every step, and a model
trained weeks ago floods its users with flags. So each window is moved by a level of its own
before the model reads it (RevIN-style, level only: spreads are kept, so a burst of noise stays
visible), and its reconstruction is measured in the moved units, which keeps errors in robust
spreads of the signal (model.error_units):

- `window`: the window's own median per signal. Only what changes inside a window is seen: a
  jump, a spike, a broken relation between signals; a level that has stayed shifted for longer
  than a window is not.
- `local`: the signal's recent level at the window's last step, an exponentially weighted mean
  of its robust z-scores with a half-life of `LOCAL_WINDOWS` windows (at a series' start, the
  mean of its steps so far). A slow drift is followed; a level that jumps stays visible until
  the recent level has caught up (about a half-life).
- `entity`: no move, the window read against the entity's training centre (models trained
  before the option existed).

    levels = RecentLevels(state.level_half_life)
    recent = levels.push(keys, z)   # (n, F): each row's recent level up to it, per entity
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from attnad.models.temporal import window_level

LOCAL_WINDOWS = 4  # input_level local: the recent level's half-life, in windows


class RecentLevels:
    """Per entity and signal, an exponentially weighted mean of the robust z-scores seen so far
    (normalised by the weights seen, so a series' first steps get the mean of what there is, not
    one value), carried from batch to batch. Rows must come in time order within each entity. A
    missing cell holds the signal's last value."""

    def __init__(self, half_life: float):
        self.keep = 0.5 ** (1.0 / max(half_life, 1.0))  # weight left to a step one step later
        self.sums: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # entity -> weighted sum, weight
        self.last: dict[str, np.ndarray] = {}  # entity -> (F,) last present value

    def push(self, keys: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Each row's recent level up to and including it, (n, F) float64."""
        out = np.empty(z.shape, np.float64)
        codes, uniq = pd.factorize(keys, sort=False)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(uniq) + 1))
        for j, key in enumerate(uniq):
            idx = order[bounds[j]:bounds[j + 1]]
            out[idx] = self._entity(str(key), z[idx])
        return out

    def _entity(self, key: str, z: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter  # here, not at the top: scipy.signal takes 0.7 s to
        # import, which every table command would otherwise pay (benchmarks/answer.py)

        F = z.shape[1]
        filled = pd.DataFrame(z).ffill().to_numpy()
        last = self.last.get(key)
        if last is not None:
            filled = np.where(np.isnan(filled), last, filled)
        has = ~np.isnan(filled)  # a signal with no value yet has no weight
        filled = np.where(has, filled, 0.0)
        total, weight = self.sums.get(key, (np.zeros(F), np.zeros(F)))
        decay = ([1.0], [1.0, -self.keep])  # y[t] = x[t] + keep * y[t - 1]
        total, _ = lfilter(*decay, filled, axis=0, zi=(self.keep * total)[None])
        weight, _ = lfilter(*decay, has.astype(np.float64), axis=0, zi=(self.keep * weight)[None])
        self.sums[key] = (total[-1], weight[-1])
        self.last[key] = np.where(has[-1], filled[-1], np.nan)
        return total / np.where(weight > 0, weight, 1.0)


def window_move(input_level: str, x: torch.Tensor, miss: torch.Tensor, valid: torch.Tensor,
                recent: torch.Tensor | None) -> torch.Tensor | None:
    """What to take off each window before the model reads it, (B, 1, F) robust z-units, or None
    (input_level entity). x, miss (B, W, F); valid (B, W), False on left padding; recent (B, T, F):
    the recent level up to each of the window's last T steps (input_level local), of which the
    last is taken (windows end on a real step)."""
    if input_level == "window":
        return window_level(x, ~miss & valid.unsqueeze(-1))
    if input_level == "local":
        return recent[:, -1:, :]
    return None
