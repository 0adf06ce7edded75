"""Explaining table rows (attnad.tabular.explain): --explain columns are faithful to planted
corruption, and the attention each column receives comes from the model."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from attnad.cli import app
from attnad.pipeline import explain_columns
from attnad.tabular.explain import feature_attention
from tests.factories import make_table

runner = CliRunner()


@pytest.fixture(scope="module")
def clean_rows():
    return make_table(300, seed=7, planted=False)[0]


@pytest.mark.parametrize("col, value", [("c", 80.0), ("count", 60), ("a", 9.0), ("b", -15.0),
                                        ("shape", "triangle")])
def test_a_planted_corrupt_feature_is_named_first(fitted, clean_rows, col, value):
    bad = clean_rows.copy()
    bad[col] = value
    _, contrib, _ = fitted.score_with_contributions(bad)
    feats, shares = explain_columns(contrib, fitted.feature_sources, 3)
    first = [f.split(";")[0] for f in feats]
    assert np.mean([f == col for f in first]) >= 0.95, (col, feats[:5])
    # clean rows name the same column first far less often
    _, contrib0, _ = fitted.score_with_contributions(clean_rows)
    first0 = [f.split(";")[0] for f in explain_columns(contrib0, fitted.feature_sources, 3)[0]]
    assert np.mean([f == col for f in first0]) < 0.6
    for f, s in zip(feats, shares):  # splittable, K items, shares descending and at most 1
        vals = [float(x) for x in s.split(";")]
        assert len(f.split(";")) == len(vals) == 3
        assert vals == sorted(vals, reverse=True) and sum(vals) <= 1.0 + 0.0015  # 3 decimals


def test_score_and_detect_explain_columns(tmp_path, model_dir, csv_file, table):
    df, kinds = table
    out = tmp_path / "s.csv"
    r = runner.invoke(app, ["score", str(csv_file), "-m", str(model_dir), "-o", str(out),
                            "--explain", "2"])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out, keep_default_na=False)
    assert list(got.columns[-3:]) == ["anomaly_score", "top_features", "top_contributions"]
    assert got.loc[kinds["extreme"], "top_features"].split(";")[0] == "c"
    assert set(got.loc[kinds["broken_relation"], "top_features"].split(";")) == {"a", "b"}
    out2 = tmp_path / "d.parquet"
    r = runner.invoke(app, ["detect", str(csv_file), "-m", str(model_dir), "-o", str(out2),
                            "--explain", "1", "-q"])
    assert r.exit_code == 0, r.output
    d = pd.read_parquet(out2)
    assert d["top_features"].str.count(";").max() == 0  # K = 1: one name per row
    assert d.loc[kinds["extreme"], "top_features"] == "c"
    # without --explain the columns are not there
    r = runner.invoke(app, ["score", str(csv_file), "-m", str(model_dir), "-o", str(out)])
    assert "top_features" not in pd.read_csv(out).columns


def test_attention_comes_from_the_model_and_follows_the_relations(fitted, table):
    """Hidden a is predicted from b (b = 2a): a's cells must pay b more than average attention."""
    import pyarrow as pa
    df, _ = table
    att = feature_attention(fitted, pa.Table.from_pandas(df.head(200), preserve_index=False))
    assert att.shape == (200, fitted.model_.n_features)
    assert np.allclose(att.sum(1), 1.0, atol=1e-5)
    assert np.ptp(att.mean(0)) > 0.01  # not uniform: the model looks at some columns more
