import gzip

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from attnad.data.io import AtomicWriter, iter_batches
from attnad.data.sample import read_sample
from attnad.errors import DataError


def _frame(n=1000):
    return pd.DataFrame({"x": np.arange(n, dtype=float), "s": [f"v{i % 7}" for i in range(n)]})


@pytest.mark.parametrize("ext", ["csv", "csv.gz", "parquet"])
def test_formats_stream_every_row_in_order(tmp_path, ext):
    df = _frame()
    p = tmp_path / f"f.{ext}"
    if ext == "parquet":
        df.to_parquet(p)
    elif ext == "csv.gz":
        with gzip.open(p, "wt") as fh:
            df.to_csv(fh, index=False)
    else:
        df.to_csv(p, index=False)
    batches = list(iter_batches(p, batch_size=300))
    assert [b.num_rows for b in batches] == [300, 300, 300, 100]
    x = pa.Table.from_batches(batches).column("x").to_pylist()
    assert [float(v) for v in x] == list(df.x)


def test_csv_cells_arrive_as_text(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("a,b\n1,x\noops,\n")
    b = next(iter_batches(p))
    assert b.column("a").to_pylist() == ["1", "oops"]
    assert b.column("b").to_pylist() == ["x", None]


@pytest.mark.parametrize("content,match", [
    (None, "not found"), ("", "empty"), ("a,a\n1,2\n", "duplicate column"),
])
def test_bad_inputs_are_user_errors(tmp_path, content, match):
    p = tmp_path / "f.csv"
    if content is not None:
        p.write_text(content)
    with pytest.raises(DataError, match=match):
        list(iter_batches(p))


def test_unknown_extension_and_corrupt_parquet(tmp_path):
    with pytest.raises(DataError, match="unsupported"):
        list(iter_batches(tmp_path / "f.xlsx"))
    p = tmp_path / "f.parquet"
    p.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataError, match="cannot read"):
        list(iter_batches(p))


def test_sample_is_seeded_and_independent_of_size(tmp_path):
    p = tmp_path / "f.parquet"
    _frame(5000).to_parquet(p)
    a, total = read_sample(p, 500, seed=1)
    b, _ = read_sample(p, 500, seed=1)
    assert total == 5000 and a.num_rows == 500
    assert a.column("x").to_pylist() == b.column("x").to_pylist()
    xs = a.column("x").to_pylist()
    assert xs == sorted(xs)  # file order kept
    small, _ = read_sample(p, 10_000, seed=1)
    assert small.num_rows == 5000


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_atomic_writer_keeps_old_file_on_failure(tmp_path, ext):
    p = tmp_path / f"out.{ext}"
    schema = pa.schema([("x", pa.int64())])
    batch = pa.RecordBatch.from_arrays([pa.array([1, 2])], schema=schema)
    with AtomicWriter(p, schema) as w:
        w.write(batch)
    before = p.read_bytes()
    with pytest.raises(RuntimeError):
        with AtomicWriter(p, schema) as w:
            w.write(batch)
            raise RuntimeError("killed half-way")
    assert p.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == [p.name]  # no temp files left
