"""Fitted preprocessing: robust numeric scaling, categorical vocabularies, missing masks.

Numbers are centred on the median and divided by a robust spread (IQR, falling back to the
standard deviation), so a few extreme training values do not squash the normal range; values far
out (beyond 3 spreads) are compressed with a signed log so they stay the most extreme without blowing up gradients.
Categories keep their most frequent values; index 0 means missing, 1 means rare or unseen.
Datetimes become hour-of-day (cyclic) and weekday, parts that recur, never a raw epoch number
(which would flag every future row as unseen). The state is plain JSON.

    pre = Preprocessor.fit(typed_columns, schema, cfg.data)
    enc = pre.transform(typed_columns)   # Encoded(num, num_missing, cat)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from attnad.config import DataConfig
from attnad.data.schema import Schema
from attnad.robust import center_scale

MISSING, UNKNOWN = 0, 1  # reserved categorical indices; vocabulary starts at 2
CLIP = 1e6  # z-scores beyond this are treated as this (inf included)
KNEE = 3.0  # squash starts compressing beyond this many robust spreads
SQUASHED_CLIP = KNEE * (1.0 + math.log(CLIP / KNEE))  # squash(CLIP): the largest model input
WEEKDAYS = [str(i) for i in range(7)]
LEVEL_BLOCK = 64  # two-valued columns handled at a time in row_vectors


@dataclass
class Encoded:
    num: np.ndarray  # (n, Fn) float32, scaled; 0 where missing
    num_missing: np.ndarray  # (n, Fn) bool
    cat: np.ndarray  # (n, Fc) int64 category indices

    def __len__(self) -> int:
        return self.num.shape[0]  # (n, 0) when there are no numeric features

    def take(self, idx: np.ndarray) -> "Encoded":
        return Encoded(self.num[idx], self.num_missing[idx], self.cat[idx])

    def missing(self) -> np.ndarray:
        """(n, F) bool: which cells of each model feature (numeric, then categorical) are
        missing."""
        return np.concatenate([self.num_missing, self.cat == MISSING], axis=1)


def squash(z: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """Identity within +-KNEE robust units of spread, k(1 + log(|z|/k)) beyond: smooth, monotone,
    and growing slowly enough that one wild value cannot dominate training. `inplace`: into z,
    a float array (scoring's hot path: one pass fewer per column)."""
    out = z if inplace else np.array(z, dtype=np.result_type(z, np.float32))
    far = np.abs(out) > KNEE  # the logarithm only where it is needed: most cells are inside
    f = out[far]
    out[far] = np.sign(f) * KNEE * (1.0 + np.log(np.abs(f) / KNEE))
    return out


def unsquash(s: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    out = s if inplace else np.array(s, dtype=np.result_type(s, np.float32))
    far = np.abs(out) > KNEE
    f = out[far]
    out[far] = np.sign(f) * KNEE * np.exp(np.abs(f) / KNEE - 1.0)
    return out


def squash_torch(z: "torch.Tensor") -> "torch.Tensor":
    """`squash` for tensors (windows re-centred on their own level, model.input_level)."""
    a = z.abs()
    return z.where(a <= KNEE, z.sign() * KNEE * (1.0 + (a.clamp_min(KNEE) / KNEE).log()))


def unsquash_torch(s: "torch.Tensor") -> "torch.Tensor":
    """`unsquash` for tensors (scoring in robust units). Values past the squashed image of CLIP
    (a prediction can overshoot) are held there, so no error is larger than the input allows."""
    a = s.abs()
    return s.where(a <= KNEE, s.sign() * KNEE * (a.clamp(KNEE, SQUASHED_CLIP) / KNEE - 1.0).exp())


def row_vectors(enc: Encoded, cardinalities: list[int],
                levels: dict[int, tuple[float, float]] | None = None) -> np.ndarray:
    """Rows as points for distance-based attention, (n, D) float32.

    Numbers: robust z compressed by sign(z) log(1 + |z|), so one wild column cannot own every
    distance (benchmarks/RESULTS.md, "Figures behind constants");
    missing -> the median (0). A two-valued column (`levels`: feature index -> its two training
    values in robust units, e.g. a 0/1 flag) has no wild values to tame: between its two values
    it stays linear, so the distance a rare flag adds is 1/spread, its rarity (what kNN on
    standardised columns uses); only values beyond them are compressed. Categories: one-hot over
    the vocabulary; missing and unseen values are all zeros, one unit from every known value.
    """
    z = unsquash(enc.num.astype(np.float64), inplace=True)
    num = np.log1p(np.abs(z))
    num *= np.sign(z)
    items = sorted((levels or {}).items())
    for start in range(0, len(items), LEVEL_BLOCK):  # blocks of columns: bounded temporaries
        cols = np.array([j for j, _ in items[start:start + LEVEL_BLOCK]])
        lo, hi = np.array([b for _, b in items[start:start + LEVEL_BLOCK]], dtype=np.float64).T
        block = z[:, cols]  # a missing cell is 0, the median, which lies between the two levels
        inside = np.clip(block, lo, hi)
        beyond = block - inside
        num[:, cols] = inside + np.sign(beyond) * np.log1p(np.abs(beyond))
    parts = [num.astype(np.float32)]
    for j, card in enumerate(cardinalities):
        width = card - 2
        if width <= 0:
            continue
        onehot = np.zeros((len(enc), width), dtype=np.float32)
        idx = enc.cat[:, j] - 2
        ok = idx >= 0
        onehot[np.nonzero(ok)[0], idx[ok]] = 1.0
        parts.append(onehot)
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(enc), 0), np.float32)


def _two_levels(x: np.ndarray) -> list[float] | None:
    """The two values of a column that takes exactly two (a 0/1 flag stored as a number)."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    lo, hi = float(x.min()), float(x.max())
    if lo == hi or not np.all((x == lo) | (x == hi)):
        return None
    return [lo, hi]


def _datetime_parts(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hour_sin, hour_cos, weekday index 0=Monday; -1 where missing)."""
    missing = np.isnan(seconds)
    s = np.where(missing, 0.0, seconds)
    day_frac = np.mod(s, 86400.0) / 86400.0
    hour_sin = np.where(missing, np.nan, np.sin(2 * np.pi * day_frac))
    hour_cos = np.where(missing, np.nan, np.cos(2 * np.pi * day_frac))
    weekday = np.where(missing, -1, np.mod(np.floor(s / 86400.0) + 3, 7)).astype(np.int64)
    return hour_sin, hour_cos, weekday


@dataclass
class Preprocessor:
    numeric: list[dict]  # {"name", "source", "center", "scale"}
    categorical: list[dict]  # {"name", "source", "kind", "vocab"}

    @property
    def n_numeric(self) -> int:
        return len(self.numeric)

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table size per categorical feature, reserved slots included."""
        return [len(c["vocab"]) + 2 for c in self.categorical]

    def row_vectors(self, enc: Encoded) -> np.ndarray:
        """`row_vectors` with this table's two-valued columns kept linear. Models saved before
        two-valued columns were recorded have none, so they score as they did."""
        levels = {}
        for j, f in enumerate(self.numeric):
            if "levels" in f:
                lo, hi = ((v - f["center"]) / f["scale"] for v in f["levels"])
                levels[j] = (lo, hi)
        return row_vectors(enc, self.cardinalities, levels)

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.numeric] + [c["name"] for c in self.categorical]

    @property
    def feature_sources(self) -> list[str]:
        """The input column behind each model feature (datetime columns give several)."""
        return [f["source"] for f in self.numeric] + [c["source"] for c in self.categorical]

    @classmethod
    def fit(cls, cols: dict[str, pa.Array], schema: Schema, cfg: DataConfig) -> "Preprocessor":
        numeric, categorical = [], []
        for c in schema.modelled:
            arr = cols[c.name]
            if c.role == "numeric":
                x = arr.to_numpy(zero_copy_only=False).astype(np.float64)
                center, scale = center_scale(x)
                feature = {"name": c.name, "source": c.name, "center": center, "scale": scale}
                levels = _two_levels(x)
                if levels is not None:
                    feature["levels"] = levels
                numeric.append(feature)
            elif c.role == "datetime":
                secs = arr.to_numpy(zero_copy_only=False).astype(np.float64)
                for part, vals in zip(("hour_sin", "hour_cos"), _datetime_parts(secs)[:2]):
                    center, scale = center_scale(vals)
                    numeric.append({"name": f"{c.name}.{part}", "source": c.name,
                                    "center": center, "scale": max(scale, 0.1)})
                categorical.append({"name": f"{c.name}.weekday", "source": c.name,
                                    "kind": "weekday", "vocab": WEEKDAYS})
            elif c.role == "boolean":
                categorical.append({"name": c.name, "source": c.name, "kind": "boolean",
                                    "vocab": ["false", "true"]})
            else:
                categorical.append({"name": c.name, "source": c.name, "kind": "text",
                                    "vocab": _vocabulary(arr, cfg)})
        return cls(numeric, categorical)

    def transform(self, cols: dict[str, pa.Array]) -> Encoded:
        n = len(next(iter(cols.values())))
        num = np.zeros((n, len(self.numeric)), dtype=np.float32)
        miss = np.zeros((n, len(self.numeric)), dtype=bool)
        cat = np.zeros((n, len(self.categorical)), dtype=np.int64)
        dt_cache: dict[str, tuple] = {}

        def parts(source: str) -> tuple:
            if source not in dt_cache:
                secs = cols[source].to_numpy(zero_copy_only=False).astype(np.float64)
                dt_cache[source] = _datetime_parts(secs)
            return dt_cache[source]

        for j, f in enumerate(self.numeric):
            if f["name"] == f["source"]:
                x = cols[f["source"]].to_numpy(zero_copy_only=False).astype(np.float64)
            else:
                x = parts(f["source"])[0 if f["name"].endswith("hour_sin") else 1]
            isnan = np.isnan(x)
            with np.errstate(invalid="ignore", over="ignore"):
                z = x - f["center"]  # a new array: x may be a cached datetime part
                z /= f["scale"]
                np.clip(z, -CLIP, CLIP, out=z)
            z[isnan] = 0.0
            num[:, j] = squash(z, inplace=True)
            miss[:, j] = isnan
        for j, c in enumerate(self.categorical):
            arr = cols[c["source"]]
            if c["kind"] == "weekday":
                wd = parts(c["source"])[2]
                cat[:, j] = np.where(wd < 0, MISSING, wd + 2)
            elif c["kind"] == "boolean":
                codes = arr.to_numpy(zero_copy_only=False).astype(np.int64)
                cat[:, j] = np.where(codes < 0, MISSING, codes + 2)
            else:
                cat[:, j] = _lookup(arr, c["vocab"])
        return Encoded(num, miss, cat)

    def to_dict(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical}

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessor":
        return cls(list(d["numeric"]), list(d["categorical"]))


def _vocabulary(arr: pa.Array, cfg: DataConfig) -> list[str]:
    """Most frequent values, at most max_categories, each at least min_category_frequency."""
    counts = pc.value_counts(arr.drop_null())
    if len(counts) == 0:
        return []
    values = counts.field("values").to_pylist()
    freq = np.asarray(counts.field("counts").to_numpy(), dtype=np.float64)
    order = np.lexsort((np.array(values, dtype=object).astype(str), -freq))
    total = max(float(freq.sum()), 1.0)
    keep = [str(values[i]) for i in order if freq[i] / total >= cfg.min_category_frequency]
    return keep[: cfg.max_categories]


def _lookup(arr: pa.Array, vocab: list[str]) -> np.ndarray:
    if not vocab:
        idx = np.full(len(arr), UNKNOWN, dtype=np.int64)
    else:
        pos = pc.index_in(arr, value_set=pa.array(vocab, type=pa.string()))
        idx = pos.to_numpy(zero_copy_only=False)
        idx = np.where(np.isnan(idx.astype(np.float64)), UNKNOWN - 2, idx).astype(np.int64) + 2
    nulls = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    idx[nulls] = MISSING
    return idx
