"""The Python API: Detector.fit / score / predict / save / load. The CLI is a thin wrapper.

Follows the scikit-learn estimator contract: the constructor only stores the config; `fit` learns
the fitted attributes (ending in `_`) and resolves seeds itself, so refitting gives the same model.

    det = Detector(Config.model_validate({"data": {"label_column": "y"}})).fit(df)
    scores = det.score(df); flags = det.predict(df)
    det.save("model/"); det2 = Detector.load("model/")
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from attnad.artifact import read_artifact, write_artifact
from attnad.config import Config, apply_overrides, build_config, parse_override
from attnad.crossfit import fold_groups, merge_summaries, row_folds, usable_folds
from attnad.data.preprocess import Encoded, Preprocessor
from attnad.data.schema import Schema, infer_schema
from attnad.errors import ModelError, UserError
from attnad.limits import check_model_size
from attnad.models import build_model
from attnad.models.marginal import GRID as MARGINAL_GRID, MarginalTails
from attnad.models.memory import RowMemory
from attnad.score import Scorer, combine_components, fit_component_scale, fit_error_scale
from attnad.threshold import fit_threshold, probability, refit_threshold
from attnad.train import resolve_device, seed_everything, set_threads, train_model

MEMORY_PREFIX = "row_memory."  # safetensors keys of the row memory, beside the model's weights
MARGINAL_PREFIX = "marginal."  # safetensors keys of the per-column tail quantiles
FOLD_PREFIX = "fold"  # with cross-fitting, model k's weights are stored as fold{k}.<name>
CALIBRATION_ROWS = 20_000  # training rows scored to fit error scales, components, threshold
MIN_TRAIN_ROWS = 2  # one row has no spread: every score would tie with the threshold
SCORING_SECTIONS = ("score", "threshold")  # config sections `--set` may change on a trained model
READING_KEYS = ("data.csv_delimiter", "data.encoding")  # how a file is read, not what was learned


def as_table(data) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise TypeError(f"expected a pandas DataFrame or pyarrow Table, got {type(data).__name__}")


def data_fingerprint(table: pa.Table, schema: Schema) -> dict:
    """What the model was trained on, for the model card: row count, and SHA-256 digests of the
    column roles and of a sample of rows (the first and last 100), so two training files can be
    told apart without keeping either."""
    import hashlib
    import json
    n = table.num_rows
    idx = sorted(set(range(min(100, n))) | set(range(max(0, n - 100), n)))
    sample = table.take(pa.array(idx, type=pa.int64())).to_pylist()
    digest = lambda obj: hashlib.sha256(  # noqa: E731
        json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
    return {"rows": int(n), "columns": table.num_columns,
            "schema_sha256": digest(schema.to_dict()), "sample_sha256": digest(sample)}


def _one_bar(progress, k: int, n_models: int):
    """Training progress of model k of n as one bar over all of them (the models are the same
    size to within a few rows, so each takes about the same number of steps)."""
    if progress is None or n_models == 1:
        return progress
    return lambda done, total, loss: progress(done + k * total, n_models * total, loss)


class Detector:
    def __init__(self, config: Config | dict | None = None):
        if config is None:
            config = Config()
        elif isinstance(config, dict):
            config = build_config(config)
        self.config = config

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, data, *, device: str | None = None, progress=None, source: str = "data",
            init_from=None, ddp=None):
        """Learn everything from `data`. `init_from`: a model directory whose weights start the
        training (fine-tuning, attnad.transfer); its `model` config section is used. `ddp`:
        distributed training under torchrun (attnad.engines.distributed)."""
        if init_from is not None:
            from attnad.transfer import load_source
            src = load_source(init_from, timeseries=bool(self.config.data.time_column))
            self.config = self.config.model_copy(update={"model": src.config.model})
        cfg = self.config
        if cfg.data.time_column:  # time-series mode: attnad/timeseries.py
            from attnad.timeseries import fit_series
            return fit_series(self, data, device=device, progress=progress, source=source,
                              init_from=init_from, ddp=ddp)
        set_threads(cfg.train.threads)
        table = as_table(data)
        if table.num_rows < MIN_TRAIN_ROWS:
            raise UserError(f"{source}: {table.num_rows} row(s) are too few to learn what is "
                            f"normal; train on at least {MIN_TRAIN_ROWS} rows (hundreds are better)")
        if table.num_rows > cfg.train.max_rows:
            idx = np.sort(np.random.default_rng(cfg.train.seed).choice(
                table.num_rows, cfg.train.max_rows, replace=False))
            table = table.take(pa.array(idx))
        self.device_ = ddp.device if ddp is not None else resolve_device(device or cfg.train.device)
        self.schema_ = infer_schema(table, cfg.data, source)
        cols, invalid = self.schema_.coerce(table)
        self.preprocessor_ = Preprocessor.fit(cols, self.schema_, cfg.data)
        n_num, cards = self.preprocessor_.n_numeric, self.preprocessor_.cardinalities
        weights = {"reconstruction": 1.0, "memory": getattr(cfg.model, "memory_weight", 0.0),
                   "marginal": getattr(cfg.model, "marginal_weight", 0.0)}
        use_memory = getattr(cfg.model, "n_memories", 0) > 0 and weights["memory"] > 0
        use_marginal = weights["marginal"] > 0
        memory_floats = 0
        width = n_num + sum(max(c - 2, 0) for c in cards)  # row-vector columns
        if use_memory:
            memory_floats = cfg.model.n_memories * min(cfg.model.memory_size, table.num_rows) * width
        if use_marginal:
            memory_floats += min(MARGINAL_GRID, table.num_rows) * width
        check_model_size(lambda: build_model(cfg.model, n_num, cards), cfg.model, source=source,
                         batch=min(cfg.train.batch_size, table.num_rows),
                         tokens=min(n_num + len(cards), cfg.model.max_tokens),
                         extra_floats=memory_floats)
        enc = self.preprocessor_.transform(cols)
        summaries, started = self._train_models(enc, progress, init_from, ddp)
        self.model_ = self.models_[0]
        self.training_ = merge_summaries(summaries)
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
                self.marginal_ = MarginalTails.fit(vectors).to(self.device_)
            del vectors
        recon = np.empty(len(calib))  # the calibration rows, scored once (out of fold)
        for scorer, idx in zip(self.scorers, calib_groups):
            recon[idx] = scorer.normalise(raw[idx]).mean(axis=1)
        parts = self._component_scores(calib, recon)
        self.components_ = {name: {**fit_component_scale(v), "weight": weights[name]}
                            for name, v in parts.items()}
        train_scores = combine_components(parts, self.components_)
        self.threshold_ = fit_threshold(train_scores, cfg.threshold)
        return self

    def _train_models(self, enc: Encoded, progress, init_from,
                      ddp) -> tuple[list[dict], dict | None]:
        """The cell-reconstruction models: with `train.cross_fit` K, model k trains on the rows
        outside fold k (attnad.crossfit); one model on every row when K is 1 or a fold would
        leave a model without rows. Returns the training summaries and the --init-from report."""
        cfg = self.config
        n_num, cards = self.preprocessor_.n_numeric, self.preprocessor_.cardinalities
        folds = row_folds(enc, cfg.train.cross_fit)
        n_models = cfg.train.cross_fit if usable_folds(folds, cfg.train.cross_fit,
                                                       MIN_TRAIN_ROWS) else 1
        self.models_, summaries, started = [], [], None
        for k in range(n_models):
            seed_everything(cfg.train.seed)  # weight initialisation is part of the seeded fit
            model = build_model(cfg.model, n_num, cards)
            if init_from is not None:
                from attnad.transfer import init_from as start_from, tabular_features
                started = start_from(model, init_from, tabular_features(self.preprocessor_),
                                     timeseries=False)
            rows = enc if n_models == 1 else enc.take(np.flatnonzero(folds != k))
            summaries.append(train_model(model, rows, cfg.train, self.device_,
                                         _one_bar(progress, k, n_models), ddp=ddp).to_dict())
            self.models_.append(model)
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

    def reconstruction(self, enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
        """Reconstruction score and per-feature contributions of each row, from the model whose
        training rows did not include it (attnad.crossfit)."""
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
                parts["marginal"] = self.marginal_.surprise(vectors).numpy()
        return parts

    # ---- scoring -------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("this Detector is not fitted yet: call fit() or Detector.load()")

    @property
    def scorers(self) -> list[Scorer]:
        """One per cross-fitted model (attnad.crossfit); a row's fold picks its scorer."""
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
        cols, invalid = self.schema_.coerce(table)
        return self.preprocessor_.transform(cols), invalid

    @property
    def is_timeseries(self) -> bool:
        return bool(self.config.data.time_column)

    @property
    def feature_sources(self) -> list[str]:
        """The input column behind each entry of the contributions returned with scores."""
        self._check_fitted()
        if self.is_timeseries:
            return list(self.series_.features)
        return self.preprocessor_.feature_sources

    def score_with_contributions(self, data) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        if self.is_timeseries:
            from attnad.timeseries import score_table
            return score_table(self, data)
        enc, invalid = self.encode(data)
        recon, contrib = self.reconstruction(enc)
        scores = combine_components(self._component_scores(enc, recon), self.components_)
        return scores, contrib, invalid

    def score(self, data) -> np.ndarray:
        """Anomaly score per row, higher = more anomalous."""
        return self.score_with_contributions(data)[0]

    def probability(self, scores: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return probability(scores, self.threshold_)

    def predict(self, data, threshold: float | None = None) -> np.ndarray:
        t = self.threshold_["value"] if threshold is None else threshold
        return self.score(data) > t

    # ---- persistence ---------------------------------------------------------------------
    def save(self, path) -> None:
        self._check_fitted()
        if self.is_timeseries:
            from attnad.timeseries import save_series
            return save_series(self, path)
        meta = {
            "config": self.config.model_dump(mode="json"),
            "schema": self.schema_.to_dict(),
            "preprocessor": self.preprocessor_.to_dict(),
            "scoring": {
                "masks": [m.nonzero().flatten().tolist() for m in self.masks_],
                "folds": len(self.models_),
                "error_scale": [e.tolist() for e in self.error_scales_],
                "feature_names": self.preprocessor_.feature_names,
            },
            "components": self.components_,
            "threshold": self.threshold_,
            "training": self.training_,
        }
        state = {}
        for k, model in enumerate(self.models_):
            prefix = f"{FOLD_PREFIX}{k}." if len(self.models_) > 1 else ""
            state.update({prefix + name: t for name, t in model.state_dict().items()})
        if self.memory_ is not None:
            state.update({f"{MEMORY_PREFIX}{k}": v for k, v in self.memory_.state().items()})
        if self.marginal_ is not None:
            state.update({f"{MARGINAL_PREFIX}{k}": v for k, v in self.marginal_.state().items()})
        write_artifact(path, meta, state)

    def apply_overrides(self, overrides: list[str]) -> "Detector":
        """`--set` on a trained model: scoring keys (score.*, threshold.*) may change; keys that
        shaped the trained model may not, since changing them would silently mean nothing."""
        if not overrides:
            return self
        self._check_fitted()
        for item in overrides:
            path, _ = parse_override(item)
            if path[0] not in SCORING_SECTIONS and ".".join(path) not in READING_KEYS:
                raise UserError(f"--set {item}: {'.'.join(path)} was fixed when the model was "
                                f"trained; only {', '.join(s + '.*' for s in SCORING_SECTIONS)}, "
                                f"{', '.join(READING_KEYS)} can change at scoring time "
                                "(retrain to change the rest)")
        raw = apply_overrides(self.config.model_dump(mode="json"), overrides)
        new = build_config(raw, "--set")
        if new.threshold != self.config.threshold:
            if new.threshold.per_entity and not self.threshold_.get("entities"):
                raise UserError("--set threshold.per_entity=true: this model was trained without "
                                "per-entity thresholds; retrain with it to get them")
            try:
                self.threshold_ = refit_threshold(self.threshold_, new.threshold)
            except ValueError as e:
                raise UserError(f"--set: {e}; retrain to change it") from None
        self.config = new
        return self

    @classmethod
    def load(cls, path, device: str = "auto") -> "Detector":
        meta, tensors = read_artifact(path)
        if "timeseries" in meta:
            from attnad.timeseries import load_series
            return load_series(cls, path, meta, tensors, device)
        try:
            det = cls(build_config(meta["config"], f"{path}/attnad.json"))
            det.schema_ = Schema.from_dict(meta["schema"])
            det.preprocessor_ = Preprocessor.from_dict(meta["preprocessor"])
            n_num, cards = det.preprocessor_.n_numeric, det.preprocessor_.cardinalities
            check_model_size(lambda: build_model(det.config.model, n_num, cards),
                             det.config.model, source=f"{path}/attnad.json")
            memory = {k[len(MEMORY_PREFIX):]: tensors.pop(k) for k in list(tensors)
                      if k.startswith(MEMORY_PREFIX)}
            det.memory_ = RowMemory.from_state(memory) if memory else None
            tails = {k[len(MARGINAL_PREFIX):]: tensors.pop(k) for k in list(tensors)
                     if k.startswith(MARGINAL_PREFIX)}
            det.marginal_ = MarginalTails.from_state(tails) if tails else None
            det.components_ = meta["components"]
            if ("memory" in det.components_) != (det.memory_ is not None):
                raise ValueError("row memory and components disagree")
            if ("marginal" in det.components_) != (det.marginal_ is not None):
                raise ValueError("marginal tails and components disagree")
            scoring = meta["scoring"]
            n_models = int(scoring.get("folds", 1))  # models before cross-fitting: one
            scales = scoring["error_scale"] if "folds" in scoring else [scoring["error_scale"]]
            if n_models < 1 or len(scales) != n_models:
                raise ValueError("error scales do not match the number of models")
            det.models_ = []
            for k in range(n_models):
                model = build_model(det.config.model, n_num, cards)
                prefix = f"{FOLD_PREFIX}{k}." if n_models > 1 else ""
                own = {name[len(prefix):]: tensors.pop(name) for name in list(tensors)
                       if name.startswith(prefix)}
                model.load_state_dict(own, strict=True)
                det.models_.append(model)
            if tensors:
                raise ValueError(f"unexpected tensors {sorted(tensors)[:3]}")
            det.model_ = det.models_[0]
            n_features = det.model_.n_features
            det.masks_ = torch.zeros(len(scoring["masks"]), n_features, dtype=torch.bool)
            for i, idx in enumerate(scoring["masks"]):
                det.masks_[i, idx] = True
            det.error_scales_ = [np.asarray(e, dtype=np.float64) for e in scales]
            if any(e.shape != (len(det.masks_), n_features) for e in det.error_scales_):
                raise ValueError("error_scale does not match the model")
            det.threshold_ = meta["threshold"]
            det.training_ = meta.get("training", {})
        except UserError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
            raise ModelError(f"{path}: model directory is inconsistent ({str(e)[:200]}); "
                             "retrain it") from None
        det.device_ = resolve_device(device)
        for model in det.models_:
            model.to(det.device_).eval()
        if det.memory_ is not None:
            det.memory_ = det.memory_.to(det.device_)
        if det.marginal_ is not None:
            det.marginal_ = det.marginal_.to(det.device_)
        det._scorers = None
        return det
