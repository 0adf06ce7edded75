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
from attnad.config import Config, build_config
from attnad.data.preprocess import Encoded, Preprocessor
from attnad.data.schema import Schema, infer_schema
from attnad.errors import ModelError, UserError
from attnad.models import build_model
from attnad.models.masked import scoring_masks
from attnad.score import Scorer, fit_error_scale
from attnad.threshold import fit_threshold, probability
from attnad.train import resolve_device, seed_everything, set_threads, train_model

CALIBRATION_ROWS = 20_000  # training rows scored to fit feature scales and the threshold


def as_table(data) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise TypeError(f"expected a pandas DataFrame or pyarrow Table, got {type(data).__name__}")


class Detector:
    def __init__(self, config: Config | dict | None = None):
        if config is None:
            config = Config()
        elif isinstance(config, dict):
            config = build_config(config)
        self.config = config

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, data, *, device: str | None = None, progress=None, source: str = "data"):
        cfg = self.config
        if cfg.data.time_column:
            raise UserError("time-series mode (data.time_column) is not available in this version")
        set_threads(cfg.train.threads)
        table = as_table(data)
        if table.num_rows == 0:
            raise UserError(f"{source}: no rows to train on")
        if table.num_rows > cfg.train.max_rows:
            idx = np.sort(np.random.default_rng(cfg.train.seed).choice(
                table.num_rows, cfg.train.max_rows, replace=False))
            table = table.take(pa.array(idx))
        self.device_ = resolve_device(device or cfg.train.device)
        self.schema_ = infer_schema(table, cfg.data, source)
        cols, invalid = self.schema_.coerce(table)
        self.preprocessor_ = Preprocessor.fit(cols, self.schema_, cfg.data)
        enc = self.preprocessor_.transform(cols)
        seed_everything(cfg.train.seed)  # weight initialisation is part of the seeded fit
        self.model_ = build_model(cfg.model, self.preprocessor_.n_numeric,
                                  self.preprocessor_.cardinalities)
        self.training_ = train_model(self.model_, enc, cfg.train, cfg.model.mask_ratio,
                                     self.device_, progress).to_dict()
        self.training_["invalid_cells"] = invalid
        self.masks_ = scoring_masks(self.model_.n_features, cfg.model.mask_ratio,
                                    cfg.model.n_score_masks, cfg.train.seed)
        calib = enc
        if len(enc) > CALIBRATION_ROWS:
            rng = np.random.default_rng(cfg.train.seed + 1)
            calib = enc.take(np.sort(rng.choice(len(enc), CALIBRATION_ROWS, replace=False)))
        raw = Scorer(self.model_, self.masks_, None, self.device_).mask_errors(calib)
        self.error_scale_ = fit_error_scale(raw)
        train_scores, _ = Scorer(self.model_, self.masks_, self.error_scale_,
                                 self.device_).score(calib)
        self.threshold_ = fit_threshold(train_scores, cfg.threshold)
        self._scorer = None
        return self

    # ---- scoring -------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("this Detector is not fitted yet: call fit() or Detector.load()")

    @property
    def scorer(self) -> Scorer:
        self._check_fitted()
        if getattr(self, "_scorer", None) is None:
            self._scorer = Scorer(self.model_, self.masks_, self.error_scale_, self.device_)
        return self._scorer

    def encode(self, data) -> tuple[Encoded, dict[str, int]]:
        """Typed, preprocessed model input for a table or batch that has the trained columns."""
        self._check_fitted()
        table = as_table(data)
        self.schema_.check_input(table.schema.names, "data")
        cols, invalid = self.schema_.coerce(table)
        return self.preprocessor_.transform(cols), invalid

    def score_with_contributions(self, data) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        enc, invalid = self.encode(data)
        scores, contrib = self.scorer.score(enc)
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
        meta = {
            "config": self.config.model_dump(mode="json"),
            "schema": self.schema_.to_dict(),
            "preprocessor": self.preprocessor_.to_dict(),
            "scoring": {
                "masks": [m.nonzero().flatten().tolist() for m in self.masks_],
                "error_scale": self.error_scale_.tolist(),
                "feature_names": self.preprocessor_.feature_names,
            },
            "threshold": self.threshold_,
            "training": self.training_,
        }
        write_artifact(path, meta, self.model_.state_dict())

    @classmethod
    def load(cls, path, device: str = "auto") -> "Detector":
        meta, tensors = read_artifact(path)
        try:
            det = cls(build_config(meta["config"], f"{path}/attnad.json"))
            det.schema_ = Schema.from_dict(meta["schema"])
            det.preprocessor_ = Preprocessor.from_dict(meta["preprocessor"])
            det.model_ = build_model(det.config.model, det.preprocessor_.n_numeric,
                                     det.preprocessor_.cardinalities)
            det.model_.load_state_dict(tensors, strict=True)
            n_features = det.model_.n_features
            det.masks_ = torch.zeros(len(meta["scoring"]["masks"]), n_features, dtype=torch.bool)
            for i, idx in enumerate(meta["scoring"]["masks"]):
                det.masks_[i, idx] = True
            det.error_scale_ = np.asarray(meta["scoring"]["error_scale"], dtype=np.float64)
            if det.error_scale_.shape != (len(det.masks_), n_features):
                raise ValueError("error_scale does not match the model")
            det.threshold_ = meta["threshold"]
            det.training_ = meta.get("training", {})
        except UserError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
            raise ModelError(f"{path}: model directory is inconsistent ({str(e)[:200]}); "
                             "retrain it") from None
        det.device_ = resolve_device(device)
        det.model_.to(det.device_).eval()
        det._scorer = None
        return det
