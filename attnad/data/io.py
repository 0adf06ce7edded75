"""Reading inputs as Arrow record batches and writing outputs atomically.

CSV cells are read as text and typed later by the schema: a dirty cell then becomes one invalid
value in one row instead of a crash half-way through a file. Outputs go to a temporary file in
the target directory, are fsynced and renamed, so a reader sees the old file or the whole new one.

    for batch in iter_batches("data.parquet", batch_size=65536): ...
    with AtomicWriter("out.csv", schema) as w: w.write(batch)
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from attnad.errors import DataError

CSV_BLOCK_BYTES = 4 << 20
OTHER_DELIMITERS = {";": "';'", "\t": "tab", "|": "'|'"}  # hinted at when a CSV has one column


@dataclass(frozen=True)
class CsvFormat:
    """How CSV text is split and decoded (config keys data.csv_delimiter and data.encoding)."""

    delimiter: str = ","
    encoding: str = "utf-8"

    @classmethod
    def of(cls, data_cfg) -> "CsvFormat":
        """From a DataConfig (or None: the defaults)."""
        if data_cfg is None:
            return cls()
        return cls(getattr(data_cfg, "csv_delimiter", ","), getattr(data_cfg, "encoding", "utf-8"))


DEFAULT_CSV = CsvFormat()
GZIP_MAGIC = b"\x1f\x8b"  # the first two bytes of every gzip stream


def file_format(path: str | Path) -> str:
    """'csv', 'csv.gz' or 'parquet', from the name; anything else is a user error."""
    name = str(path).lower()
    if name.endswith(".csv.gz"):
        return "csv.gz"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise DataError(f"{path}: unsupported file type (use .csv, .csv.gz or .parquet)")


def check_input(path: str | Path) -> Path:
    p = Path(path)
    file_format(p)
    if not p.exists():
        raise DataError(f"{p}: input file not found")
    if p.is_dir():
        raise DataError(f"{p}: is a directory, expected a .csv, .csv.gz or .parquet file")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: input file is empty")
    if file_format(p) == "csv":
        with open(p, "rb") as fh:
            if fh.read(2) == GZIP_MAGIC:
                raise DataError(f"{p}: looks gzip-compressed but is named .csv; name it .csv.gz "
                                "(or decompress it)")
    return p


def _csv_reader(path: Path, column_names: list[str] | None,
                csv: CsvFormat = DEFAULT_CSV) -> pacsv.CSVStreamingReader:
    stream = pa.input_stream(str(path), compression="detect")
    read = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, encoding=csv.encoding)
    parse = pacsv.ParseOptions(delimiter=csv.delimiter)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in column_names} if column_names else None,
        strings_can_be_null=True,
    )
    return pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)


def csv_column_names(path: Path, csv: CsvFormat = DEFAULT_CSV) -> list[str]:
    try:
        reader = _csv_reader(path, None, csv)
    except UnicodeDecodeError:
        raise DataError(f"{path}: the header is not valid {csv.encoding} text; set data.encoding "
                        "to the file's encoding (e.g. --set data.encoding=latin-1)") from None
    try:
        names = list(reader.schema.names)
    finally:
        reader.close()
    if len(names) == 1:
        for sep, name in OTHER_DELIMITERS.items():
            if sep != csv.delimiter and sep in names[0]:
                raise DataError(
                    f"{path}: one column named {names[0][:60]!r}: the file looks {name}-separated; "
                    f"set data.csv_delimiter (e.g. --set \"data.csv_delimiter={name.strip(chr(39))}\")")
    return names


def _rebatch(batches: Iterator[pa.RecordBatch], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Cut CSV blocks (sized in bytes) into batches of exactly batch_size rows."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for b in batches:
        pending.append(b)
        count += b.num_rows
        while count >= batch_size:
            table = pa.Table.from_batches(pending)
            head = table.slice(0, batch_size).combine_chunks()
            rest = table.slice(batch_size)
            yield head.to_batches()[0] if head.num_rows else head
            pending = rest.combine_chunks().to_batches() if rest.num_rows else []
            count = rest.num_rows
    if count:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


READ_ERRORS = (pa.ArrowException, OSError, EOFError, UnicodeError, LookupError)


def iter_batches(path, batch_size: int = 65_536,
                 csv: CsvFormat = DEFAULT_CSV) -> Iterator[pa.RecordBatch]:
    """Stream a file as record batches; CSV columns arrive as (nullable) strings. A list of files
    (attnad.data.dataset.Files) streams them one after the other, in its order."""
    if isinstance(path, (list, tuple)):
        for p in path:
            yield from iter_batches(p, batch_size, csv)
        return
    p = check_input(path)
    fmt = file_format(p)
    names: list[str] = []
    try:
        if fmt == "parquet":
            # pre_buffer=False: the default reads ahead whole row groups (263 MiB held for a
            # 2M x 32 float file, growing with row-group size) for no speed gain on local files
            pf = pq.ParquetFile(str(p), pre_buffer=False)
            check_column_names(p, pf.schema_arrow.names)
            yield from pf.iter_batches(batch_size=batch_size)
        else:
            names = csv_column_names(p, csv)
            check_column_names(p, names)
            reader = _csv_reader(p, names, csv)
            yield from _rebatch(iter(reader), batch_size)
    except READ_ERRORS as e:
        raise DataError(read_error(p, fmt, e, names, csv)) from None


def input_schema(path, csv: CsvFormat = DEFAULT_CSV) -> pa.Schema:
    """The columns a file offers (CSV: all strings), read without scanning the data. A list of
    files offers the first file's columns."""
    if isinstance(path, (list, tuple)):
        return input_schema(path[0], csv)
    p = check_input(path)
    try:
        if file_format(p) == "parquet":
            schema = pq.ParquetFile(str(p)).schema_arrow
            check_column_names(p, schema.names)
            return schema
        names = csv_column_names(p, csv)
        check_column_names(p, names)
        return pa.schema([(n, pa.string()) for n in names])
    except READ_ERRORS as e:
        raise DataError(read_error(p, file_format(p), e, [], csv)) from None


def read_error(path: Path, fmt: str, e: Exception, names: list[str], csv: CsvFormat) -> str:
    """One line saying what is wrong with the file and, where we can tell, what to do."""
    text = _short(e)
    col = re.search(r"In CSV column #(\d+)", text)
    column = ""
    if col and int(col.group(1)) < len(names):
        column = f" column {names[int(col.group(1))]!r}:"
    if "invalid UTF8" in text or isinstance(e, UnicodeError):
        return (f"{path}:{column} text is not valid {csv.encoding}; set data.encoding to the "
                "file's encoding (e.g. --set data.encoding=latin-1)")
    fields = re.search(r"Expected (\d+) columns, got (\d+): ?(.*)", text)
    if fields:
        return (f"{path}: a row has {fields.group(2)} fields where the header has "
                f"{fields.group(1)} ({fields.group(3)[:60]!r}); check the delimiter "
                f"(data.csv_delimiter, now {csv.delimiter!r}) and the quoting of that row")
    if fmt == "parquet":
        return f"{path}: cannot read parquet file ({text}); the file is damaged or not Parquet"
    if fmt == "csv.gz" or "compress" in text.lower() or "zlib" in text.lower():
        return f"{path}: cannot read {fmt} file ({text}); the file is damaged or not gzip"
    return f"{path}: cannot read {fmt} file:{column} {text}"


def check_column_names(path: Path, names: list[str]) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise DataError(f"{path}: duplicate column name {n!r} (column {i + 1}); column names "
                            "must be unique, rename one of them")
        seen.add(n)


class AtomicWriter:
    """Write record batches to a temp file beside the target, then fsync and rename over it.

    Parquet output skips dictionary encoding on non-string columns: trying it on every float
    column costs several times the write speed and gives a bigger file.
    """

    def __init__(self, path: str | Path, schema: pa.Schema):
        self.path = Path(path)
        self.format = file_format(self.path)
        self.schema = schema
        self._tmp: str | None = None
        self._sink = None
        self._writer = None

    def __enter__(self) -> "AtomicWriter":
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise DataError(f"{self.path}: output directory {parent} does not exist")
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent)
        os.fchmod(fd, default_mode())
        os.close(fd)
        try:
            if self.format == "parquet":
                strings = [f.name for f in self.schema if pa.types.is_string(f.type)
                           or pa.types.is_large_string(f.type) or pa.types.is_dictionary(f.type)]
                self._writer = pq.ParquetWriter(self._tmp, self.schema,
                                                use_dictionary=strings or False)
            else:
                compression = "gzip" if self.format == "csv.gz" else None
                self._sink = pa.output_stream(self._tmp, compression=compression)
                self._writer = pacsv.CSVWriter(self._sink, self.schema)
        except BaseException:
            self._discard()
            raise
        return self

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._writer.close()
            if self._sink is not None:
                self._sink.close()
        finally:
            if exc_type is not None:
                self._discard()
                return
        try:
            with open(self._tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(self._tmp, self.path)
        except BaseException:
            self._discard()
            raise
        self._tmp = None
        _fsync_dir(self.path.parent)

    def _discard(self) -> None:
        if self._tmp and os.path.exists(self._tmp):
            os.unlink(self._tmp)
        self._tmp = None


def default_mode(directory: bool = False) -> int:
    """The mode open() or mkdir() would give under the umask. mkstemp and mkdtemp make private
    (0600 / 0700) temporary files, and the output would keep that mode after the rename."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def write_text_atomic(path: str | Path, text: str) -> None:
    """A small text file (the JSON summary) written like the outputs: temp file, fsync, rename."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent)
                               else ".")
    try:
        os.fchmod(fd, default_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(p.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _short(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
