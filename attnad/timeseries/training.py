"""Training the series model: random windows of the (entity, time)-sorted rows, masked cells.

A window ends at a uniformly drawn row (so long entities weigh more) and never crosses from one
entity into another; some are cut short at the left so the model also knows the first steps of a
series. The shared loop (attnad.training) trims the highest-loss windows of each batch, as it
trims rows of a table. There is no validation set: a fixed number of steps is taken.

    summary = train_series(model, x, miss, starts, cfg, device, progress)
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from attnad.timeseries.levels import window_move
from attnad.timeseries.masks import stride_of, training_patterns
from attnad.training import TrainSummary, seed_everything, train_loop

TRUNCATED_SHARE = 0.1  # training windows cut short at the left, like a series' first windows
RANK_SEED_STRIDE = 7919  # under torchrun, rank r draws windows from seed + r * this prime
MIN_EPOCHS = 2  # with epochs: null, at least this many passes


def train_series(model, x: np.ndarray, miss: np.ndarray, starts: np.ndarray, cfg,
                 device: torch.device, progress=None, trainable: np.ndarray | None = None,
                 ddp=None, recent: np.ndarray | None = None) -> dict:
    """Fit `model` in place on the scaled rows x, miss (N, F); starts[i] is the first row of row
    i's entity, so windows never cross entities. Windows end on `trainable` rows only (held-out
    calibration rows never shape the weights).

    `ddp` (attnad.engines.distributed.Context, under torchrun): every rank holds the same rows
    and takes the same number of steps, each drawing its own windows, and DistributedDataParallel
    averages the gradients: a batch of model.batch_windows per process.

    Windows are moved by their level as scoring moves them (model.input_level; `recent` (N, F):
    each row's recent level up to and including it, for input_level local).
    """
    t0 = time.perf_counter()
    tc, mc = cfg.train, cfg.model
    W, B = mc.window, mc.batch_windows
    seed_everything(tc.seed)
    gen = torch.Generator().manual_seed(
        tc.seed + (RANK_SEED_STRIDE * ddp.rank if ddp is not None else 0))
    X = torch.from_numpy(x).to(device)  # (N, F)
    MISS = torch.from_numpy(miss).to(device)
    RECENT = None if recent is None else torch.from_numpy(recent.astype(np.float32)).to(device)
    START = torch.from_numpy(starts).to(device)
    N, F = X.shape
    END = torch.from_numpy(np.flatnonzero(trainable) if trainable is not None else np.arange(N))
    model.to(device)
    steps_per_epoch = max(1, math.ceil(len(END) / stride_of(mc) / B))  # each row in ~1 window
    total = tc.epochs * steps_per_epoch if tc.epochs else \
        max(tc.min_steps, MIN_EPOCHS * steps_per_epoch)
    total = min(total, tc.max_steps)
    pos = torch.arange(W)

    def batch_losses(net) -> torch.Tensor:
        ends = END[torch.randint(0, len(END), (B,), generator=gen)]
        cut = torch.randint(0, W - 1, (B,), generator=gen) * \
            (torch.rand(B, generator=gen) < TRUNCATED_SHARE)
        pattern = training_patterns(B, W, F, mc, gen)
        ends, cut, pattern = ends.to(device), cut.to(device), pattern.to(device)
        rows = ends[:, None] - W + 1 + pos.to(device)  # (B, W)
        valid = (rows >= START[ends][:, None]) & (pos.to(device)[None] >= cut[:, None])
        idx = rows.clamp_min(0)
        xb = X[idx] * valid[..., None]  # (B, W, F)
        mb = MISS[idx] | ~valid[..., None]
        hidden, target = pattern | mb, pattern & ~mb
        move = window_move(mc.input_level, xb, mb, valid,
                           None if RECENT is None else RECENT[ends][:, None, :])
        err = net.cell_errors(xb, hidden, target, valid, move=move)
        return err.sum((1, 2)) / target.sum((1, 2)).clamp_min(1)  # (B,) per window

    steps, last, _ = train_loop(model, batch_losses, tc, total, ddp=ddp, progress=progress)
    return TrainSummary(rows=int(len(END)), epochs=math.ceil(steps / steps_per_epoch),
                        steps=steps, best_validation_loss=None, final_train_loss=last,
                        seconds=round(time.perf_counter() - t0, 3), device=str(device)).to_dict()
