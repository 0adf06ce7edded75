"""Which cells of a window the series model must fill in: fixed masks to score, random to train.

Three families, each hiding every present cell once per window when scoring:
- cells: cell (p, f) hidden by mask (a_p + b_f) mod M, so a hidden cell is predicted from its own
  signal's neighbours and from the other signals at the same step;
- whole signals (model.signal_masks): a hidden signal can only be predicted from the others;
- spans of steps (model.span_masks): a hidden block can only be filled in from the steps around it.
Training draws masks of the same shapes at random, so the model learns what scoring asks of it.

    patterns = scoring_patterns(state)               # (P, W, F) bool, fixed by the seed
    hide = training_patterns(B, W, F, cfg.model, g)  # (B, W, F) bool
"""

from __future__ import annotations

import torch

SIGNAL_SHARE = 0.5  # with signal masks, this share of training windows hides whole signals


def n_masks(mask_ratio: float) -> int:
    return max(2, round(1.0 / mask_ratio))


def stride_of(model_cfg) -> int:
    return model_cfg.stride or max(1, model_cfg.window // 4)


def cell_patterns(window: int, n_features: int, masks: int, seed: int) -> torch.Tensor:
    """Fixed scoring masks (M, W, F) that hide every cell exactly once.

    Cell (p, f) is hidden by mask (a_p + b_f) mod M: each mask hides 1/M of the signals at each
    step and each signal at 1/M of the steps, so a hidden cell is predicted from its own signal's
    neighbours and from the other signals at the same step. Training draws a and b at random.
    """
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, masks, (window,), generator=g)
    b = torch.randint(0, masks, (n_features,), generator=g)
    group = (a[:, None] + b[None, :]) % masks  # (W, F)
    return group[None] == torch.arange(masks)[:, None, None]  # (M, W, F)


def signal_patterns(window: int, n_features: int, masks: int, seed: int) -> torch.Tensor:
    """Fixed scoring masks (min(M, F), W, F) that hide groups of whole signals across the window.

    A hidden signal can then only be predicted from the other signals (and, with one signal, not
    at all: the model falls back on what a window usually looks like). Cell masks alone let the
    model copy a signal's own neighbours, which also copies a shifted level, a new state or a
    frozen value; these masks make such a window hard to fill in, as a window PCA would find it.
    """
    g = torch.Generator().manual_seed(seed + 1)
    m2 = min(masks, n_features)
    group = torch.randperm(n_features, generator=g) % m2  # (F,)
    hide = group[None, :] == torch.arange(m2)[:, None]  # (M2, F)
    return hide[:, None, :].expand(m2, window, n_features).clone()  # (M2, W, F)


def span_patterns(window: int, n_features: int, masks: int) -> torch.Tensor:
    """Fixed scoring masks (M, W, F) that hide one contiguous block of W/M steps in every signal.

    A hidden block can only be filled in from the steps before and after it: a spike is then no
    easier to spot, but a stretch that does not continue its context (a changed shape, a level
    that drifts off, a frozen run) is, where neighbour cells would let the model copy it.
    """
    block = torch.arange(window) * masks // window  # (W,) block of each step
    hide = block[None, :] == torch.arange(masks)[:, None]  # (M, W)
    return hide[:, :, None].expand(masks, window, n_features).clone()


def scoring_patterns(state) -> list[torch.Tensor]:
    """The fixed masks of each family a model was trained with (attnad.timeseries.state)."""
    F = len(state.features)
    pats = [cell_patterns(state.window, F, state.n_masks, state.seed)]
    if state.signal_masks:
        pats.append(signal_patterns(state.window, F, state.n_masks, state.seed))
    if state.span_masks:
        pats.append(span_patterns(state.window, F, state.n_masks))
    return pats


def training_patterns(B: int, W: int, F: int, mc, gen: torch.Generator) -> torch.Tensor:
    """Random masks (B, W, F) for B training windows, drawn as the scoring families are."""
    M = n_masks(mc.mask_ratio)
    a = torch.randint(0, M, (B, W, 1), generator=gen)
    b = torch.randint(0, M, (B, 1, F), generator=gen)
    m = torch.randint(0, M, (B, 1, 1), generator=gen)
    pattern = ((a + b) % M) == m  # (B, W, F) cell masks, as cell_patterns draws them
    if mc.signal_masks:  # some windows hide whole signals, as signal_patterns does
        m2 = min(M, F)
        groups = torch.rand(B, 1, F, generator=gen).argsort(-1) % m2
        whole = groups == torch.randint(0, m2, (B, 1, 1), generator=gen)  # (B, 1, F)
        pick = torch.rand(B, 1, 1, generator=gen) < SIGNAL_SHARE
        pattern = torch.where(pick, whole.expand(B, W, F), pattern)
    if mc.span_masks:  # some windows hide one block of W/M steps, as span_patterns does
        span = max(1, W // M)
        first = torch.randint(0, W - span + 1, (B, 1, 1), generator=gen)
        steps = torch.arange(W)[None, :, None]
        block = (steps >= first) & (steps < first + span)  # (B, W, 1)
        pick = torch.rand(B, 1, 1, generator=gen) < 1.0 / (1 + mc.signal_masks + 1)
        pattern = torch.where(pick, block.expand(B, W, F), pattern)
    return pattern
