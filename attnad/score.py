"""Batched inference: per-row anomaly scores and per-feature contributions.

A row is scored with a fixed set of masks (every feature hidden equally often), its cells'
errors are divided by each feature's typical error on training data, so a naturally noisy column
does not drown the others, and the row score is the mean over features. The per-feature terms of
that mean are the contributions used for explanations.

    engine = Scorer(model, masks, error_scale, device)
    scores, contrib = engine.score(encoded)
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from attnad.data.preprocess import Encoded
from attnad.models.masked import MaskedCellModel
from attnad.train import to_tensors

CPU_ROWS = 256  # rows per model call on CPU, all masks; the transformer runs one mask at a time
# over them (TabularTransformer.masked_errors). Measured rows/s at 64 / 256 / 1,024 rows:
# 2,333 / 2,799 / 2,457 on one thread, 3,190 / 3,529 / 3,577 on two (the last two within noise).
# leave_one_out (one pass), one thread, three runs at 64 / 256 / 1,024 / 4,096 rows: about
# 10-13k / 11.3-11.7k / 8.9-13.1k / 7.7-9.4k rows/s: 256 is as good as any.
GPU_PAIRS = 16384  # (row, mask) pairs per model call on a GPU. leave_one_out on an H200, model
# only, 262k rows: 1.19M / 1.33M / 1.38M / 1.25M rows/s at 4k / 16k / 64k / 262k pairs


class Scorer:
    def __init__(self, model: MaskedCellModel, masks: torch.Tensor, error_scale: np.ndarray | None,
                 device: torch.device):
        self.model = model.to(device).eval()
        self.masks = masks.to(device)  # (M, F) bool
        self.device = device
        self.error_scale = None if error_scale is None else np.asarray(error_scale, np.float64)

    @torch.inference_mode()
    def mask_errors(self, enc: Encoded) -> np.ndarray:
        """Each cell's error under each scoring mask, (n, M, F); NaN where the mask showed it.

        Rows go to the model in chunks with every mask at once (`masked_errors`), so a model
        can share the work that masks repeat.
        """
        M, F = self.masks.shape
        out = np.empty((len(enc), M, F), dtype=np.float32)
        rows = CPU_ROWS if self.device.type == "cpu" else max(1, GPU_PAIRS // M)
        for start in range(0, len(enc), rows):
            num, miss, cat = to_tensors(enc.take(slice(start, start + rows)), self.device)
            err = self.model.masked_errors(num, miss, cat, self.masks)  # (M, B, F)
            out[start:start + num.shape[0]] = err.transpose(0, 1).cpu().numpy()
        return out

    def contributions(self, enc: Encoded) -> np.ndarray:
        """Normalised cell errors averaged over the masks that hid each cell, (n, F).

        Each error is divided by the typical training error of that feature under that mask:
        hiding two correlated columns together makes both hard to predict for every row, and
        without this a normal row would be judged by the luck of the mask draw.
        """
        return self.normalise(self.mask_errors(enc))

    def normalise(self, mask_errors: np.ndarray) -> np.ndarray:
        """(n, M, F) raw errors from `mask_errors` -> (n, F) contributions (see `contributions`)."""
        err = mask_errors.astype(np.float64)
        if self.error_scale is not None:
            err /= self.error_scale
        if err.shape[1] == 1:  # one mask (leave_one_out): a cell's mean is its own error
            e = err[:, 0]
            return np.where(np.isfinite(e), e, 0.0)
        with np.errstate(invalid="ignore"):
            counts = np.isfinite(err).sum(axis=1)
            total = np.nansum(err, axis=1)
        return np.where(counts > 0, total / np.maximum(counts, 1), 0.0)

    def score(self, enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
        contrib = self.contributions(enc)
        return contrib.mean(axis=1).astype(np.float64), contrib


def fit_error_scale(mask_errors: np.ndarray, trim: float = 0.05) -> np.ndarray:
    """Typical training error per (mask, feature): mean of the lower (1 - trim) share, so the
    anomalies hiding in training data do not inflate it. A floor keeps near-perfectly predicted
    cells from turning tiny errors into huge scores. Shape (M, F); 1 where never hidden."""
    err = mask_errors.astype(np.float64)
    hidden = np.isfinite(err).any(axis=0)  # (M, F)
    if not hidden.any():
        return np.ones(err.shape[1:])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN (mask, feature) pairs
        cut = np.nanquantile(err, 1.0 - trim, axis=0)  # (M, F)
        scale = np.nanmean(np.where(err <= cut, err, np.nan), axis=0)
    scale = np.where(hidden, scale, 1.0)
    floor = max(float(np.median(scale[hidden])) * 1e-2, 1e-6)
    return np.maximum(scale, floor)


def fit_component_scale(train_scores: np.ndarray) -> dict:
    """Median and robust spread of one score component on training rows, so components on
    different scales (squared errors, free energies) can be added."""
    s = np.asarray(train_scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return {"center": 0.0, "scale": 1.0}
    q1, med, q3 = np.quantile(s, [0.25, 0.5, 0.75])
    scale = (q3 - q1) / 1.349
    if not scale > 0:
        scale = float(np.std(s)) or 1.0
    return {"center": float(med), "scale": float(scale)}


def combine_components(parts: dict[str, np.ndarray], components: dict) -> np.ndarray:
    """Weighted sum of robustly standardised components: higher = more anomalous."""
    total = None
    for name, c in components.items():
        z = c["weight"] * (parts[name] - c["center"]) / c["scale"]
        total = z if total is None else total + z
    return np.nan_to_num(total, nan=0.0, posinf=1e12, neginf=-1e12).astype(np.float64)
