"""File-level runs: score files, directories and globs into new files, keeping run statistics.

    stats = score_data(det, open_data("in/"), Path("out/"), flags=True)
"""

from attnad.pipeline.batch import BatchScorer, explain_columns
from attnad.pipeline.paths import check_output
from attnad.pipeline.run import score_data, score_dataset, score_file
from attnad.pipeline.stats import RunStats

__all__ = ["BatchScorer", "RunStats", "check_output", "explain_columns", "score_data",
           "score_dataset", "score_file"]
