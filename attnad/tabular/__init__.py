"""Table mode: every row is scored on its own (attnad.tabular.detector.TableDetector)."""

from attnad.tabular.detector import TableDetector

__all__ = ["TableDetector"]
