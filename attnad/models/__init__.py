"""Model registry by `model.type`: `build_model(model_config, n_numeric, cardinalities)` for tables,
`build_series_model(model_config, n_features)` for time series (tokens are time steps)."""

from __future__ import annotations

from attnad.models.leave_one_out import LeaveOneOutTransformer
from attnad.models.masked import MaskedCellModel
from attnad.models.pooling import AttentionPoolingModel
from attnad.models.tabular import TabularTransformer
from attnad.models.temporal import MaskedStepModel, TemporalPooling, TemporalTransformer

REGISTRY = {
    "tabular_transformer": TabularTransformer,
    "attention_pooling": AttentionPoolingModel,
    "leave_one_out": LeaveOneOutTransformer,
}


def build_model(cfg, n_numeric: int, cardinalities: list[int]) -> MaskedCellModel:
    return REGISTRY[cfg.type](cfg, n_numeric, cardinalities)


SERIES_REGISTRY = {
    "temporal_transformer": TemporalTransformer,
    "attention_pooling": TemporalPooling,
}


def build_series_model(cfg, n_features: int) -> MaskedStepModel:
    return SERIES_REGISTRY[cfg.type](cfg, n_features)
