"""Fine-tuning with --init-from: what carries over, and that it converges faster than scratch."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from attnad.cli import app
from attnad.config import Config
from attnad.detector import Detector
from attnad.errors import UserError
from attnad.transfer import tabular_features, transfer
from tests.factories import FAST, make_table

runner = CliRunner()
SHORT = 25  # optimiser steps for both runs: the comparison is at the same small budget


def shifted(seed: int):
    """A new batch of the same kind of data, drifted: levels and spreads moved, a relation
    changed slightly (b = 2.2 a instead of 2 a), the rare colour a little more common."""
    df, _ = make_table(1200, seed=seed, planted=False)
    df["a"] = df["a"] * 1.3 + 0.5
    df["b"] = 2.2 * df["a"] + np.random.default_rng(seed).normal(0, 0.13, len(df))
    df["c"] = df["c"] + 3.0
    df["count"] = df["count"] + 1
    return df


def short_config(**extra):
    return Config.model_validate({**FAST, "data": {"id_columns": ["id"]},
                                  "train": {**FAST["train"], "min_steps": SHORT,
                                            "max_steps": SHORT, **extra}})


def held_out_loss(det, df) -> float:
    """Mean reconstruction error of the hidden cells under the scoring masks: the training loss,
    measured on rows neither run trained on."""
    raw = det.scorer.mask_errors(det.encode(df)[0])
    return float(np.nanmean(raw))


def test_fine_tuning_converges_faster_than_training_from_scratch(model_dir):
    new, fresh = shifted(seed=11), shifted(seed=12)
    scratch = Detector(short_config()).fit(new)
    tuned = Detector(short_config()).fit(new, init_from=model_dir)
    assert tuned.training_["init_from"]["tensors_copied"] > 0
    assert tuned.training_["init_from"]["features_new"] == 0
    ls, lt = held_out_loss(scratch, fresh), held_out_loss(tuned, fresh)
    assert lt < 0.8 * ls, (lt, ls)
    assert tuned.training_["best_validation_loss"] < scratch.training_["best_validation_loss"]


def test_overlapping_columns_copy_row_by_row(fitted):
    df = shifted(seed=13).drop(columns=["count"])
    df["z"] = np.random.default_rng(0).normal(0, 1, len(df))
    det = Detector(short_config())
    det.config = det.config.model_copy(update={"model": fitted.config.model})
    from attnad.data.preprocess import Preprocessor
    from attnad.data.schema import infer_schema
    from attnad.models import build_model
    import pyarrow as pa
    table = pa.Table.from_pandas(df, preserve_index=False)
    schema = infer_schema(table, det.config.data, "data")
    pre = Preprocessor.fit(schema.coerce(table)[0], schema, det.config.data)
    torch.manual_seed(1)
    model = build_model(det.config.model, pre.n_numeric, pre.cardinalities)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = transfer(model, fitted.model_.state_dict(), tabular_features(fitted.preprocessor_),
                      tabular_features(pre))
    assert report["features_new"] == 1 and report["features_shared"] == len(pre.feature_names) - 1
    new_names, old_names = [f["name"] for f in pre.numeric], [f["name"] for f in
                                                               fitted.preprocessor_.numeric]
    w, w_old = model.tokenizer.num_weight, fitted.model_.tokenizer.num_weight
    assert torch.equal(w[new_names.index("c")], w_old[old_names.index("c")].to(w.device))
    assert torch.equal(w[new_names.index("z")], before["tokenizer.num_weight"][new_names.index("z")])
    # leave_one_out's per-column queries follow the columns by name, like their embeddings
    feats, feats_old = pre.feature_names, fitted.preprocessor_.feature_names
    q, q_old = model.queries, fitted.model_.queries
    assert torch.equal(q[feats.index("c")], q_old[feats_old.index("c")].to(q.device))
    assert torch.equal(q[feats.index("z")], before["queries"][feats.index("z")])
    blocks = [k for k in before if k.startswith("blocks.")]
    assert blocks and all(torch.equal(model.state_dict()[k], fitted.model_.state_dict()[k].cpu())
                          for k in blocks)


def test_init_from_errors(tmp_path, model_dir, csv_file):
    from tests.factories import TS_FAST, make_series
    ts, _ = make_series(seed=1, start=0, planted=False)
    with pytest.raises(UserError, match="is a tabular model"):
        Detector(Config.model_validate(TS_FAST)).fit(ts, init_from=model_dir)
    other = make_table(200, seed=3)[0][["id"]].assign(q=np.arange(200.0), r=np.ones(200))
    with pytest.raises(UserError, match="shares no column"):
        Detector(short_config()).fit(other, init_from=model_dir)
    r = runner.invoke(app, ["train", str(csv_file), "-o", str(tmp_path / "m2"), "--init-from",
                            str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "model directory not found" in r.output


def test_cli_train_init_from(tmp_path, model_dir):
    p = tmp_path / "new.csv"
    shifted(seed=14).to_csv(p, index=False)
    r = runner.invoke(app, ["train", str(p), "-o", str(tmp_path / "m2"), "--init-from",
                            str(model_dir), "--set", "train.max_steps=20",
                            "--set", "train.threads=1", "--set", "data.id_columns=[id]"])
    assert r.exit_code == 0, r.output
    back = Detector.load(tmp_path / "m2")
    assert back.training_["init_from"]["path"] == str(model_dir)
    assert back.config.model == Detector.load(model_dir).config.model
