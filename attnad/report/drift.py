"""The report's drift section: for each column that changed since training, a small plot of its
training distribution beside this file's, over the training decile bins (categories: the
training values and one bin for the rest), with the figures from the run's summary.

    html = drift_html(summary["drift"])   # "" without a drift section (a model of format 1)
"""

from __future__ import annotations

from attnad.report.svg import esc, fmt_num

PLOTS = 12  # changed columns plotted; the JSON summary has every column
SW, SH, L, B = 470, 170, 40, 34  # small plot: width, height, left and bottom margins
THEN, NOW = "#9ecae1", "#fd8d3c"  # training, this file
CATEGORIES = 10  # category bars shown (the most common, then or now)


def _bars(labels: list[str], then: list[float], now: list[float], title: str) -> str:
    n = max(len(then), 1)
    top = max([*then, *now, 0.01]) * 1.1
    w = (SW - L - 8) / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SW} {SH}" width="100%" '
             f'role="img"><text x="{L}" y="13" class="t">{esc(title)}</text>']
    y0 = SH - B
    for frac in (0.5, 1.0):
        y = y0 - frac * (y0 - 22)
        parts.append(f'<line x1="{L}" y1="{y:.1f}" x2="{SW - 8}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{L - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
                     f'{frac * top:.0%}</text>')
    for i, (a, b) in enumerate(zip(then, now)):
        x = L + i * w
        for k, (v, colour) in enumerate(((a, THEN), (b, NOW))):
            h = v / top * (y0 - 22)
            parts.append(f'<rect x="{x + w * (0.1 + 0.4 * k):.1f}" y="{y0 - h:.1f}" '
                         f'width="{w * 0.38:.1f}" height="{h:.1f}" fill="{colour}"/>')
    step = max(1, len(labels) // 5 + (len(labels) % 5 > 0))
    for i, lab in enumerate(labels):
        if i % step:
            continue
        x = L + (i + (0.5 if len(labels) == n else 1.0)) * w
        parts.append(f'<text x="{x:.1f}" y="{y0 + 14}" class="tick" text-anchor="middle">'
                     f'{esc(lab)[:12]}</text>')
    parts.append(f'<line x1="{L}" y1="{y0}" x2="{SW - 8}" y2="{y0}" class="ax"/></svg>')
    return "".join(parts)


def _plot(row: dict) -> str:
    bins = row["bins"]
    then, now = bins["then"], bins["now"]
    if "labels" in bins:  # categories: the most common ones, then or now
        keep = sorted(range(len(then)), key=lambda i: -max(then[i], now[i]))[:CATEGORIES]
        labels = [bins["labels"][i] for i in keep]
        then, now = [then[i] for i in keep], [now[i] for i in keep]
    else:  # numbers: the labels are the edges between the decile bins
        labels = [fmt_num(e) for e in bins["edges"]]
    name = row["column"] if row["entity"] is None else f"{row['entity']}: {row['column']}"
    figures = [f"PSI {row['psi']:.3f}" if row["psi"] is not None else "no values"]
    if row.get("beyond_range"):
        figures.append(f"{row['beyond_range']:.1%} beyond training range")
    if row["missing_now"] - row["missing_then"] >= 0.005:
        figures.append(f"missing {row['missing_then']:.1%} -> {row['missing_now']:.1%}")
    if row.get("unseen_now"):
        figures.append(f"unseen {row['unseen_now']:.1%}")
    return (f'<div class="dplot">{_bars(labels, then, now, name)}'
            f'<div class="muted">{esc("; ".join(figures))}</div></div>')


def drift_html(section: dict | None) -> str:
    """The section: the series drift lines, then the changed columns' plots."""
    if section is None:
        return ('<h2>Drift since training</h2><p class="muted">This model was saved before '
                "attnad kept a profile of the training columns; retrain it to see drift.</p>")
    changed = set(section["changed"])  # names: "column", or "entity/column" for series
    shown = [r for r in section["columns"] if (r["column"] if r["entity"] is None else
                                                f"{r['entity']}/{r['column']}") in changed][:PLOTS]
    parts = ["<h2>Drift since training</h2>",
             f'<p class="muted">Population stability index (PSI) of each model column over its '
             f"training decile bins: under 0.1 stable, 0.1-0.25 moderate, over 0.25 large. "
             f"{len(changed)} of {len(section['columns'])} column figures changed; bars: "
             f'<span style="color:{THEN}">&#9632;</span> training, '
             f'<span style="color:{NOW}">&#9632;</span> this file.</p>']
    if section["lines"]:
        parts.append("<ul>" + "".join(f"<li>{esc(x)}</li>" for x in section["lines"][:PLOTS])
                     + "</ul>")
    for what in ("added", "missing"):
        cols = section[f"columns_{what}"]
        if cols:
            parts.append(f"<p>Columns {what} since training: {esc(', '.join(cols[:20]))}</p>")
    if not shown:
        parts.append("<p>No column changed.</p>")
    parts += [_plot(r) for r in shown]
    return "\n".join(parts)
