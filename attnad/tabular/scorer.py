"""Scoring a table: per-row anomaly scores and per-feature contributions, in batches.

A row is scored with a fixed set of masks (every feature hidden equally often), its cells'
errors are divided by each feature's typical error on training data, so a naturally noisy column
does not drown the others, and the row score is the mean over features. The per-feature terms of
that mean are the contributions used for explanations.

    engine = Scorer(model, masks, error_scale, device)
    scores, contrib = engine.score(encoded)
"""

from __future__ import annotations

import numpy as np
import torch

from attnad.data.preprocess import Encoded
from attnad.models.masked import MaskedCellModel
from attnad.parallel import cpu_workers, for_chunks
from attnad.robust import error_floor, normalised_mean, spread, trimmed_mean
from attnad.surprise import TermTails
from attnad.tabular.training import to_tensors

CPU_ROWS = 256  # rows per model call on CPU, all masks: fast at every size measured from 64 to
# 4,096 (benchmarks/RESULTS.md, "Scoring batch sizes"), and small enough to stay in cache
GPU_PAIRS = 16384  # (row, mask) pairs per model call on a GPU: the best of 4k-262k on an H200
# (benchmarks/RESULTS.md, "Scoring batch sizes")
ERROR_FLOOR = 1e-2  # typical errors are at least this share of the median feature's
ERROR_TRIM = 0.05  # highest training errors left out of each typical error


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

        def chunk(start: int, stop: int) -> None:
            num, miss, cat = to_tensors(enc.take(slice(start, stop)), self.device)
            err = self.model.masked_errors(num, miss, cat, self.masks)  # (M, B, F)
            out[start:stop] = err.transpose(0, 1).cpu().numpy()

        for_chunks(len(enc), rows, chunk, cpu_workers(self.device))
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
        scale = 1.0 if self.error_scale is None else self.error_scale
        return normalised_mean(err, scale, axis=1)[0]

    def score(self, enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
        contrib = self.contributions(enc)
        return contrib.mean(axis=1).astype(np.float64), contrib


def fit_error_scale(mask_errors: np.ndarray, trim: float = ERROR_TRIM) -> np.ndarray:
    """Typical training error per (mask, feature) (attnad.robust.trimmed_mean), at least a small
    share of the median feature's. Shape (M, F); 1 where never hidden."""
    typical, counts = trimmed_mean(mask_errors, trim)
    hidden = counts > 0  # (M, F)
    if not hidden.any():
        return np.ones(mask_errors.shape[1:])
    scale = np.where(hidden, typical, 1.0)
    return np.maximum(scale, error_floor(scale[hidden], ERROR_FLOOR))


def fit_component_scale(train_scores: np.ndarray, surprise: bool = False) -> dict:
    """Centre and robust spread of one score component on training rows, so components on
    different scales (squared errors, free energies) can be added. The centre is the
    interpolated 0.5 quantile (not np.median, which can differ in the last bit), as every
    saved model was calibrated with. With `surprise`, also the component's training distribution
    (attnad.surprise.TermTails), so it is added as its surprise among the training rows' own."""
    s = np.asarray(train_scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return {"center": 0.0, "scale": 1.0}
    q1, med, q3 = np.quantile(s, [0.25, 0.5, 0.75])
    out = {"center": float(med), "scale": spread(q1, q3, np.std(s))}
    if surprise:
        out["tails"] = TermTails.fit(s[:, None]).to_dict()
    return out


def combine_components(parts: dict[str, np.ndarray], components: dict) -> np.ndarray:
    """Weighted sum of the components, higher = more anomalous: each as a robust z-score, or,
    where its training distribution was kept (model.combine: surprise), as its surprise among
    the training rows' own scores. A component with heavy tails then cannot swamp the others at
    the top of the ranking (benchmarks/results/accuracy_issue23.md)."""
    total = None
    for name, c in components.items():
        if "tails" in c:
            tails = TermTails.from_dict(c["tails"], 1)
            z = c["weight"] * tails.surprise(np.asarray(parts[name], np.float64)[:, None])[:, 0]
        else:
            z = c["weight"] * (parts[name] - c["center"]) / c["scale"]
        total = z if total is None else total + z
    return np.nan_to_num(total, nan=0.0, posinf=1e12, neginf=-1e12).astype(np.float64)
