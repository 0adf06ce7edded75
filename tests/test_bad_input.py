"""Bad input never crashes with a traceback: exit 2 and one line naming the file and what to do,
or a defined result (exit 0, every row scored) when attnad can use the file. Mirrors the table
"Bad input and failures" in the README."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from attnad.cli import app
from tests.factories import TINY  # a tiny model: these tests check behaviour on odd files

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def user_error(r, *fragments: str) -> str:
    """Assert the contract for a user mistake; return the error line."""
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert "Traceback" not in r.output
    for f in fragments:
        assert f.lower() in errors[0].lower(), errors[0]
    return errors[0]


def scored(r, out, n_rows: int) -> pd.DataFrame:
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out) if str(out).endswith(".parquet") else pd.read_csv(out)
    assert len(df) == n_rows
    assert np.isfinite(df.anomaly_score).all()
    return df


def small_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)], "a": a, "b": 2 * a + rng.normal(size=n),
                         "colour": rng.choice(["red", "blue", "green"], n)})


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    p = tmp_path_factory.mktemp("small") / "small.csv"
    small_frame().to_csv(p, index=False)
    return p


@pytest.fixture(scope="module")
def small_model(tmp_path_factory, small_csv):
    m = tmp_path_factory.mktemp("small_model") / "m"
    r = run("train", small_csv, "-o", m, "--set=data.id_columns=[id]", *TINY)
    assert r.exit_code == 0, r.output
    return m


# ---- files attnad cannot read --------------------------------------------------------------------
@pytest.mark.parametrize("command", ["train", "score", "detect"])
def test_nonexistent_and_empty_input(tmp_path, small_model, command):
    model = [] if command == "train" else ["-m", small_model]
    out = tmp_path / ("m" if command == "train" else "o.csv")
    user_error(run(command, tmp_path / "nope.csv", *model, "-o", out), "nope.csv", "not found")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    user_error(run(command, empty, *model, "-o", out), "empty.csv", "empty")
    assert not out.exists()


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_header_only_file(tmp_path, small_model, ext):
    p = tmp_path / f"h.{ext}"
    frame = small_frame().iloc[:0]
    frame.to_csv(p, index=False) if ext == "csv" else frame.to_parquet(p)
    user_error(run("train", p, "-o", tmp_path / "m", *TINY), f"h.{ext}", "no rows")
    out = tmp_path / "o.csv"  # scoring a day with no rows is not an error: an empty output
    r = run("score", p, "-m", small_model, "-o", out)
    assert r.exit_code == 0, r.output
    assert list(pd.read_csv(out).columns) == list(frame.columns) + ["anomaly_score"]
    assert len(pd.read_csv(out)) == 0


def test_single_row_file(tmp_path, small_model):
    p = tmp_path / "one.csv"
    small_frame().iloc[:1].to_csv(p, index=False)
    scored(run("score", p, "-m", small_model, "-o", tmp_path / "o.csv"), tmp_path / "o.csv", 1)
    r = run("train", p, "-o", tmp_path / "m", *TINY)
    user_error(r, "one.csv", "too few", "at least 2 rows")


def test_two_row_file_trains(tmp_path):
    p = tmp_path / "two.csv"
    small_frame().iloc[:2].to_csv(p, index=False)
    out = tmp_path / "o.csv"
    scored(run("detect", p, "-o", out, "--set=data.id_columns=[id]", *TINY), out, 2)


def _parquet(tmp_path, name="f.parquet"):
    p = tmp_path / name
    small_frame().to_parquet(p)
    return p


@pytest.mark.parametrize("damage", ["truncated", "bad_magic", "bad_footer", "not_parquet"])
def test_damaged_parquet(tmp_path, small_model, damage):
    p = _parquet(tmp_path)
    data = bytearray(p.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "bad_magic":
        data[-4:] = b"XXXX"
    elif damage == "bad_footer":
        footer = int.from_bytes(data[-8:-4], "little")
        start = len(data) - 8 - footer
        data[start:start + footer] = bytes(footer)
    else:
        data = bytearray(b"id,a\n1,2\n")
    p.write_bytes(bytes(data))
    for args in (["train", p, "-o", tmp_path / "m", *TINY],
                 ["score", p, "-m", small_model, "-o", tmp_path / "o.csv"]):
        user_error(run(*args), "f.parquet", "parquet")
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "m").exists()


@pytest.mark.parametrize("damage", ["truncated", "not_gzip"])
def test_damaged_gzip(tmp_path, small_model, damage):
    p = tmp_path / "f.csv.gz"
    raw = gzip.compress(small_frame(3000).to_csv(index=False).encode())
    p.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else b"plain text, not gzip\n")
    for args in (["train", p, "-o", tmp_path / "m", *TINY],
                 ["score", p, "-m", small_model, "-o", tmp_path / "o.csv"]):
        user_error(run(*args), "f.csv.gz", "gzip")
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("name", ["f.xlsx", "f.json", "f", "f.csv.zip"])
def test_unknown_extensions(tmp_path, small_model, small_csv, name):
    p = tmp_path / name
    p.write_bytes(small_csv.read_bytes())
    user_error(run("score", p, "-m", small_model, "-o", tmp_path / "o.csv"), name, "unsupported")
    user_error(run("score", small_csv, "-m", small_model, "-o", tmp_path / name), name,
               "unsupported")


def test_other_delimiter_is_named_and_configurable(tmp_path, small_model):
    df = small_frame()
    p = tmp_path / "semi.csv"
    df.to_csv(p, index=False, sep=";")
    user_error(run("train", p, "-o", tmp_path / "m", *TINY), "semi.csv", "data.csv_delimiter")
    user_error(run("score", p, "-m", small_model, "-o", tmp_path / "o.csv"), "data.csv_delimiter")
    out = tmp_path / "o.csv"
    scored(run("score", p, "-m", small_model, "-o", out, "--set", "data.csv_delimiter=;"), out,
           len(df))
    tab = tmp_path / "tab.csv"
    df.to_csv(tab, index=False, sep="\t")
    user_error(run("score", tab, "-m", small_model, "-o", out), "tab-separated")
    scored(run("detect", tab, "-o", out, "--set", "data.csv_delimiter=tab", *TINY), out, len(df))
    user_error(run("train", tab, "-o", tmp_path / "m", "--set", "data.csv_delimiter=ab"),
               "data.csv_delimiter")


def test_other_encoding_is_named_and_configurable(tmp_path, small_model):
    df = small_frame()
    df["colour"] = np.where(df.colour == "red", "rouge café", df.colour)
    p = tmp_path / "latin.csv"
    df.to_csv(p, index=False, encoding="latin-1")
    out = tmp_path / "o.csv"
    user_error(run("score", p, "-m", small_model, "-o", out), "latin.csv", "'colour'",
               "data.encoding")
    scored(run("score", p, "-m", small_model, "-o", out, "--set", "data.encoding=latin-1"), out,
           len(df))
    assert "rouge café" in set(pd.read_csv(out).colour)  # decoded and re-written as UTF-8
    head = tmp_path / "head.csv"
    head.write_bytes("café,b\n1,2\n".encode("latin-1"))
    user_error(run("train", head, "-o", tmp_path / "m", *TINY), "head.csv", "data.encoding")
    user_error(run("train", p, "-o", tmp_path / "m", "--set", "data.encoding=klingon"),
               "data.encoding")


def test_rows_with_the_wrong_number_of_fields(tmp_path, small_model):
    p = tmp_path / "ragged.csv"
    p.write_text("id,a,b,colour\nr0,1,2,red\nr1,1,2,red,EXTRA\n")
    user_error(run("score", p, "-m", small_model, "-o", tmp_path / "o.csv"), "ragged.csv",
               "5 fields", "header has 4")


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_duplicate_column_names(tmp_path, small_model, ext):
    p = tmp_path / f"dup.{ext}"
    if ext == "csv":
        p.write_text("id,a,b,a,colour\nr0,1,2,3,red\n")
    else:
        t = pa.table([pa.array(["r0"]), pa.array([1.0]), pa.array([2.0]), pa.array([3.0]),
                      pa.array(["red"])], names=["id", "a", "b", "a", "colour"])
        pq.write_table(t, p)
    user_error(run("score", p, "-m", small_model, "-o", tmp_path / "o.csv"), f"dup.{ext}",
               "duplicate column name 'a'")
    user_error(run("train", p, "-o", tmp_path / "m", *TINY), "duplicate column")


# ---- cells and columns attnad can use ------------------------------------------------------------
def test_unparseable_cells_are_counted_and_the_row_scored(tmp_path, small_model):
    df = small_frame().astype({"a": object})
    df.loc[[3, 7, 11], "a"] = ["oops", "1,5", "n/a?"]
    p = tmp_path / "dirty.csv"
    df.to_csv(p, index=False)
    out, js = tmp_path / "o.csv", tmp_path / "s.json"
    r = run("detect", p, "-m", small_model, "-o", out, "--summary-json", js)
    got = scored(r, out, len(df))
    assert got.a.astype(str).tolist()[3] == "oops"  # the cell is copied as it was
    s = json.loads(js.read_text())
    assert s["invalid_cells"] == {"a": 3} and s["invalid_cells_total"] == 3
    assert "invalid" in r.stderr.lower()


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_nan_inf_and_huge_values(tmp_path, ext):
    df = small_frame(300)
    df.loc[[0, 5], "a"] = np.nan
    df.loc[1, "a"] = np.inf
    df.loc[2, "a"] = -np.inf
    df.loc[3, "b"] = 1e308
    df.loc[4, "b"] = -1e308
    df.loc[6, "b"] = 5e-324
    p = tmp_path / f"wild.{ext}"
    df.to_csv(p, index=False) if ext == "csv" else df.to_parquet(p)
    out = tmp_path / "o.parquet"
    got = scored(run("detect", p, "-o", out, "--set=data.id_columns=[id]", *TINY), out, len(df))
    assert got.id.tolist() == df.id.tolist()
    typical = np.median(got.anomaly_score)
    assert (got.anomaly_score[[1, 2, 3, 4]] > typical).all()  # infinities and 1e308 stand out


def test_all_missing_and_constant_columns(tmp_path):
    df = small_frame().assign(empty=np.nan, const=7.0, const_text="x")
    p = tmp_path / "odd.parquet"
    df.to_parquet(p)
    out = tmp_path / "o.csv"
    r = run("detect", p, "-o", out, "--set=data.id_columns=[id]", *TINY)
    scored(r, out, len(df))
    assert "'empty' not modelled" in r.stderr
    only = tmp_path / "only_empty.csv"
    pd.DataFrame({"id": ["a", "b"], "empty": [np.nan, np.nan]}).to_csv(only, index=False)
    user_error(run("train", only, "-o", tmp_path / "m", "--set=data.id_columns=[id]", *TINY),
               "only_empty.csv", "no column left to model")


def test_1500_columns(tmp_path):
    rng = np.random.default_rng(0)
    n, k = 60, 1500
    df = pd.DataFrame(rng.normal(size=(n, k)), columns=[f"c{i}" for i in range(k)])
    df["cat"] = rng.choice(["a", "b"], n)
    p = tmp_path / "wide.parquet"
    df.to_parquet(p)
    out = tmp_path / "o.parquet"
    model = tmp_path / "m"
    r = run("train", p, "-o", model, *TINY, "--set=train.min_steps=5", "--set=train.max_steps=5")
    assert r.exit_code == 0, r.output
    got = scored(run("score", p, "-m", model, "-o", out), out, n)
    assert got.shape[1] == k + 2


def test_unseen_categories(tmp_path, small_model):
    df = small_frame(50, seed=1)
    df.loc[:9, "colour"] = ["purple", "", " ", "ß", "日本", "red ", "RED", "🙂", "null", "NaN"]
    p = tmp_path / "new.parquet"
    df.to_parquet(p)
    out = tmp_path / "o.parquet"
    got = scored(run("score", p, "-m", small_model, "-o", out), out, len(df))
    assert got.colour.tolist() == df.colour.tolist()


def test_columns_reordered_added_missing(tmp_path, small_model, small_csv):
    df = pd.read_csv(small_csv)
    ref = tmp_path / "ref.csv"
    scored(run("score", small_csv, "-m", small_model, "-o", ref), ref, len(df))
    moved = tmp_path / "moved.csv"
    df[["colour", "b", "id", "a"]].assign(extra="z").to_csv(moved, index=False)
    out = tmp_path / "o.csv"
    r = run("score", moved, "-m", small_model, "-o", out)
    got = scored(r, out, len(df))
    assert "not seen in training are ignored: extra" in r.stderr
    assert np.allclose(got.anomaly_score, pd.read_csv(ref).anomaly_score)
    assert list(got.columns) == ["colour", "b", "id", "a", "extra", "anomaly_score"]
    less = tmp_path / "less.parquet"
    df.drop(columns=["b"]).to_parquet(less)
    user_error(run("score", less, "-m", small_model, "-o", out), "less.parquet", "missing column",
               " b")


# ---- outputs ------------------------------------------------------------------------------------
def test_output_equal_to_input_is_refused(tmp_path, small_model, small_csv):
    p = tmp_path / "in.csv"
    p.write_bytes(small_csv.read_bytes())
    before = p.read_bytes()
    link = tmp_path / "link.csv"
    link.symlink_to(p)
    for o in (p, tmp_path / "." / "in.csv", link):
        user_error(run("score", p, "-m", small_model, "-o", o), "is the input file")
        user_error(run("detect", p, "-m", small_model, "-o", o), "is the input file")
    user_error(run("detect", p, "-m", small_model, "-o", tmp_path / "o.csv", "--summary-json", p),
               "--summary-json", "is the input file")
    user_error(run("train", p, "-o", p, *TINY), "not a directory")
    assert p.read_bytes() == before


def test_output_problems_are_found_before_training(tmp_path, small_csv):
    slow = ["--set=train.min_steps=1000000", "--set=train.max_steps=1000000"]  # would take hours
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    user_error(run("train", small_csv, "-o", notes, *slow), "not an attnad model")
    assert (notes / "todo.txt").read_text() == "keep me"
    user_error(run("detect", small_csv, "-o", tmp_path / "missing_dir" / "o.csv", *slow),
               "does not exist")
    user_error(run("detect", small_csv, "-o", tmp_path / "o.txt", *slow), "unsupported")
    user_error(run("detect", small_csv, "-o", tmp_path / "o.csv", "--save-model", notes, *slow),
               "--save-model", "not an attnad model")
    user_error(run("detect", small_csv, "-o", tmp_path / "o.csv", "--summary-json",
                   tmp_path / "nodir" / "s.json", *slow), "--summary-json", "does not exist")


def test_model_directory_with_other_files_is_not_replaced(tmp_path, small_csv, small_model):
    m = tmp_path / "m"
    m.mkdir()
    for f in small_model.iterdir():
        (m / f.name).write_bytes(f.read_bytes())
    (m / "README.txt").write_text("my notes")
    user_error(run("train", small_csv, "-o", m, *TINY), "also holds README.txt")
    assert (m / "README.txt").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_output_directory(tmp_path, small_model, small_csv):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        user_error(run("score", small_csv, "-m", small_model, "-o", ro / "o.csv"), "not writable")
        user_error(run("train", small_csv, "-o", ro / "m", *TINY), "not a writable directory")
    finally:
        ro.chmod(0o700)


# ---- short runs and time series -----------------------------------------------------------------
@pytest.mark.parametrize("steps", [1, 2, 9, 10, 11])
def test_any_step_count_trains(tmp_path, small_csv, steps):
    """max_steps 10 made PyTorch's one-cycle schedule divide by zero (exit 3)."""
    out = tmp_path / "o.csv"
    scored(run("detect", small_csv, "-o", out, "--set=data.id_columns=[id]", *TINY,
               f"--set=train.min_steps={steps}", f"--set=train.max_steps={steps}"), out, 200)


TS = ["--set=data.time_column=t", "--set=model.window=8", "--set=model.d_model=8",
      "--set=model.n_heads=1", "--set=model.n_layers=1", "--set=train.max_steps=10",
      "--set=train.min_steps=10", "--set=train.threads=1"]


def test_time_series_bad_input(tmp_path):
    rng = np.random.default_rng(0)
    train = tmp_path / "ts.csv"
    pd.DataFrame({"t": np.arange(300), "x": rng.normal(size=300)}).to_csv(train, index=False)
    model, out = tmp_path / "m", tmp_path / "o.csv"
    assert run("train", train, "-o", model, *TS).exit_code == 0
    one = tmp_path / "one.csv"
    pd.DataFrame({"t": [1], "x": [1.0]}).to_csv(one, index=False)
    user_error(run("train", one, "-o", tmp_path / "m1", *TS), "one.csv", "too few")
    scored(run("score", one, "-m", model, "-o", out), out, 1)
    wild = tmp_path / "wild.csv"
    pd.DataFrame({"t": np.arange(50)[::-1], "x": [np.inf, -np.inf, 1e308, np.nan, 1.0] * 10}) \
        .to_csv(wild, index=False)
    scored(run("score", wild, "-m", model, "-o", out), out, 50)
    bad_time = tmp_path / "bad_time.csv"
    pd.DataFrame({"t": ["1", "2", "later"], "x": [1.0, 2.0, 3.0]}).to_csv(bad_time, index=False)
    user_error(run("score", bad_time, "-m", model, "-o", out), "bad_time.csv", "row 2", "'t'")
    header = tmp_path / "header.csv"
    header.write_text("t,x\n")
    r = run("score", header, "-m", model, "-o", out)
    assert r.exit_code == 0 and len(pd.read_csv(out)) == 0


# ---- issue 19: files that used to give silent or confusing answers ------------------------------
def test_gzip_data_named_csv_is_recognised(tmp_path, small_model, small_csv):
    p = tmp_path / "packed.csv"
    p.write_bytes(gzip.compress(small_csv.read_bytes()))
    user_error(run("score", p, "-m", small_model, "-o", tmp_path / "o.csv"),
               "packed.csv", "gzip-compressed", ".csv.gz")


def test_explain_reads_the_file_with_the_models_csv_settings(tmp_path):
    df = small_frame()
    p = tmp_path / "semi.csv"
    df.to_csv(p, index=False, sep=";")
    m = tmp_path / "m"
    r = run("train", p, "-o", m, "--set", "data.csv_delimiter=;", "--set=data.id_columns=[id]",
            *TINY)
    assert r.exit_code == 0, r.output
    r = run("explain", p, "-m", m, "--rows", "r7")
    assert r.exit_code == 0, r.output
    assert "row 7 (id=r7)" in r.output
    r = run("explain", p, "-m", m, "--rows", "r7", "--set", "model.d_model=8")
    user_error(r, "model.d_model", "fixed when the model was trained")


def test_unknown_config_key_suggests_the_closest_one(tmp_path, small_csv):
    user_error(run("train", small_csv, "-o", tmp_path / "m", "--set", "data.label=y"),
               "data.label", "did you mean data.label_column?")
    user_error(run("train", small_csv, "-o", tmp_path / "m", "--set", "model.d_modl=8"),
               "did you mean model.d_model?")


def test_european_csv_is_read_with_data_decimal_and_never_scored_silently(tmp_path, small_model):
    """`;` separators and decimal commas: training says which --set reads the numbers; scoring
    such a file with a model trained on points refuses (exit 2) instead of giving every row the
    score of an empty row; with data.decimal=, the scores equal those of the same numbers."""
    df = small_frame()
    eu, us = tmp_path / "eu.csv", tmp_path / "us.csv"
    df.to_csv(eu, index=False, sep=";", decimal=",")
    df.to_csv(us, index=False)
    semi = ["--set", "data.csv_delimiter=;"]
    user_error(run("train", eu, "-o", tmp_path / "m", *semi, *TINY),
               "eu.csv", "decimal comma", "--set data.decimal=,")
    r = run("train", eu, "-o", tmp_path / "m", *semi, "--set", "data.decimal=,",
            "--set=data.id_columns=[id]", *TINY)
    assert r.exit_code == 0, r.output
    user_error(run("detect", eu, "-m", small_model, "-o", tmp_path / "o.csv", *semi),
               "no cell of the numeric column(s) a, b parses", "--set data.decimal=,")
    assert not (tmp_path / "o.csv").exists()
    got = scored(run("score", eu, "-m", small_model, "-o", tmp_path / "eu_out.csv", *semi,
                     "--set", "data.decimal=,"), tmp_path / "eu_out.csv", len(df))
    want = scored(run("score", us, "-m", small_model, "-o", tmp_path / "us_out.csv"),
                  tmp_path / "us_out.csv", len(df))
    assert np.array_equal(got.anomaly_score, want.anomaly_score)


def test_a_mostly_invalid_model_column_is_said_and_can_fail_the_run(tmp_path, small_model):
    df = small_frame().astype({"a": object})
    df.loc[df.index % 10 < 7, "a"] = "?"  # 70% of the cells: not a number
    p = tmp_path / "bad.csv"
    df.to_csv(p, index=False)
    out, js = tmp_path / "o.csv", tmp_path / "s.json"
    r = run("detect", p, "-m", small_model, "-o", out, "--summary-json", js)
    assert r.exit_code == 0, r.output
    summary = json.loads(js.read_text())
    assert summary["invalid_share"] == {"a": 0.7}
    said = [w for w in summary["warnings"] if "'a': 70.0% of cells are not valid numeric" in w]
    assert said and "0.0% in training" in said[0]
    assert "70.0%" in r.stderr
    r = run("detect", p, "-m", small_model, "-o", out, "--summary-json", js,
            "--fail-on-invalid", "0.5", "--quiet")
    assert r.exit_code == 1 and "gate breached: fail-on-invalid 0.5 (observed 0.7)" in r.stderr
    assert json.loads(js.read_text())["gates"]["fail_on_invalid"]["column"] == "a"
    user_error(run("detect", p, "-m", small_model, "-o", out, "--fail-on-invalid", "2"),
               "--fail-on-invalid")
