"""`torchrun --nproc_per_node N -m attnad train DATA -o MODEL` (or `attnad train --distributed`):
DistributedDataParallel training, gloo on CPU, nccl on GPU.

Every rank reads the same seeded training sample and fits the same schema and preprocessing (both
deterministic), then trains on its own equal-sized shard of the rows (time series: on its own
random windows of all rows, so no entity is cut); DDP averages the gradients, so the weights stay
identical on all ranks. Rank 0 calibrates and saves the model once; the
others wait at a barrier. No home-made cluster code: torchrun starts the processes and sets
RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from attnad.errors import UserError


class _CellErrors(nn.Module):
    """DDP syncs gradients of what runs through forward(); the models' entry is cell_errors."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, num, num_missing, cat, mask):
        return self.model.cell_errors(num, num_missing, cat, mask)


class _DDPCells(nn.parallel.DistributedDataParallel):
    """Looks like the model to the training loop: cell_errors, n_features, n_numeric."""

    def cell_errors(self, num, num_missing, cat, mask):
        return self(num, num_missing, cat, mask)

    @property
    def n_features(self) -> int:
        return self.module.model.n_features

    @property
    def n_numeric(self) -> int:
        return self.module.model.n_numeric


@dataclass
class Context:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    def shard(self, idx: np.ndarray) -> np.ndarray:
        """This rank's rows: equal-sized shards, so every rank takes the same number of steps."""
        keep = len(idx) - len(idx) % self.world
        if keep < self.world:
            raise UserError(f"--distributed: {len(idx)} training rows cannot be shared by "
                            f"{self.world} processes")
        return idx[:keep][self.rank::self.world]

    def wrap(self, model: nn.Module) -> nn.Module:
        ids = [self.device.index] if self.device.type == "cuda" else None
        # static_graph: the same graph every step, and it copes with parameters a table never
        # uses (the category tables of an all-numeric table) without a per-step graph search
        return _DDPCells(_CellErrors(model), device_ids=ids, static_graph=True)

    def finish(self) -> None:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()


def running_under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(requested_device: str) -> Context:
    """Join the process group torchrun set up."""
    import torch.distributed as dist
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise UserError("--distributed: start it with torchrun, e.g. torchrun --nproc_per_node 2 "
                        "-m attnad train DATA -o MODEL --distributed")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = requested_device != "cpu" and torch.cuda.is_available()
    if requested_device == "cuda" and not cuda:
        raise UserError("--device cuda: no CUDA device is available (use --device auto or cpu)")
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    return Context(dist.get_rank(), dist.get_world_size(), local, device)
