"""CSV in, Parquet out: the model's typed columns are written typed (attnad.pipeline.typed)."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from attnad.cli import app
from tests.factories import TINY

runner = CliRunner()


def test_csv_to_parquet_writes_numbers_booleans_and_times_typed(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "x": rng.normal(size=n).round(3),
                       "flag": rng.choice(["true", "false"], n), "colour": rng.choice(["a", "b"], n),
                       "when": pd.Timestamp("2026-01-05 09:00") + pd.to_timedelta(
                           rng.integers(0, 10_000, n), unit="min"),
                       "label": (rng.random(n) < 0.05).astype(int)})
    train = tmp_path / "train.csv"
    df.to_csv(train, index=False)
    scored = df.astype({"x": object})
    scored.loc[3, "x"] = "oops"
    src = tmp_path / "in.csv"
    scored.to_csv(src, index=False)
    model = tmp_path / "m"
    r = runner.invoke(app, ["train", str(train), "-o", str(model), "--set", "data.id_columns=[id]",
                            "--set", "data.label_column=label", *TINY])
    assert r.exit_code == 0, r.output
    out = tmp_path / "out.parquet"
    r = runner.invoke(app, ["detect", str(src), "-m", str(model), "-o", str(out)])
    assert r.exit_code == 0, r.output
    t = pq.read_table(out)
    assert t.schema.field("x").type == pa.float64()
    assert t.schema.field("flag").type == pa.bool_()
    assert pa.types.is_timestamp(t.schema.field("when").type)
    assert t.schema.field("colour").type == pa.string() and t.schema.field("id").type == pa.string()
    got = t.to_pandas()
    assert pd.isna(got.loc[3, "x"]) and got.loc[4, "x"] == df.loc[4, "x"]  # invalid -> null
    assert (got["flag"] == (df["flag"] == "true")).all()
    assert (got["when"].dt.tz_localize(None) == df["when"]).all()
    csv_out = tmp_path / "out.csv"  # CSV to CSV: every cell verbatim
    r = runner.invoke(app, ["detect", str(src), "-m", str(model), "-o", str(csv_out)])
    assert r.exit_code == 0, r.output
    back = pd.read_csv(csv_out, dtype=str)
    assert back.loc[3, "x"] == "oops" and (back["flag"] == scored["flag"]).all()
    assert np.array_equal(pd.read_csv(csv_out)["anomaly_score"].to_numpy(),
                          got["anomaly_score"].to_numpy())
