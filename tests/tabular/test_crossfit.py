"""Cross-fitting (attnad.tabular.crossfit): each table row is scored by a model that never trained on it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from attnad.tabular import detector as detector_module
from attnad.config import Config
from attnad.tabular.crossfit import merge_summaries, row_folds, row_hashes
from attnad.data.preprocess import Encoded
from attnad.detector import Detector
from attnad.metrics import auroc
from tests.factories import FAST, make_table


def _encoded(n: int, seed: int = 0) -> Encoded:
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(n, 3)).astype(np.float32)
    miss = rng.random((n, 3)) < 0.1
    num[miss] = 0.0
    return Encoded(num, miss, rng.integers(0, 5, size=(n, 2)))


def test_a_rows_fold_depends_on_its_cells_only():
    enc = _encoded(4000)
    folds = row_folds(enc, 2)
    order = np.random.default_rng(1).permutation(4000)
    parts = [row_folds(enc.take(order[i:i + 333]), 2) for i in range(0, 4000, 333)]
    assert np.array_equal(np.concatenate(parts), folds[order])  # batches and order do not matter
    assert 0.45 < folds.mean() < 0.55
    copy = enc.take(np.array([7, 7, 7]))
    assert len(set(row_folds(copy, 2))) == 1 and row_folds(copy, 2)[0] == folds[7]
    signed = Encoded(np.array([[0.0], [-0.0]], np.float32), np.zeros((2, 1), bool),
                     np.zeros((2, 0), np.int64))
    assert row_hashes(signed)[0] == row_hashes(signed)[1]
    assert set(row_folds(enc, 3)) == {0, 1, 2}


def test_each_model_trains_on_the_other_folds_and_scores_its_own(monkeypatch):
    df, _ = make_table(300, seed=4)
    seen = []
    real = detector_module.train_model

    def recording(model, enc, *args, **kwargs):
        seen.append(row_hashes(enc))
        return real(model, enc, *args, **kwargs)

    monkeypatch.setattr(detector_module, "train_model", recording)
    cfg = Config.model_validate({**FAST, "data": {"id_columns": ["id"]},
                                 "train": {**FAST["train"], "min_steps": 20, "max_steps": 20}})
    det = Detector(cfg).fit(df)
    enc = det.encode(df)[0]
    hashes, folds = row_hashes(enc), row_folds(enc, 2)
    assert len(det.models_) == len(seen) == 2
    for k, trained in enumerate(seen):
        assert set(trained) == set(hashes[folds != k])  # every other row, none of its own
    recon, contrib = det.reconstruction(enc)
    for k in (0, 1):
        own = np.flatnonzero(folds == k)
        r, c = det.scorers[k].score(enc.take(own))
        assert np.allclose(recon[own], r) and np.allclose(contrib[own], c)
    assert det.training_["cross_fit"]["folds"] == 2 and det.training_["rows"] == len(df)


def _small_correlated(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n + 2000, 3)) @ rng.normal(size=(3, 13))
    z += 0.5 * rng.normal(size=z.shape)
    cols = [f"x{i}" for i in range(13)]
    return pd.DataFrame(z[:n], columns=cols), pd.DataFrame(z[n:], columns=cols)


def _small_with_cluster(n: int, k: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """`n` rows with the structure of _small_correlated's (13 columns from 3 latent factors plus
    noise), `k` of them a planted cluster: rows of that structure moved together by one random
    offset (about 2 per column), so they break the columns' usual relations. Returns the table
    and the planted rows' positions."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(3, 13))
    z = rng.normal(size=(n, 3)) @ mix + 0.5 * rng.normal(size=(n, 13))
    planted = rng.choice(n, k, replace=False)
    z[planted] = rng.normal(size=(k, 3)) @ mix + 0.5 * rng.normal(size=(k, 13)) \
        + 2 * rng.normal(size=13)
    return pd.DataFrame(z, columns=[f"x{i}" for i in range(13)]), planted


def test_training_rows_score_like_unseen_rows_on_a_small_table():
    """A default model trained on 130 rows learns them by heart: with one model their errors
    are about 0.66x those of fresh rows from the same distribution (0.67x, mean of 5 seeds:
    benchmarks/claims.py). Scored out of fold, they look like fresh rows."""
    df, fresh = _small_correlated(130, seed=0)
    cfg = Config.model_validate({"train": {"threads": 1, "seed": 0}, "model": {"n_memories": 0}})
    det = Detector(cfg).fit(df)
    own = det.reconstruction(det.encode(df)[0])[0]
    new = det.reconstruction(det.encode(fresh)[0])[0]
    assert np.median(own) / np.median(new) > 0.85
    assert (det.score(fresh) > det.threshold_["value"]).mean() < 0.05


def test_a_file_scored_by_its_own_fit_does_not_hide_its_anomalies():
    """What cross-fitting is for: `attnad detect DATA` without a model fits on DATA and scores
    DATA. One model learns the planted rows along with the rest and reconstructs them well;
    cross-fitted, each is reconstructed by the model that never saw it. Measured (seed 0):
    AUROC of the reconstruction part 0.67 with one model, 0.93 cross-fitted; final score 0.950
    and 0.975 (5 seeds: benchmarks/claims.py, cross-fitting ahead in 4)."""
    df, planted = _small_with_cluster(130, 10, seed=0)
    y = np.zeros(len(df), int)
    y[planted] = 1
    recon, score = {}, {}
    for k in (1, 2):
        cfg = Config.model_validate({"train": {"threads": 1, "seed": 0, "cross_fit": k}})
        det = Detector(cfg).fit(df)
        assert len(det.models_) == k
        recon[k] = auroc(y, det.reconstruction(det.encode(df)[0])[0])
        score[k] = auroc(y, det.score(df))
    assert recon[2] > recon[1] + 0.15, recon
    assert score[2] > score[1], score


def test_one_model_when_a_fold_would_have_nothing_to_train_on():
    df = pd.DataFrame({"a": [1.0] * 30, "b": [2.0] * 30})  # one distinct row: one fold
    det = Detector(Config.model_validate(FAST)).fit(df)
    assert len(det.models_) == 1 and "cross_fit" not in det.training_
    assert np.isfinite(det.score(df)).all()


def test_a_model_saved_before_cross_fitting_still_loads(tmp_path):
    df, _ = make_table(200, seed=2)
    cfg = Config.model_validate({**FAST, "data": {"id_columns": ["id"]},
                                 "train": {**FAST["train"], "cross_fit": 1}})
    det = Detector(cfg).fit(df)
    det.save(tmp_path / "m")
    meta_path = tmp_path / "m" / "attnad.json"
    meta = json.loads(meta_path.read_text())
    del meta["scoring"]["folds"]  # the layout before cross-fitting: one scale, no fold count
    meta["scoring"]["error_scale"] = meta["scoring"]["error_scale"][0]
    del meta["config"]["train"]["cross_fit"]
    meta_path.write_text(json.dumps(meta))
    old = Detector.load(tmp_path / "m")
    assert len(old.models_) == 1
    assert np.array_equal(old.score(df), det.score(df))


def test_cross_fitted_model_round_trips(tmp_path):
    df, _ = make_table(200, seed=2)
    det = Detector(Config.model_validate({**FAST, "data": {"id_columns": ["id"]}})).fit(df)
    det.save(tmp_path / "m")
    again = Detector.load(tmp_path / "m")
    assert len(again.models_) == 2
    assert np.array_equal(again.score(df), det.score(df))


def test_merged_summary_counts_each_row_once():
    one = {"rows": 60, "epochs": 3, "steps": 10, "best_validation_loss": 1.0,
           "final_train_loss": 2.0, "seconds": 1.0, "device": "cpu"}
    three = merge_summaries([one, {**one, "best_validation_loss": None}, one])
    assert three["rows"] == 90 and three["steps"] == 30 and three["best_validation_loss"] == 1.0
    assert merge_summaries([one]) == one


@pytest.mark.parametrize("bad", [0, 11])
def test_cross_fit_is_validated(bad):
    with pytest.raises(ValueError):
        Config.model_validate({"train": {"cross_fit": bad}})


def test_row_hashes_are_pinned():
    """A saved model's folds come from these hashes: a faster or tidier hash must give the same
    values, or rows trained on would be scored by their own model after an upgrade."""
    num = np.array([[-0.8, -1.32, -0.25], [0.42, 1.14, 0.0], [-0.0, -0.78, 0.75],
                    [1.63, 0.27, -1.23]], np.float32)
    miss = np.array([[0, 0, 1], [0, 1, 0], [0, 0, 0], [1, 1, 1]], bool)
    cat = np.array([[2, 0], [5, 1], [0, 3], [7, 2]], np.int64)
    assert row_hashes(Encoded(num, miss, cat)).tolist() == [
        16136902921456077621, 16804805198644912115, 15054150612643786766, 9932486401035714042]
    many = Encoded(np.tile(num, (5000, 1)), np.tile(miss, (5000, 1)), np.tile(cat, (5000, 1)))
    assert np.array_equal(row_hashes(many), np.tile(row_hashes(Encoded(num, miss, cat)), 5000))
