"""The CLI contract: commands, outputs, exit codes; one real subprocess run as cron would do it."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from attnad.cli import app
from tests.factories import FAST

runner = CliRunner()
FAST_SETS = [f"--set=train.{k}={v}" for k, v in FAST["train"].items()] + \
            [f"--set=model.{k}={v}" for k, v in FAST["model"].items()]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_version_and_help_with_example():
    r = run("--version")
    assert r.exit_code == 0 and re.match(r"attnad \d", r.output)
    for cmd in ("train", "score", "detect", "explain", "report"):
        r = run(cmd, "--help")
        assert r.exit_code == 0 and "Example: attnad " + cmd in r.output


def test_train_then_score_keeps_rows_order_and_columns(tmp_path, csv_file, table):
    model = tmp_path / "m"
    r = run("train", csv_file, "-o", model, "--set=data.id_columns=[id]", *FAST_SETS, "--seed", 0)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in model.iterdir()) == ["attnad.json", "model.safetensors"]
    out = tmp_path / "scored.parquet"
    r = run("score", csv_file, "-m", model, "-o", out)
    assert r.exit_code == 0, r.output
    got = pd.read_parquet(out)
    df = table[0]
    assert len(got) == len(df)
    assert list(got.columns) == list(df.columns) + ["anomaly_score"]
    assert got["id"].tolist() == df["id"].tolist()
    assert np.isfinite(got.anomaly_score).all()


def test_score_with_shuffled_columns_and_an_extra_column(tmp_path, model_dir, table):
    df = table[0]
    p = tmp_path / "shuffled.parquet"
    df[list(reversed(df.columns))].assign(extra=1).to_parquet(p)
    out = tmp_path / "s.csv"
    r = run("score", p, "-m", model_dir, "-o", out)
    assert r.exit_code == 0, r.output
    assert "extra" in r.output  # warned, not fatal
    ref = tmp_path / "ref.csv"
    run("score", _write(tmp_path / "ref_in.parquet", df), "-m", model_dir, "-o", ref)
    assert np.allclose(pd.read_csv(out).anomaly_score, pd.read_csv(ref).anomaly_score)


def _write(p, df):
    df.to_parquet(p)
    return p


def test_detect_with_model_flags_probability_summary(tmp_path, model_dir, csv_file, table):
    out, js = tmp_path / "d.csv", tmp_path / "s.json"
    r = run("detect", csv_file, "-m", model_dir, "-o", out, "--summary-json", js)
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out)
    assert {"anomaly_score", "anomaly_flag", "anomaly_probability"} <= set(got.columns)
    assert got.anomaly_probability.between(0, 1).all()
    s = json.loads(js.read_text())
    assert s["rows"] == len(table[0]) and s["flagged"] == int(got.anomaly_flag.sum())
    assert s["top_rows"][0]["ids"]["id"].startswith("r")
    planted = set(table[1].values())
    assert planted & {t["row"] for t in s["top_rows"]}


def test_detect_threshold_and_contamination_options(tmp_path, model_dir, csv_file):
    out = tmp_path / "d.csv"
    r = run("detect", csv_file, "-m", model_dir, "-o", out, "--contamination", 0.1)
    assert r.exit_code == 0
    rate = pd.read_csv(out).anomaly_flag.mean()
    assert 0.05 < rate < 0.15
    r = run("detect", csv_file, "-m", model_dir, "-o", out, "--threshold", 1e9)
    assert r.exit_code == 0 and pd.read_csv(out).anomaly_flag.sum() == 0


def test_gates_exit_1(tmp_path, model_dir, csv_file):
    out = tmp_path / "d.csv"
    assert run("detect", csv_file, "-m", model_dir, "-o", out, "--fail-on-rate", 0.0001).exit_code == 1
    assert run("detect", csv_file, "-m", model_dir, "-o", out, "--fail-on-count", 0).exit_code == 1
    assert run("detect", csv_file, "-m", model_dir, "-o", out, "--fail-on-rate", 0.5).exit_code == 0


def test_detect_without_model_fits_on_the_file(tmp_path, csv_file, table):
    out, saved = tmp_path / "d.parquet", tmp_path / "saved"
    r = run("detect", csv_file, "-o", out, "--set=data.id_columns=[id]", *FAST_SETS,
            "--save-model", saved)
    assert r.exit_code == 0, r.output
    assert len(pd.read_parquet(out)) == len(table[0])
    assert (saved / "attnad.json").exists()


def _no_traceback(r):
    return "Traceback" not in r.output and "Traceback" not in (r.stderr or "")


@pytest.mark.parametrize("args", [
    ["score", "missing.csv", "-m", "{model}", "-o", "{tmp}/o.csv"],
    ["score", "{csv}", "-m", "{tmp}/no_model", "-o", "{tmp}/o.csv"],
    ["score", "{csv}", "-m", "{model}", "-o", "{tmp}/o.xlsx"],
    ["score", "{csv}", "-m", "{model}", "-o", "{csv}"],
    ["train", "{csv}", "-o", "{tmp}/m2", "--set", "train.epoks=3"],
    ["train", "{csv}", "-o", "{tmp}/m2", "--set", "data.id_columns=[nope]"],
    ["train", "{csv}", "-o", "{tmp}/m2", "-c", "{tmp}/missing.yaml"],
    ["detect", "{csv}", "-m", "{model}", "-o", "{tmp}/o.csv", "--contamination", "2"],
    ["train", "{csv}", "-o", "{tmp}/m2", "--device", "tpu"],
])
def test_user_errors_exit_2_with_one_clear_line(tmp_path, csv_file, model_dir, args):
    subst = {"{model}": str(model_dir), "{tmp}": str(tmp_path), "{csv}": str(csv_file)}
    argv = []
    for a in args:
        for k, v in subst.items():
            a = a.replace(k, v)
        argv.append(a)
    r = runner.invoke(app, argv)
    assert r.exit_code == 2, r.output
    assert "error" in r.output.lower() and _no_traceback(r)


def test_missing_trained_column_is_named(tmp_path, model_dir, table):
    p = tmp_path / "less.csv"
    table[0].drop(columns=["c"]).to_csv(p, index=False)
    r = run("score", p, "-m", model_dir, "-o", tmp_path / "o.csv")
    assert r.exit_code == 2 and "missing column" in r.output and " c" in r.output


def test_tampered_model_is_refused(tmp_path, model_dir, csv_file):
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    w = bad / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    r = run("score", csv_file, "-m", bad, "-o", tmp_path / "o.csv")
    assert r.exit_code == 2 and "checksum" in r.output and _no_traceback(r)
    meta = json.loads((model_dir / "attnad.json").read_text())
    meta["format_version"] = 999
    shutil.copy(model_dir / "model.safetensors", w)
    (bad / "attnad.json").write_text(json.dumps(meta))
    r = run("score", csv_file, "-m", bad, "-o", tmp_path / "o.csv")
    assert r.exit_code == 2 and "format version" in r.output


def test_existing_output_replaced_whole(tmp_path, model_dir, csv_file):
    out = tmp_path / "o.csv"
    out.write_text("old content\n")
    assert run("score", csv_file, "-m", model_dir, "-o", out).exit_code == 0
    assert "old content" not in out.read_text()
    assert len(pd.read_csv(out)) == sum(1 for _ in open(csv_file)) - 1
    assert [p.name for p in tmp_path.iterdir()] == ["o.csv"]


def test_installed_command_runs_in_a_subprocess(tmp_path, model_dir, csv_file):
    exe = Path(sys.executable).parent / "attnad"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "attnad"]
    out = tmp_path / "o.csv"
    p = subprocess.run(cmd + ["detect", str(csv_file), "-m", str(model_dir), "-o", str(out),
                              "--fail-on-count", "0"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr  # the gate: something is flagged
    assert "\x1b[" not in p.stderr  # no colour codes when not on a terminal
    assert len(pd.read_csv(out)) == sum(1 for _ in open(csv_file)) - 1
    p = subprocess.run([sys.executable, "-m", "attnad", "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("attnad ")


def test_every_command_is_in_the_readme():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for cmd in ("train", "score", "detect", "explain", "report"):
        assert f"attnad {cmd}" in readme
    assert "make demo" in readme and "make test" in readme


def test_set_on_a_trained_model_changes_scoring_keys_only(tmp_path, model_dir, csv_file):
    out = tmp_path / "d.csv"
    r = run("detect", csv_file, "-m", model_dir, "-o", out, "--set", "threshold.contamination=0.2")
    assert r.exit_code == 0, r.output
    assert 0.12 < pd.read_csv(out).anomaly_flag.mean() < 0.28
    r = run("score", csv_file, "-m", model_dir, "-o", out, "--set", "score.batch_size=100")
    assert r.exit_code == 0, r.output
    r = run("score", csv_file, "-m", model_dir, "-o", out, "--set", "model.d_model=8")
    assert r.exit_code == 2 and "fixed when the model was trained" in r.output


def test_help_shows_flags_without_a_value_placeholder():
    for command in ("train", "score", "detect", "explain", "report"):
        r = runner.invoke(app, [command, "--help"], env={"COLUMNS": "120"})
        assert r.exit_code == 0
        assert "<bool>" not in r.output, r.output
    assert "--set KEY=VALUE" in runner.invoke(app, ["score", "--help"],
                                              env={"COLUMNS": "120"}).output


def test_quiet_still_says_why_a_gate_failed(tmp_path, model_dir, csv_file):
    r = run("detect", csv_file, "-m", model_dir, "-o", tmp_path / "d.csv", "--fail-on-count", "0",
            "--quiet")
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]  # one line, nothing else
    assert "gate breached: fail-on-count 0" in r.stderr
