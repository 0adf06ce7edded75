"""Attention across rows: many small random memories of training rows, scored by free energy.

Each memory j holds m training rows. A row x attends to them with logits -||x - m_i||^2 / tau_j,
and its score on that memory is the free energy of that softmax, e_j(x) = -tau_j-units
logsumexp_i(-||x - m_i||^2 / tau_j): low when some memory rows are close, high when none are. It is
the article's z = sum a_i x_i applied across samples (non-parametric transformers, NPT-AD), read
out as an energy instead of a reconstruction: reconstructing x from the attended rows collapses
on contaminated data, where similar anomalies in the memory rebuild each other.

Many small memories, averaged, are the attention analogue of IsolationForest's subsampling: a
cluster of anomalies is rarely whole in a 256-row memory, so it cannot shield itself. tau_j is
the median squared distance to the 5th neighbour inside memory j: scale-free, nothing to tune.

    mem = RowMemory.fit(vectors, size=256, count=32, seed=0)
    energy = mem.energy(vectors)   # (n,), higher = more anomalous
"""

from __future__ import annotations

import numpy as np
import torch

from attnad.parallel import cpu_workers, for_chunks

NEIGHBOUR = 5  # tau: median squared distance to this neighbour inside a memory
DROP_NATS = 60.0  # logits this far below a row's best match add nothing to logsumexp in float32
CHUNK = 256  # rows scored at a time, all memories at once: more rows' logits outgrow the cache
# (benchmarks/RESULTS.md, "Figures behind constants")
GPU_CHUNK = 8192  # on a GPU: (8192, 32 x 256) float32 logits are 256 MiB
COPY_TOLERANCE = 1e-5  # a squared distance below this share of 2|x|^2 (|x|^2 + |m|^2 when m is
# a copy of x) is an exact copy


def sq_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # a (n, D), b (m, D) -> (n, m)
    return ((a * a).sum(1, keepdim=True) + (b * b).sum(1)[None] - 2.0 * a @ b.T).clamp_min_(0.0)


def temperature(memory: torch.Tensor) -> float:
    d = sq_distances(memory, memory)
    d.fill_diagonal_(float("inf"))
    k = min(NEIGHBOUR, memory.shape[0] - 1)
    if k < 1:
        return 1.0
    t = d.topk(k, dim=1, largest=False).values[:, -1].median().item()
    if not np.isfinite(t) or t <= 1e-12:  # many duplicates: fall back to typical positive distance
        pos = d[torch.isfinite(d) & (d > 1e-12)]
        t = pos.median().item() if pos.numel() else 1.0
    return float(t)


class RowMemory:
    def __init__(self, memories: torch.Tensor, taus: torch.Tensor):
        self.memories = memories  # (J, m, D)
        self.taus = taus  # (J,)
        # the memories rearranged for `energy`: (D, J*m) weights, (J*m,) offsets
        norms = (memories ** 2).sum(-1)
        self._weight = (2.0 * memories / taus[:, None, None]).permute(2, 0, 1).reshape(
            memories.shape[2], -1)
        self._offset = (-norms / taus[:, None]).reshape(-1)

    def to(self, device) -> "RowMemory":
        """The same memory on `device`: on a GPU the energy runs beside the model, not on the
        host's cores, which would otherwise be the slowest step of scoring."""
        if self.memories.device == torch.device(device):
            return self
        return RowMemory(self.memories.to(device), self.taus.to(device))

    @classmethod
    def fit(cls, vectors: torch.Tensor, size: int, count: int, seed: int) -> "RowMemory":
        n = vectors.shape[0]
        m = min(size, n)
        rng = np.random.default_rng(seed)
        idx = np.stack([np.sort(rng.choice(n, m, replace=False)) for _ in range(count)])
        memories = vectors[torch.from_numpy(idx)]  # (J, m, D)
        taus = torch.tensor([temperature(memories[j]) for j in range(count)], dtype=torch.float32)
        return cls(memories.contiguous(), taus)

    @torch.inference_mode()
    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """Mean free energy over memories, (n,). One exact copy of x in a memory is ignored, so a
        training row is not vouched for by itself and scores the same as an unseen copy of it.

        All memories go through one matmul: with -d/tau = (2 x.m - |m|^2 - |x|^2) / tau, the
        first two terms are x times a fixed (D, J*m) matrix plus a fixed row, and |x|^2 / tau
        comes out of the log-sum-exp. That is a few passes over the (rows, J*m) logits instead
        of a dozen over each memory's distances."""
        J, m, _ = self.memories.shape
        device = self.memories.device
        chunk = CHUNK if device.type == "cpu" else GPU_CHUNK
        out = torch.empty(x.shape[0], device=device)

        def rows(start: int, stop: int) -> None:
            xs = x[start:stop].to(device)
            x2 = (xs * xs).sum(1, keepdim=True)  # (B, 1)
            logits = torch.addmm(self._offset, xs, self._weight).view(-1, J, m)  # (|x|^2 - d) / tau
            best = logits.amax(-1)  # (B, J): each memory's nearest row (amax: 8x cheaper than max
            # with its index, which only a copy below needs)
            d_best = x2 - best * self.taus  # its squared distance
            # an exact copy: zero up to the rounding of |x|^2 + |m|^2 - 2 x.m, which grows with
            # the norms (float32: about 3e-7 of them at 40 columns, measured); a copy's |m|^2 is
            # |x|^2, so the tolerance needs no look-up of the nearest row
            copy = d_best <= COPY_TOLERANCE * 2.0 * x2
            if m > 1 and copy.any():  # (a one-row memory keeps its only row)
                b, j = copy.nonzero(as_tuple=True)
                own = logits[b, j].argmax(-1)
                logits[b, j, own] = float("-inf")
                best[b, j] = logits[b, j].amax(-1)
            shifted = logits.sub_(best[..., None]).clamp_min_(-DROP_NATS).exp_().sum(-1)
            lse = best + shifted.log_()  # (B, J): log-sum-exp of (|x|^2 - d) / tau
            out[start:stop] = (x2 / self.taus - lse).mean(1)

        for_chunks(x.shape[0], chunk, rows, cpu_workers(device))
        return out.cpu()

    def state(self) -> dict[str, torch.Tensor]:
        return {"memories": self.memories.cpu(), "taus": self.taus.cpu()}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> "RowMemory":
        return cls(state["memories"].float(), state["taus"].float())
