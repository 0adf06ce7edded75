"""Hints about columns that are probably not meant as features: said out loud, never guessed.

A column named like a label (`is_anomaly`, `target`, `fraud`, ...) modelled as a feature teaches
the model what the answer looks like and then "explains" anomalies by it; a time axis read as a
table feature hides that a time-series mode exists. attnad cannot know what the user meant, so it
keeps the column's role and prints the exact `--set` that changes it.

    for line in column_hints(table, schema, cfg.data, "train.csv"): warnings.warn(line)
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from attnad.data.schema import Schema, to_epoch_seconds, to_float

LABEL_NAMES = {  # column names (lowercase, separators dropped) that usually hold ground truth
    "anomaly", "isanomaly", "anomalylabel", "anomalous", "label", "labels", "target", "class",
    "y", "outlier", "isoutlier", "fraud", "isfraud", "attack", "isattack", "groundtruth",
    "gt", "truth", "malicious", "ismalicious", "failure", "isfailure", "fault", "isfault",
}
TIME_NAMES = re.compile(r"(^|_)(time|timestamp|date|datetime|ts|step|t|epoch)($|_)")
ORDERED_SHARE = 0.99  # a time axis: this share of consecutive rows do not go back in time
MIN_TIME_ROWS = 20  # fewer rows say nothing about order


def looks_like_label(name: str) -> bool:
    return re.sub(r"[\s_\-.]", "", name.lower()) in LABEL_NAMES


def _ordered(values: np.ndarray) -> bool:
    v = values[np.isfinite(values)]
    if len(v) < MIN_TIME_ROWS or np.all(v == v[0]):
        return False
    return float(np.mean(np.diff(v) >= 0)) >= ORDERED_SHARE


def label_hint(name: str, source: str) -> str:
    return (f"{source}: column {name!r} looks like a label but is modelled as a feature; if it "
            f"marks known anomalies, add --set data.label_column={name} (or leave it out with "
            f"--set 'data.exclude=[{name}]')")


def label_hints(schema: Schema, source: str) -> list[str]:
    """A line for each modelled column named like a label (also said when scoring)."""
    return [label_hint(c.name, source) for c in schema.modelled if looks_like_label(c.name)]


def column_hints(table: pa.Table, schema: Schema, data_cfg, source: str) -> list[str]:
    """Lines for people about the modelled columns of a training table: label-like names, and (in
    table mode) a column that is ordered like a time axis."""
    lines = label_hints(schema, source)
    if data_cfg.time_column:
        return lines
    for c in schema.modelled:
        arr = table.column(c.name).combine_chunks()
        if c.role == "datetime":
            values, _ = to_epoch_seconds(arr)
        elif c.role == "numeric" and TIME_NAMES.search(c.name.lower()):
            values, _ = to_float(arr)
        else:
            continue
        if _ordered(values):
            lines.append(f"{source}: column {c.name!r} is ordered like a time axis, but the file "
                         "is read as a table of independent rows; for time-series mode add "
                         f"--set data.time_column={c.name} (and --set data.group_column=COLUMN "
                         "when the file holds several series)")
            break
    return lines
