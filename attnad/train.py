"""The training loop: seeded, device-aware, early-stopped, robust to a few anomalies in the data.

It knows nothing about a particular model: anything with `cell_errors(num, num_missing, cat, mask)`
trains here. Each step hides random cells and minimises the error on them. The rows with the
highest loss in each batch (`train.trim_fraction`) are left out of the gradient, so a few percent
of anomalies in the training file are not learned as normal (trimmed loss, as in robust
statistics' least trimmed squares).

    summary = train_model(model, encoded, cfg.train, device, progress)
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from attnad.data.preprocess import Encoded
from attnad.models.masked import MaskedCellModel, hidden_cells

MAX_VALIDATION_ROWS = 4096
AUTO_MIN_EPOCHS = 2  # with epochs: null, at least this many passes
EVAL_EVERY_MIN_STEPS = 50  # validation checks at most this often (an epoch of a small table is 1-5 steps)


@dataclass
class TrainSummary:
    rows: int
    epochs: int
    steps: int
    best_validation_loss: float | None
    final_train_loss: float
    seconds: float
    device: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def resolve_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        from attnad.errors import UserError
        raise UserError("--device cuda: no CUDA device is available (use --device auto or cpu)")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads if threads > 0 else max(1, os.cpu_count() or 1))


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def to_tensors(enc: Encoded, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (torch.from_numpy(np.ascontiguousarray(enc.num)).to(device),
            torch.from_numpy(np.ascontiguousarray(enc.num_missing)).to(device),
            torch.from_numpy(np.ascontiguousarray(enc.cat)).to(device))


def row_losses(model: MaskedCellModel, num, miss, cat, mask) -> torch.Tensor:
    """Mean error over each row's hidden cells, (B,)."""
    err = model.cell_errors(num, miss, cat, mask)
    w = hidden_cells(mask, miss, model.n_numeric).float()
    return (err * w).sum(1) / w.sum(1).clamp_min(1.0)


def trimmed_mean(losses: torch.Tensor, trim_fraction: float) -> torch.Tensor:
    n_drop = int(math.floor(trim_fraction * losses.shape[0]))
    if n_drop == 0:
        return losses.mean()
    kept, _ = torch.topk(losses, losses.shape[0] - n_drop, largest=False)
    return kept.mean()


def one_cycle(opt, lr: float, total_steps: int, warmup: float = 0.1):
    """One-cycle schedule with `warmup` of the steps rising. PyTorch divides by zero when the
    warm-up is exactly one step long (total_steps 10), so that case warms up a little longer."""
    if abs(warmup * total_steps - 1.0) < 1e-9:
        warmup *= 1.1
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps,
                                               pct_start=warmup, anneal_strategy="cos")


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
    n_val = min(int(round(cfg.validation_fraction * n)), MAX_VALIDATION_ROWS) if n >= 50 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    if ddp is not None:
        train_idx = ddp.shard(train_idx)
    model.to(device)
    tr = to_tensors(enc.take(train_idx), device)
    va = to_tensors(enc.take(val_idx), device) if n_val else None
    val_masks = model.training_masks(n_val, gen, device) if n_val else None
    net = model
    if ddp is not None:
        gen.manual_seed(cfg.seed + 7919 * ddp.rank)  # each rank its own masks and order
        net = ddp.wrap(model)

    batch = min(cfg.batch_size, len(train_idx))
    steps_per_epoch = max(1, math.ceil(len(train_idx) / batch))
    # auto epochs: a small table needs many passes to learn its relations, a big one needs one
    epochs = cfg.epochs or max(AUTO_MIN_EPOCHS, math.ceil(cfg.min_steps / steps_per_epoch))
    total_steps = min(epochs * steps_per_epoch, cfg.max_steps)
    eval_every = max(steps_per_epoch, EVAL_EVERY_MIN_STEPS)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = one_cycle(opt, cfg.lr, total_steps)
    best_val, best_state, stale, step, last = math.inf, None, 0, 0, float("nan")
    perm, pos = None, steps_per_epoch
    while step < total_steps:
        if pos >= steps_per_epoch:  # new epoch: reshuffle
            perm, pos = torch.randperm(len(train_idx), generator=gen).to(device), 0
        net.train()
        idx = perm[pos * batch:(pos + 1) * batch]
        pos += 1
        num, miss, cat = tr[0][idx], tr[1][idx], tr[2][idx]
        mask = model.training_masks(len(idx), gen, device)
        loss = trimmed_mean(row_losses(net, num, miss, cat, mask), cfg.trim_fraction)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        last = float(loss.detach())
        if progress:
            progress(step, total_steps, last)
        if va is None or (step % eval_every and step != total_steps):
            continue
        model.eval()
        with torch.no_grad():
            v = trimmed_mean(row_losses(model, *va, val_masks), cfg.trim_fraction).item()
        if best_state is None or v < best_val - 1e-4 * abs(best_val):
            best_val, best_state, stale = v, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainSummary(rows=n, epochs=math.ceil(step / steps_per_epoch), steps=step,
                        best_validation_loss=None if best_val == math.inf else best_val,
                        final_train_loss=last, seconds=round(time.perf_counter() - start, 3),
                        device=str(device))
