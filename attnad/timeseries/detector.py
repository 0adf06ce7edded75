"""SeriesDetector: rows are steps of one or more series (`data.time_column`, `data.group_column`).

One model is shared by all entities; what differs between entities is kept as statistics
(attnad.timeseries.state). The model fills in masked cells of windows of consecutive steps
(attnad.timeseries.masks); a row's score is its signals' reconstruction errors over the windows
covering it, each divided by its typical size on the entity's training rows, so one threshold
fits every entity. Files are scored in two streaming passes (attnad.timeseries.streaming).

    det = SeriesDetector({"data": {"time_column": "ts", "group_column": "host"}}).fit(df)
    det.score_samples(df)   # one score per row, input order
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa

from attnad.data.io import CsvFormat
from attnad.data.preprocess import unsquash
from attnad.data.profile import series_profile
from attnad.data.tables import as_table, data_fingerprint
from attnad.data.windows import read_table, recent_rows, series_order
from attnad.estimator import Detector
from attnad.limits import check_model_size, rough_floats
from attnad.models import build_series_model
from attnad.threshold import fit_entity_thresholds, fit_threshold
from attnad.timeseries.columns import read_columns, series_schema
from attnad.timeseries.explain import explain_series_rows
from attnad.timeseries.levels import LOCAL_WINDOWS, RecentLevels
from attnad.timeseries.masks import n_masks, stride_of
from attnad.timeseries.scorer import SeriesScorer, collect
from attnad.timeseries.state import (SeriesState, entity_bounds, fit_error_scales, holdout_rows,
                                     input_statistics, scaled)
from attnad.timeseries.streaming import check_entities_per_file, scored_batches
from attnad.timeseries.training import train_series
from attnad.training import seed_everything
from attnad.transfer import copy_weights, series_features


class SeriesDetector(Detector):
    kind = "timeseries"
    ordered = True

    @classmethod
    def read_training(cls, path, config):
        table = read_table(path, csv=CsvFormat.of(config.data))
        note = None if table.num_rows <= config.train.max_rows else \
            (f"training on the latest {config.train.max_rows:,} of {table.num_rows:,} rows, "
             "shared across entities in proportion (train.max_rows)")
        return table, note

    # ---- fitting -------------------------------------------------------------------------
    def _fit(self, table: pa.Table, *, progress, source: str, start, ddp) -> None:
        cfg, mc = self.config, self.config.model
        schema, features = series_schema(table, cfg.data, source)
        keys, times, raw, invalid, kind = read_columns(table, schema, cfg.data, None, source,
                                                       decimal=cfg.data.decimal)
        order = series_order(keys, times)
        keys, raw = keys[order], raw[order]
        keep = recent_rows(keys, cfg.train.max_rows)
        keys, raw = keys[keep], raw[keep]
        entities, (p_center, p_scale), center, scale, starts = input_statistics(keys, raw)
        x, miss = scaled(raw, center, scale)
        self.profile_ = series_profile(keys, raw, features, invalid, entities,
                                       (p_center, p_scale), kind)

        held = holdout_rows(*entity_bounds(keys), cfg.train.calibration_fraction, mc.window)
        check_model_size(lambda: build_series_model(mc, len(features)), mc, source=source,
                         batch=mc.batch_windows, tokens=mc.window,
                         rough=rough_floats(mc, len(features)))
        seed_everything(cfg.train.seed)  # weight initialisation is part of the seeded fit
        self.model_ = build_series_model(mc, len(features))
        started = None
        if start is not None:
            started = copy_weights(self.model_, start, series_features(features))
        half_life = float(LOCAL_WINDOWS * mc.window) if mc.input_level == "local" else 0.0
        recent = None if not half_life else \
            RecentLevels(half_life).push(keys, np.where(miss, np.nan, unsquash(x)))
        self.training_ = train_series(self.model_, x, miss, starts, cfg, self.device_, progress,
                                      trainable=~held, ddp=ddp, recent=recent)
        self.training_["calibration_rows"] = int(held.sum())
        self.training_["invalid_cells"] = invalid
        self.training_["fingerprint"] = data_fingerprint(table, schema)
        if started is not None:
            self.training_["init_from"] = started
        self.training_["entities"] = len(entities)

        state = SeriesState(features, cfg.data.time_column, cfg.data.group_column, kind,
                            mc.window, stride_of(mc), n_masks(mc.mask_ratio), cfg.train.seed,
                            entities, {"center": p_center.tolist(), "scale": p_scale.tolist()},
                            signal_masks=mc.signal_masks, span_masks=mc.span_masks,
                            row_score=mc.row_score, error_units=mc.error_units,
                            input_level=mc.input_level, level_half_life=half_life,
                            signal_terms=mc.signal_terms,
                            context=list(cfg.data.context_columns))
        state.pooled["error_scale"] = [1.0] * state.n_errors
        # typical errors on the training rows, per entity and pooled -> error scales -> threshold
        scorer = SeriesScorer(self.model_, state, self.device_, normalise=False)
        done = scorer.push_scaled(keys, x, miss, np.arange(len(keys))) + scorer.finish()
        err = np.full((len(keys), state.n_errors), np.nan)
        for _, rows, _, e in done:
            err[rows] = e
        calib = held if held.any() else np.ones(len(keys), bool)
        err[~calib] = np.nan  # with a holdout, scales and threshold come from the held-out rows
        train_scores = fit_error_scales(state, keys, err)
        self.schema_ = schema
        self.series_ = state
        self.threshold_ = fit_threshold(train_scores[calib], cfg.threshold)
        if cfg.threshold.per_entity:
            self.threshold_["entities"] = fit_entity_thresholds(train_scores[calib], keys[calib],
                                                                cfg.threshold)

    def transfer_features(self) -> dict:
        return series_features(self.series_.features)

    # ---- scoring -------------------------------------------------------------------------
    @property
    def entity_column(self) -> str | None:
        return self.series_.group_column

    @property
    def feature_sources(self) -> list[str]:
        self._check_fitted()
        return list(self.series_.features)

    def new_scorer(self) -> SeriesScorer:
        return SeriesScorer(self.model_, self.series_, self.device_)

    def _read(self, table) -> tuple:
        st = self.series_
        return read_columns(table, self.schema_, st, st.time_kind, "data",
                            decimal=self.config.data.decimal)

    def _count_drift(self, counts, table) -> None:
        keys, times, raw, invalid, _ = self._read(table)
        counts.add_series(keys, times, raw, invalid)

    def _profile_columns(self) -> tuple[list[str], int]:
        return list(self.series_.features), len(self.series_.features)

    def score_with_contributions(self, data, drift=None
                                 ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """Scores and per-signal contributions of an in-memory table, in its row order."""
        self._check_fitted()
        table = as_table(data)
        st = self.series_
        keys, times, raw, invalid, _ = self._read(table)
        if drift is not None:
            drift.add_series(keys, times, raw, invalid)
        order = series_order(keys, times)
        scorer = self.new_scorer()
        done = scorer.push(keys[order], raw[order], order) + scorer.finish()
        for w in scorer.warnings("data"):
            warnings.warn(w, stacklevel=2)
        scores, contrib = collect(done, table.num_rows, len(st.features))
        return scores, contrib, invalid

    def scored_batches(self, path, batch_size: int, warnings_out: list[str],
                       all_contributions: bool = False, drift=None, events=None):
        return scored_batches(self, path, batch_size, warnings_out, all_contributions, drift,
                              events)

    def check_files(self, files) -> None:
        check_entities_per_file(files, self.config.data)

    def explanations(self, path, table, positions: list[int]) -> list:
        return explain_series_rows(self, path, positions)

    # ---- persistence ---------------------------------------------------------------------
    def _state(self) -> tuple[dict, dict]:
        return {"timeseries": self.series_.to_dict()}, self.model_.state_dict()

    def _restore(self, meta: dict, tensors: dict, path) -> None:
        self.series_ = SeriesState.from_dict(meta["timeseries"])
        n_features = len(self.series_.features)
        check_model_size(lambda: build_series_model(self.config.model, n_features),
                         self.config.model, source=f"{path}/attnad.json",
                         rough=rough_floats(self.config.model, n_features))
        self.model_ = build_series_model(self.config.model, n_features)
        self.model_.load_state_dict(tensors, strict=True)

    def _to_device(self) -> None:
        self.model_.to(self.device_).eval()
