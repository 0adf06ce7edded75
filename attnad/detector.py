"""The Python API's front door: `Detector(config)` and `Detector.load(path)` pick the mode.

`Detector` is the base both estimators share (attnad.estimator); constructing it returns a
TableDetector, or a SeriesDetector when `data.time_column` is set, and `isinstance(det, Detector)`
holds for both. Import the modes from here to use one of them by name.

    det = Detector(Config.model_validate({"data": {"label_column": "y"}})).fit(df)
    scores = det.score_samples(df); flags = det.predict(df)
    det.save("model/"); det2 = Detector.load("model/")
"""

from attnad.estimator import Detector
from attnad.tabular import TableDetector
from attnad.timeseries import SeriesDetector

__all__ = ["Detector", "SeriesDetector", "TableDetector"]
