"""A self-contained HTML report of a scored file: plots as hand-written inline SVG, no scripts,
no network, so it opens anywhere (a CI artefact, an e-mail attachment) and archives as one file.

Sections: the summary; the score distribution with the threshold; for time series, each entity's
signals and scores over time with its events shaded and numbered, and the top events with the
signals that drove them; for tables, the top flagged rows with their explanations; the model
card (config, training data fingerprint, threshold).

The score, flag, probability, explanation, id, time and group columns of the scored file are read
into memory (about 30 bytes a row plus the signals in time-series mode); plots are thinned to at
most MAX_POINTS points per entity, keeping each bucket's highest score so spikes stay visible.

Modules: svg (canvas, ticks, histogram), panels (time series), events (time series: events from
the flags, their table), tables (top rows, model card), page (reading the scored file, assembling and writing the page).

    from attnad.report import write_html_report
    write_html_report("scored.parquet", "report.html", det=Detector.load("model/"))
"""

from attnad.report.page import build_html_report, check_report_output, write_html_report
from attnad.report.svg import nice_ticks

__all__ = ["build_html_report", "check_report_output", "nice_ticks", "write_html_report"]
