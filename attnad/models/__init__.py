"""Model registry: `build_model(model_config, n_numeric, cardinalities)` by `model.type`."""

from __future__ import annotations

from attnad.models.masked import MaskedCellModel
from attnad.models.pooling import AttentionPoolingModel
from attnad.models.tabular import TabularTransformer

REGISTRY = {
    "tabular_transformer": TabularTransformer,
    "attention_pooling": AttentionPoolingModel,
}


def build_model(cfg, n_numeric: int, cardinalities: list[int]) -> MaskedCellModel:
    return REGISTRY[cfg.type](cfg, n_numeric, cardinalities)
