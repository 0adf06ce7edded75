"""Attention across the time steps of a window: the default model in time-series mode.

Each time step is a token (its signals through a per-step encoder, plus a position), self-attention
lets every step look at every other step of the window, and a head predicts every cell. Training
hides some cells (masked-step modelling, as in MCM / masked autoencoders for time series) and
learns to fill them in from the rest of the window: the step before and after, and the other
signals at the same step. A cell the model cannot fill in is anomalous: a spike, a shifted level,
a signal that stops following the others or freezes while they move.

    model = TemporalTransformer(TemporalTransformerConfig(window=64), n_features=5)
    err = model.cell_errors(x, hidden, target, valid)   # (B, T, F) squared errors of hidden cells

The same interface serves the article's attention pooling over the steps of a window
(`TemporalPooling`). Modules here know nothing about files, entities or devices.
"""

from __future__ import annotations

import torch
from torch import nn

from attnad.data.preprocess import squash_torch, unsquash_torch
from attnad.models.encoders import build_encoder
from attnad.models.pooling import AttentionPooling
from attnad.models.tabular import Block, attention_maps


class MaskedStepModel(nn.Module):
    """Encode [visible values, hidden flags] per step, mix the steps (subclass), predict each cell.

    The hidden flags are part of the input so the model knows a 0 means "not shown", not "value 0";
    missing cells are shown to it the same way and are never targets.
    """

    def __init__(self, n_features: int, window: int, encoder: str, d: int):
        super().__init__()
        self.n_features = n_features
        self.window = window
        self.encoder = build_encoder(encoder, 2 * n_features, d)
        self.position = nn.Parameter(torch.randn(window, d) / d ** 0.5)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, n_features))

    def mix(self, tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x, hidden, valid):
        # x (B, T, F) scaled values; hidden (B, T, F) bool: masked or missing, not shown;
        # valid (B, T) bool: False on the left padding of windows longer than their series
        tokens = self.tokens(x, hidden, valid)  # (B, T, d), positions right-aligned
        return self.head(self.mix(tokens, valid))  # (B, T, F)

    def tokens(self, x, hidden, valid):
        """Step tokens before mixing, (B, T, d)."""
        T = x.shape[1]
        shown = x.masked_fill(hidden, 0.0)
        inp = torch.cat([shown, hidden.to(x.dtype)], dim=-1) * valid.unsqueeze(-1)  # (B, T, 2F)
        return self.encoder(inp) + self.position[self.window - T:]

    def cell_errors(self, x, hidden, target, valid, robust: bool = False, move=None):
        """Squared error of each target cell (hidden, present, not padding), 0 elsewhere, (B, T, F).
        `robust`: measured after undoing the input squash (model.error_units: robust), so an
        extreme value keeps its full distance; training uses the squashed units.
        `move` (B, 1, F): each window's level in robust z-units, taken off before the model reads
        it (model.input_level, attnad.timeseries.levels); errors keep their units."""
        if move is not None:
            x = moved(x, move)
        pred = self(x, hidden, valid)
        if robust:
            pred, x = unsquash_torch(pred), unsquash_torch(x)
        return ((pred - x) ** 2) * target


def moved(x: torch.Tensor, move: torch.Tensor) -> torch.Tensor:
    """Windows (B, T, F) of squashed robust z-scores with `move` (B, 1, F) taken off each signal:
    squashing happens after the move, so a window that drifted far keeps its shape."""
    return squash_torch(unsquash_torch(x) - move)


def window_level(x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Each signal's median over the present cells of its window, (B, 1, F), in robust z-units;
    0 for a signal with none."""
    z = unsquash_torch(x).masked_fill(~present, float("nan"))
    return z.nanmedian(dim=1, keepdim=True).values.nan_to_num(0.0)


class LatentBottleneck(nn.Module):
    """K learned queries read the step tokens (cross-attention), each latent is squeezed to r
    numbers, and every position is rebuilt from the latents alone: a window must be described by
    K * r numbers, so a shape never seen in training cannot be copied through from its neighbours
    (the weakness of plain masked-step modelling on pattern anomalies)."""

    def __init__(self, d: int, n_heads: int, window: int, k: int, r: int):
        super().__init__()
        self.window = window
        self.queries = nn.Parameter(torch.randn(k, d) / d ** 0.5)
        self.ln = nn.LayerNorm(d)
        self.pool = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.down = nn.Linear(d, r)
        self.up = nn.Linear(r, d)
        self.position = nn.Parameter(torch.randn(window, d) / d ** 0.5)
        self.read = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.block = Block(d, n_heads, 0.0)

    def forward(self, h, valid):
        B, T, _ = h.shape
        kv = self.ln(h)
        z, _ = self.pool(self.queries.expand(B, -1, -1), kv, kv, key_padding_mask=~valid,
                         need_weights=False)
        z = self.up(self.down(z))  # (B, K, d) carried by K * r numbers
        p = self.position[self.window - T:].expand(B, -1, -1)
        y, _ = self.read(p, z, z, need_weights=False)
        return self.block(p + y, valid)


class TemporalTransformer(MaskedStepModel):
    def __init__(self, cfg, n_features: int):
        super().__init__(n_features, cfg.window, cfg.encoder, cfg.d_model)
        self.blocks = nn.ModuleList(
            Block(cfg.d_model, cfg.n_heads, cfg.dropout) for _ in range(cfg.n_layers))
        self.bottleneck = LatentBottleneck(cfg.d_model, cfg.n_heads, cfg.window, cfg.latents,
                                           cfg.latent_dim) if cfg.latents else None

    def mix(self, tokens, valid):
        h = tokens  # (B, T, d)
        for block in self.blocks:
            h = block(h, valid)
        if self.bottleneck is not None:
            h = self.bottleneck(h, valid)
        return h

    @torch.no_grad()
    def attention_maps(self, x, hidden, valid):
        """Per-layer attention averaged over heads, (L, B, T, T): which steps each step looked at."""
        return attention_maps(self.blocks, self.tokens(x, hidden, valid), valid)


class TemporalPooling(MaskedStepModel):
    """The article's model over steps: z = sum_i softmax(W x_i) x_i, step i predicted by f(z - x_i)."""

    def __init__(self, cfg, n_features: int):
        super().__init__(n_features, cfg.window, cfg.encoder, cfg.d_model)
        d = cfg.d_model
        self.pool = AttentionPooling(d)
        self.f = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def mix(self, tokens, valid):
        z, _ = self.pool(tokens, ~valid)  # (B, d): padding takes no part in the pool
        return self.f(z.unsqueeze(1) - tokens)  # (B, T, d)

    @torch.no_grad()
    def attention_maps(self, x, hidden, valid):
        """The pooling weights as one query over the steps, (1, B, 1, T)."""
        _, a = self.pool(self.tokens(x, hidden, valid), ~valid)
        return a[None, :, None, :]
