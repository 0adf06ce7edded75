"""The one sampling routine for training rows (attnad.data.sample)."""

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from attnad.data.io import DEFAULT_CSV
from attnad.data.sample import read_sample, sample_rows


def _table(n: int) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table({"i": np.arange(n), "x": rng.normal(size=n)})


def test_a_small_table_is_kept_whole():
    t = _table(50)
    assert sample_rows(t, 50, seed=0) is t


def test_the_sample_keeps_table_order_and_depends_on_the_seed():
    t = _table(1000)
    a, b = sample_rows(t, 100, seed=1), sample_rows(t, 100, seed=2)
    ia = a.column("i").to_numpy()
    assert len(ia) == 100 and np.all(np.diff(ia) > 0)
    assert not np.array_equal(ia, b.column("i").to_numpy())
    assert sample_rows(t, 100, seed=1).equals(a)


def test_a_file_read_in_batches_gives_the_same_rows_as_the_whole_table(tmp_path, monkeypatch):
    t = _table(5000)
    path = tmp_path / "t.csv"
    pacsv.write_csv(t, path)
    whole = sample_rows(t, 700, seed=3).column("i").to_numpy()
    for rows in (64, 1000, 100_000):  # batch edges anywhere
        monkeypatch.setattr("attnad.data.sample.READ_ROWS", rows)
        got, total = read_sample(path, 700, seed=3, csv=DEFAULT_CSV)
        assert total == 5000
        assert np.array_equal(got.column("i").to_numpy().astype(int), whole)  # CSV cells are text
