"""Directories and globs: file discovery, mirrored outputs (Hive partitions kept), scores equal to
scoring each file alone, time series across files (sorted input declared, or refused), and the
Arrow-batch transform the engines share."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from attnad.cli import app
from attnad.data.dataset import Files, mirror, open_data
from attnad.detector import Detector
from attnad.errors import DataError, UserError
from attnad.pipeline import BatchScorer, score_dataset, score_file
from tests.factories import make_table

runner = CliRunner()


@pytest.fixture(scope="module")
def hive(tmp_path_factory):
    """day=1/part-0.parquet, day=2/part-0.parquet, day=2/part-1.csv, plus files to skip."""
    root = tmp_path_factory.mktemp("hive") / "in"
    df, _ = make_table(600, seed=3)
    for d in ("day=1", "day=2", "_temporary"):
        (root / d).mkdir(parents=True)
    df.iloc[:200].to_parquet(root / "day=1" / "part-0.parquet", index=False)
    df.iloc[200:400].to_parquet(root / "day=2" / "part-0.parquet", index=False)
    df.iloc[400:].to_csv(root / "day=2" / "part-1.csv", index=False)
    df.iloc[:5].to_parquet(root / "_temporary" / "junk.parquet", index=False)
    (root / "_SUCCESS").write_text("")
    (root / ".part-9.parquet.crc").write_text("x")
    return root, df


def test_directory_lists_data_files_in_name_order_and_skips_markers(hive):
    root, _ = hive
    files = open_data(root)
    assert isinstance(files, Files)
    assert [str(p.relative_to(root)) for p in files] == \
        ["day=1/part-0.parquet", "day=2/part-0.parquet", "day=2/part-1.csv"]
    globbed = open_data(f"{root}/*/*.parquet")
    assert [p.name for p in globbed] == ["part-0.parquet", "part-0.parquet"]
    assert [str(p) for p in mirror(globbed, root.parent / "out")] == \
        [str(root.parent / "out" / "day=1" / "part-0.parquet"),
         str(root.parent / "out" / "day=2" / "part-0.parquet")]


def test_empty_directory_or_glob_is_a_user_error(tmp_path):
    with pytest.raises(DataError, match="no .parquet"):
        open_data(tmp_path)
    with pytest.raises(DataError, match="no .parquet"):
        open_data(f"{tmp_path}/*.parquet")


def test_directory_scores_equal_each_file_scored_alone(hive, fitted, tmp_path):
    root, _ = hive
    files = open_data(root)
    stats = score_dataset(fitted, files, tmp_path / "out", flags=True)
    assert stats.rows == 600
    for src in files:
        rel = src.relative_to(root)
        alone = tmp_path / "alone" / rel
        alone.parent.mkdir(parents=True, exist_ok=True)
        score_file(fitted, src, alone, flags=True)
        got = tmp_path / "out" / rel
        assert got.exists(), rel  # same layout, same format as the input file
        if src.suffix == ".csv":
            a, b = pd.read_csv(got), pd.read_csv(alone)
        else:
            a, b = pd.read_parquet(got), pd.read_parquet(alone)
        np.testing.assert_array_equal(a["anomaly_score"], b["anomaly_score"])
        assert list(a["id"]) == list(b["id"])


def test_cli_directory_needs_an_output_directory(hive, model_dir, tmp_path):
    root, _ = hive
    r = runner.invoke(app, ["score", str(root), "-m", str(model_dir), "-o",
                            str(tmp_path / "x.parquet")])
    assert r.exit_code == 2 and "give a directory" in r.output
    r = runner.invoke(app, ["score", f"{root}/*/*.parquet", "-m", str(model_dir), "-o",
                            str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert sorted(str(p.relative_to(tmp_path / "o")) for p in (tmp_path / "o").rglob("*.parquet")) \
        == ["day=1/part-0.parquet", "day=2/part-0.parquet"]


def test_batch_scorer_is_the_local_engine_transform(fitted, table, tmp_path):
    df, _ = table
    batch = pa.RecordBatch.from_pandas(df.iloc[:300], preserve_index=False)
    out = BatchScorer(fitted, batch.schema, flags=True)(batch)
    assert out.schema.names[-3:] == ["anomaly_score", "anomaly_flag", "anomaly_probability"]
    p = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_batches([batch]), p)
    score_file(fitted, p, tmp_path / "o.parquet", flags=True)
    local = pq.read_table(tmp_path / "o.parquet")
    np.testing.assert_array_equal(out.column("anomaly_score").to_numpy(),
                                  local.column("anomaly_score").to_numpy())


# ---- time series over several files -------------------------------------------------------------
def _series(n=300, hosts=("h0", "h1")) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for i, h in enumerate(hosts):
        t = np.arange(n)
        frames.append(pd.DataFrame({"host": h, "ts": t, "a": np.sin(t / 7 + i) + rng.normal(0, .1, n),
                                    "b": np.cos(t / 5) + rng.normal(0, .1, n)}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def series_det():
    cfg = {"data": {"time_column": "ts", "group_column": "host"},
           "model": {"window": 16, "d_model": 8, "n_heads": 2, "n_layers": 1},
           "train": {"threads": 1, "min_steps": 30, "max_steps": 30}}
    return Detector(cfg).fit(_series())


def test_series_entity_spanning_files_needs_sorted_input(series_det, tmp_path):
    df = _series()
    (tmp_path / "in").mkdir()
    df.iloc[:450].to_parquet(tmp_path / "in" / "a.parquet", index=False)  # h1 starts here
    df.iloc[450:].to_parquet(tmp_path / "in" / "b.parquet", index=False)  # ... and ends here
    files = open_data(tmp_path / "in")
    with pytest.raises(DataError, match=r"entity 'h1' \(host\) has rows in .*--sorted-input"):
        score_dataset(series_det, files, tmp_path / "out", flags=False)
    score_dataset(series_det, files, tmp_path / "out", flags=False, sorted_input=True)
    got = pd.concat([pd.read_parquet(tmp_path / "out" / n) for n in ("a.parquet", "b.parquet")])
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "whole.parquet")
    score_file(series_det, tmp_path / "whole.parquet", tmp_path / "whole_out.parquet", flags=False)
    whole = pd.read_parquet(tmp_path / "whole_out.parquet")
    assert len(pd.read_parquet(tmp_path / "out" / "a.parquet")) == 450
    np.testing.assert_allclose(got["anomaly_score"].to_numpy(), whole["anomaly_score"].to_numpy(),
                               rtol=1e-6, atol=1e-9)


def test_series_entities_whole_per_file_score_file_by_file(series_det, tmp_path):
    df = _series()
    (tmp_path / "in").mkdir()
    df[df.host == "h0"].to_parquet(tmp_path / "in" / "h0.parquet", index=False)
    df[df.host == "h1"].to_parquet(tmp_path / "in" / "h1.parquet", index=False)
    stats = score_dataset(series_det, open_data(tmp_path / "in"), tmp_path / "out", flags=False)
    assert stats.rows == len(df)
    assert len(pd.read_parquet(tmp_path / "out" / "h1.parquet")) == 300


def test_output_inside_the_input_tree_is_refused(hive, fitted):
    root, _ = hive
    with pytest.raises(UserError, match="overlaps"):
        score_dataset(fitted, open_data(root), root, flags=False)


def test_directory_detect_writes_explanations_and_refuses_a_report(hive, fitted, tmp_path):
    """Options from other commands reach directory inputs: --explain columns in every mirrored
    output; --report, which renders one scored file, exits 2 before any work."""
    root, _ = hive
    fitted.save(tmp_path / "m")
    out = tmp_path / "out"
    r = runner.invoke(app, ["detect", str(root), "-m", str(tmp_path / "m"), "-o", str(out),
                            "--explain", "2"])
    assert r.exit_code == 0, r.output
    got = pd.read_parquet(out / "day=1" / "part-0.parquet")
    assert {"top_features", "top_contributions"} <= set(got.columns) and len(got) == 200
    assert (got["top_features"].str.len() > 0).all()
    r = runner.invoke(app, ["detect", str(root), "-m", str(tmp_path / "m"), "-o",
                            str(tmp_path / "out2"), "--report", str(tmp_path / "r.html")])
    assert r.exit_code == 2 and "--report" in r.output and not (tmp_path / "out2").exists()


def test_ray_engine_with_explain_is_refused_before_ray_is_needed(hive, fitted, tmp_path):
    root, _ = hive
    fitted.save(tmp_path / "m")
    r = runner.invoke(app, ["score", str(root), "-m", str(tmp_path / "m"), "-o",
                            str(tmp_path / "o"), "--engine", "ray", "--explain", "1"])
    assert r.exit_code == 2 and "--explain" in r.output
