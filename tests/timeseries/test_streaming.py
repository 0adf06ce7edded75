"""Scoring a series file in two streaming passes (attnad.timeseries.streaming): batch size and
file format do not change the scores, output rows keep the input order, and an unsorted file falls
back to sorting in memory."""

import csv

import numpy as np
import pandas as pd

from attnad.pipeline import score_file


def test_batch_size_does_not_change_scores_and_order_is_kept(tmp_path, series, ts_fitted,
                                                             ts_scores):
    test = series[1]
    test.to_csv(tmp_path / "in.csv", index=False)
    test.to_parquet(tmp_path / "in.parquet")
    outs = {}
    for name in ("in.csv", "in.parquet"):
        for bs in (1000, 65536):
            out = tmp_path / f"{name}.{bs}.parquet"
            stats = score_file(ts_fitted, tmp_path / name, out, flags=True, batch_size=bs)
            assert not stats.warnings  # sorted input streams without the sorting fallback
            outs[(name, bs)] = pd.read_parquet(out)
    ref = outs[("in.parquet", 65536)]
    assert ref["a"].tolist() == test["a"].tolist()  # input order
    assert np.array_equal(ref.anomaly_score.to_numpy(), ts_scores)
    for got in outs.values():
        assert np.array_equal(got.anomaly_score.to_numpy(), ts_scores)


def test_unsorted_file_falls_back_to_sorting_and_keeps_input_order(tmp_path, series, ts_fitted,
                                                                   ts_scores):
    test = series[1]
    perm = np.random.default_rng(1).permutation(len(test))
    test.iloc[perm].to_parquet(tmp_path / "shuffled.parquet", index=False)
    stats = score_file(ts_fitted, tmp_path / "shuffled.parquet", tmp_path / "o.csv", flags=False,
                       batch_size=1000)
    assert any("not in time order" in w for w in stats.warnings)
    got = pd.read_csv(tmp_path / "o.csv")
    # the file's exact values through Python's float(): pandas 3.0's default parser reads some
    # 17-digit numbers one unit in the last place off (seen: 10.592336207522603 -> ...605), and
    # pandas 3.1 deprecates asking it for round-trip parsing
    with open(tmp_path / "o.csv", newline="") as fh:
        written = [float(row["a"]) for row in csv.DictReader(fh)]
    assert written == test["a"].iloc[perm].tolist()
    assert np.allclose(got.anomaly_score.to_numpy(), ts_scores[perm], rtol=1e-12)
