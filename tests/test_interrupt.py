"""Interruptions: kill -9, SIGTERM or Ctrl-C during a write leave the previous output whole, and a
clean interrupt leaves no temporary file. Real `attnad score` processes, killed while their
temporary output is being written (observed on disk, not guessed with a sleep)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from attnad.artifact import META, WEIGHTS, read_artifact, write_artifact
from tests.factories import make_table

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    """Enough rows that scoring in batches of 50 takes seconds: a wide window to kill it in."""
    p = tmp_path_factory.mktemp("big") / "big.csv"
    make_table(20_000, seed=3, planted=False)[0].to_csv(p, index=False)
    return p


def _default_sigint() -> None:
    # A test run started in the background by a non-interactive shell inherits SIGINT ignored,
    # and Python then never turns Ctrl-C into KeyboardInterrupt; restore what a terminal gives.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_score(data: Path, model: Path, out: Path, batch: int = 50) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "attnad", "score", str(data), "-m", str(model),
                             "-o", str(out), "--batch-size", str(batch), "--quiet"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)


def temp_files(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*"))


def wait_for_partial_write(proc: subprocess.Popen, out: Path, timeout: float = 120) -> Path:
    """Block until the process has written part of its temporary output (or fail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t in temp_files(out):
            try:
                if t.stat().st_size > 0:
                    return t
            except FileNotFoundError:
                pass
        if proc.poll() is not None:
            pytest.fail(f"attnad finished before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail("no temporary output appeared")


def previous_output(out: Path) -> bytes:
    old = pd.DataFrame({"id": ["yesterday"], "anomaly_score": [0.5]})
    old.to_csv(out, index=False)
    return out.read_bytes()


def test_sigkill_during_the_write_keeps_the_previous_output(tmp_path, big_csv, model_dir):
    out = tmp_path / "scored.csv"
    before = previous_output(out)
    proc = start_score(big_csv, model_dir, out)
    partial = wait_for_partial_write(proc, out)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes() == before  # the old output, whole
    assert partial.exists()  # kill -9 cannot clean up: the partial file never had the real name


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_clean_up(tmp_path, big_csv, model_dir, sig, code):
    out = tmp_path / "scored.csv"
    before = previous_output(out)
    proc = start_score(big_csv, model_dir, out)
    wait_for_partial_write(proc, out)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "files being written were discarded" in err
    assert out.read_bytes() == before
    assert temp_files(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.csv"]


def test_two_writers_one_complete_result_wins(tmp_path, model_dir):
    inputs = []
    for n, seed in ((1000, 1), (1500, 2)):
        p = tmp_path / f"in{n}.csv"
        make_table(n, seed=seed, planted=False)[0].assign(id=[f"{n}-{i}" for i in range(n)]) \
            .to_csv(p, index=False)
        inputs.append((p, n))
    out = tmp_path / "shared.csv"
    procs = [start_score(p, model_dir, out, batch=200) for p, _ in inputs]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    got = pd.read_csv(out)
    winner = [n for _, n in inputs if len(got) == n]
    assert len(winner) == 1, len(got)
    n = winner[0]
    assert got.id.tolist() == [f"{n}-{i}" for i in range(n)]  # one file's rows, none of the other
    assert np.isfinite(got.anomaly_score).all()
    assert temp_files(out) == []


def _state(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((4,), value)}


def test_interrupted_model_save_keeps_the_previous_model(tmp_path, monkeypatch):
    target = tmp_path / "model"
    write_artifact(target, {"note": "old"}, _state(1.0))
    import attnad.artifact as artifact

    def dies(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(artifact, "save_file", dies)
    with pytest.raises(KeyboardInterrupt):
        write_artifact(target, {"note": "new"}, _state(2.0))
    monkeypatch.undo()
    meta, tensors = read_artifact(target)
    assert meta["note"] == "old" and float(tensors["w"][0]) == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    write_artifact(target, {"note": "new"}, _state(2.0))  # replaced whole, nothing left over
    meta, tensors = read_artifact(target)
    assert meta["note"] == "new" and float(tensors["w"][0]) == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert sorted(p.name for p in target.iterdir()) == [META, WEIGHTS]


def test_outputs_get_the_usual_permissions(tmp_path, model_dir, csv_file):
    """Temporary files are private (0600); the renamed output must not stay that way."""
    from typer.testing import CliRunner

    from attnad.cli import app
    mask = os.umask(0o022)
    try:
        out, js, model = tmp_path / "o.csv", tmp_path / "s.json", tmp_path / "m"
        r = CliRunner().invoke(app, ["detect", str(csv_file), "-m", str(model_dir), "-o", str(out),
                                     "--summary-json", str(js)])
        assert r.exit_code == 0, r.output
        assert out.stat().st_mode & 0o777 == 0o644
        assert js.stat().st_mode & 0o777 == 0o644
        write_artifact(model, {"note": "x"}, _state(1.0))
        assert model.stat().st_mode & 0o777 == 0o755
    finally:
        os.umask(mask)
