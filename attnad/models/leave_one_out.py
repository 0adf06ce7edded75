"""Leave-one-out cell attention: every cell predicted from all the others in one pass.

The masked model (`tabular.py`) hides a share of the cells and predicts them from the rest, so
scoring a row takes several masked passes (8 by default) before every cell has been hidden once.
Here a cell never sees itself, by construction: each column has a query stream that starts from
a learned, value-free embedding and, block after block, attends to the other cells' own tokens
(XLNet's query stream, Yang et al. 2019, with the content stream kept at its first layer). The
cells' tokens never mix with each other, so no token carries a cell's value back to its own query,
and one pass predicts every cell from all the others: a row costs one pass, not one per mask,
and every cell of every training row is a target.

A learned "nothing" key lets a query attend away from every cell (a one-column table, or a column
the others say nothing about); its prediction is then the column's typical value.

    model = LeaveOneOutTransformer(LeaveOneOutConfig(), n_numeric=5, cardinalities=[4])
    err = model.cell_errors(num, num_missing, cat, mask)  # (B, F): every cell's error
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from attnad.config import LeaveOneOutConfig
from attnad.models.masked import MaskedCellModel, hidden_cells


class CrossBlock(nn.Module):
    """Pre-norm block in which queries attend to fixed keys and values, then a 2x MLP."""

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.ln_q, self.ln_kv, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d),
                                 nn.Dropout(dropout))
        self.dropout = dropout

    def forward(self, g, content, allowed, return_weights: bool = False):
        # g (Q, d) or (B, Q, d) queries; content (B, K, d); allowed (Q, K) bool: what
        # each query sees
        B, K, d = content.shape
        Q, H = g.shape[-2], self.n_heads
        q = self.q(self.ln_q(g)).view(-1, Q, H, d // H).transpose(1, 2).expand(B, -1, -1, -1)
        k, v = self.kv(self.ln_kv(content)).view(B, K, 2, H, d // H).permute(2, 0, 3, 1, 4)
        if return_weights:
            logits = (q @ k.transpose(-1, -2) / math.sqrt(d // H)).masked_fill(~allowed, -math.inf)
            w = torch.softmax(logits, dim=-1)
            y = w @ v
        else:
            w = None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                               dropout_p=self.dropout if self.training else 0.0)
        g = g + self.out(y.transpose(1, 2).reshape(B, Q, d))
        g = g + self.mlp(self.ln2(g))
        return (g, w) if return_weights else g


class LeaveOneOutTransformer(MaskedCellModel):
    """A `MaskedCellModel` for its tokenizer, head, errors and wide-table pooling, and so that
    scoring, cross-fitting and explanations treat it like the masked models; it hides nothing
    (its tokenizers' mask embeddings stay unused)."""

    def __init__(self, cfg: LeaveOneOutConfig, n_numeric: int, cardinalities: list[int]):
        super().__init__(n_numeric, cardinalities, cfg.d_model, cfg.max_tokens)
        d = cfg.d_model
        n_tokens = (self.numeric_groups.g + len(cardinalities)) if self.grouped else self.n_features
        self.queries = nn.Parameter(torch.randn(n_tokens, d) / math.sqrt(d))
        self.nothing = nn.Parameter(torch.randn(1, d) / math.sqrt(d))
        self.blocks = nn.ModuleList(
            CrossBlock(d, cfg.n_heads, cfg.dropout) for _ in range(cfg.n_layers))
        # each token's query sees every other token and the "nothing" key, never itself
        allowed = torch.cat([~torch.eye(n_tokens, dtype=torch.bool),
                             torch.ones(n_tokens, 1, dtype=torch.bool)], 1)
        self.register_buffer("allowed", allowed, persistent=False)

    def content(self, num, num_missing, cat) -> torch.Tensor:
        """Every cell's own token (B, T, d), nothing hidden, plus the "nothing" key."""
        B = num.shape[0]
        if self.grouped:
            none_hidden = torch.zeros(B, self.n_numeric, dtype=torch.bool, device=num.device)
            parts = [self.numeric_groups.tokens(num, num_missing, none_hidden)]
            if self.cardinalities:
                parts.append(self.tokenizer(num[:, :0], num_missing[:, :0], cat,
                                            torch.zeros_like(cat, dtype=torch.bool)))
        else:
            none_hidden = torch.zeros(B, self.n_features, dtype=torch.bool, device=num.device)
            parts = [self.tokenizer(num, num_missing, cat, none_hidden)]
        parts.append(self.nothing.expand(B, 1, -1))
        return torch.cat(parts, 1)

    def predict(self, num, num_missing, cat):
        content = self.content(num, num_missing, cat)
        # (T, d): the first block's queries are the same for every row. A copy, because torch's
        # module hooks (FlopCounterMode's, in benchmarks/speed.py) fail on a parameter passed
        # as a module input without gradients
        g = self.queries.clone()
        for block in self.blocks:
            g = block(g, content, self.allowed)
        if self.grouped:
            ng = self.numeric_groups
            num_pred = ng.predict(g[:, : ng.g])
            _, cat_logits = self.head(g[:, ng.g:]) if self.cardinalities else (None, None)
            return num_pred, cat_logits
        return self.head(g)

    def cell_errors(self, num, num_missing, cat, mask):
        """Every cell's error, (B, F), each predicted from all the other cells; `mask` only
        says which errors the caller will read."""
        return self.errors(*self.predict(num, num_missing, cat), num, num_missing, cat)

    def masked_errors(self, num, num_missing, cat, masks):
        """One pass gives every cell's error; each mask only selects the errors it reports, (M,
        B, F), NaN elsewhere and at missing numbers (scoring uses one mask of every cell)."""
        err = self.cell_errors(num, num_missing, cat, None)
        B = num.shape[0]
        return torch.stack([err.masked_fill(~hidden_cells(m.expand(B, -1), num_missing,
                                                          self.n_numeric), float("nan"))
                            for m in masks])

    def training_masks(self, batch, generator, device):
        """Every cell of every row is a target: the attention pattern, not a mask, keeps each
        cell from its own prediction."""
        return torch.ones(batch, self.n_features, dtype=torch.bool, device=device)

    def scoring_masks(self, seed):
        """A single mask of every cell: one pass scores a row."""
        return torch.ones(1, self.n_features, dtype=torch.bool)

    @torch.no_grad()
    def attention_maps(self, num, num_missing, cat, mask):
        """Per-block attention of each column's query over the other columns' cells, averaged
        over heads, (L, B, F, F); `mask` plays no part. The share paid to the "nothing" key is
        left out and the rest rescaled to sum to 1: which cells a prediction came from."""
        content = self.content(num, num_missing, cat)
        g, maps = self.queries.clone(), []
        for block in self.blocks:
            g, w = block(g, content, self.allowed, return_weights=True)
            cells = w.mean(1)[:, :, :-1]
            maps.append(cells / cells.sum(-1, keepdim=True).clamp_min(1e-12))
        return torch.stack(maps)
