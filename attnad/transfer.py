"""Fine-tuning: start a new model from a trained one (`attnad train DATA --init-from MODEL_DIR`).

The new model is built for the new data's schema; the old model's weights are copied into it
wherever they mean the same thing:

- weights shared by all features (attention blocks, pooling, mask embedding, positions) when
  their shapes match;
- per-feature weights (a numeric column's embedding and prediction head, a feature's identity
  embedding, leave_one_out's per-column query) row by row for the features both models have,
  matched by name;
- per-category weights only when the categorical features and their vocabularies are identical.

Everything else keeps its fresh initialisation. Input scaling, error scales, memories and the
threshold are always refitted on the new data, so only the learned relations carry over.

    report = copy_weights(new_model, Detector.load("old_model/"), new_features)  # before training
"""

from __future__ import annotations

import torch

from attnad.errors import ModelError, UserError

# parameters indexed by a tabular feature, and which feature list indexes their first dimension
NUMERIC_ROWS = ("tokenizer.num_weight", "tokenizer.num_bias", "tokenizer.num_missing",
                "head.num_weight", "head.num_bias")
FEATURE_ROWS = ("tokenizer.feature_embedding", "queries")  # queries: leave_one_out, one per
# feature unless a wide table pools its columns (then one per token: not copied across schemas)
CATEGORY_PARAMS = ("tokenizer.cat_embedding.weight", "tokenizer.cat_offsets", "head.cat_weight",
                   "head.cat_bias", "head.cat_valid")
FEATURE_PREFIXES = ("tokenizer.", "head.", "numeric_groups.", "encoder.",
                    "queries")  # depend on the features


def _copy_rows(dst: torch.Tensor, src: torch.Tensor, old: list[str], new: list[str]) -> int:
    if dst.shape[1:] != src.shape[1:] or len(dst) != len(new) or len(src) != len(old):
        return 0
    pos = {name: i for i, name in enumerate(old)}
    n = 0
    for j, name in enumerate(new):
        if name in pos:
            dst[j] = src[pos[name]]
            n += 1
    return n


def transfer(model: torch.nn.Module, source_state: dict, old: dict, new: dict) -> dict:
    """Copy what carries over from `source_state` into `model` (in place).

    old/new: {"numeric": [names], "features": [names], "categorical": [(name, vocab)]}.
    Returns counts for the training summary.
    """
    state = model.state_dict()
    same_features = old == new
    copied, partial = 0, 0
    with torch.no_grad():
        for name, dst in state.items():
            src = source_state.get(name)
            if src is None:
                continue
            if same_features or not name.startswith(FEATURE_PREFIXES):
                if src.shape == dst.shape:
                    dst.copy_(src)
                    copied += 1
                continue
            if name in NUMERIC_ROWS:
                partial += bool(_copy_rows(dst, src, old["numeric"], new["numeric"]))
            elif name in FEATURE_ROWS:
                partial += bool(_copy_rows(dst, src, old["features"], new["features"]))
            elif name in CATEGORY_PARAMS and old["categorical"] == new["categorical"] \
                    and src.shape == dst.shape:
                dst.copy_(src)
                copied += 1
    model.load_state_dict(state)
    shared = sorted(set(old["features"]) & set(new["features"]))
    return {"tensors_copied": copied, "tensors_partly_copied": partial,
            "features_shared": len(shared), "features_new": len(new["features"]) - len(shared)}


def tabular_features(pre) -> dict:
    return {"numeric": [f["name"] for f in pre.numeric], "features": pre.feature_names,
            "categorical": [(c["name"], list(c["vocab"])) for c in pre.categorical]}


def series_features(features: list[str]) -> dict:
    return {"numeric": list(features), "features": list(features), "categorical": []}


def copy_weights(model, source, new_features: dict) -> dict:
    """Start `model` (built for the new data) from the trained estimator `source`, which the
    caller loaded once (`Detector.load`). Returns the report kept in the training summary."""
    path = source.loaded_from_
    if type(source.model_) is not type(model):
        raise UserError(f"--init-from {path}: model type {source.config.model.type} differs from "
                        f"this training's ({type(model).__name__}); set model.type to match")
    old = source.transfer_features()
    shared = set(old["features"]) & set(new_features["features"])
    if not shared:
        raise UserError(f"--init-from {path}: the model shares no column with the new data "
                        f"(it was trained on {', '.join(old['features'][:8])}); train from scratch")
    try:
        report = transfer(model, source.model_.state_dict(), old, new_features)
    except RuntimeError as e:  # shapes we did not expect: a bug, or a damaged model
        raise ModelError(f"--init-from {path}: cannot copy weights ({str(e)[:200]})") from None
    return {"path": str(path), **report}
