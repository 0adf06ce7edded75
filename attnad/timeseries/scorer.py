"""Scoring series: rows stream through windows and the model, scores come out as rows finish.

A row's error on a signal is the mean of its reconstruction errors over the windows covering it
(each window hides every cell once under each mask family: attnad.timeseries.masks). Rows arrive
in time order within each entity, in batches; each entity's recent steps are carried into the
next batch (attnad.data.windows.WindowStream), so windows cross batch edges.

    scorer = SeriesScorer(model, state, device)
    done = scorer.push(keys, raw, rows) + scorer.finish()   # [(entity, rows, scores, contrib)]
"""

from __future__ import annotations

import numpy as np
import torch

from attnad.data.preprocess import unsquash
from attnad.data.windows import Group, WindowStream
from attnad.models.temporal import moved
from attnad.timeseries.levels import RecentLevels, window_move
from attnad.timeseries.masks import scoring_patterns
from attnad.timeseries.state import SeriesState, row_scores, scaled

SCORE_GROUP = 32  # windows per forward pass when scoring (fixed, see attnad.data.windows)
UNSEEN_SHOWN = 10  # unseen entities named in the warning


class SeriesScorer:
    """Streams rows through windows and the model; returns normalised row scores as they finish.
    With `normalise=False` (fitting, before error scales exist) it returns raw errors instead."""

    def __init__(self, model, state: SeriesState, device: torch.device, normalise: bool = True):
        self.model = model.to(device).eval()
        self.state = state
        self.device = device
        self.normalise = normalise
        pats = scoring_patterns(state)
        self.family_sizes = [len(p) for p in pats]
        self.patterns = torch.cat(pats).to(device)  # (P, W, F)
        # input_level local: each row's recent level rides beside it through the windows
        self.levels = RecentLevels(state.level_half_life) if state.input_level == "local" \
            else None
        width = len(state.features) * (2 if self.levels is not None else 1)
        self.stream = WindowStream(width, state.window, state.stride, SCORE_GROUP,
                                   self._evaluate, n_outputs=state.n_errors)
        self.unseen: dict[str, int] = {}

    @torch.inference_mode()
    def _evaluate(self, g: Group) -> tuple[np.ndarray, np.ndarray]:
        F = len(self.state.features)
        both = torch.from_numpy(g.x).to(self.device)  # (G, W, F), or (G, W, 2F) with levels
        x = both[..., :F]
        miss = torch.from_numpy(g.miss[..., :F]).to(self.device)
        valid = torch.from_numpy(g.valid).to(self.device)  # (G, W)
        M, (G, W, _) = self.patterns.shape[0], x.shape
        move = window_move(self.state.input_level, x, miss, valid,
                           both[..., F:] if self.levels is not None else None)
        pat = self.patterns[:, None]  # (M, 1, W, F)
        hidden = (pat | miss[None]).reshape(M * G, W, F)
        target = (pat & ~miss[None]).reshape(M * G, W, F)
        if move is not None:  # once per window, not once per mask
            x = moved(x, move)
        xs = x[None].expand(M, G, W, F).reshape(M * G, W, F)
        err = self.model.cell_errors(xs, hidden, target, valid.repeat(M, 1),
                                     robust=self.state.error_units == "robust").view(M, G, W, F)
        # every present cell is a target under exactly one mask of each family
        fams = [part.sum(0) for part in err.split(self.family_sizes)]
        if self.state.row_score == "window":
            present = (~miss).to(err.dtype)  # padding is marked missing too
            count = present.sum(1, keepdim=True).clamp_min(1)  # (G, 1, F)
            fams = [((f * present).sum(1, keepdim=True) / count).expand(G, W, F) for f in fams]
        has = np.concatenate([~g.miss[..., :F]] * len(fams), axis=-1)
        return torch.cat(fams, -1).double().cpu().numpy(), has  # (G, W, K)

    def _finished(self, chunks) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
        out = []
        for key, rows, err in chunks:
            if self.normalise:
                scale = self.state.lookup([key], "error_scale")[0]
                scores, contrib = row_scores(err, scale, len(self.state.features),
                                             self.state.tails, self.state.scored)
                out.append((key, rows, scores, contrib))
            else:
                out.append((key, rows, None, err))
        return out

    def push(self, keys: np.ndarray, raw: np.ndarray, rows: np.ndarray) -> list:
        """Rows in time order within each entity -> [(entity, rows, scores, contributions)]."""
        uniq, inv = np.unique(keys.astype(str), return_inverse=True)
        for k in uniq:
            if k not in self.state.entities:
                self.unseen[k] = self.unseen.get(k, 0) + int(np.sum(keys == k))
        center = self.state.lookup(list(uniq), "center")[inv]
        scale = self.state.lookup(list(uniq), "scale")[inv]
        x, miss = scaled(raw, center, scale)
        return self.push_scaled(keys, x, miss, rows)

    def push_scaled(self, keys: np.ndarray, x: np.ndarray, miss: np.ndarray,
                    rows: np.ndarray) -> list:
        """`push` for rows already scaled to model input (fitting scales them itself)."""
        if self.levels is not None:
            z = np.where(miss, np.nan, unsquash(x))
            x = np.concatenate([x, self.levels.push(keys, z).astype(np.float32)], axis=1)
            miss = np.concatenate([miss, np.zeros_like(miss)], axis=1)
        return self._finished(self.stream.push(keys, x, miss, rows))

    def finish(self) -> list:
        return self._finished(self.stream.finish())

    def warnings(self, source: str) -> list[str]:
        if not self.unseen:
            return []
        names = sorted(str(k) for k in self.unseen)
        shown = ", ".join(repr(k) for k in names[:UNSEEN_SHOWN]) + \
            (" ..." if len(names) > UNSEEN_SHOWN else "")
        return [f"{source}: {len(names)} entit{'y' if len(names) == 1 else 'ies'} not seen in "
                f"training ({shown}) scored with statistics pooled over the training entities"]


def collect(results, n: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores (n,) and contributions (n, F) in row order from the scorer's finished chunks."""
    scores = np.zeros(n)
    contrib = np.zeros((n, n_features))
    for _, rows, s, c in results:
        scores[rows] = s
        contrib[rows] = c
    return scores, contrib
