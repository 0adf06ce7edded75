"""The article's attention pooling: a_i = softmax(W x_i), z = sum_i a_i x_i, s_i = f(z - x_i).

Tokens x_i are a row's feature tokens (or a window's time steps). A learned scoring vector W
weighs the visible tokens, z pools them into one context, and f maps z - x_i to a prediction of
token i's value; s_i is how badly that prediction misses. Training on masked tokens keeps the
objective from collapsing: the targets are the data's own values, which no choice of W or
embedding can make trivially predictable, whereas minimising ||z - x_i|| over learned embeddings
would be solved by mapping every token to one point.

    model = AttentionPoolingModel(AttentionPoolingConfig(), n_numeric=5, cardinalities=[4])
"""

from __future__ import annotations

import torch
from torch import nn

from attnad.config import AttentionPoolingConfig
from attnad.models.masked import MaskedCellModel


class AttentionPooling(nn.Module):
    """z = sum_i softmax(W x_i) x_i over the visible tokens; returns z and the weights."""

    def __init__(self, d: int):
        super().__init__()
        self.score = nn.Linear(d, 1)

    def forward(self, x, hidden):
        # x (B, T, d), hidden (B, T) bool: hidden tokens take no part in the pool
        logits = self.score(x).squeeze(-1).masked_fill(hidden, float("-inf"))  # (B, T)
        a = torch.softmax(logits, dim=-1)
        z = (a.unsqueeze(-1) * x).sum(1)  # (B, d)
        return z, a


class AttentionPoolingModel(MaskedCellModel):
    def __init__(self, cfg: AttentionPoolingConfig, n_numeric: int, cardinalities: list[int]):
        super().__init__(n_numeric, cardinalities, cfg.d_model, cfg.max_tokens, cfg.mask_ratio,
                         cfg.n_score_masks)
        d = cfg.d_model
        self.pool = AttentionPooling(d)
        self.f = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def mix(self, tokens, mask):
        z, _ = self.pool(tokens, mask)  # (B, d)
        return self.f(z.unsqueeze(1) - tokens)  # (B, F, d): f(z - x_i)

    @torch.no_grad()
    def attention_maps(self, num, num_missing, cat, mask):
        tokens = self.tokenizer(num, num_missing, cat, mask)
        _, a = self.pool(tokens, torch.zeros_like(mask))
        return a.unsqueeze(0).unsqueeze(2)  # (1, B, 1, F)
