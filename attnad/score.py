"""Batched inference: per-row anomaly scores and per-feature contributions.

A row is scored with a fixed set of masks (every feature hidden equally often), its cells'
errors are divided by each feature's typical error on training data, so a naturally noisy column
does not drown the others, and the row score is the mean over features. The per-feature terms of
that mean are the contributions used for explanations.

    engine = Scorer(model, masks, feature_scale, device)
    scores, contrib = engine.score(encoded)
"""

from __future__ import annotations

import numpy as np
import torch

from attnad.data.preprocess import Encoded
from attnad.models.masked import MaskedCellModel, hidden_cells
from attnad.train import to_tensors

MODEL_BATCH = 2048  # rows per forward pass: bigger batches lose time to page faults on CPU


class Scorer:
    def __init__(self, model: MaskedCellModel, masks: torch.Tensor, feature_scale: np.ndarray | None,
                 device: torch.device):
        self.model = model.to(device).eval()
        self.masks = masks.to(device)  # (M, F) bool
        self.device = device
        self.feature_scale = None if feature_scale is None else torch.as_tensor(
            feature_scale, dtype=torch.float32, device=device)

    @torch.inference_mode()
    def raw_cell_errors(self, enc: Encoded) -> np.ndarray:
        """Each cell's error averaged over the masks that hid it, (n, F); NaN if never scored."""
        out = []
        for start in range(0, len(enc), MODEL_BATCH):
            num, miss, cat = to_tensors(enc.take(slice(start, start + MODEL_BATCH)), self.device)
            B = num.shape[0]
            total = torch.zeros(B, self.model.n_features, device=self.device)
            count = torch.zeros_like(total)
            for m in self.masks:
                mask = m.expand(B, -1)
                err = self.model.cell_errors(num, miss, cat, mask)
                w = hidden_cells(mask, miss, self.model.n_numeric).float()
                total += err * w
                count += w
            out.append((total / count.clamp_min(1.0)).masked_fill(count == 0, float("nan")).cpu())
        if not out:
            return np.zeros((0, self.model.n_features), dtype=np.float32)
        return torch.cat(out).numpy()

    def contributions(self, enc: Encoded) -> np.ndarray:
        """Normalised cell errors, (n, F); 0 where a cell had nothing to score (missing)."""
        err = self.raw_cell_errors(enc)
        if self.feature_scale is not None:
            err = err / self.feature_scale.cpu().numpy()
        return np.nan_to_num(err, nan=0.0)

    def score(self, enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
        contrib = self.contributions(enc)
        return contrib.mean(axis=1).astype(np.float64), contrib


def fit_feature_scale(raw_errors: np.ndarray, trim: float = 0.05) -> np.ndarray:
    """Typical training error per feature: mean of the lower (1 - trim) share, so that the
    anomalies hiding in training data do not inflate it. Floors keep near-perfect features from
    turning tiny errors into huge scores."""
    F = raw_errors.shape[1]
    scale = np.ones(F, dtype=np.float64)
    for j in range(F):
        col = raw_errors[:, j]
        col = col[np.isfinite(col)]
        if col.size == 0:
            continue
        cut = np.quantile(col, 1.0 - trim)
        scale[j] = float(col[col <= cut].mean())
    floor = max(float(np.median(scale)) * 1e-2, 1e-6)
    return np.maximum(scale, floor)
