"""Data quality of a scored file: model columns that parsed when the model was trained but not
here. A few unparseable cells are a detail (scored as missing); a column that is mostly invalid
means the file is not read as the model expects (decimal commas, another delimiter, a changed
export), and every score built on it is wrong, so it is said out loud and can fail the run.

    stats.warnings += invalid_warnings(det, invalid, rows, "in.csv", comma_numbers)
"""

from __future__ import annotations

from attnad.errors import DataError

MOSTLY_INVALID = 0.5  # more invalid cells than this share: a data-quality failure, not a detail
CLEAN_IN_TRAINING = 0.01  # ... for a column that had fewer invalid cells than this in training


def invalid_shares(invalid: dict[str, int], rows: int) -> dict[str, float]:
    """Each column's share of cells that did not parse as its type."""
    return {k: v / rows for k, v in invalid.items()} if rows else {}


def _training_share(det, column: str) -> float:
    training = getattr(det, "training_", {}) or {}
    rows = (training.get("fingerprint") or {}).get("rows") or training.get("rows") or 0
    bad = (training.get("invalid_cells") or {}).get(column, 0)
    return bad / rows if rows else 0.0


def _comma_hint(det, column: str, comma_numbers: dict[str, int], invalid: dict[str, int]) -> str:
    if comma_numbers.get(column, 0) * 2 < invalid.get(column, 0) or \
            det.config.data.decimal != ".":
        return ""
    return "; they look like numbers with a decimal comma (3,14): add --set data.decimal=,"


def invalid_warnings(det, invalid: dict[str, int], rows: int, source: str,
                     comma_numbers: dict[str, int]) -> list[str]:
    """A line for each model column mostly invalid in this file but clean in training."""
    lines = []
    for column, share in invalid_shares(invalid, rows).items():
        before = _training_share(det, column)
        if share > MOSTLY_INVALID and before < CLEAN_IN_TRAINING:
            lines.append(f"{source}: column {column!r}: {share:.1%} of cells are not valid "
                         f"{det.schema_.role_of(column)} values ({before:.1%} in training) and "
                         "are scored as missing"
                         + _comma_hint(det, column, comma_numbers, invalid))
    return lines


def check_numbers_parse(det, invalid: dict[str, int], rows: int, source: str,
                        comma_numbers: dict[str, int]) -> None:
    """Refuse a file in which not one cell of the model's numeric columns parses: its scores
    would all be the score of an empty row."""
    numeric = [c for c in det.schema_.names("numeric")]
    if not rows or not numeric or any(invalid.get(c, 0) < rows for c in numeric):
        return
    hint = _comma_hint(det, numeric[0], comma_numbers, invalid)
    raise DataError(f"{source}: no cell of the numeric column(s) {', '.join(numeric[:5])} parses "
                    f"as a number{hint or '; check data.csv_delimiter and data.decimal'}")
