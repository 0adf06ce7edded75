"""Cross-fitting for tables: K reconstruction models; each row is scored by one not trained on it.

Why: a transformer trained for hundreds of passes over a small table memorises its rows, the
anomalies included, and then reconstructs them well. Scoring a file with a model fitted on that
same file (`attnad detect DATA` without a model, or any contaminated training file) then hides the
anomalies: they are reconstructed better than normal rows (benchmarks/RESULTS.md, round 4,
"Cross-fitting", has the figures). The row memory already ignores a row's own copy
(attnad.models.memory); this is the same rule for the model.

Each row belongs to fold `hash(row) mod K`, computed from its preprocessed cells, so the fold
needs no stored list of training rows, survives streaming in batches, and sends a training row and
an unseen exact copy of it to the same model: model k trains on the rows of every other fold and
scores fold k. K = 2 halves the rows each model sees, not the total training work on big files
(each model makes its own passes over half the rows).

    folds = row_folds(encoded, 2)   # (n,) ints in [0, 2)
"""

from __future__ import annotations

import numpy as np

from attnad.data.preprocess import Encoded

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


HASH_ROWS = 16_384  # rows hashed at a time: the running hash and its temporaries stay in cache


def _mix(h: np.ndarray, tmp: np.ndarray) -> None:
    """splitmix64 finaliser, in place: every input bit moves every output bit (uint64 arithmetic
    wraps). `tmp` is scratch of h's shape, so the 64 rounds of a 32-column row allocate nothing."""
    for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        np.right_shift(h, np.uint64(shift), out=tmp)
        h ^= tmp
        h *= np.uint64(mult)
    np.right_shift(h, np.uint64(31), out=tmp)
    h ^= tmp


def row_hashes(enc: Encoded) -> np.ndarray:
    """A 64-bit hash of each row's cells (numbers by their float32 bits, missing flags, category
    codes), the same on every platform and for every batch split. (n,) uint64. Written here, not
    pandas' hash_pandas_object, so a saved model's folds cannot move with a library upgrade
    (tests/tabular/test_crossfit.py pins four hashes)."""
    n = len(enc)
    out = np.empty(n, dtype=np.uint64)
    for start in range(0, n, HASH_ROWS):
        rows = slice(start, start + HASH_ROWS)
        num = np.ascontiguousarray(enc.num[rows], dtype=np.float32)
        num = np.where(num == 0, np.float32(0), num)  # -0.0 and 0.0 are the same cell
        columns = [num.view(np.uint32).astype(np.uint64), enc.num_missing[rows].astype(np.uint64),
                   enc.cat[rows].astype(np.int64).view(np.uint64)]
        h = np.full(num.shape[0], 0x243F6A8885A308D3, dtype=np.uint64)
        tmp = np.empty_like(h)
        with np.errstate(over="ignore"):
            for block in columns:
                for j in range(block.shape[1]):
                    np.add(block[:, j], _GOLDEN, out=tmp)
                    h ^= tmp
                    _mix(h, tmp)
        out[rows] = h
    return out


def row_folds(enc: Encoded, k: int) -> np.ndarray:
    """Fold of each row, (n,) int64 in [0, k)."""
    if k <= 1:
        return np.zeros(len(enc), dtype=np.int64)
    return (row_hashes(enc) % np.uint64(k)).astype(np.int64)


def fold_groups(enc: Encoded, k: int) -> list[np.ndarray]:
    """Row indices of each fold, one (possibly empty) array per fold: model k takes group k."""
    folds = row_folds(enc, k)
    return [np.flatnonzero(folds == j) for j in range(max(k, 1))]


def usable_folds(folds: np.ndarray, k: int, min_rows: int) -> bool:
    """Every model must have at least `min_rows` rows to train on (a tiny or near-constant table
    can put almost every row in one fold); otherwise one model is trained on all rows."""
    if k <= 1:
        return False
    counts = np.bincount(folds, minlength=k)
    return bool(((len(folds) - counts) >= min_rows).all())


def merge_summaries(summaries: list[dict]) -> dict:
    """One training summary for the model card and the CLI line: steps and seconds add up (the
    caller replaces seconds by the wall time when the models trained at once), rows
    count each training row once (with K folds a row trains K - 1 models), losses are averaged,
    and the per-model summaries are kept."""
    if len(summaries) == 1:
        return dict(summaries[0])
    vals = [s["best_validation_loss"] for s in summaries if s["best_validation_loss"] is not None]
    return {
        "rows": round(sum(s["rows"] for s in summaries) / (len(summaries) - 1)),
        "epochs": max(s["epochs"] for s in summaries),
        "steps": sum(s["steps"] for s in summaries),
        "best_validation_loss": float(np.mean(vals)) if vals else None,
        "final_train_loss": float(np.mean([s["final_train_loss"] for s in summaries])),
        "seconds": sum(s["seconds"] for s in summaries),
        "device": summaries[0]["device"],
        "cross_fit": {"folds": len(summaries), "models": summaries},
    }
