"""The same code on a GPU (`--device cuda`): skipped where torch sees no CUDA device, as in CI.

A model trained on the GPU must score like the same model on the CPU, up to float rounding, and
its directory must load anywhere; the row memory runs on the GPU beside the model."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from attnad.cli import app
from attnad.config import Config
from attnad.detector import Detector
from attnad.models.memory import RowMemory

from tests.factories import FAST, make_table

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * float(np.std(b)))


def test_row_memory_on_gpu_matches_cpu():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(20_000, 24)).astype(np.float32))
    mem = RowMemory.fit(x[:5_000], size=256, count=32, seed=0)
    fresh = x[5_000:]  # more rows than one GPU chunk
    on_gpu = mem.to("cuda").energy(fresh)
    assert on_gpu.device.type == "cpu"
    close(on_gpu.numpy(), mem.energy(fresh).numpy())
    # a training row is not vouched for by its own copy on the GPU either
    own = mem.to("cuda").energy(mem.memories[0, :10].clone())
    close(own.numpy(), mem.energy(mem.memories[0, :10].clone()).numpy())


def test_tabular_trained_on_gpu_scores_like_cpu(tmp_path):
    df, kinds = make_table()
    cfg = Config.model_validate({**FAST, "data": {"id_columns": ["id"]}})
    det = Detector(cfg).fit(df, device="cuda")
    assert det.training_["device"].startswith("cuda")
    gpu = det.score(df)
    det.save(tmp_path / "m")
    cpu = Detector.load(tmp_path / "m", device="cpu").score(df)
    close(gpu, cpu)
    close(Detector.load(tmp_path / "m", device="cuda").score(df), cpu)
    top = set(np.argsort(-cpu)[:25].tolist())
    assert set(kinds.values()) <= top


def test_timeseries_trained_on_gpu_scores_like_cpu(tmp_path):
    from tests.factories import TS_FAST, make_series
    train, _ = make_series(seed=1, start=0, planted=False)
    test, kinds = make_series(seed=2, start=800, planted=True)
    det = Detector(Config.model_validate(TS_FAST)).fit(train, device="cuda")
    assert det.training_["device"].startswith("cuda")
    gpu = det.score(test)
    det.save(tmp_path / "ts")
    close(gpu, Detector.load(tmp_path / "ts", device="cpu").score(test))
    assert gpu[kinds["spike"]].min() > np.quantile(gpu, 0.95)


def test_cli_device_cuda(tmp_path):
    df, _ = make_table(n=600)
    data = tmp_path / "t.csv"
    df.to_csv(data, index=False)
    runner = CliRunner()
    sets = ["--set", "train.max_steps=50", "--set", "train.min_steps=50", "--set",
            "data.id_columns=[id]"]
    r = runner.invoke(app, ["train", str(data), "-o", str(tmp_path / "m"), "--device", "cuda",
                            "-q"] + sets)
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(data), "-m", str(tmp_path / "m"), "-o",
                            str(tmp_path / "s.csv"), "--device", "cuda", "-q"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "s.csv").read_text().count("\n") == len(df) + 1


def test_marginal_tails_on_gpu_match_cpu():
    from attnad.models.marginal import MarginalTails
    x = torch.from_numpy(np.random.default_rng(1).standard_t(3, size=(300_000, 8)))
    tails = MarginalTails.fit(x[:50_000])
    on_gpu = tails.to("cuda").surprise(x)  # more rows than one GPU chunk
    assert on_gpu.device.type == "cpu"
    close(on_gpu.numpy(), tails.surprise(x).numpy())
