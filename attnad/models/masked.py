"""Masked-cell modelling shared by the tabular models: tokens in, per-cell reconstruction errors out.

Follows "Anomaly detection with masked cell modelling" (Yin et al., ICLR 2024 / MCM): hide some
cells of each row, predict them from the others, and call a row anomalous when its cells are hard
to predict. A model subclass only decides how visible tokens talk to each other (`mix`).

    model = TabularTransformer(cfg, n_numeric=5, cardinalities=[4, 9])
    err = model.cell_errors(num, num_missing, cat, mask)   # (B, F) errors of hidden cells
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FeatureTokenizer(nn.Module):
    """One d-dimensional token per feature: x_j * w_j + b_j for numbers, an embedding for categories."""

    def __init__(self, n_numeric: int, cardinalities: list[int], d: int):
        super().__init__()
        self.n_numeric = n_numeric
        n_features = n_numeric + len(cardinalities)
        init = 1.0 / math.sqrt(d)
        self.num_weight = nn.Parameter(torch.randn(n_numeric, d) * init)
        self.num_bias = nn.Parameter(torch.randn(n_numeric, d) * init)
        self.num_missing = nn.Parameter(torch.randn(n_numeric, d) * init)
        self.cat_embedding = nn.Embedding(max(sum(cardinalities), 1), d)
        nn.init.normal_(self.cat_embedding.weight, std=init)
        offsets = torch.tensor([0] + list(cardinalities[:-1]), dtype=torch.long).cumsum(0)
        self.register_buffer("cat_offsets", offsets if cardinalities else torch.zeros(0, dtype=torch.long))
        self.feature_embedding = nn.Parameter(torch.randn(n_features, d) * init)
        self.mask_embedding = nn.Parameter(torch.randn(d) * init)

    def forward(self, num, num_missing, cat, mask):
        # num (B, Fn) float, num_missing (B, Fn) bool, cat (B, Fc) long, mask (B, F) bool
        parts = []
        if self.n_numeric:
            tok = num.unsqueeze(-1) * self.num_weight + self.num_bias  # (B, Fn, d)
            tok = torch.where(num_missing.unsqueeze(-1), self.num_missing.expand_as(tok), tok)
            parts.append(tok)
        if cat.shape[1]:
            parts.append(self.cat_embedding(cat + self.cat_offsets))  # (B, Fc, d)
        tokens = torch.cat(parts, dim=1)  # (B, F, d)
        tokens = torch.where(mask.unsqueeze(-1), self.mask_embedding.expand_as(tokens), tokens)
        return tokens + self.feature_embedding  # feature identity survives masking


class ReconstructionHead(nn.Module):
    """Per-feature predictions: a value for each numeric feature, logits over each vocabulary."""

    def __init__(self, n_numeric: int, cardinalities: list[int], d: int):
        super().__init__()
        self.n_numeric = n_numeric
        self.cardinalities = list(cardinalities)
        self.norm = nn.LayerNorm(d)
        self.num_weight = nn.Parameter(torch.randn(n_numeric, d) / math.sqrt(d))
        self.num_bias = nn.Parameter(torch.zeros(n_numeric))
        total = max(sum(cardinalities), 1)
        self.cat_proj = nn.Linear(d, total)
        # which logit columns belong to which categorical feature
        owner = torch.full((total,), -1, dtype=torch.long)
        start = 0
        for j, c in enumerate(cardinalities):
            owner[start:start + c] = j
            start += c
        self.register_buffer("cat_owner", owner)

    def forward(self, h):
        h = self.norm(h)  # (B, F, d)
        num_pred = (h[:, : self.n_numeric] * self.num_weight).sum(-1) + self.num_bias  # (B, Fn)
        cat_logits = None
        if self.cardinalities:
            logits = self.cat_proj(h[:, self.n_numeric:])  # (B, Fc, total)
            own = self.cat_owner.unsqueeze(0) == torch.arange(
                len(self.cardinalities), device=h.device).unsqueeze(1)  # (Fc, total)
            cat_logits = logits.masked_fill(~own, float("-inf"))
        return num_pred, cat_logits


class MaskedCellModel(nn.Module):
    """Tokenise, mix tokens (subclass), predict every cell; errors are reported for hidden cells."""

    def __init__(self, n_numeric: int, cardinalities: list[int], d: int):
        super().__init__()
        self.n_numeric = n_numeric
        self.cardinalities = list(cardinalities)
        self.n_features = n_numeric + len(cardinalities)
        self.tokenizer = FeatureTokenizer(n_numeric, cardinalities, d)
        self.head = ReconstructionHead(n_numeric, cardinalities, d)

    def mix(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def cell_errors(self, num, num_missing, cat, mask):
        """Squared error (numbers) or negative log-likelihood (categories) per cell, (B, F).

        Missing numeric cells have no target: their error is 0 and they never count as hidden.
        """
        tokens = self.tokenizer(num, num_missing, cat, mask)
        h = self.mix(tokens, mask)  # (B, F, d)
        num_pred, cat_logits = self.head(h)
        errs = []
        if self.n_numeric:
            e = (num_pred - num) ** 2
            errs.append(e.masked_fill(num_missing, 0.0))
        if cat_logits is not None:
            logp = F.log_softmax(cat_logits, dim=-1)  # (B, Fc, total)
            target = (cat + self.tokenizer.cat_offsets).unsqueeze(-1)
            errs.append(-logp.gather(-1, target).squeeze(-1))
        return torch.cat(errs, dim=1)


def hidden_cells(mask: torch.Tensor, num_missing: torch.Tensor, n_numeric: int) -> torch.Tensor:
    """Cells whose error counts: hidden and, for numbers, present."""
    weight = mask.clone()
    if n_numeric:
        weight[:, :n_numeric] &= ~num_missing
    return weight


def random_masks(batch: int, n_features: int, ratio: float, generator: torch.Generator,
                 device) -> torch.Tensor:
    """Hide round(ratio * F) random cells per row, at least one, never all (when F > 1)."""
    k = min(max(1, round(ratio * n_features)), max(n_features - 1, 1))
    noise = torch.rand(batch, n_features, generator=generator).to(device)
    ranks = noise.argsort(dim=1).argsort(dim=1)
    return ranks < k


def scoring_masks(n_features: int, ratio: float, n_masks: int, seed: int) -> torch.Tensor:
    """Fixed masks for scoring: every feature is hidden equally often (concatenated permutations)."""
    k = min(max(1, round(ratio * n_features)), max(n_features - 1, 1))
    n_masks = max(n_masks, math.ceil(n_features / k))
    g = torch.Generator().manual_seed(seed)
    order = torch.cat([torch.randperm(n_features, generator=g)
                       for _ in range(math.ceil(n_masks * k / n_features) + 1)])
    masks = torch.zeros(n_masks, n_features, dtype=torch.bool)
    for m in range(n_masks):
        masks[m, order[m * k:(m + 1) * k]] = True
    return masks
