"""Saved-model compatibility: model directories written by an earlier attnad keep loading and
scoring as they did, and models written today keep the same layout."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors import safe_open
from typer.testing import CliRunner

from attnad.cli import app
from attnad.detector import Detector, SeriesDetector, TableDetector
from attnad.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "format_v1"
runner = CliRunner()
# float32 model arithmetic may round differently on another CPU; on the machine that wrote the
# fixture the scores are equal bit for bit (the issue note of the restructuring says so)
RTOL = 1e-6

CASES = {
    "table": (TableDetector, "table.csv", "table_scores.csv",
              ["--set", "data.id_columns=[id]", "--set", "model.d_model=8", "--set",
               "model.n_heads=2", "--set", "model.n_layers=1", "--set", "model.memory_size=16",
               "--set", "model.n_memories=4", "-c", "configs/tabular.yaml"]),
    "series": (SeriesDetector, "series.csv", "series_scores.csv",
               ["--set", "data.time_column=ts", "--set", "data.group_column=host", "--set",
                "data.label_column=label", "--set", "model.window=16", "--set", "model.d_model=8",
                "--set", "model.n_heads=2", "--set", "model.n_layers=1",
                "-c", "configs/timeseries.yaml"]),
}


def _expected(name: str) -> np.ndarray:
    return pd.read_csv(FIXTURES / CASES[name][2])["anomaly_score"].to_numpy(np.float64)


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_old_model_loads_as_its_mode_and_scores_as_recorded(name):
    cls, data, _, _ = CASES[name]
    det = Detector.load(FIXTURES / f"{name}_model", device="cpu")
    assert type(det) is cls and isinstance(det, Detector)
    scores = det.score_samples(pd.read_csv(FIXTURES / data))
    np.testing.assert_allclose(scores, _expected(name), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_old_model_scores_files_as_recorded_through_the_cli(tmp_path, name):
    _, data, _, _ = CASES[name]
    out = tmp_path / "scored.csv"
    r = runner.invoke(app, ["score", str(FIXTURES / data), "-m", str(FIXTURES / f"{name}_model"),
                            "-o", str(out), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out)["anomaly_score"].to_numpy(np.float64)
    np.testing.assert_allclose(got, _expected(name), rtol=RTOL, atol=1e-12)


def _layout(model_dir: Path) -> tuple[dict, dict]:
    """The shape of a model directory: its JSON with every leaf value replaced by its type, and
    its tensors' names, dtypes and shapes."""
    def shape_of(x):
        if isinstance(x, dict):
            return {k: shape_of(v) for k, v in x.items()}
        if isinstance(x, list):
            return ["list"]
        return type(x).__name__
    meta = json.loads((model_dir / "attnad.json").read_text())
    for volatile in ("created", "attnad_version", "torch_version", "python_version",
                     "weights_sha256"):
        meta.pop(volatile)
    meta["training"] = sorted(meta["training"])  # timings and counts differ; keys must not
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        tensors = {k: (str(f.get_tensor(k).dtype), tuple(f.get_tensor(k).shape)) for k in f.keys()}
    return shape_of(meta), tensors


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_model_trained_today_has_the_old_layout(tmp_path, monkeypatch, name):
    _, data, _, args = CASES[name]
    monkeypatch.chdir(Path(__file__).parents[1])  # the configs/ folder
    r = runner.invoke(app, ["train", str(FIXTURES / data), "-o", str(tmp_path / "m"), "--seed",
                            "0", "--set", "train.max_steps=40", "--set", "train.min_steps=40",
                            "--set", "train.threads=1", *args])
    assert r.exit_code == 0, r.output
    (new_meta, new_tensors), (old_meta, old_tensors) = _layout(tmp_path / "m"), \
        _layout(FIXTURES / f"{name}_model")
    # a model may gain keys and tensors (old models, without them, still load and score as
    # before: the tests above); every old key and tensor keeps its name, type and shape
    assert {k: new_tensors.get(k) for k in old_tensors} == old_tensors
    assert _without_new_keys(new_meta, old_meta) == old_meta


def _without_new_keys(new: dict, old: dict) -> dict:
    return {k: _without_new_keys(v, old[k]) if isinstance(v, dict) and isinstance(old.get(k), dict)
            else v for k, v in new.items() if k in old}


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_old_model_scores_with_no_drift_section(tmp_path, name):
    """Format version 1 has no training profile: detect runs as before, its summary says
    "drift": null, and the drift gates, which could not be checked, are refused (exit 2)."""
    _, data, _, _ = CASES[name]
    model = FIXTURES / f"{name}_model"
    det = Detector.load(model, device="cpu")
    assert det.profile_ is None and det.drift_counts() is None
    js = tmp_path / "s.json"
    r = runner.invoke(app, ["detect", str(FIXTURES / data), "-m", str(model), "-o",
                            str(tmp_path / "o.csv"), "--summary-json", str(js), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert json.loads(js.read_text())["drift"] is None
    r = runner.invoke(app, ["detect", str(FIXTURES / data), "-m", str(model), "-o",
                            str(tmp_path / "o.csv"), "--fail-on-drift", "0.25"])
    assert r.exit_code == 2 and "retrain" in r.output
    with pytest.raises(UserError, match="retrain"):
        det.drift(pd.read_csv(FIXTURES / data))
