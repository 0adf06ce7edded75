"""Beyond one machine (marked `scale`, run by `make test-scale`): Ray Data scoring gives the local
engine's scores, and a 2-process torchrun trains with DDP (a table and a time series) and saves the
model once.

Both start real processes (a local Ray cluster with 2 CPUs, torchrun with gloo), so each has a
hard timeout: a scheduling deadlock fails the test instead of hanging CI.
"""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from attnad.data.dataset import open_data
from attnad.detector import Detector
from attnad.errors import UserError
from attnad.pipeline import score_dataset
from tests.factories import make_table

pytestmark = pytest.mark.scale


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale") / "in"
    (root / "day=1").mkdir(parents=True)
    (root / "day=2").mkdir()
    df, _ = make_table(900, seed=5)
    df.iloc[:450].to_parquet(root / "day=1" / "part-0.parquet", index=False)
    df.iloc[450:].to_parquet(root / "day=2" / "part-0.parquet", index=False)
    return root, df


@pytest.mark.timeout(240)
def test_ray_engine_scores_equal_the_local_engine(parquet_dir, fitted, model_dir, tmp_path):
    ray = pytest.importorskip("ray")
    from attnad.engines.ray_engine import score_ray
    root, df = parquet_dir
    files = open_data(root)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # the hang-prone setting
    try:
        n = score_ray(model_dir, Detector.load(model_dir, device="cpu"), files,
                      tmp_path / "ray", batch_size=200)
    finally:
        ray.shutdown()
    assert n == len(df)
    got = pd.read_parquet(tmp_path / "ray")
    score_dataset(fitted, files, tmp_path / "local", flags=False)
    local = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "local").rglob("*.parquet"))])
    # every row once, with the local engine's score; Ray does not keep row order (seen: the
    # second input file's rows first; batches swapped inside one output file), so match by id
    assert sorted(got["id"]) == sorted(df["id"])
    got = got.set_index("id")
    local = local.set_index("id").loc[got.index]
    np.testing.assert_allclose(got["anomaly_score"].to_numpy(),
                               local["anomaly_score"].to_numpy(), rtol=0, atol=1e-9)


def test_ray_engine_refuses_a_single_time_series(tmp_path):
    pytest.importorskip("ray")
    from attnad.engines.ray_engine import score_ray
    t = np.arange(200)
    df = pd.DataFrame({"ts": t, "a": np.sin(t / 5), "b": np.cos(t / 3)})
    det = Detector({"data": {"time_column": "ts"},
                    "model": {"window": 16, "d_model": 8, "n_heads": 2, "n_layers": 1},
                    "train": {"threads": 1, "min_steps": 5, "max_steps": 5}}).fit(df)
    df.to_parquet(tmp_path / "s.parquet", index=False)
    with pytest.raises(UserError, match="group_column"):
        score_ray(tmp_path / "m", det, tmp_path / "s.parquet", tmp_path / "out")


def _torchrun_train(data, out, *settings: str):
    """`attnad train --distributed` in 2 torchrun processes (gloo, one thread each, 40 steps)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--standalone", "-m", "attnad", "train", str(data), "-o", str(out),
           "--distributed", "--set", "train.threads=1", "--set", "train.max_steps=40",
           "--set", "model.d_model=16", "--set", "model.n_heads=2"]
    for item in settings:
        cmd += ["--set", item]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=200)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("trained on") == 1  # rank 0 only reports and saves
    det = Detector.load(out, device="cpu")
    assert det.training_["world_size"] == 2
    return det


@pytest.mark.timeout(240)
def test_torchrun_two_processes_train_with_ddp_and_save_once(tmp_path):
    df, _ = make_table(600, seed=6)
    data = tmp_path / "t.parquet"
    df.to_parquet(data, index=False)
    det = _torchrun_train(data, tmp_path / "m", "data.id_columns=[id]")
    scores = det.score(df)
    assert np.isfinite(scores).all() and len(scores) == len(df)


def test_distributed_outside_torchrun_says_how_to_start_it(tmp_path, csv_file):
    from typer.testing import CliRunner

    from attnad.cli import app
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    r = CliRunner().invoke(app, ["train", str(csv_file), "-o", str(tmp_path / "m"),
                                 "--distributed"], env=env)
    assert r.exit_code == 2 and "torchrun" in r.output


@pytest.mark.timeout(240)
def test_torchrun_two_processes_train_a_time_series(tmp_path):
    from tests.factories import make_series
    df, _ = make_series(seed=1, start=0, planted=False)
    data = tmp_path / "s.parquet"
    df.to_parquet(data, index=False)
    det = _torchrun_train(data, tmp_path / "m", "data.time_column=ts", "data.group_column=host",
                          "data.label_column=label", "model.window=32")
    assert det.training_["steps"] == 40
    scores = det.score(df)
    assert np.isfinite(scores).all() and len(scores) == len(df)
