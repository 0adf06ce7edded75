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


PLAIN_PAIRS = 512  # (row, mask) pairs per forward pass on CPU: bigger batches lose time to cache
# misses and page faults (benchmarks/RESULTS.md, "Figures behind constants")


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
    """Per-feature predictions: a value for each numeric feature, logits over each vocabulary.

    Category logits are padded to the largest vocabulary, (B, Fc, Cmax), instead of one shared
    output over all vocabularies: cost grows with the number of columns, not its square.
    """

    def __init__(self, n_numeric: int, cardinalities: list[int], d: int):
        super().__init__()
        self.n_numeric = n_numeric
        self.cardinalities = list(cardinalities)
        self.norm = nn.LayerNorm(d)
        self.num_weight = nn.Parameter(torch.randn(n_numeric, d) / math.sqrt(d))
        self.num_bias = nn.Parameter(torch.zeros(n_numeric))
        fc, cmax = len(cardinalities), max(cardinalities, default=1)
        self.cat_weight = nn.Parameter(torch.randn(fc, cmax, d) / math.sqrt(d))
        self.cat_bias = nn.Parameter(torch.zeros(fc, cmax))
        valid = torch.arange(cmax).unsqueeze(0) < torch.tensor(cardinalities or [0]).unsqueeze(1)
        self.register_buffer("cat_valid", valid[:fc])  # (Fc, Cmax)

    def forward(self, h):
        h = self.norm(h)  # (B, F, d)
        num_pred = (h[:, : self.n_numeric] * self.num_weight).sum(-1) + self.num_bias  # (B, Fn)
        cat_logits = None
        if self.cardinalities:
            hc = h[:, self.n_numeric:]  # (B, Fc, d)
            logits = torch.einsum("bfd,fcd->bfc", hc, self.cat_weight) + self.cat_bias
            cat_logits = logits.masked_fill(~self.cat_valid, float("-inf"))  # (B, Fc, Cmax)
        return num_pred, cat_logits


class GroupedNumericCells(nn.Module):
    """Wide tables: numeric columns pooled into at most G tokens of neighbouring columns.

    Token g = sum over its columns j of (x_j w_j + b_j, or a missing / mask embedding) + e_j,
    divided by sqrt(group size); column j is predicted from token g with its own head vector.
    Written as batched matmuls over (B, G, S) so the (B, F, d) per-column tokens of a
    1,500-column table are never materialised: attention then costs G tokens, not F.
    """

    def __init__(self, n_numeric: int, d: int, max_groups: int):
        super().__init__()
        self.n = n_numeric
        self.s = math.ceil(n_numeric / max(1, min(n_numeric, max_groups)))  # columns per group
        self.g = math.ceil(n_numeric / self.s)  # groups; only the last one may be padded
        init = 1.0 / math.sqrt(d)
        shape = (self.g, self.s, d)
        self.weight = nn.Parameter(torch.randn(shape) * init)
        self.bias = nn.Parameter(torch.randn(shape) * init)
        self.missing = nn.Parameter(torch.randn(shape) * init)
        self.mask_embedding = nn.Parameter(torch.randn(d) * init)
        self.head_weight = nn.Parameter(torch.randn(shape) * init)
        self.head_bias = nn.Parameter(torch.zeros(self.g, self.s))
        self.norm = nn.LayerNorm(d)
        real = torch.zeros(self.g * self.s)
        real[:n_numeric] = 1.0
        self.register_buffer("real", real.view(self.g, self.s), persistent=False)

    def _grid(self, t: torch.Tensor) -> torch.Tensor:
        # (B, F) -> (B, G, S), padding columns are 0
        pad = self.g * self.s - self.n
        return F.pad(t, (0, pad)).view(t.shape[0], self.g, self.s)

    def tokens(self, num, num_missing, mask):
        vis = self._grid((~mask[:, : self.n]).float())
        miss = self._grid(num_missing.float())
        present = vis * (1 - miss) * self.real
        tok = torch.einsum("bgs,gsd->bgd", self._grid(num) * present, self.weight)
        tok = tok + torch.einsum("bgs,gsd->bgd", present, self.bias)
        tok = tok + torch.einsum("bgs,gsd->bgd", vis * miss * self.real, self.missing)
        hidden = ((1 - vis) * self.real).sum(-1, keepdim=True)  # (B, G, 1)
        tok = tok + hidden * self.mask_embedding
        return tok / self.real.sum(-1, keepdim=True).sqrt()  # (B, G, d)

    def predict(self, h):
        # h (B, G, d) -> (B, F) predictions of every numeric column
        pred = torch.einsum("bgd,gsd->bgs", self.norm(h), self.head_weight) + self.head_bias
        return pred.reshape(h.shape[0], -1)[:, : self.n]


class MaskedCellModel(nn.Module):
    """Tokenise, mix tokens (subclass), predict every cell; errors are reported for hidden cells."""

    def __init__(self, n_numeric: int, cardinalities: list[int], d: int, max_tokens: int = 10**9,
                 mask_ratio: float = 0.3, n_score_masks: int = 8):
        super().__init__()
        self.mask_ratio, self.n_score_masks = mask_ratio, n_score_masks
        self.n_numeric = n_numeric
        self.cardinalities = list(cardinalities)
        self.n_features = n_numeric + len(cardinalities)
        self.grouped = self.n_features > max_tokens and n_numeric > 0
        if self.grouped:  # wide: numeric columns share tokens, categories keep their own
            n_cat = len(cardinalities)
            self.numeric_groups = GroupedNumericCells(n_numeric, d, max(max_tokens - n_cat, 1))
            self.tokenizer = FeatureTokenizer(0, cardinalities, d)
            self.head = ReconstructionHead(0, cardinalities, d)
        else:
            self.tokenizer = FeatureTokenizer(n_numeric, cardinalities, d)
            self.head = ReconstructionHead(n_numeric, cardinalities, d)

    def mix(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def training_masks(self, batch: int, generator: torch.Generator, device):
        """The cells each training row hides and learns to predict, (batch, F) bool."""
        return random_masks(batch, self.n_features, self.mask_ratio, generator, device)

    def scoring_masks(self, seed: int) -> torch.Tensor:
        """The fixed masks a row is scored under, (M, F) bool: every cell hidden at least once."""
        return scoring_masks(self.n_features, self.mask_ratio, self.n_score_masks, seed)

    def cell_errors(self, num, num_missing, cat, mask):
        """Squared error (numbers) or negative log-likelihood (categories) per cell, (B, F).

        Missing numeric cells have no target: their error is 0 and they never count as hidden.
        """
        if self.grouped:
            ng = self.numeric_groups
            groups = ng.tokens(num, num_missing, mask)  # (B, G, d)
            cats = self.tokenizer(num[:, :0], num_missing[:, :0], cat, mask[:, self.n_numeric:]) \
                if self.cardinalities else groups[:, :0]
            group_hidden = ng._grid(mask[:, : self.n_numeric].float()).sum(-1) >= ng.real.sum(-1)
            h = self.mix(torch.cat([groups, cats], 1),
                         torch.cat([group_hidden, mask[:, self.n_numeric:]], 1))  # (B, G+Fc, d)
            num_pred = ng.predict(h[:, : ng.g])
            _, cat_logits = self.head(h[:, ng.g:]) if self.cardinalities else (None, None)
        else:
            tokens = self.tokenizer(num, num_missing, cat, mask)  # (B, F, d)
            h = self.mix(tokens, mask)  # (B, F, d)
            num_pred, cat_logits = self.head(h)
        return self.errors(num_pred, cat_logits, num, num_missing, cat)

    def errors(self, num_pred, cat_logits, num, num_missing, cat):
        """Per-cell errors, (B, F), of the head's predictions against the row's own cells."""
        errs = []
        if self.n_numeric:
            e = (num_pred - num) ** 2
            errs.append(e.masked_fill(num_missing, 0.0))
        if cat_logits is not None:
            logp = F.log_softmax(cat_logits, dim=-1)  # (B, Fc, Cmax)
            errs.append(-logp.gather(-1, cat.unsqueeze(-1)).squeeze(-1))
        return torch.cat(errs, dim=1)

    def masked_errors(self, num, num_missing, cat, masks: torch.Tensor) -> torch.Tensor:
        """Each cell's error under each of the fixed scoring masks, (M, B, F); NaN where the mask
        showed the cell or the cell is missing (it has no target). Models may override this with
        a cheaper exact computation; this one runs every (mask, row) pair through `cell_errors`."""
        M, B = masks.shape[0], num.shape[0]
        step = max(1, PLAIN_PAIRS // M) if num.device.type == "cpu" else B
        out = []
        for s in range(0, B, step):
            n, miss, c = num[s:s + step], num_missing[s:s + step], cat[s:s + step]
            b = n.shape[0]
            mask = masks.repeat_interleave(b, dim=0)  # (M*b, F): mask-major
            n, miss, c = n.repeat(M, 1), miss.repeat(M, 1), c.repeat(M, 1)
            err = self.cell_errors(n, miss, c, mask)  # (M*b, F)
            err = err.masked_fill(~hidden_cells(mask, miss, self.n_numeric), float("nan"))
            out.append(err.view(M, b, -1))
        return torch.cat(out, dim=1)


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
