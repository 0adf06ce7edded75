"""The YAML configuration: pydantic models, loading, and `--set a.b=c` overrides.

Every section rejects unknown keys so that a typo fails at once (exit 2) instead of silently
training with a default. Errors name the key and the file.

    cfg = load_config("configs/tabular.yaml", overrides=["train.epochs=3"])
    cfg.train.epochs  # 3
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from attnad.errors import ConfigError


# with epochs: null and train.min_steps null, training takes at least this many optimiser steps.
# A table model fitted on the file it then scores (`attnad detect DATA` without a model), when
# each cross-fitted model has at least one full batch to train on: 150. Any other table model,
# and a series model: 600. On the developer tables (seeds 0 and 1) 150 steps lost nothing
# against 600 where the fit scores its own rows (protocol U: a longer fit partly learns the
# anomalies it should find) and lost 0.003 mean AUROC on clean training data scored on new rows
# (protocol S); tables under a batch a model lost a little at 150 too, and their steps are cheap.
# The 600 steps were most of the wait for a one-shot `detect` of a 10k-row file
# (benchmarks/results/answer.md)
ONE_SHOT_MIN_STEPS = 150
TABLE_MIN_STEPS = 600
SERIES_MIN_STEPS = 600


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    id_columns: list[str] = []  # copied to outputs, never modelled
    exclude: list[str] = []  # ignored entirely (not modelled, still copied to outputs)
    label_column: str | None = None  # never used for training; detect reports AUROC/AUPRC on it
    categorical: Literal["auto"] | list[str] = "auto"  # auto: strings and booleans
    numeric: list[str] = []  # force these columns numeric (e.g. numbers stored as text)
    max_categories: int = Field(64, ge=2, le=100_000)  # vocabulary size per categorical column
    min_category_frequency: float = Field(0.001, ge=0, lt=1)  # rarer values share the rare slot
    time_column: str | None = None  # turns on time-series mode
    group_column: str | None = None  # one series per value (time-series mode)
    context_columns: list[str] = []  # time-series mode: signals the model reads but does not
    # score, such as commands or set-points: their switching explains the other signals and is
    # not itself an anomaly (README, Time series)
    csv_delimiter: str = ","  # CSV field separator: one character, or "tab"
    encoding: str = "utf-8"  # CSV text encoding, e.g. latin-1, cp1252, utf-16
    decimal: Literal[".", ","] = "."  # decimal mark in CSV text: "," for 3,14 (many European
    # exports; a "." is then a thousands separator: 1.234,5)

    @field_validator("csv_delimiter", mode="before")
    @classmethod
    def _delimiter(cls, v):
        v = {"tab": "\t", "\\t": "\t"}.get(v, v) if isinstance(v, str) else v
        if not isinstance(v, str) or len(v) != 1 or v in "\"\r\n":
            raise ValueError("must be one character (e.g. ';' or tab), not a quote or newline")
        return v

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        import codecs
        try:
            return codecs.lookup(v).name
        except LookupError:
            raise ValueError(f"unknown encoding {v!r} (e.g. utf-8, latin-1, cp1252)") from None


class TabularTransformerConfig(_Section):
    type: Literal["tabular_transformer"] = "tabular_transformer"
    d_model: int = Field(32, ge=4, le=1024)  # width of each feature token
    n_layers: int = Field(2, ge=1, le=12)  # transformer blocks across feature tokens
    n_heads: int = Field(4, ge=1, le=32)  # attention heads (d_model must divide by it)
    max_tokens: int = Field(64, ge=2, le=4096)  # wider tables pool neighbouring columns per token
    dropout: float = Field(0.0, ge=0, lt=1)  # off by default: reconstruction needs no noise
    mask_ratio: float = Field(0.3, gt=0, lt=1)  # share of cells hidden per training example
    n_score_masks: int = Field(8, ge=1, le=64)  # masks averaged when scoring (fixed, seeded)
    memory_size: int = Field(256, ge=2, le=65_536)  # training rows per attention memory
    n_memories: int = Field(32, ge=0, le=1024)  # random memories averaged (0 = no row attention)
    memory_weight: float = Field(1.0, ge=0, le=1000)  # weight of row attention vs cell reconstruction
    marginal_weight: float = Field(1.0, ge=0, le=1000)  # weight of per-column tail surprise (0 = off)
    combine: Literal["zscore", "surprise"] = "zscore"  # how the score's parts are added: as robust
    # z-scores, or each as its surprise among the training rows' own scores (tabular.yaml)


class LeaveOneOutConfig(_Section):
    type: Literal["leave_one_out"] = "leave_one_out"
    d_model: int = Field(32, ge=4, le=1024)  # width of each feature token
    n_layers: int = Field(2, ge=1, le=12)  # query-stream blocks
    n_heads: int = Field(4, ge=1, le=32)  # attention heads (d_model must divide by it)
    max_tokens: int = Field(64, ge=2, le=4096)  # wider tables pool neighbouring columns per token
    dropout: float = Field(0.0, ge=0, lt=1)  # off by default: reconstruction needs no noise
    memory_size: int = Field(256, ge=2, le=65_536)  # training rows per attention memory
    n_memories: int = Field(32, ge=0, le=1024)  # random memories averaged (0 = no row attention)
    memory_weight: float = Field(1.0, ge=0, le=1000)  # weight of row attention vs cell reconstruction
    marginal_weight: float = Field(1.0, ge=0, le=1000)  # weight of per-column tail surprise (0 = off)
    combine: Literal["zscore", "surprise"] = "zscore"  # how the score's parts are added: as robust
    # z-scores, or each as its surprise among the training rows' own scores (tabular.yaml)


class AttentionPoolingConfig(_Section):
    type: Literal["attention_pooling"] = "attention_pooling"
    d_model: int = Field(32, ge=4, le=1024)  # width of each feature token
    max_tokens: int = Field(64, ge=2, le=4096)  # wider tables pool neighbouring columns per token
    mask_ratio: float = Field(0.3, gt=0, lt=1)  # tokens hidden while learning to predict them
    n_score_masks: int = Field(8, ge=1, le=64)
    # time-series mode only: the pooled tokens are the steps of a window
    window: int = Field(64, ge=2, le=4096)  # steps of context per window
    stride: int | None = Field(None, ge=1, le=4096)  # steps between window ends; null = window // 4
    encoder: Literal["linear", "cnn", "gru", "lstm"] = "linear"  # per-step encoder
    batch_windows: int = Field(32, ge=1, le=65_536)  # windows per optimiser step
    signal_masks: bool = False  # also hide whole signals across a window (timeseries.yaml)
    span_masks: bool = False  # also hide blocks of consecutive steps (timeseries.yaml)
    row_score: Literal["step", "window"] = "window"  # a step's error: its own cells, or the mean
    # error of each window covering it (timeseries.yaml)
    error_units: Literal["robust", "squashed"] = "robust"  # units errors are scored in
    # (timeseries.yaml)
    input_level: Literal["local", "window", "entity"] = "local"  # what each window's level is
    # read against: the recent level, the window's own, the training centre (timeseries.yaml)
    signal_terms: Literal["typical", "bounded"] = "typical"  # a signal's term in a row score
    # (timeseries.yaml)


class TemporalTransformerConfig(_Section):
    type: Literal["temporal_transformer"] = "temporal_transformer"
    window: int = Field(64, ge=2, le=4096)  # steps of context per window
    stride: int | None = Field(None, ge=1, le=4096)  # steps between window ends; null = window // 4
    encoder: Literal["linear", "cnn", "gru", "lstm"] = "cnn"  # per-step encoder
    d_model: int = Field(32, ge=4, le=1024)  # width of each step token
    n_layers: int = Field(2, ge=1, le=12)  # transformer blocks across the steps of a window
    n_heads: int = Field(4, ge=1, le=32)  # attention heads (d_model must divide by it)
    dropout: float = Field(0.0, ge=0, lt=1)  # off by default: reconstruction needs no noise
    mask_ratio: float = Field(0.25, gt=0, le=0.5)  # share of cells hidden; 1/ratio scoring masks
    batch_windows: int = Field(32, ge=1, le=65_536)  # windows per optimiser step
    signal_masks: bool = False  # also hide whole signals across a window (timeseries.yaml)
    span_masks: bool = False  # also hide blocks of consecutive steps (timeseries.yaml)
    row_score: Literal["step", "window"] = "window"  # a step's error: its own cells, or the mean
    # error of each window covering it (timeseries.yaml)
    error_units: Literal["robust", "squashed"] = "robust"  # units errors are scored in
    # (timeseries.yaml)
    input_level: Literal["local", "window", "entity"] = "local"  # what each window's level is
    # read against: the recent level, the window's own, the training centre (timeseries.yaml)
    signal_terms: Literal["typical", "bounded"] = "typical"  # a signal's term in a row score: its
    # error over its typical error, or that bounded by the error's surprise among the signal's
    # training errors (ranks better, but flags more normal rows: timeseries.yaml)
    latents: int = Field(0, ge=0, le=256)  # > 0: windows are rebuilt from this many latents
    latent_dim: int = Field(4, ge=1, le=1024)  # numbers kept per latent (timeseries.yaml)


TIMESERIES_MODELS = ("temporal_transformer", "attention_pooling")

ModelConfig = Annotated[
    Union[TabularTransformerConfig, LeaveOneOutConfig, AttentionPoolingConfig,
          TemporalTransformerConfig],
    Field(discriminator="type"),
]


class TrainConfig(_Section):
    epochs: int | None = Field(None, ge=1, le=10_000)  # passes over the data; null = auto (min_steps)
    batch_size: int = Field(256, ge=1, le=1_000_000)
    lr: float = Field(3e-3, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0, le=1)
    seed: int = Field(0, ge=0, le=2**62)  # same data, config and seed give the same scores on the same machine
    validation_fraction: float = Field(0.1, ge=0, lt=1)  # held out for early stopping
    # time series: last share of each entity's training rows kept out of training to measure
    # error scales and the threshold on; 0 = measure them on the training rows (see timeseries.yaml)
    calibration_fraction: float = Field(0.0, ge=0, le=0.5)
    patience: int = Field(3, ge=1, le=1000)  # validation checks without gain before stopping
    # epochs: null trains at least this many steps (small data); null: 600, or 150 when
    # `detect` fits on the file it scores (ONE_SHOT_MIN_STEPS says when and why); a series
    # config without it gets 600 (below)
    min_steps: int | None = Field(None, ge=1, le=10_000_000)
    max_rows: int = Field(200_000, ge=10, le=100_000_000)  # larger training files are sampled down to this
    max_steps: int = Field(3000, ge=1, le=10_000_000)  # cap on optimiser steps, keeps big files fast
    trim_fraction: float = Field(0.05, ge=0, lt=0.5)  # highest-loss rows per batch ignored
    # tables: K models, each scoring the rows it did not train on (attnad.tabular.crossfit); 1 = one model
    cross_fit: int = Field(2, ge=1, le=10)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # torch CPU threads; 0 = the CPUs this process may use (affinity mask, cgroup quota). Idle
    # threads sleep, not spin (attnad sets OMP_WAIT_POLICY=PASSIVE): fine on shared machines
    threads: int = Field(0, ge=0, le=512)


class ThresholdConfig(_Section):
    method: Literal["quantile", "pot", "fixed"] = "quantile"
    contamination: float = Field(0.01, gt=0, lt=1)  # expected share of anomalies (quantile)
    risk: float = Field(1e-3, gt=0, lt=0.5)  # pot: share of normal rows expected above it
    pot_quantile: float = Field(0.98, ge=0.5, le=0.999)  # pot: the GPD tail starts here
    value: float | None = None  # the threshold itself (method: fixed)
    per_entity: bool = False  # time series: one threshold per entity (>= 200 training rows)
    # time series, `detect --events`: runs of flagged steps of one entity separated by fewer than
    # merge_gap unflagged steps are one event (1 = never merge), so flags flickering around the
    # threshold inside one anomaly make one alert. 10: on 10 developer series attnad's default
    # (window-averaged) flags gave the same events at 1, 3, 10 and 30, and merging started to
    # join separate alerts only at 100 (7 -> 2 events on NAB ec2_request_latency); 10 absorbs
    # flicker (row_score: step, thresholds near the noise) and stays far below that
    merge_gap: int = Field(10, ge=1, le=1_000_000)
    # events spanning fewer steps are dropped; 1 keeps a one-step spike, the shortest anomaly
    min_event_steps: int = Field(1, ge=1, le=1_000_000)


class ScoreConfig(_Section):
    batch_size: int = Field(65_536, ge=1, le=10_000_000)  # rows read and scored at a time


class Config(_Section):
    data: DataConfig = DataConfig()
    model: ModelConfig = LeaveOneOutConfig()
    train: TrainConfig = TrainConfig()
    threshold: ThresholdConfig = ThresholdConfig()
    score: ScoreConfig = ScoreConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_model_type(cls, raw):
        """`model:` without `type:` means the default model, so `--set model.d_model=8` works:
        temporal_transformer when data.time_column is set (time-series mode), else
        leave_one_out."""
        if not isinstance(raw, dict):
            return raw
        data = raw.get("data")
        timeseries = isinstance(data, dict) and bool(data.get("time_column"))
        default = "temporal_transformer" if timeseries else "leave_one_out"
        if isinstance(raw.get("model"), dict) and "type" not in raw["model"]:
            raw = {**raw, "model": {"type": default, **raw["model"]}}
        elif raw.get("model") is None and timeseries:
            raw = {**raw, "model": {"type": default}}
        train = raw.get("train")
        if timeseries and (train is None or isinstance(train, dict)
                           and train.get("min_steps") is None):
            raw = {**raw, "train": {**(train or {}), "min_steps": SERIES_MIN_STEPS}}
        return raw


def _format_errors(err: ValidationError, source: str) -> str:
    parts = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        # discriminated unions add the tag to the path: model.tabular_transformer.d_model
        for tag in ("tabular_transformer.", "leave_one_out.", "attention_pooling.",
                    "temporal_transformer."):
            key = key.replace(f"model.{tag}", "model.")
        hint = ""
        if e["type"] == "extra_forbidden":
            parent, _, name = key.rpartition(".")
            keys = _section_keys(parent)
            close = [k for k in keys if k.startswith(name)] or \
                difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
            hint = f" (did you mean {parent + '.' if parent else ''}{close[0]}?)" if close else ""
        parts.append(f"{key}: {e['msg']}{hint}")
    return f"{source}: invalid config: " + "; ".join(parts)


def _section_keys(path: str) -> list[str]:
    """The keys a config section accepts (every model type's, for `model`): for suggestions."""
    if not path:
        return list(Config.model_fields)
    if path == "model":
        return sorted({k for m in (TabularTransformerConfig, LeaveOneOutConfig,
                                   AttentionPoolingConfig, TemporalTransformerConfig)
                       for k in m.model_fields})
    field = Config.model_fields.get(path)
    return list(field.annotation.model_fields) if field is not None and \
        isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel) else []


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b=c` into a key path and a YAML-parsed value, so `--set x=[a,b]` gives a list."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set train.epochs=3")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    for item in overrides:
        path, value = parse_override(item)
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return raw


def read_yaml(path: str | Path) -> dict:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read config: {e}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}".replace("\n", " ")) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: the config must be a mapping of sections (data, model, train, ...)")
    return raw


def build_config(raw: dict, source: str = "config") -> Config:
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, source)) from None
    return validate_consistency(cfg, source)


def validate_consistency(cfg: Config, source: str = "config") -> Config:
    m = cfg.model
    if m.d_model % getattr(m, "n_heads", 1) != 0:
        raise ConfigError(f"{source}: model.d_model ({m.d_model}) must divide by model.n_heads")
    timeseries = bool(cfg.data.time_column)
    if timeseries and m.type not in TIMESERIES_MODELS:
        raise ConfigError(f"{source}: model.type {m.type} does not work in time-series mode "
                          f"(data.time_column is set); use {' or '.join(TIMESERIES_MODELS)}")
    if not timeseries and m.type == "temporal_transformer":
        raise ConfigError(f"{source}: model.type temporal_transformer needs data.time_column")
    if timeseries and (getattr(m, "stride", None) or 0) > m.window:
        raise ConfigError(f"{source}: model.stride ({m.stride}) must not exceed model.window "
                          f"({m.window}), or some steps would be in no window")
    if timeseries and cfg.data.group_column == cfg.data.time_column:
        raise ConfigError(f"{source}: data.group_column and data.time_column must differ")
    if cfg.threshold.method == "fixed" and cfg.threshold.value is None:
        raise ConfigError(f"{source}: threshold.value is required when threshold.method is fixed")
    if cfg.data.context_columns and not timeseries:
        raise ConfigError(f"{source}: data.context_columns needs time-series mode "
                          "(data.time_column); a table's columns are all scored")
    if cfg.threshold.per_entity and not timeseries:
        raise ConfigError(f"{source}: threshold.per_entity needs time-series mode "
                          "(data.time_column); a table has no entities")
    return cfg


def option_overrides(sets: list[str] | None, seed: int | None, device: str | None) -> list[str]:
    """The `--set` overrides of a command line, with --seed and --device as the keys they set."""
    overrides = list(sets or [])
    if seed is not None:
        overrides.append(f"train.seed={seed}")
    if device is not None:
        if device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"--device {device!r}: expected auto, cpu or cuda")
        overrides.append(f"train.device={device}")
    return overrides


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML file (or start from defaults), apply `--set` overrides, validate."""
    raw = read_yaml(path) if path is not None else {}
    raw = apply_overrides(raw, list(overrides or []))
    source = str(path) if path is not None else "config"
    if overrides:
        source += " (with --set)"
    return build_config(raw, source)
