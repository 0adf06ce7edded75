"""Time-series mode: rows are steps of one or more series (timeseries.detector.SeriesDetector)."""

from attnad.timeseries.detector import SeriesDetector

__all__ = ["SeriesDetector"]
