"""The one training loop of both modes: seeded, device-aware, robust to anomalies in the data.

It knows nothing about a particular model or mode: the caller passes `batch_losses(net)`, which
draws the next batch (rows of a table, windows of a series), hides random cells and returns one
loss per row or window. The highest of those losses (`train.trim_fraction`) are left out of the
gradient, so a few percent of anomalies in the training file are not learned as normal (trimmed
loss, as in robust statistics' least trimmed squares). With `validate`, the weights with the best
validation loss are kept and training stops after `train.patience` checks without progress.

    steps, last, best = train_loop(model, batch_losses, cfg.train, total_steps, progress=bar)
"""

from __future__ import annotations

import copy
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from attnad.errors import UserError

CLIP_NORM = 1.0  # gradient norm clip: one wild batch cannot throw the weights far
MIN_IMPROVEMENT = 1e-4  # relative drop in validation loss that counts as progress


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


def prefetch_fit_imports() -> threading.Thread:
    """Import in the background what a fit needs later: torch's compiler front end (torch.optim
    loads it at its first call, ~1 s) and then scipy.stats (the threshold's tail fit after
    training, ~1 s). The caller meanwhile reads the training file and then trains, mostly
    inside pyarrow and torch with the GIL released, so a one-shot `detect` of a small file waits
    less for its answer (benchmarks/answer.py). A caller that reaches one of these imports
    first waits on Python's module lock until this thread has finished it. Neither module
    imports attnad, so the two threads cannot each wait for a module the other is importing."""

    def load() -> None:
        import torch._dynamo  # noqa: F401
        import scipy.stats  # noqa: F401

    thread = threading.Thread(target=load, name="attnad-imports", daemon=True)
    thread.start()
    return thread


def resolve_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available (use --device auto or cpu)")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def cgroup_cpu_limit(root: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup"
                     ) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (docker --cpus, Kubernetes limits), or None
    when there is none or it cannot be read: the smallest over the process's cgroup and its
    parents, cgroup v2 (cpu.max) or v1 (cpu.cfs_quota_us / cpu.cfs_period_us)."""
    try:
        with open(proc_cgroup) as f:
            entries = [line.split(":", 2) for line in f.read().splitlines() if line.count(":") >= 2]
    except OSError:
        entries = []
    paths = {"v2": "/"}  # cgroup file system as the process sees it: its own cgroup, else the root
    for _, controllers, path in entries:
        if controllers == "":
            paths["v2"] = path
        elif "cpu" in controllers.split(","):
            paths["v1"] = path
    limits = []
    for version, path in paths.items():
        if version == "v1":
            base = next((os.path.join(root, d) for d in ("cpu", "cpu,cpuacct", "cpuacct,cpu")
                         if os.path.isdir(os.path.join(root, d))), None)
        else:
            base = root
        rel = path.strip("/")
        while base is not None:
            d = os.path.join(base, rel)
            try:
                if version == "v2":
                    with open(os.path.join(d, "cpu.max")) as f:
                        quota, period = f.read().split()[:2]
                    if quota != "max":
                        limits.append(int(quota) / int(period))
                else:
                    with open(os.path.join(d, "cpu.cfs_quota_us")) as f:
                        quota = int(f.read())
                    with open(os.path.join(d, "cpu.cfs_period_us")) as f:
                        period = int(f.read())
                    if quota > 0 and period > 0:
                        limits.append(quota / period)
            except (OSError, ValueError):
                pass
            if not rel:
                break
            rel = os.path.dirname(rel)
    return min(limits) if limits else None


def usable_cpus() -> int:
    """CPUs this process may use: its affinity mask (taskset, cpusets), capped by a cgroup CPU quota
    rounded up; at least 1. os.cpu_count() counts the machine's, which oversubscribes a container."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        n = min(n, math.ceil(limit))
    return max(1, n)


def set_threads(threads: int) -> None:
    """Torch's CPU threads: `threads`, or with 0 the CPUs this process may use (usable_cpus). Idle
    OpenMP threads sleep rather than spin (OMP_WAIT_POLICY=PASSIVE, set by attnad/__init__.py
    before torch is imported), so a default run on a machine shared with other processes is about
    as fast as one thread instead of several times slower (benchmarks/threads.py)."""
    torch.set_num_threads(threads if threads > 0 else usable_cpus())


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def trimmed_loss(losses: torch.Tensor, trim_fraction: float) -> torch.Tensor:
    """Mean of the losses without the highest `trim_fraction` of them."""
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


def train_loop(model: torch.nn.Module, batch_losses: Callable[[torch.nn.Module], torch.Tensor],
               cfg, total_steps: int, *, ddp=None, progress=None,
               validate: Callable[[torch.nn.Module], float] | None = None,
               eval_every: int = 0) -> tuple[int, float, float | None]:
    """Train `model` in place for at most `total_steps` AdamW steps on a one-cycle schedule.

    `batch_losses(net)`: the next batch's per-row (or per-window) losses, computed through `net`
    (the model, or its DistributedDataParallel wrapper under torchrun: `ddp.wrap`, so gradients
    are averaged over the processes). `validate(model)`: a validation loss, checked every
    `eval_every` steps and after the last one. `progress(done, total, loss)` is called per step.
    Returns the steps taken, the last training loss and the best validation loss (or None)."""
    net = ddp.wrap(model) if ddp is not None else model
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = one_cycle(opt, cfg.lr, total_steps)
    best_val, best_state, stale, step, last = math.inf, None, 0, 0, float("nan")
    while step < total_steps:
        net.train()
        loss = trimmed_loss(batch_losses(net), cfg.trim_fraction)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP_NORM)
        opt.step()
        sched.step()
        step += 1
        last = float(loss.detach())
        if progress:
            progress(step, total_steps, last)
        if validate is None or (step % eval_every and step != total_steps):
            continue
        model.eval()
        with torch.no_grad():
            v = validate(model)
        if best_state is None or v < best_val - MIN_IMPROVEMENT * abs(best_val):
            best_val, best_state, stale = v, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    net.eval()
    return step, last, None if best_val == math.inf else best_val
