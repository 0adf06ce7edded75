"""Attention across feature tokens: the default tabular model.

Each column is a token (FT-Transformer's tokenizer, Gorishniy et al. 2021); pre-norm transformer
blocks let every visible cell attend to every other, and the masked-cell head predicts the hidden
ones (MCM, ICLR 2024).

    model = TabularTransformer(TabularTransformerConfig(), n_numeric=5, cardinalities=[4])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnad.config import TabularTransformerConfig
from attnad.models.masked import MaskedCellModel


class SelfAttention(nn.Module):
    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.dropout = dropout

    def forward(self, x, valid=None, return_weights: bool = False):
        # valid (B, T) bool or None: tokens that may be attended to (time-series padding)
        B, T, d = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        keep = None if valid is None else valid[:, None, None, :]  # (B, 1, 1, T)
        if return_weights:  # explicit path, only for explanations
            logits = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)  # (B, H, T, T)
            if keep is not None:
                logits = logits.masked_fill(~keep, float("-inf"))
            w = torch.softmax(logits, dim=-1)
            y = w @ v
        else:
            w = None
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=keep,
                dropout_p=self.dropout if self.training else 0.0)  # (B, H, T, dh)
        y = self.out(y.transpose(1, 2).reshape(B, T, d))
        return (y, w) if return_weights else y


class Block(nn.Module):
    """Pre-norm transformer block: attention then a 2x MLP, each with a residual. Shared by the
    tabular (tokens = columns) and temporal (tokens = steps, with padding) models."""

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = SelfAttention(d, n_heads, dropout)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d),
                                 nn.Dropout(dropout))

    def forward(self, x, valid=None):
        x = x + self.attn(self.ln1(x), valid)
        return x + self.mlp(self.ln2(x))


@torch.no_grad()
def attention_maps(blocks, h: torch.Tensor, valid=None) -> torch.Tensor:
    """Run `h` through `blocks` and return each block's attention averaged over heads,
    (L, B, T, T): which tokens each token looked at (explanations only; forward is the fast path)."""
    maps = []
    for block in blocks:
        y, w = block.attn(block.ln1(h), valid, return_weights=True)
        h = h + y
        h = h + block.mlp(block.ln2(h))
        maps.append(w.mean(1))
    return torch.stack(maps)


class TabularTransformer(MaskedCellModel):
    def __init__(self, cfg: TabularTransformerConfig, n_numeric: int, cardinalities: list[int]):
        super().__init__(n_numeric, cardinalities, cfg.d_model, cfg.max_tokens)
        self.blocks = nn.ModuleList(
            Block(cfg.d_model, cfg.n_heads, cfg.dropout) for _ in range(cfg.n_layers))

    def mix(self, tokens, mask):
        h = tokens  # (B, F, d)
        for block in self.blocks:
            h = block(h)
        return h

    def attention_maps(self, tokens):
        """Per-layer attention weights averaged over heads, (L, B, F, F): what each cell looked at."""
        return attention_maps(self.blocks, tokens)
