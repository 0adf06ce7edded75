"""Per-column tail surprise: how improbable each value of a row is in its own column.

The other two parts of the tabular model are local. Cell reconstruction asks whether a value fits
the rest of its row; the row memory asks whether the row has close neighbours. Both learn what
they are shown, so under contamination a dense group of similar anomalies (NSL-KDD's training file
is 47% attacks) teaches them that the group is normal. This part is the global, marginal view
that ECOD, COPOD and HBOS take: a value in the far tail of its column counts as improbable
whatever the rest of the row says.

Score of a row: the sum over row-vector columns (numbers in robust units, categories one-hot;
attnad.data.preprocess.row_vectors) of the two-sided tail surprisal
max(0, -log(2 min(P(X <= x), P(X >= x)))): 0 near the median, log((K + 1) / 2) beyond the
training range, -log(2 f) for a category seen in a share f < 1/2 of the rows. Summing treats
columns as independent, as those detectors do. Tail probabilities are read off K (at most 1,024)
training quantiles per column, exact when there are fewer training rows than that.

What it costs: where anomalies are extreme in no single column (a broken relation between
columns), the sum only adds noise, most on wide tables of correlated columns, whose normal rows
with extreme underlying factors are extreme in every column. On balance it helps a little, on
contaminated and clean data alike (benchmarks/RESULTS.md, round 6).

    tails = MarginalTails.fit(vectors)
    surprise = tails.surprise(vectors)   # (n,), higher = more anomalous

Missing cells: a cell that is missing where the training rows almost never were is evidence too,
as rare as its column's training missing share f: max(0, -log(2 f)), the surprisal a category
seen in a share f of the rows gets (f is at least 1/(n+1)). Without it a row of blank cells sits
at every column's median and looks the most normal of all. Models saved before missing shares
were kept score without this term.
"""

from __future__ import annotations

import torch

from attnad.parallel import cpu_workers, for_chunks

GRID = 1024  # quantiles kept per column: tail probabilities down to ~1/1,000
COLUMN_BLOCK = 256  # columns sorted at a time when fitting (bounded temporaries on wide tables)
CHUNK = 4096  # rows scored at a time
GPU_CHUNK = 262_144  # on a GPU


class MarginalTails:
    def __init__(self, grid: torch.Tensor, missing: torch.Tensor | None = None):
        self.grid = grid  # (D, K) each column's training quantiles, ascending
        self.missing = missing  # (F,) float64 surprisal of a missing cell of each model feature

    def to(self, device) -> "MarginalTails":
        """The same tails on `device` (beside the model on a GPU, as the row memory)."""
        return MarginalTails(self.grid.to(device),
                             None if self.missing is None else self.missing.to(device))

    @classmethod
    def fit(cls, vectors: torch.Tensor, grid_size: int = GRID,
            missing: torch.Tensor | None = None) -> "MarginalTails":
        """`missing`: (n, F) bool, which cells of each model feature were missing in training."""
        n, d = vectors.shape
        k = max(min(grid_size, n), 1)
        # order statistics at the centres of k equal slices of the sorted column (all when n <= k)
        pos = ((torch.arange(k, dtype=torch.float64) + 0.5) * n / k).long().clamp_(0, n - 1)
        grid = torch.empty(d, k, dtype=torch.float32)
        for start in range(0, d, COLUMN_BLOCK):
            block = vectors[:, start:start + COLUMN_BLOCK].float().sort(dim=0).values  # (n, b)
            grid[start:start + COLUMN_BLOCK] = block[pos].T
        return cls(grid.contiguous(), None if missing is None else missing_surprisal(missing))

    def _surprise_t(self, x: torch.Tensor) -> torch.Tensor:
        """(D, n) float64 two-sided tail surprisal of each cell, in nats. A row's score must not
        depend on the batch it comes in, so nothing here reduces across rows or columns."""
        k = self.grid.shape[1]
        xt = x.to(self.grid.device).float().T.contiguous()  # (D, n)
        at_most = torch.searchsorted(self.grid, xt, right=True)  # quantiles <= x
        below = torch.searchsorted(self.grid, xt)  # quantiles < x
        left = (at_most + 1).double() / (k + 1)  # +1: a value past every quantile is rare, not
        right = (k - below + 1).double() / (k + 1)  # impossible
        return (-torch.log(2.0 * torch.minimum(left, right))).clamp_min_(0.0)

    def column_surprise(self, x: torch.Tensor) -> torch.Tensor:
        """(n, D) two-sided tail surprisal of each cell, in nats."""
        return self._surprise_t(x).T.cpu()

    def missing_surprise(self, missing: torch.Tensor) -> torch.Tensor | None:
        """(n, F) float64 surprisal of each missing cell (0 where present), or None for a model
        saved without missing shares."""
        if self.missing is None:
            return None
        return missing.to(self.missing.device).double() * self.missing

    @torch.inference_mode()
    def surprise(self, x: torch.Tensor, missing: torch.Tensor | None = None) -> torch.Tensor:
        """Summed surprisal of each row, (n,) float64; `missing` (n, F) bool adds the missing
        cells' surprisal (after the tails, so a row without missing cells is unchanged)."""
        out = torch.zeros(x.shape[0], dtype=torch.float64, device=self.grid.device)
        chunk = CHUNK if self.grid.device.type == "cpu" else GPU_CHUNK

        def rows(start: int, stop: int) -> None:
            cells = self._surprise_t(x[start:stop])  # (D, B)
            total = out[start:stop]
            for column in cells:  # column by column: the same order of additions for any B
                total += column
            if missing is not None and self.missing is not None:
                gaps = self.missing_surprise(missing[start:stop])  # (B, F)
                for column in gaps.T:
                    total += column

        for_chunks(x.shape[0], chunk, rows, cpu_workers(self.grid.device))
        return out.cpu()

    def state(self) -> dict[str, torch.Tensor]:
        state = {"grid": self.grid.cpu()}
        if self.missing is not None:
            state["missing"] = self.missing.cpu()
        return state

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> "MarginalTails":
        grid = state["grid"].float()
        if grid.ndim != 2 or grid.shape[1] < 1:
            raise ValueError("marginal grid must be (columns, quantiles)")
        missing = state.get("missing")
        if missing is not None and missing.ndim != 1:
            raise ValueError("marginal missing must be one value per feature")
        return cls(grid.contiguous(), None if missing is None else missing.double())


def missing_surprisal(missing: torch.Tensor) -> torch.Tensor:
    """(F,) surprisal of a missing cell per feature from the training mask (n, F): a cell missing
    in a share f of the rows is as rare as a category seen in f of them, -log(2 f), floored at
    f = 1/(n + 1) (never seen missing is rare, not impossible) and at 0 (half the rows or more)."""
    n = missing.shape[0]
    share = missing.double().mean(0).clamp_min(1.0 / (n + 1))
    return (-torch.log(2.0 * share)).clamp_min(0.0)
