"""TableDetector: every row of a table scored on its own, by masked-cell reconstruction.

A row's score adds up robustly standardised components: how badly the model rebuilds its cells
from the others (attnad.tabular.scorer), and, when the model config turns them on, how far it
lies from the rows of the training table (attnad.models.memory) and how rare its values are per
column (attnad.models.marginal). With `train.cross_fit` K, K models are trained and each row is
scored by one that did not train on it (attnad.tabular.crossfit).

    det = TableDetector({"data": {"label_column": "y"}}).fit(df)   # or Detector(...)
    scores = det.score_samples(df)
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pyarrow as pa
import torch

from attnad.config import ONE_SHOT_MIN_STEPS, TABLE_MIN_STEPS
from attnad.data.io import CsvFormat
from attnad.data.preprocess import Encoded, Preprocessor
from attnad.data.profile import table_profile
from attnad.data.sample import read_sample, sample_rows
from attnad.data.schema import infer_schema
from attnad.data.tables import as_table, data_fingerprint
from attnad.estimator import MIN_TRAIN_ROWS, Detector
from attnad.limits import check_model_size, rough_floats
from attnad.models import build_model
from attnad.models.marginal import GRID as MARGINAL_GRID, MarginalTails
from attnad.models.memory import RowMemory
from attnad.parallel import Cancelled, cpu_workers, run_parallel
from attnad.tabular.crossfit import fold_groups, merge_summaries, row_folds, usable_folds
from attnad.tabular.explain import explain_table_rows
from attnad.tabular.scorer import (Scorer, combine_components, fit_component_scale,
                                   fit_error_scale)
from attnad.tabular.training import train_model, training_rows
from attnad.threshold import fit_threshold
from attnad.training import seed_everything
from attnad.transfer import copy_weights, tabular_features

MEMORY_PREFIX = "row_memory."  # safetensors keys of the row memory, beside the model's weights
MARGINAL_PREFIX = "marginal."  # safetensors keys of the per-column tail quantiles
FOLD_PREFIX = "fold"  # with cross-fitting, model k's weights are stored as fold{k}.<name>
CALIBRATION_ROWS = 20_000  # training rows scored to fit error scales, components, threshold


def _rough(model_cfg, n_numeric: int, cardinalities: list[int]) -> int:
    """attnad.limits.rough_floats of a table model with these columns."""
    return rough_floats(model_cfg, n_numeric + len(cardinalities),
                        len(cardinalities) * max(cardinalities, default=0))


class _Bars:
    """The training progress of K models as one bar: steps done by all of them over their
    steps in all (a model not started yet counts as long as the first). The models may train
    at once on several threads (attnad.parallel), so the bar is updated under a lock, and each
    step checks `cancel`: a failed or interrupted fit stops every model at its next step."""

    def __init__(self, progress, n_models: int, cancel: threading.Event):
        self.progress, self.cancel, self.lock = progress, cancel, threading.Lock()
        self.done, self.totals = [0] * n_models, [0] * n_models

    def model(self, k: int):
        def update(done: int, total: int, loss: float) -> None:
            if self.cancel.is_set():
                raise Cancelled()
            if self.progress is None:
                return
            with self.lock:
                self.done[k], self.totals[k] = done, total
                known = [t for t in self.totals if t]
                total_all = sum(self.totals) + (len(self.totals) - len(known)) * known[0]
                self.progress(sum(self.done), total_all, loss)
        return update


class TableDetector(Detector):
    kind = "table"

    @classmethod
    def read_training(cls, path, config):
        table, total = read_sample(path, config.train.max_rows, config.train.seed,
                                   CsvFormat.of(config.data))
        note = None if total <= table.num_rows else \
            f"training on a random sample of {table.num_rows:,} of {total:,} rows (train.max_rows)"
        return table, note

    # ---- fitting -------------------------------------------------------------------------
    def _fit(self, table: pa.Table, *, progress, source: str, start, ddp) -> None:
        cfg = self.config
        table = sample_rows(table, cfg.train.max_rows, cfg.train.seed)
        self.schema_ = infer_schema(table, cfg.data, source)
        cols, invalid = self.schema_.coerce(table, cfg.data.decimal)
        self.preprocessor_ = Preprocessor.fit(cols, self.schema_, cfg.data)
        weights = {"reconstruction": 1.0, "memory": getattr(cfg.model, "memory_weight", 0.0),
                   "marginal": getattr(cfg.model, "marginal_weight", 0.0)}
        use_memory = getattr(cfg.model, "n_memories", 0) > 0 and weights["memory"] > 0
        use_marginal = weights["marginal"] > 0
        self._check_size(table.num_rows, use_memory, use_marginal, source)
        enc = self.preprocessor_.transform(cols)
        self.profile_ = table_profile(enc, self.preprocessor_, invalid, table.num_rows)
        began = time.perf_counter()
        summaries, started = self._train_models(enc, progress, start, ddp)
        self.model_ = self.models_[0]
        self.training_ = merge_summaries(summaries)
        self.training_["seconds"] = round(time.perf_counter() - began, 3)  # the models may train
        # at once: the wall time, not their sum (each model's own is in cross_fit.models)
        self.training_["invalid_cells"] = invalid
        self.training_["fingerprint"] = data_fingerprint(table, self.schema_)
        if started is not None:
            self.training_["init_from"] = started
        self.masks_ = self.model_.scoring_masks(cfg.train.seed)
        calib = enc
        if len(enc) > CALIBRATION_ROWS:
            rng = np.random.default_rng(cfg.train.seed + 1)
            calib = enc.take(np.sort(rng.choice(len(enc), CALIBRATION_ROWS, replace=False)))
        raw, calib_groups = self._fit_error_scales(calib)
        self._scorers = None
        self.memory_ = self.marginal_ = None
        if use_memory or use_marginal:
            vectors = torch.from_numpy(self.preprocessor_.row_vectors(enc))
            if use_memory:
                self.memory_ = RowMemory.fit(vectors, cfg.model.memory_size, cfg.model.n_memories,
                                             cfg.train.seed).to(self.device_)
            if use_marginal:
                self.marginal_ = MarginalTails.fit(
                    vectors, missing=torch.from_numpy(enc.missing())).to(self.device_)
            del vectors
        recon = np.empty(len(calib))  # the calibration rows, scored once (out of fold)
        for scorer, idx in zip(self.scorers, calib_groups):
            recon[idx] = scorer.normalise(raw[idx]).mean(axis=1)
        parts = self._component_scores(calib, recon)
        surprise = getattr(cfg.model, "combine", "zscore") == "surprise"
        self.components_ = {name: {**fit_component_scale(v, surprise), "weight": weights[name]}
                            for name, v in parts.items()}
        self.threshold_ = fit_threshold(combine_components(parts, self.components_),
                                        cfg.threshold)

    def _check_size(self, rows: int, use_memory: bool, use_marginal: bool, source: str) -> None:
        """Refuse a model too big for this machine before any of it is allocated."""
        cfg = self.config
        n_num, cards = self.preprocessor_.n_numeric, self.preprocessor_.cardinalities
        width = n_num + sum(max(c - 2, 0) for c in cards)  # row-vector columns
        memory_floats = 0
        if use_memory:
            memory_floats = cfg.model.n_memories * min(cfg.model.memory_size, rows) * width
        if use_marginal:
            memory_floats += min(MARGINAL_GRID, rows) * width
        check_model_size(lambda: build_model(cfg.model, n_num, cards), cfg.model, source=source,
                         batch=min(cfg.train.batch_size, rows),
                         tokens=min(n_num + len(cards), cfg.model.max_tokens),
                         extra_floats=memory_floats, rough=_rough(cfg.model, n_num, cards))

    def _train_models(self, enc: Encoded, progress, start,
                      ddp) -> tuple[list[dict], dict | None]:
        """The cell-reconstruction models: with `train.cross_fit` K, model k trains on the rows
        outside fold k (attnad.tabular.crossfit); one model on every row when K is 1 or a fold
        would leave a model without rows. Returns the training summaries and the --init-from
        report."""
        cfg = self.config
        n_num, cards = self.preprocessor_.n_numeric, self.preprocessor_.cardinalities
        folds = row_folds(enc, cfg.train.cross_fit)
        n_models = cfg.train.cross_fit if usable_folds(folds, cfg.train.cross_fit,
                                                       MIN_TRAIN_ROWS) else 1
        model_rows = [len(enc) if n_models == 1 else int((folds != k).sum())
                      for k in range(n_models)]
        if cfg.train.min_steps is None:
            # the shorter one-shot fit only where every model has a full batch to train on: a
            # smaller table's steps are cheap, and it needs them (attnad.config)
            full = all(training_rows(n, cfg.train) >= cfg.train.batch_size for n in model_rows)
            self._set_min_steps(ONE_SHOT_MIN_STEPS if self.one_shot_ and full
                                else TABLE_MIN_STEPS)
            cfg = self.config
        self.models_, started = [], None
        for k in range(n_models):
            seed_everything(cfg.train.seed)  # weight initialisation is part of the seeded fit
            model = build_model(cfg.model, n_num, cards)
            if start is not None:
                started = copy_weights(model, start, tabular_features(self.preprocessor_))
            self.models_.append(model)
        # the models are independent: on a CPU they train at once, one per thread, unless
        # dropout draws from torch's global generator (their draws would then interleave
        # differently from run to run) or torchrun already spreads the work
        cancel = threading.Event()
        bars = _Bars(progress, n_models, cancel)
        parallel = ddp is None and getattr(cfg.model, "dropout", 0.0) == 0.0

        def fit_one(k: int):
            rows = enc if n_models == 1 else enc.take(np.flatnonzero(folds != k))
            return train_model(self.models_[k], rows, cfg.train, self.device_, bars.model(k),
                               ddp=ddp).to_dict()

        summaries = run_parallel([lambda k=k: fit_one(k) for k in range(n_models)],
                                 cpu_workers(self.device_) if parallel else 1, cancel)
        return summaries, started

    def _fit_error_scales(self, calib: Encoded) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each model's typical error per (mask, feature), measured on the calibration rows it
        scores, i.e. rows it did not train on. Returns every calibration row's raw errors from
        its own fold's model, (n, M, F), and the row indices of each fold."""
        groups = fold_groups(calib, len(self.models_))
        raw = np.empty((len(calib), len(self.masks_), self.model_.n_features), dtype=np.float32)
        self.error_scales_ = []
        for model, idx in zip(self.models_, groups):
            # no calibration row in this fold (only possible with K > 2 on tiny tables): use all
            rows = idx if idx.size else np.arange(len(calib))
            errors = Scorer(model, self.masks_, None, self.device_).mask_errors(calib.take(rows))
            self.error_scales_.append(fit_error_scale(errors))
            if idx.size:
                raw[idx] = errors
        return raw, groups

    def transfer_features(self) -> dict:
        return tabular_features(self.preprocessor_)

    # ---- scoring -------------------------------------------------------------------------
    @property
    def scorers(self) -> list[Scorer]:
        """One per cross-fitted model (attnad.tabular.crossfit); a row's fold picks its scorer."""
        self._check_fitted()
        if getattr(self, "_scorers", None) is None:
            self._scorers = [Scorer(m, self.masks_, e, self.device_)
                             for m, e in zip(self.models_, self.error_scales_)]
        return self._scorers

    @property
    def scorer(self) -> Scorer:
        """The first model's scorer: every model costs the same per row (benchmarks time it)."""
        return self.scorers[0]

    def encode(self, data) -> tuple[Encoded, dict[str, int]]:
        """Typed, preprocessed model input for a table or batch that has the trained columns."""
        self._check_fitted()
        table = as_table(data)
        self.schema_.check_input(table.schema.names, "data")
        cols, invalid = self.schema_.coerce(table, self.config.data.decimal)
        return self.preprocessor_.transform(cols), invalid

    def reconstruction(self, enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
        """Reconstruction score and per-feature contributions of each row, from the model whose
        training rows did not include it (attnad.tabular.crossfit)."""
        scorers = self.scorers
        if len(scorers) == 1:
            return scorers[0].score(enc)
        recon = np.empty(len(enc))
        contrib = np.empty((len(enc), self.model_.n_features))
        for scorer, idx in zip(scorers, fold_groups(enc, len(scorers))):
            if idx.size:
                recon[idx], contrib[idx] = scorer.score(enc.take(idx))
        return recon, contrib

    def _component_scores(self, enc: Encoded, recon: np.ndarray | None = None) -> dict:
        """Raw score of each part of the model: cell reconstruction and, when on, row memory and
        per-column tail surprise (both share the row vectors)."""
        if recon is None:
            recon, _ = self.reconstruction(enc)
        parts = {"reconstruction": recon}
        if self.memory_ is not None or self.marginal_ is not None:
            vectors = torch.from_numpy(self.preprocessor_.row_vectors(enc))
            if self.memory_ is not None:
                parts["memory"] = self.memory_.energy(vectors).numpy().astype(np.float64)
            if self.marginal_ is not None:
                parts["marginal"] = self.marginal_.surprise(
                    vectors, torch.from_numpy(enc.missing())).numpy()
        return parts

    @property
    def feature_sources(self) -> list[str]:
        self._check_fitted()
        return self.preprocessor_.feature_sources

    def score_with_contributions(self, data, drift=None
                                 ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        enc, invalid = self.encode(data)
        if drift is not None:
            drift.add_table(enc, invalid)
        recon, contrib = self.reconstruction(enc)
        scores = combine_components(self._component_scores(enc, recon), self.components_)
        return scores, self._with_missing_cells(contrib, enc), invalid

    def _with_missing_cells(self, contrib: np.ndarray, enc: Encoded) -> np.ndarray:
        """Contributions with each missing cell's share of the score added to its feature, so an
        explanation names the missing columns. The cell's surprisal (attnad.models.marginal) is
        put in reconstruction units: what it adds to the score, divided by what one unit of a
        feature's contribution adds (the mean over F features, each component standardised)."""
        gaps = None if self.marginal_ is None else \
            self.marginal_.missing_surprise(torch.from_numpy(enc.missing()))
        if gaps is None or not bool(gaps.any()):
            return contrib
        r, m = self.components_["reconstruction"], self.components_["marginal"]
        if r["weight"] <= 0:
            return contrib
        per_unit = (m["weight"] / m["scale"]) * (contrib.shape[1] * r["scale"] / r["weight"])
        return contrib + gaps.cpu().numpy() * per_unit

    def explanations(self, path, table, positions: list[int]) -> list:
        return explain_table_rows(self, table, positions)

    def _count_drift(self, counts, table) -> None:
        counts.add_table(*self.encode(table))

    def _profile_columns(self) -> tuple[list[str], int]:
        return self.preprocessor_.feature_names, self.preprocessor_.n_numeric

    # ---- persistence ---------------------------------------------------------------------
    def _state(self) -> tuple[dict, dict]:
        meta = {
            "preprocessor": self.preprocessor_.to_dict(),
            "scoring": {
                "masks": [m.nonzero().flatten().tolist() for m in self.masks_],
                "folds": len(self.models_),
                "error_scale": [e.tolist() for e in self.error_scales_],
                "feature_names": self.preprocessor_.feature_names,
            },
            "components": self.components_,
        }
        state = {}
        for k, model in enumerate(self.models_):
            prefix = f"{FOLD_PREFIX}{k}." if len(self.models_) > 1 else ""
            state.update({prefix + name: t for name, t in model.state_dict().items()})
        if self.memory_ is not None:
            state.update({f"{MEMORY_PREFIX}{k}": v for k, v in self.memory_.state().items()})
        if self.marginal_ is not None:
            state.update({f"{MARGINAL_PREFIX}{k}": v for k, v in self.marginal_.state().items()})
        return meta, state

    def _restore(self, meta: dict, tensors: dict, path) -> None:
        self.preprocessor_ = Preprocessor.from_dict(meta["preprocessor"])
        n_num, cards = self.preprocessor_.n_numeric, self.preprocessor_.cardinalities
        check_model_size(lambda: build_model(self.config.model, n_num, cards),
                         self.config.model, source=f"{path}/attnad.json",
                         rough=_rough(self.config.model, n_num, cards))
        memory = {k[len(MEMORY_PREFIX):]: tensors.pop(k) for k in list(tensors)
                  if k.startswith(MEMORY_PREFIX)}
        self.memory_ = RowMemory.from_state(memory) if memory else None
        tails = {k[len(MARGINAL_PREFIX):]: tensors.pop(k) for k in list(tensors)
                 if k.startswith(MARGINAL_PREFIX)}
        self.marginal_ = MarginalTails.from_state(tails) if tails else None
        self.components_ = meta["components"]
        if ("memory" in self.components_) != (self.memory_ is not None):
            raise ValueError("row memory and components disagree")
        if ("marginal" in self.components_) != (self.marginal_ is not None):
            raise ValueError("marginal tails and components disagree")
        scoring = meta["scoring"]
        n_models = int(scoring.get("folds", 1))  # models before cross-fitting: one
        scales = scoring["error_scale"] if "folds" in scoring else [scoring["error_scale"]]
        if n_models < 1 or len(scales) != n_models:
            raise ValueError("error scales do not match the number of models")
        self.models_ = []
        for k in range(n_models):
            model = build_model(self.config.model, n_num, cards)
            prefix = f"{FOLD_PREFIX}{k}." if n_models > 1 else ""
            own = {name[len(prefix):]: tensors.pop(name) for name in list(tensors)
                   if name.startswith(prefix)}
            model.load_state_dict(own, strict=True)
            self.models_.append(model)
        if tensors:
            raise ValueError(f"unexpected tensors {sorted(tensors)[:3]}")
        self.model_ = self.models_[0]
        n_features = self.model_.n_features
        self.masks_ = torch.zeros(len(scoring["masks"]), n_features, dtype=torch.bool)
        for i, idx in enumerate(scoring["masks"]):
            self.masks_[i, idx] = True
        self.error_scales_ = [np.asarray(e, dtype=np.float64) for e in scales]
        if any(e.shape != (len(self.masks_), n_features) for e in self.error_scales_):
            raise ValueError("error_scale does not match the model")

    def _to_device(self) -> None:
        for model in self.models_:
            model.to(self.device_).eval()
        if self.memory_ is not None:
            self.memory_ = self.memory_.to(self.device_)
        if self.marginal_ is not None:
            self.marginal_ = self.marginal_.to(self.device_)
        self._scorers = None
