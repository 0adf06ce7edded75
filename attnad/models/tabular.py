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
from attnad.models.masked import MaskedCellModel, hidden_cells


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

    def forward_for_scoring(self, x, qkv=None, queries=None):
        """`forward(x)` in eval mode, with two shortcuts: `qkv`, the first projection when it is
        already known, and `queries`, the tokens whose outputs are needed (the rest serve only
        as keys and values), so the attention output, the MLP and the residuals run on those
        tokens alone."""
        attn = self.attn
        B, T, d = x.shape
        H, dh = attn.n_heads, d // attn.n_heads
        if qkv is None:
            qkv = attn.qkv(self.ln1(x))
        q, k, v = qkv.view(B, T, 3, H, dh).permute(2, 0, 3, 1, 4)  # each (B, H, T, dh)
        if queries is not None:
            q, x = q[:, :, queries], x[:, queries]
        y = F.scaled_dot_product_attention(q, k, v)  # (B, H, Tq, dh)
        x = x + attn.out(y.transpose(1, 2).reshape(B, x.shape[1], d))
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
        super().__init__(n_numeric, cardinalities, cfg.d_model, cfg.max_tokens, cfg.mask_ratio,
                         cfg.n_score_masks)
        self.blocks = nn.ModuleList(
            Block(cfg.d_model, cfg.n_heads, cfg.dropout) for _ in range(cfg.n_layers))

    def mix(self, tokens, mask):
        h = tokens  # (B, F, d)
        for block in self.blocks:
            h = block(h)
        return h

    def attention_maps(self, num, num_missing, cat, mask):
        """Per-layer attention weights averaged over heads, (L, B, F, F), with the cells of `mask`
        hidden: what each cell looked at."""
        return attention_maps(self.blocks, self.tokenizer(num, num_missing, cat, mask))

    def masked_errors(self, num, num_missing, cat, masks):
        """The same errors as `MaskedCellModel.masked_errors`, computed with less work.

        Scoring only reads the errors of hidden cells, and with fixed masks two things repeat:
        a visible cell's token, its layer norm and its query/key/value projection in the first
        block are the same under every mask (and a hidden cell's are the same for every row),
        so they are computed once per row (or once per feature) instead of once per (row, mask);
        and in the last block only the hidden cells need a query, the attention output and an
        MLP pass, while every cell still serves as key and value. The result equals the plain
        forward pass up to float rounding (tested)."""
        if self.grouped or self.training:
            return super().masked_errors(num, num_missing, cat, masks)
        B, F_ = num.shape[0], self.n_features
        shown = torch.zeros(B, F_, dtype=torch.bool, device=num.device)
        tokens = self.tokenizer(num, num_missing, cat, shown)  # (B, F, d), nothing hidden
        hidden = self.tokenizer.mask_embedding + self.tokenizer.feature_embedding  # (F, d)
        first = self.blocks[0]
        qkv_shown = first.attn.qkv(first.ln1(tokens))  # (B, F, 3d)
        qkv_hidden = first.attn.qkv(first.ln1(hidden))  # (F, 3d)
        out = torch.empty(masks.shape[0], B, F_, device=num.device)
        final = torch.zeros_like(tokens)  # last block's outputs, at the hidden cells only
        for m, mask in enumerate(masks):
            where = mask.nonzero().flatten()  # hidden features of this mask
            x, qkv = tokens.clone(), qkv_shown.clone()
            x[:, where], qkv[:, where] = hidden[where], qkv_hidden[where]
            for i, block in enumerate(self.blocks):
                last = i == len(self.blocks) - 1
                x = block.forward_for_scoring(x, qkv if i == 0 else None, where if last else None)
            final[:, where] = x
            err = self.errors(*self.head(final), num, num_missing, cat)  # (B, F)
            out[m] = err.masked_fill(~hidden_cells(mask.expand(B, -1), num_missing,
                                                   self.n_numeric), float("nan"))
        return out
