"""The series every test here shares: three hosts, a clean training part and a test part with
planted anomalies, one model fitted on it and its scores of the test part. Built once for the
whole package (tests/timeseries/), as they were once per module before the split."""

import pytest

from attnad.config import Config
from attnad.detector import Detector
from tests.factories import N, TS_FAST, make_series


@pytest.fixture(scope="package")
def series():
    train, _ = make_series(seed=1, start=0, planted=False)
    test, kinds = make_series(seed=2, start=N, planted=True)
    return train, test, kinds


@pytest.fixture(scope="package")
def ts_fitted(series):
    return Detector(Config.model_validate(TS_FAST)).fit(series[0])


@pytest.fixture(scope="package")
def ts_scores(series, ts_fitted):
    return ts_fitted.score(series[1])
