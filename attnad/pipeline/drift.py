"""The drift section of a run summary (JSON), its lines for people, and the drift gates.

The figures are counted in the scoring pass (attnad.data.drift); this module only arranges them:
every column in the JSON, the few that changed most on stderr, and `--fail-on-drift PSI` /
`--fail-on-missing RATE` over all of them (series: per signal and per entity and signal).

    section = drift_section(stats.drift)     # None for a model without a training profile
    gates.update(drift_gates(section, fail_on_drift=0.25, fail_on_missing=None))
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from attnad.data.drift import LARGE_PSI, STABLE_PSI, changed, drift_lines, ranked
from attnad.errors import UserError

SHOWN = 5  # columns listed on stderr; the JSON has all of them


def drift_section(counts) -> dict | None:
    """Every column's figures, most changed first, with the series drift lines."""
    if counts is None:
        return None
    rows = ranked(counts.figures())
    per_entity = any(r["entity"] is not None for r in rows)
    return {"columns": rows, "changed": [_name(r) for r in rows if changed(r)],
            "columns_added": counts.columns_added, "columns_missing": counts.columns_missing,
            "lines": drift_lines(rows, per_entity),
            "psi_rule_of_thumb": {"stable_below": STABLE_PSI, "large_above": LARGE_PSI}}


def _name(r: dict) -> str:
    return r["column"] if r["entity"] is None else f"{r['entity']}/{r['column']}"


def check_drift_gates(det, fail_on_drift: float | None, fail_on_missing: float | None) -> None:
    """Refuse drift gates that cannot be evaluated or could never mean anything."""
    if fail_on_drift is not None and fail_on_drift < 0:
        raise UserError(f"--fail-on-drift {fail_on_drift}: a PSI limit is 0 or more "
                        f"(rule of thumb: {STABLE_PSI} stable, {LARGE_PSI} large)")
    if fail_on_missing is not None and not 0 <= fail_on_missing <= 1:
        raise UserError(f"--fail-on-missing {fail_on_missing}: must be between 0 and 1")
    if (fail_on_drift is not None or fail_on_missing is not None) and \
            det is not None and det.drift_counts() is None:
        raise UserError(f"{getattr(det, 'loaded_from_', 'the model')}: saved before attnad kept "
                        "a profile of the training columns, so --fail-on-drift and "
                        "--fail-on-missing cannot be checked; retrain the model")


def drift_gates(section: dict | None, fail_on_drift: float | None,
                fail_on_missing: float | None) -> dict:
    """The largest PSI of any column, and the largest rise of a column's missing share, against
    their limits."""
    gates = {}
    rows = (section or {}).get("columns", [])
    if fail_on_drift is not None:
        worst = max(rows, key=lambda r: r["psi"] or 0.0, default=None)
        value = (worst["psi"] or 0.0) if worst else 0.0
        gates["fail_on_drift"] = {"limit": fail_on_drift, "value": value,
                                  "column": _name(worst) if worst else None,
                                  "breached": value > fail_on_drift}
    if fail_on_missing is not None:
        def rise(r):
            return r["missing_now"] - r["missing_then"]
        worst = max(rows, key=rise, default=None)
        value = rise(worst) if worst else 0.0
        gates["fail_on_missing"] = {"limit": fail_on_missing, "value": value,
                                    "column": _name(worst) if worst else None,
                                    "breached": value > fail_on_missing}
    return gates


def _share(then, now) -> str:
    if then is None or now is None or max(then, now) < 0.0005:
        return ""  # nothing there, then or now: an empty cell reads faster than 0.0% -> 0.0%
    return f"{then:.1%} -> {now:.1%}"


def render_drift(section: dict | None, console: Console) -> None:
    """The columns that changed most (series: over all entities), then the series lines."""
    if section is None:
        return
    rows = [r for r in section["columns"] if r["entity"] is None]
    moved = [r for r in rows if changed(r)]
    shown = moved[:SHOWN]
    if not shown:
        top = rows[0] if rows else None
        console.print("drift since training: no column changed" +
                      (f" (largest PSI {top['psi']:.3f}, {top['column']})"
                       if top and top["psi"] is not None else ""), markup=False, highlight=False)
    else:
        t = Table(title=f"drift since training: {len(moved)} column(s) changed "
                  f"(PSI > {STABLE_PSI} moderate, > {LARGE_PSI} large)", title_justify="left")
        for name in ("column", "PSI", "beyond range", "missing", "unseen", "invalid"):
            t.add_column(name, justify="left" if name == "column" else "right")
        for r in shown:
            t.add_row(r["column"], "" if r["psi"] is None else f"{r['psi']:.3f}",
                      "" if r["beyond_range"] is None else f"{r['beyond_range']:.1%}",
                      _share(r["missing_then"], r["missing_now"]),
                      _share(r["unseen_then"], r["unseen_now"]),
                      _share(r["invalid_then"], r["invalid_now"]))
        console.print(t)
    for what, cols in (("added", section["columns_added"]),
                       ("missing", section["columns_missing"])):
        if cols:
            console.print(f"columns {what} since training: {', '.join(cols[:10])}"
                          + (" ..." if len(cols) > 10 else ""), markup=False, highlight=False)
    for line in section["lines"][:SHOWN]:
        console.print(line, markup=False, highlight=False)
    if len(section["lines"]) > SHOWN:
        console.print(f"... {len(section['lines']) - SHOWN} more drift lines in --summary-json",
                      markup=False, highlight=False)
