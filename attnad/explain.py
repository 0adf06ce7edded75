"""`attnad explain`: finding the chosen rows of a file, and showing their explanations.

Contributions are the per-feature terms of the row's score (attnad.explanation): a
column's share is how much of the score its cells' normalised errors make up. Attention is read
from the model's attention layers, averaged over heads and layers, while it fills in the cells
it predicts (every cell in leave_one_out; in the masked models, those hidden by its fixed scoring
masks, averaged over the masks):

- tables: for each column, the share of attention the hidden cells paid to it, i.e. which columns
  the model used to predict the others (a column the model never looks at cannot explain others);
- time series: the share of attention the row's own step paid to each step of the window ending
  at that row (offset 0 is the row, -1 the step before), i.e. which moments it compared it with.

    expl = explain_rows(det, "data.csv", ["r17", "r42"], by_index=False)
    render_explanations(expl, console)
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from attnad.data.io import CsvFormat, iter_batches
from attnad.errors import DataError, UserError
from attnad.explanation import RowExplanation


def _select(det, path, rows: list[str], by_index: bool) -> tuple[pa.Table, list[int]]:
    """The chosen rows as one table, and their 0-based positions in the file (in the order asked)."""
    id_cols = det.schema_.names("id")
    if by_index:
        try:
            wanted = [int(r) for r in rows]
        except ValueError:
            raise UserError(f"--rows {' '.join(rows)}: with --index, rows are 0-based row numbers")
        if any(w < 0 for w in wanted):
            raise UserError("--rows: row numbers start at 0")
    elif not id_cols:
        raise UserError("--rows: the model has no id column (data.id_columns) to look rows up "
                        "by; add --index to give 0-based row numbers")
    found: dict = {}
    parts, start = [], 0
    for batch in iter_batches(path, 65_536, CsvFormat.of(det.config.data)):
        n = batch.num_rows
        if by_index:
            hit = [w - start for w in wanted if start <= w < start + n]
        else:
            col = batch.column(batch.schema.names.index(id_cols[0])) \
                if id_cols[0] in batch.schema.names else None
            if col is None:
                raise DataError(f"{path}: id column {id_cols[0]!r} is not in the file; "
                                "use --index")
            vals = [None if v is None else str(v) for v in col.to_pylist()]
            hit = [i for i, v in enumerate(vals) if v in rows and v not in found]
            for i in hit:
                found[vals[i]] = start + i
        if hit:
            parts.append((np.asarray(hit) + start, batch.take(pa.array(hit))))
        start += n
    positions = np.concatenate([p for p, _ in parts]) if parts else np.zeros(0, np.int64)
    if by_index:
        missing = [str(w) for w in wanted if w not in set(positions.tolist())]
    else:
        missing = [r for r in rows if r not in found]
    if missing:
        what = "row number(s)" if by_index else f"{id_cols[0]} value(s)"
        raise DataError(f"{path}: no row with {what} {', '.join(missing)} "
                        f"(the file has {start:,} rows)")
    table = pa.Table.from_batches([b for _, b in parts]).combine_chunks()
    want_pos = [int(w) for w in wanted] if by_index else [found[r] for r in rows]
    order = [int(np.flatnonzero(positions == p)[0]) for p in want_pos]
    return table.take(pa.array(order)), want_pos


def explain_rows(det, path, rows: list[str], by_index: bool) -> list[RowExplanation]:
    """Explanations of the chosen rows of a file (`--rows`), in the order asked."""
    table, positions = _select(det, path, rows, by_index)
    return det.explanations(path, table, positions)


def render_explanations(expls: list[RowExplanation], console: Console) -> None:
    for e in expls:
        ids = ", ".join(f"{k}={v}" for k, v in e.ids.items())
        title = (f"row {e.row}{f' ({ids})' if ids else ''}: score {e.score:.4g}, "
                 f"probability {e.probability:.4f}, {'FLAGGED' if e.flagged else 'not flagged'}")
        t = Table(title=title, title_justify="left")
        t.add_column("feature" if not e.steps else "signal")
        t.add_column("value", justify="right")
        t.add_column("share of score", justify="right")
        has_att = any(f["attention"] is not None for f in e.features)
        if has_att:
            t.add_column("attention received", justify="right")
        for f in e.features:
            cells = [f["column"], f["value"], f"{f['share']:.1%}"]
            if has_att:
                cells.append(f"{f['attention']:.1%}")
            t.add_row(*cells)
        console.print(t)
        if e.steps:
            s = Table(title="time steps the row's step attended to (offset 0 = the row)",
                      title_justify="left")
            s.add_column("offset", justify="right")
            s.add_column("row", justify="right")
            s.add_column("time")
            s.add_column("attention", justify="right")
            for st in e.steps:
                s.add_row(str(st["offset"]), str(st["row"]), st["time"], f"{st['attention']:.1%}")
            console.print(s)
        if e.attention_note:
            console.print(f"note: {e.attention_note}", markup=False)
