"""How window errors become row scores (attnad.timeseries.scorer): model.row_score (a step's own
error, or the mean of the windows covering it) and model.error_units (robust or squashed)."""

import numpy as np
import pytest

from attnad.config import Config
from attnad.detector import Detector
from tests.factories import TS_FAST, WINDOW, normal_rows


@pytest.mark.parametrize("row_score", ["step", "window"])
def test_row_score_window_spreads_a_spike_over_its_windows(series, row_score):
    train, test, kinds = series
    model = {**TS_FAST["model"], "row_score": row_score, "span_masks": row_score == "window"}
    det = Detector(Config.model_validate({**TS_FAST, "model": model})).fit(train)
    assert det.series_.n_errors == 3 * (2 if row_score == "window" else 1)
    scores = det.score(test)
    normal = scores[normal_rows(len(test), kinds)]
    spike = int(kinds["spike"][0])
    near = scores[spike + WINDOW // 4]  # a normal step inside the windows that hold the spike
    assert scores[spike] > np.quantile(normal, 0.99)
    if row_score == "window":  # it shares the spike's windows, so it shares their error
        assert near > np.quantile(normal, 0.99)
    else:  # its own cells are normal
        assert near < np.quantile(normal, 0.99)


def test_errors_in_robust_units_keep_the_weight_of_an_extreme_value(series):
    """The model reads squashed inputs (a value 30 spreads out enters as about 10), but a spike is
    scored by its miss in robust units, so its margin over normal rows is far wider than when
    the error is measured in the squashed units (the default before error_units existed)."""
    train, test, kinds = series
    test = test.copy()
    spike = int(kinds["spike"][0])
    test.loc[spike, "c"] += 30  # about 40 robust spreads above the others
    margin = {}
    for units in ("robust", "squashed"):
        model = {**TS_FAST["model"], "error_units": units, "row_score": "step"}
        det = Detector(Config.model_validate({**TS_FAST, "model": model})).fit(train)
        assert det.series_.error_units == units
        scores = det.score(test)
        margin[units] = scores[spike] / np.quantile(scores[normal_rows(len(test), kinds)], 0.99)
    assert margin["squashed"] > 1
    assert margin["robust"] > 5 * margin["squashed"], margin
