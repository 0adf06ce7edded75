"""Refuse absurd model sizes before anything is allocated: configs and model files are untrusted.

The bounds in config.py cap each key on its own, but reasonable keys can still multiply into an
absurd model (1,500 categorical columns x 100,000 categories x d_model 1,024) or an absurd training
step (batch_size 10^6 rows x d_model 1,024 x 12 layers). Here the model is built on PyTorch's
`meta` device, which records shapes and allocates nothing, to count its parameters exactly, and
the memory of one training step is estimated from the shapes. Both are checked before training
and before a saved model is rebuilt, so a hostile attnad.json cannot make attnad allocate
gigabytes.

    check_model_size(build, cfg, rows=len(table), source="config")
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from attnad.errors import UserError

MAX_PARAMETERS = 100_000_000  # 400 MB of float32 weights, ~1.6 GB with AdamW state
ACTIVATION_FLOATS = 24  # floats kept per token and width per layer for backward (generous)


SMALL_MODEL_FLOATS = 4_000_000  # a model whose rough bound (below) is under this is counted by
# building it on the CPU (16 MB at most): the meta device's first use imports torch's compiler
# front end, about 1 s, which every `score` of a small file paid (benchmarks/results/answer.md)


def rough_floats(model_cfg, n_features: int, embedding_rows: int = 0) -> int:
    """A generous upper bound of the parameters and buffers of any attnad model with this config
    and input: `n_features` columns or signals, `embedding_rows` rows of category embeddings
    (categorical columns x their largest cardinality). tests/test_security.py checks it against
    exact counts."""
    d = model_cfg.d_model
    layers = getattr(model_cfg, "n_layers", 1) + 2
    window = getattr(model_cfg, "window", 0)
    tokens = getattr(model_cfg, "max_tokens", 0)
    latents = getattr(model_cfg, "latents", 0) * getattr(model_cfg, "latent_dim", 1)
    width = n_features + embedding_rows + window + tokens + latents
    return 64 * d * d * layers + 64 * d * width + 4 * (window + tokens) ** 2 + 64 * d


def count_parameters(build: Callable[[], torch.nn.Module], rough: int | None = None) -> int:
    """Parameters and buffers of the model `build()` returns: built on the CPU when `rough`
    (rough_floats) says it is small, else on the meta device, which allocates nothing. The CPU
    build draws from torch's generator, so its state is restored afterwards."""
    if rough is not None and rough < SMALL_MODEL_FLOATS:
        with torch.random.fork_rng(devices=[]):
            model = build()
    else:
        with torch.device("meta"):
            model = build()
    return sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())


def physical_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def step_bytes(batch: int, tokens: int, d_model: int, n_layers: int, n_heads: int) -> int:
    """A rough upper estimate of one training step's activations, in bytes."""
    per_layer = batch * tokens * d_model * ACTIVATION_FLOATS + batch * n_heads * tokens * tokens * 2
    return 4 * max(n_layers, 1) * per_layer


def check_model_size(build: Callable[[], torch.nn.Module], model_cfg, *, source: str,
                     batch: int | None = None, tokens: int | None = None,
                     extra_floats: int = 0, rough: int | None = None) -> int:
    """Raise a user error when the model (plus `extra_floats`, e.g. row memories) or one training
    step of `batch` rows x `tokens` tokens would be absurdly large; return the parameter count.
    `rough`: rough_floats of the model, when the caller knows its input."""
    n = count_parameters(build, rough) + extra_floats
    if n > MAX_PARAMETERS:
        raise UserError(
            f"{source}: the model would have {n:,} parameters (limit {MAX_PARAMETERS:,}); lower "
            "model.d_model, model.n_layers, data.max_categories, model.memory_size or "
            "model.n_memories")
    if batch and tokens:
        need = step_bytes(batch, tokens, model_cfg.d_model, getattr(model_cfg, "n_layers", 1),
                          getattr(model_cfg, "n_heads", 1))
        ram = physical_memory_bytes()
        if ram and need > ram:
            raise UserError(
                f"{source}: one training step would need about {need / 2**30:,.0f} GiB, more than "
                f"this machine's {ram / 2**30:,.0f} GiB; lower train.batch_size (or "
                "model.batch_windows), model.d_model or model.n_layers")
    return n
