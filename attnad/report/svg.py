"""Inline SVG plotting for the HTML report: a minimal canvas (Plot), round axis ticks, number
formatting, and the score histogram.

Hand-written SVG rather than a plotting library so the report needs no scripts and no network
and opens anywhere. This module knows nothing about detectors or scored files: it draws arrays.
"""

from __future__ import annotations

import html
import math

import numpy as np

# Signal colours: matplotlib's tab10 without red and orange, so nothing reads as a flag.
COLOURS = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f"]
FLAG_COLOUR = "#d62728"  # red marks flagged rows and thresholds on every plot
# Canvas geometry in SVG units: width, then the padding that leaves room for tick labels.
W, PAD_L, PAD_R, PAD_T, PAD_B = 1000, 70, 20, 20, 40
HIST_BINS = 60  # enough to show the shape of the distribution at 1000 units wide


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def fmt_num(x: float) -> str:
    if x is None or not np.isfinite(x):
        return ""
    return f"{x:.4g}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick positions covering [lo, hi] (Heckbert's nice numbers)."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


class Plot:
    """An SVG canvas with one data area: x, y ranges map to pixels; elements are appended as text."""

    def __init__(self, height: int, x_range, y_range, title: str = ""):
        self.h = height
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1.0
        if self.y1 <= self.y0:
            self.y1 = self.y0 + 1.0
        self.parts: list[str] = []
        if title:
            self.parts.append(f'<text x="{PAD_L}" y="14" class="t">{esc(title)}</text>')

    def px(self, x):
        return PAD_L + (np.asarray(x, float) - self.x0) / (self.x1 - self.x0) * (W - PAD_L - PAD_R)

    def py(self, y):
        top, bottom = PAD_T + 6, self.h - PAD_B
        return bottom - (np.asarray(y, float) - self.y0) / (self.y1 - self.y0) * (bottom - top)

    def axes(self, x_label: str, y_label: str, x_ticks=None, y_ticks=None, x_fmt=fmt_num,
             y_fmt=fmt_num) -> None:
        b, t = self.h - PAD_B, PAD_T + 6
        self.parts.append(f'<rect x="{PAD_L}" y="{t}" width="{W - PAD_L - PAD_R}" '
                          f'height="{b - t}" class="frame"/>')
        for v in (x_ticks if x_ticks is not None else nice_ticks(self.x0, self.x1, 8)):
            x = float(self.px(v))
            if PAD_L - 1 <= x <= W - PAD_R + 1:
                # labels at the edges grow inwards so they are not cut off
                anchor = "start" if x < PAD_L + 40 else "end" if x > W - PAD_R - 40 else "middle"
                self.parts.append(f'<line x1="{x:.1f}" y1="{b}" x2="{x:.1f}" y2="{b + 4}" '
                                  f'class="ax"/><text x="{x:.1f}" y="{b + 16}" '
                                  f'class="tick" text-anchor="{anchor}">{esc(x_fmt(v))}</text>')
        for v in (y_ticks if y_ticks is not None else nice_ticks(self.y0, self.y1, 4)):
            y = float(self.py(v))
            if t - 1 <= y <= b + 1:
                self.parts.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{W - PAD_R}" '
                                  f'y2="{y:.1f}" class="grid"/><text x="{PAD_L - 6}" '
                                  f'y="{y + 4:.1f}" class="tick" text-anchor="end">'
                                  f'{esc(y_fmt(v))}</text>')
        self.parts.append(f'<text x="{(PAD_L + W - PAD_R) / 2}" y="{self.h - 6}" class="lab" '
                          f'text-anchor="middle">{esc(x_label)}</text>')
        self.parts.append(f'<text x="14" y="{(t + b) / 2}" class="lab" text-anchor="middle" '
                          f'transform="rotate(-90 14 {(t + b) / 2})">{esc(y_label)}</text>')

    def line(self, x, y, colour: str, width: float = 1.2) -> None:
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 1:
            return
        # break the line at missing values: one path per run of finite points
        runs = np.split(np.arange(len(x)), np.flatnonzero(np.diff(ok.astype(int)) != 0) + 1)
        for r in runs:
            if not ok[r[0]]:
                continue
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(self.px(x[r]), self.py(y[r])))
            self.parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" '
                              f'stroke-width="{width}"/>')

    def hline(self, y: float, colour: str, label: str = "") -> None:
        py = float(self.py(y))
        self.parts.append(f'<line x1="{PAD_L}" y1="{py:.1f}" x2="{W - PAD_R}" y2="{py:.1f}" '
                          f'stroke="{colour}" stroke-dasharray="6 4" stroke-width="1.5"/>')
        if label:
            self.parts.append(f'<text x="{W - PAD_R - 4}" y="{py - 4:.1f}" class="tick" '
                              f'text-anchor="end" fill="{colour}">{esc(label)}</text>')

    def vline(self, x: float, colour: str, label: str = "") -> None:
        px = float(self.px(x))
        self.parts.append(f'<line x1="{px:.1f}" y1="{PAD_T + 6}" x2="{px:.1f}" '
                          f'y2="{self.h - PAD_B}" stroke="{colour}" stroke-dasharray="6 4" '
                          f'stroke-width="2"/>')
        if label:
            anchor = "end" if px > W * 0.7 else "start"
            dx = -5 if anchor == "end" else 5
            self.parts.append(f'<text x="{px + dx:.1f}" y="{PAD_T + 20}" class="tick" '
                              f'text-anchor="{anchor}" fill="{colour}">{esc(label)}</text>')

    def marks(self, xs, texts, colour: str) -> None:
        """Short labels along the top of the data area (e.g. event numbers at their spans)."""
        for x, text in zip(self.px(xs), texts):
            self.parts.append(f'<text x="{x:.1f}" y="{PAD_T + 17}" class="tick" font-weight="bold" '
                              f'text-anchor="middle" fill="{colour}">{esc(text)}</text>')

    def spans(self, starts, ends, colour: str, opacity: float = 0.18) -> None:
        t, b = PAD_T + 6, self.h - PAD_B
        for s, e in zip(self.px(starts), self.px(ends)):
            self.parts.append(f'<rect x="{s:.1f}" y="{t}" width="{max(e - s, 1.5):.1f}" '
                              f'height="{b - t}" fill="{colour}" opacity="{opacity}"/>')

    def bars(self, lefts, rights, heights, colours) -> None:
        for l_, r_, h_, c in zip(self.px(lefts), self.px(rights), heights, colours):
            y = float(self.py(h_))
            self.parts.append(f'<rect x="{l_:.1f}" y="{y:.1f}" width="{max(r_ - l_ - 0.5, 0.5):.1f}" '
                              f'height="{max(float(self.py(self.y0)) - y, 0):.1f}" fill="{c}"/>')

    def svg(self) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {self.h}" '
                f'width="100%" role="img">' + "".join(self.parts) + "</svg>")


def histogram_svg(scores: np.ndarray, threshold: float | None,
                  line_name: str = "threshold") -> str:
    """The score distribution on a log count scale, bins right of the threshold in red; the
    line is labelled `line_name` (the caller knows whether it is really the threshold).

    The range stops at the 99.9th percentile (or the threshold, if higher) so a few extreme
    scores do not squeeze the bulk into one bin; rows beyond it get one extra red bar."""
    s = scores[np.isfinite(scores)]
    if s.size == 0:
        return "<p>No finite scores.</p>"
    lo = float(s.min())
    hi = float(np.quantile(s, 0.999))
    if threshold is not None and np.isfinite(threshold):
        hi = max(hi, threshold)
    hi = lo + (hi - lo) * 1.05 if hi > lo else lo + 1.0
    bins = HIST_BINS
    edges = np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(np.clip(s, lo, hi), edges)
    over = int((s > hi).sum())
    counts[-1] -= min(over, counts[-1])
    y = np.log10(counts + 1.0)
    ymax = max(float(y.max()), 1.0) * 1.08
    p = Plot(300, (lo, hi + (hi - lo) / bins * (3 if over else 0)), (0, ymax))
    colours = ["#9ecae1" if threshold is None or e < threshold else "#fc9272" for e in edges[:-1]]
    p.axes("anomaly_score", "rows (log scale)", y_ticks=list(range(int(ymax) + 1)),
           y_fmt=lambda v: f"{10 ** v:,.0f}" if v > 0 else "0")
    p.bars(edges[:-1], edges[1:], y, colours)
    if over:
        x0 = hi + (hi - lo) / bins
        p.bars([x0], [x0 + (hi - lo) / bins * 1.5], [math.log10(over + 1)], [FLAG_COLOUR])
        p.parts.append(f'<text x="{float(p.px(x0 + (hi - lo) / bins * 1.5)):.1f}" '
                       f'y="{float(p.py(math.log10(over + 1))) - 4:.1f}" class="tick" '
                       f'text-anchor="end">{over:,} above {fmt_num(hi)}</text>')
    if threshold is not None and np.isfinite(threshold):
        p.vline(threshold, FLAG_COLOUR, f"{line_name} {fmt_num(threshold)}")
    return p.svg()
