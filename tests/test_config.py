import pytest

from attnad.config import Config, build_config, load_config
from attnad.errors import ConfigError


def test_defaults_are_the_leave_one_out_model():
    cfg = load_config(None)
    assert cfg.model.type == "leave_one_out"
    assert cfg.threshold.method == "quantile" and cfg.threshold.contamination == 0.01


def test_overrides_parse_yaml_values(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  epochs: 5\n")
    cfg = load_config(p, ["train.epochs=3", "data.id_columns=[a, b]", "model.type=attention_pooling"])
    assert cfg.train.epochs == 3
    assert cfg.data.id_columns == ["a", "b"]
    assert cfg.model.type == "attention_pooling"


@pytest.mark.parametrize("text,key", [
    ("train:\n  epoks: 3\n", "train.epoks"),
    ("train:\n  epochs: many\n", "train.epochs"),
    ("model:\n  type: tabular_transformer\n  d_model: -1\n", "model.d_model"),
    ("model:\n  type: nope\n", "model"),
])
def test_errors_name_key_and_file(tmp_path, text, key):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert key in str(e.value) and "bad.yaml" in str(e.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    p = tmp_path / "b.yaml"
    p.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="train.nope"):
        load_config(None, ["train.nope=1"])


def test_heads_must_divide_width():
    with pytest.raises(ConfigError, match="n_heads"):
        load_config(None, ["model.d_model=30", "model.n_heads=4"])


def test_shipped_configs_are_valid():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "configs"
    for name in ("tabular.yaml", "pooling.yaml"):
        assert isinstance(load_config(root / name), Config)


@pytest.mark.parametrize("name", ["tabular", "timeseries"])  # pooling.yaml is a recipe
def test_shipped_configs_state_the_defaults(name):
    """The shipped YAML files say their values are the defaults: hold them to it (tabular.yaml
    once said lr 0.001 while the default was 0.003)."""
    import yaml
    from pathlib import Path
    raw = yaml.safe_load((Path(__file__).parents[1] / "configs" / f"{name}.yaml").read_text())
    shipped = Config.model_validate(raw).model_dump()
    base = {"data": {"time_column": raw["data"]["time_column"]}} if name == "timeseries" else {}
    defaults = Config.model_validate(base).model_dump()
    diff = {f"{s}.{k}": (v, defaults[s][k]) for s in shipped for k, v in shipped[s].items()
            if v != defaults[s][k]}
    assert not diff, diff


def test_config_defaults_to_the_temporal_model_in_time_series_mode():
    assert Config.model_validate({"data": {"time_column": "t"}}).model.type == "temporal_transformer"
    assert Config.model_validate({"data": {"time_column": "t"}, "model": {"window": 8}}).model.window == 8
    assert Config().model.type == "leave_one_out"
    with pytest.raises(ConfigError, match="does not work in time-series mode"):
        build_config({"data": {"time_column": "t"}, "model": {"type": "tabular_transformer"}})
    with pytest.raises(ConfigError, match="needs data.time_column"):
        build_config({"model": {"type": "temporal_transformer"}})
