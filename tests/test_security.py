"""Model directories and configs are untrusted data: nothing in them runs code or makes attnad
allocate absurd amounts of memory."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from attnad.artifact import META, WEIGHTS, sha256_file
from attnad.cli import app
from attnad.config import Config, load_config
from attnad.errors import ConfigError, UserError
from attnad.limits import MAX_PARAMETERS, check_model_size, count_parameters
from attnad.models import build_model

runner = CliRunner()
PACKAGE = Path(__file__).resolve().parents[1] / "attnad"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def refused(r, *fragments):
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1, r.stderr
    for f in fragments:
        assert f in err[0], err[0]


def _copy(model_dir, tmp_path) -> Path:
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    return bad


def _rewrite_meta(model: Path, change) -> None:
    meta = json.loads((model / META).read_text())
    change(meta)
    (model / META).write_text(json.dumps(meta))


class Boom:
    def __reduce__(self):
        return (Path.touch, (Path("PWNED"),))


def test_pickled_weights_are_never_unpickled(tmp_path, model_dir, csv_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = _copy(model_dir, tmp_path)
    (bad / WEIGHTS).write_bytes(pickle.dumps(Boom()))
    refused(run("score", csv_file, "-m", bad, "-o", tmp_path / "o.csv"), "checksum")
    # even with a matching checksum the file is parsed as safetensors, never unpickled
    _rewrite_meta(bad, lambda m: m.update(weights_sha256=sha256_file(bad / WEIGHTS)))
    refused(run("score", csv_file, "-m", bad, "-o", tmp_path / "o.csv"), "cannot read weights")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("key,value", [
    ("d_model", 10**6), ("n_layers", 10**4), ("memory_size", 10**9), ("n_memories", 10**7),
    ("n_score_masks", 10**6), ("max_tokens", 10**8),
])
def test_model_json_asking_absurd_sizes_is_refused(tmp_path, model_dir, csv_file, key, value):
    bad = _copy(model_dir, tmp_path)
    _rewrite_meta(bad, lambda m: m["config"]["model"].update({key: value}))
    refused(run("score", csv_file, "-m", bad, "-o", tmp_path / "o.csv"), f"model.{key}",
            "attnad.json")


def test_model_json_with_a_huge_combination_is_refused_before_building(tmp_path, model_dir,
                                                                        csv_file, monkeypatch):
    bad = _copy(model_dir, tmp_path)
    _rewrite_meta(bad, lambda m: m["config"]["model"].update(d_model=1024, n_layers=12, n_heads=8))
    import attnad.tabular.detector as detector
    built = []

    def spy(*a):  # count real builds; the size check builds on the meta device (no memory)
        if torch.empty(0).device.type != "meta":
            built.append(a)
        return build_model(*a)
    monkeypatch.setattr(detector, "build_model", spy)
    refused(run("score", csv_file, "-m", bad, "-o", tmp_path / "o.csv"), "parameters",
            "model.d_model")
    assert built == [], "the model was built (allocated) before the size check"


@pytest.mark.parametrize("override,key", [
    ("model.d_model=1000000", "model.d_model"), ("model.n_layers=10000", "model.n_layers"),
    ("model.memory_size=1000000000", "model.memory_size"), ("train.batch_size=10000000000",
                                                             "train.batch_size"),
    ("train.max_steps=100000000000", "train.max_steps"), ("train.seed=-1", "train.seed"),
    ("model.memory_weight=1e300", "model.memory_weight"),
])
def test_config_asking_absurd_sizes_is_refused(tmp_path, csv_file, override, key):
    refused(run("train", csv_file, "-o", tmp_path / "m", "--set", override), key)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("override,key", [
    ("model.window=10000000", "model.window"), ("model.stride=100000000", "model.stride"),
    ("model.batch_windows=100000000", "model.batch_windows"),
])
def test_timeseries_config_asking_absurd_sizes_is_refused(override, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(None, ["data.time_column=t", override])


def test_combination_of_allowed_sizes_is_refused_before_training(tmp_path, csv_file):
    r = run("train", csv_file, "-o", tmp_path / "m", "--set=model.d_model=1024",
            "--set=model.n_layers=12", "--set=model.n_heads=8")
    refused(r, "parameters", f"limit {MAX_PARAMETERS:,}")
    assert not (tmp_path / "m").exists()


def test_training_step_memory_estimate(monkeypatch):
    cfg = load_config(None, ["model.d_model=512", "model.n_layers=12", "model.n_heads=8"])
    build = lambda: build_model(cfg.model, 50, [])  # noqa: E731
    assert count_parameters(build) < MAX_PARAMETERS
    monkeypatch.setattr("attnad.limits.physical_memory_bytes", lambda: 8 << 30)
    check_model_size(build, cfg.model, source="x", batch=256, tokens=50)
    with pytest.raises(UserError, match="train.batch_size"):
        check_model_size(build, cfg.model, source="x", batch=1_000_000, tokens=50)
    with pytest.raises(UserError, match="model.n_memories"):  # row memories count too
        check_model_size(build, cfg.model, source="x", extra_floats=1024 * 65_536 * 100)


def test_yaml_tags_cannot_run_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "evil.yaml"
    p.write_text("train:\n  epochs: !!python/object/apply:os.system ['touch PWNED']\n")
    with pytest.raises(ConfigError, match="evil.yaml"):
        load_config(p)
    with pytest.raises(ConfigError):
        load_config(None, ["train.epochs=!!python/object/apply:os.system ['touch PWNED']"])
    assert not (tmp_path / "PWNED").exists()


def test_no_code_execution_paths_in_the_package():
    """No pickle, eval/exec or unsafe YAML anywhere; torch.load only with weights_only=True."""
    bad = []
    for f in sorted(PACKAGE.rglob("*.py")):
        text = f.read_text()
        for pattern in (r"\bimport pickle\b", r"\bpickle\.", r"(?<![\.\w])eval\(", r"\bexec\(",
                        r"yaml\.load\(", r"yaml\.unsafe_load", r"\bmarshal\b", r"\bshelve\b",
                        r"dill"):
            if re.search(pattern, text):
                bad.append(f"{f.name}: {pattern}")
        for m in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in m.group(1):
                bad.append(f"{f.name}: torch.load without weights_only=True")
    assert bad == []


@pytest.mark.parametrize("kind", ["leave_one_out", "tabular_transformer", "attention_pooling"])
@pytest.mark.parametrize("d,layers,n_num,cards,tokens", [
    (4, 1, 1, [], 64), (8, 1, 0, [2], 2), (32, 2, 16, [], 64), (32, 2, 5, [3, 70, 4], 64),
    (16, 3, 300, [10] * 5, 8), (64, 4, 2, [1000], 64), (8, 2, 70, [5] * 70, 16)])
def test_the_rough_size_bounds_every_table_model(kind, d, layers, n_num, cards, tokens):
    """Models under the bound are built on the CPU to be counted (no meta device): the bound must
    never be below the real size, or a hostile model file could make attnad allocate more than
    SMALL_MODEL_FLOATS before the check."""
    from attnad.limits import rough_floats
    from attnad.models import build_model
    raw = {"type": kind, "d_model": d, "max_tokens": tokens}
    if kind != "attention_pooling":
        raw.update(n_layers=layers, n_heads=1)
    cfg = Config.model_validate({"model": raw}).model
    exact = count_parameters(lambda: build_model(cfg, n_num, cards))
    assert rough_floats(cfg, n_num + len(cards), len(cards) * max(cards, default=0)) >= exact


@pytest.mark.parametrize("kind,extra", [
    ("temporal_transformer", {}), ("temporal_transformer", {"latents": 8, "latent_dim": 16}),
    ("temporal_transformer", {"encoder": "gru"}), ("temporal_transformer", {"encoder": "lstm"}),
    ("attention_pooling", {"encoder": "cnn"}), ("attention_pooling", {})])
@pytest.mark.parametrize("d,features,window", [(8, 1, 2), (32, 7, 64), (64, 40, 256)])
def test_the_rough_size_bounds_every_series_model(kind, extra, d, features, window):
    from attnad.limits import rough_floats
    from attnad.models import build_series_model
    heads = {"n_heads": 1} if kind == "temporal_transformer" else {}
    cfg = Config.model_validate({"data": {"time_column": "t"}, "model": {
        "type": kind, "d_model": d, "window": window, **heads, **extra}}).model
    exact = count_parameters(lambda: build_series_model(cfg, features))
    assert rough_floats(cfg, features) >= exact


def test_a_small_model_is_counted_without_the_meta_device_nor_a_draw_from_the_generator():
    from attnad.limits import SMALL_MODEL_FLOATS, rough_floats
    from attnad.models import build_model
    cfg = Config().model
    devices = []

    def build():  # where the model is built: the default device inside count_parameters
        devices.append(torch.empty(0).device.type)
        return build_model(cfg, 16, [3])

    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    fast = count_parameters(build, rough_floats(cfg, 17, 3))
    assert torch.equal(torch.rand(3), expected)  # the generator's state is as it was
    assert fast == count_parameters(build)  # the same count as on the meta device
    assert devices == ["cpu", "meta"]  # small: on the CPU; no bound given: on the meta device
    assert count_parameters(build, SMALL_MODEL_FLOATS) == fast and devices[-1] == "meta"
