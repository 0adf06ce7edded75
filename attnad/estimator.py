"""The estimator both modes share: config in, fitted state out, scores, flags, save and load.

It follows the scikit-learn estimator contract: the constructor only stores the config; `fit`
learns the fitted attributes (ending in `_`) and resolves seeds itself, so refitting gives the
same model. Per-row scores are `score_samples` (scikit-learn) or `decision_function` (PyOD),
higher = more anomalous; `predict` gives flags. A table and a time series are two estimators on
this base (attnad.tabular.TableDetector, attnad.timeseries.SeriesDetector): `Detector(config)`
builds the one the config asks for (`data.time_column` set: a series), and `Detector.load` the one
a model directory holds. The modes are found through MODES by name, so this module imports
neither of them.

    det = Detector({"data": {"label_column": "y"}}).fit(df)     # a TableDetector
    scores = det.score_samples(df); flags = det.predict(df); det.save("model/")
"""

from __future__ import annotations

import importlib
import warnings
from typing import ClassVar

import numpy as np

from attnad.artifact import read_artifact, write_artifact
from attnad.config import (SERIES_MIN_STEPS, Config, apply_overrides, build_config,
                           parse_override)
from attnad.data.drift import DriftCounts
from attnad.data.hints import column_hints
from attnad.data.io import CsvFormat, iter_batches
from attnad.data.profile import check_profile
from attnad.data.schema import Schema
from attnad.data.tables import as_table
from attnad.errors import ModelError, UserError
from attnad.threshold import probability, refit_threshold
from attnad.training import resolve_device, set_threads

MODES = {  # kind -> "module:class"; imported on first use, so neither mode is imported here
    "table": "attnad.tabular.detector:TableDetector",
    "timeseries": "attnad.timeseries.detector:SeriesDetector",
}
MIN_TRAIN_ROWS = 2  # one row has no spread: every score would tie with the threshold
SCORING_SECTIONS = ("score", "threshold")  # config sections `--set` may change on a trained model
READING_KEYS = ("data.csv_delimiter", "data.encoding", "data.decimal")  # how a file is read,
# not what was learned
LOAD_ERRORS = (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError)


def as_config(config: Config | dict | None) -> Config:
    if config is None:
        return Config()
    return build_config(config) if isinstance(config, dict) else config


def kind_of(config: Config) -> str:
    """The mode a config asks for: a time column makes the rows steps of one or more series."""
    return "timeseries" if config.data.time_column else "table"


def mode_class(kind: str) -> type["Detector"]:
    module, _, name = MODES[kind].partition(":")
    return getattr(importlib.import_module(module), name)


class Detector:
    """Base of both modes, and the way in: `Detector(cfg)` returns the mode's estimator."""

    kind: ClassVar[str] = ""  # "table" or "timeseries"
    ordered: ClassVar[bool] = False  # rows are steps: windows cross batch and file edges

    def __new__(cls, config: Config | dict | None = None):
        if cls is Detector:
            cls = mode_class(kind_of(as_config(config)))
        return super().__new__(cls)

    def __init__(self, config: Config | dict | None = None):
        self.config = as_config(config)

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, data, *, device: str | None = None, progress=None, source: str = "data",
            init_from=None, ddp=None, one_shot: bool = False) -> "Detector":
        """Learn everything from `data` (a pandas DataFrame or pyarrow Table). `init_from`: a
        model directory whose weights start the training (fine-tuning, attnad.transfer); its
        `model` config section is used. `ddp`: distributed training under torchrun
        (attnad.engines.distributed). `one_shot`: the fitted model will score `data` itself, as
        `attnad detect DATA` without a model does; with train.min_steps null a table model then
        trains a shorter fit (attnad.config.ONE_SHOT_MIN_STEPS says why). The steps used are
        written into the config, and so into a saved model."""
        self.one_shot_ = one_shot
        start = None
        if init_from is not None:
            start = self._fine_tuning_source(init_from)
            self.config = self.config.model_copy(update={"model": start.config.model})
        if self.config.train.min_steps is None and self.kind != "table":  # tables: in _fit
            self._set_min_steps(SERIES_MIN_STEPS)
        set_threads(self.config.train.threads)
        table = as_table(data)
        if table.num_rows < MIN_TRAIN_ROWS:
            raise UserError(f"{source}: {table.num_rows} row(s) are too few to learn what is "
                            f"normal; train on at least {MIN_TRAIN_ROWS} rows (hundreds are better)")
        self.device_ = ddp.device if ddp is not None else \
            resolve_device(device or self.config.train.device)
        self._fit(table, progress=progress, source=source, start=start, ddp=ddp)
        for line in column_hints(table, self.schema_, self.config.data, source):
            warnings.warn(line, stacklevel=2)
        return self

    def _set_min_steps(self, steps: int) -> None:
        """train.min_steps resolved from null, in a copy: the caller's config stays as it was."""
        train = self.config.train.model_copy(update={"min_steps": steps})
        self.config = self.config.model_copy(update={"train": train})

    def _fit(self, table, *, progress, source: str, start, ddp) -> None:
        """The mode's fit on a table of at least MIN_TRAIN_ROWS rows; `start`: the loaded
        estimator to fine-tune from, or None."""
        raise NotImplementedError

    def _fine_tuning_source(self, path) -> "Detector":
        """The trained model to start from, loaded once; it must be of this estimator's mode."""
        src = Detector.load(path, device="cpu")
        if src.kind != self.kind:
            raise UserError(f"--init-from {path}: is a {src.mode_name} model; the new training "
                            f"is {self.mode_name} (data.time_column)")
        return src

    @property
    def mode_name(self) -> str:
        return "time-series" if self.kind == "timeseries" else "tabular"

    @classmethod
    def read_training(cls, path, config: Config):
        """The training rows of a file as a pyarrow Table, and a line for people when only part
        of it is used (train.max_rows). Each mode reads in its own way: a random sample of a
        table, every row of a series (the fit keeps each entity's latest steps)."""
        if cls is Detector:
            return mode_class(kind_of(config)).read_training(path, config)
        raise NotImplementedError

    # ---- scoring -------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("this Detector is not fitted yet: call fit() or Detector.load()")

    @property
    def is_timeseries(self) -> bool:
        return self.kind == "timeseries"

    @property
    def entity_column(self) -> str | None:
        """The column whose values name the series (per-entity thresholds); None for tables."""
        return None

    @property
    def feature_sources(self) -> list[str]:
        """The input column behind each entry of the contributions returned with scores."""
        raise NotImplementedError

    def score_with_contributions(self, data, drift: DriftCounts | None = None
                                 ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """Scores, per-feature contributions (n, len(feature_sources)), invalid-cell counts.
        `drift`: also count the data against the training profile (attnad.data.drift)."""
        raise NotImplementedError

    def drift_counts(self) -> DriftCounts | None:
        """Empty drift counts against this model's training profile; None for a model saved
        before profiles were kept (format version 1)."""
        self._check_fitted()
        profile = getattr(self, "profile_", None)
        return None if profile is None else DriftCounts(profile)

    def drift(self, data):
        """How `data` differs from the training data, per column (series: per signal over all
        entities, entity None, and per entity and signal), as a pandas DataFrame: PSI over the
        training deciles, share beyond the training range, missing / invalid / unseen-category
        shares then and now, and for series the level change in training spreads and the time
        of the first value beyond the training range (attnad.data.drift)."""
        counts = self.drift_counts()
        if counts is None:
            raise UserError(f"{getattr(self, 'loaded_from_', 'this model')}: saved before attnad "
                            "kept a profile of the training columns; retrain it to get drift "
                            "figures")
        table = as_table(data)
        counts.note_columns(table.schema.names, self.schema_)
        self._count_drift(counts, table)
        return counts.frame()

    def _profile_columns(self) -> tuple[list[str], int]:
        """The names a training profile has, in order, and how many of them are numeric."""
        raise NotImplementedError

    def _count_drift(self, counts: DriftCounts, table) -> None:
        """Add an in-memory table to drift counts (the mode reads its columns its own way)."""
        raise NotImplementedError

    def score_samples(self, data) -> np.ndarray:
        """Anomaly score per row, higher = more anomalous (scikit-learn's name)."""
        return self.score_with_contributions(data)[0]

    def decision_function(self, data) -> np.ndarray:
        """The same scores under PyOD's name (higher = more anomalous)."""
        return self.score_samples(data)

    def score(self, data) -> np.ndarray:
        """Anomaly score per row: the name attnad used first, kept for existing code."""
        return self.score_samples(data)

    def probability(self, scores: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return probability(scores, self.threshold_)

    def predict(self, data, threshold: float | None = None) -> np.ndarray:
        t = self.threshold_["value"] if threshold is None else threshold
        return self.score_samples(data) > t

    def scored_batches(self, path, batch_size: int, warnings_out: list[str],
                       all_contributions: bool = False, drift: DriftCounts | None = None,
                       events=None):
        """(batch, scores, contributions, invalid counts) for a file, batch by batch in input
        order; `drift` counts the rows in the same pass. Rows are scored on their own here;
        series override this (windows cross batches, and `events` receives their steps: rows of
        a table make no events)."""
        if events is not None:
            raise ValueError("events: only time series have them")  # the CLI refuses earlier
        for batch in iter_batches(path, batch_size, CsvFormat.of(self.config.data)):
            yield (batch, *self.score_with_contributions(batch, drift))

    def check_files(self, files) -> None:
        """Before scoring several files one by one: refuse what that would get wrong."""

    def explanations(self, path, table, positions: list[int]) -> list:
        """attnad.explanation.RowExplanation of the chosen rows (`table`, at `positions` of the
        file `path`)."""
        raise NotImplementedError

    # ---- persistence ---------------------------------------------------------------------
    def save(self, path) -> None:
        self._check_fitted()
        state_meta, tensors = self._state()
        meta = {"config": self.config.model_dump(mode="json"), "schema": self.schema_.to_dict(),
                **state_meta, "threshold": self.threshold_, "training": self.training_}
        if getattr(self, "profile_", None) is not None:
            meta["profile"] = self.profile_
        write_artifact(path, meta, tensors)

    def _state(self) -> tuple[dict, dict]:
        """The mode's part of the model directory: JSON sections and named tensors."""
        raise NotImplementedError

    @classmethod
    def load(cls, path, device: str = "auto") -> "Detector":
        """The estimator a model directory holds (untrusted input: attnad.artifact)."""
        meta, tensors = read_artifact(path)
        mode = mode_class("timeseries" if "timeseries" in meta else "table")
        if not issubclass(mode, cls):
            raise UserError(f"{path}: holds a {mode.kind} model, not a {cls.kind} one")
        try:
            det = mode(build_config(meta["config"], f"{path}/attnad.json"))
            det.schema_ = Schema.from_dict(meta["schema"])
            det._restore(meta, tensors, path)
            det.threshold_ = meta["threshold"]
            det.training_ = meta.get("training", {})
            det.profile_ = meta.get("profile")  # absent from models of format version 1
            if det.profile_ is not None:
                check_profile(det.profile_, *det._profile_columns())
        except UserError:
            raise
        except LOAD_ERRORS as e:
            raise ModelError(f"{path}: model directory is inconsistent ({str(e)[:200]}); "
                             "retrain it") from None
        det.device_ = resolve_device(device)
        det._to_device()
        det.loaded_from_ = str(path)
        return det

    def _restore(self, meta: dict, tensors: dict, path) -> None:
        raise NotImplementedError

    def _to_device(self) -> None:
        raise NotImplementedError

    # ---- scoring-time changes ------------------------------------------------------------
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
        events = {"merge_gap", "min_event_steps"}  # how flags are grouped, not the threshold
        if new.threshold.model_dump(exclude=events) != \
                self.config.threshold.model_dump(exclude=events):
            if new.threshold.per_entity and not self.threshold_.get("entities"):
                raise UserError("--set threshold.per_entity=true: this model was trained without "
                                "per-entity thresholds; retrain with it to get them")
            try:
                self.threshold_ = refit_threshold(self.threshold_, new.threshold)
            except ValueError as e:
                raise UserError(f"--set: {e}; retrain to change it") from None
        self.config = new
        return self
