"""Training a table's cell-reconstruction model: epochs over shuffled rows, early stopping.

Anything with `cell_errors(num, num_missing, cat, mask)` and `training_masks(...)` trains here
(attnad.models.masked). Each step hides random cells of a batch of rows and minimises the error
on them; the shared loop (attnad.training) trims the highest row losses and keeps the weights
with the best loss on held-out validation rows.

    summary = train_model(model, encoded, cfg.train, device, progress)
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from attnad.data.preprocess import Encoded
from attnad.models.masked import MaskedCellModel, hidden_cells
from attnad.training import TrainSummary, seed_everything, train_loop, trimmed_loss

MAX_VALIDATION_ROWS = 4096
MIN_VALIDATION_TABLE = 50  # smaller tables train on every row: no validation, no early stop
AUTO_MIN_EPOCHS = 2  # with epochs: null, at least this many passes
EVAL_EVERY_MIN_STEPS = 50  # validation checks at most this often (an epoch of a small table is 1-5 steps)
RANK_SEED_STRIDE = 7919  # under torchrun, rank r draws masks and order from seed + r * this prime


def to_tensors(enc: Encoded, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (torch.from_numpy(np.ascontiguousarray(enc.num)).to(device),
            torch.from_numpy(np.ascontiguousarray(enc.num_missing)).to(device),
            torch.from_numpy(np.ascontiguousarray(enc.cat)).to(device))


def row_losses(model: MaskedCellModel, num, miss, cat, mask) -> torch.Tensor:
    """Mean error over each row's hidden cells, (B,)."""
    err = model.cell_errors(num, miss, cat, mask)
    w = hidden_cells(mask, miss, model.n_numeric).float()
    return (err * w).sum(1) / w.sum(1).clamp_min(1.0)


def training_rows(n: int, cfg) -> int:
    """Rows of n that train (the rest are held out for validation)."""
    if n < MIN_VALIDATION_TABLE:
        return n
    return n - min(int(round(cfg.validation_fraction * n)), MAX_VALIDATION_ROWS)


def train_model(model: MaskedCellModel, enc: Encoded, cfg, device: torch.device, progress=None,
                ddp=None) -> TrainSummary:
    """Fit in place; returns what happened. `progress(done, total, loss)` is called per step.

    `ddp` (attnad.engines.distributed.Context, under torchrun): every rank holds the same rows
    and validation set; each trains on its own equal-sized shard of the training rows through
    DistributedDataParallel, so all ranks take the same number of steps and, with identical
    weights and validation rows, the same early-stopping decision."""
    start = time.perf_counter()
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(enc)
    order = rng.permutation(n)
    n_val = n - training_rows(n, cfg)
    val_idx, train_idx = order[:n_val], order[n_val:]
    if ddp is not None:
        train_idx = ddp.shard(train_idx)
    model.to(device)
    tr = to_tensors(enc.take(train_idx), device)
    va = to_tensors(enc.take(val_idx), device) if n_val else None
    val_masks = model.training_masks(n_val, gen, device) if n_val else None
    if ddp is not None:
        gen.manual_seed(cfg.seed + RANK_SEED_STRIDE * ddp.rank)  # each rank its own masks, order

    batch = min(cfg.batch_size, len(train_idx))
    steps_per_epoch = max(1, math.ceil(len(train_idx) / batch))
    # auto epochs: a small table needs many passes to learn its relations, a big one needs one
    epochs = cfg.epochs or max(AUTO_MIN_EPOCHS, math.ceil(cfg.min_steps / steps_per_epoch))
    total_steps = min(epochs * steps_per_epoch, cfg.max_steps)
    shuffle = {"perm": None, "pos": steps_per_epoch}

    def batch_losses(net) -> torch.Tensor:
        if shuffle["pos"] >= steps_per_epoch:  # new epoch: reshuffle
            shuffle["perm"] = torch.randperm(len(train_idx), generator=gen).to(device)
            shuffle["pos"] = 0
        idx = shuffle["perm"][shuffle["pos"] * batch:(shuffle["pos"] + 1) * batch]
        shuffle["pos"] += 1
        mask = model.training_masks(len(idx), gen, device)
        return row_losses(net, tr[0][idx], tr[1][idx], tr[2][idx], mask)

    def validate(m) -> float:
        return trimmed_loss(row_losses(m, *va, val_masks), cfg.trim_fraction).item()

    steps, last, best = train_loop(model, batch_losses, cfg, total_steps, ddp=ddp,
                                   progress=progress, validate=validate if va is not None else None,
                                   eval_every=max(steps_per_epoch, EVAL_EVERY_MIN_STEPS))
    return TrainSummary(rows=n, epochs=math.ceil(steps / steps_per_epoch), steps=steps,
                        best_validation_loss=best, final_train_loss=last,
                        seconds=round(time.perf_counter() - start, 3), device=str(device))
