"""asdlib.evaluate: the authors' score, DCASE score / decision files, thresholds, embeddings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from asdlib.evaluate import SCORES, anomaly_scores, evaluate, gamma_threshold
from asdlib.features import LogMel
from asdlib.checkpoints import load_model
from asdlib.profiles import TrainConfig
from asdlib.train import train


# Train on one torch thread (see conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, smoke_data):
    """A smoke-profile run on two machine types (8 IDs), trained for one epoch."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASDLIB_HOME", str(tmp_path_factory.mktemp("home")))
        root = smoke_data("fan", "ToyCar")
        run_dir = tmp_path_factory.mktemp("run")
        train(TrainConfig.from_profile("smoke", num_epochs=1), root, run_dir,
              progress=False)
        result = evaluate(run_dir, progress=False)
    return root, run_dir, result


def test_score_and_decision_files_have_the_dcase_names_and_format(trained):
    root, run_dir, _ = trained
    folder = run_dir / "dcase"
    ids = {"fan": ["id_00", "id_02", "id_04", "id_06"], "ToyCar": ["id_01", "id_02", "id_03", "id_04"]}
    expected = {f"{prefix}_{t}_{i}.csv" for t in ids for i in ids[t]
                for prefix in ("anomaly_score", "decision_result")}
    assert {p.name for p in folder.iterdir()} == expected
    for machine_type, machine_ids in ids.items():
        for machine_id in machine_ids:
            test_files = sorted(p.name for p in (root / machine_type / "test").glob(f"*_{machine_id}_*.wav"))
            scores = pd.read_csv(folder / f"anomaly_score_{machine_type}_{machine_id}.csv", header=None)
            decisions = pd.read_csv(folder / f"decision_result_{machine_type}_{machine_id}.csv",
                                    header=None)
            # No header: two columns, file name (no folder) and value, one row per test clip
            assert scores.shape == (len(test_files), 2) and decisions.shape == scores.shape
            assert sorted(scores[0]) == test_files and sorted(decisions[0]) == test_files
            assert np.isfinite(scores[1].to_numpy(dtype=float)).all()
            assert set(decisions[1]) <= {0, 1}


def test_decisions_follow_the_gamma_threshold_of_the_training_scores(trained):
    _, run_dir, result = trained
    scores = pd.read_csv(run_dir / "scores.csv")
    train_scores = pd.read_csv(run_dir / "embeddings.csv")
    assert (scores["decision"] == (scores["score"] > scores["threshold"]).astype(int)).all()
    for row in result["per_id"]:
        threshold, _ = gamma_threshold(_train_ce(run_dir, row["machine_type"], row["machine_id"]))
        assert row["threshold"] == pytest.approx(threshold, rel=1e-6)
    assert result["thresholds"]["percentile"] == 0.9
    assert len(train_scores[train_scores["split"] == "train"]) == 8 * 6


def _train_ce(run_dir: Path, machine_type: str, machine_id: str) -> np.ndarray:
    """The "ce" score of the training clips of one ID, recomputed from the saved embeddings."""
    data = np.load(run_dir / "embeddings.npz")
    keep = (data["split"] == "train") & (data["machine_type"] == machine_type) & (
        data["machine_id"] == machine_id)
    return anomaly_scores(data["embedding"][keep], data["class_weight"],
                          data["class_index"][keep], "ce")


def test_gamma_threshold_is_the_90th_percentile_of_the_fitted_gamma():
    sample = stats.gamma.rvs(2.0, loc=0.0, scale=1.5, size=4000, random_state=np.random.default_rng(0))
    threshold, method = gamma_threshold(sample)
    assert method == "gamma"
    assert threshold == pytest.approx(stats.gamma.ppf(0.9, 2.0, scale=1.5), rel=0.05)
    # Identical scores cannot be fitted: the empirical quantile is used
    assert gamma_threshold(np.ones(5)) == (1.0, "empirical")
    with pytest.raises(ValueError, match="train_scores"):
        gamma_threshold([])


def test_the_ce_score_is_the_cross_entropy_of_the_margin_logits(trained):
    """Recompute the authors' score clip by clip with the model's own forward (batch of one)."""
    import soundfile as sf

    _, run_dir, _ = trained
    model = load_model(run_dir)
    scores = pd.read_csv(run_dir / "scores.csv").iloc[::7]
    logmel_fn = LogMel()
    for _, row in scores.iterrows():
        wav, _ = sf.read(row["path"], dtype="float32")
        wav = torch.from_numpy(wav)[None]  # [1, samples]
        label = torch.tensor([row["class_index"]])
        with torch.no_grad():
            logits, _ = model(wav, logmel_fn(wav), label)
        expected = float(F.cross_entropy(logits, label))
        assert row["score"] == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_angle_scores_and_embeddings(trained):
    _, run_dir, _ = trained
    data = np.load(run_dir / "embeddings.npz")
    num_clips = 8 * (6 + 3 + 3)
    assert data["embedding"].shape == (num_clips, 128) and data["angle"].shape == (num_clips,)
    # angle = arccos of the cosine between embedding and the class weight of its ID
    unit = data["embedding"] / np.linalg.norm(data["embedding"], axis=1, keepdims=True)
    weight = data["class_weight"] / np.linalg.norm(data["class_weight"], axis=1, keepdims=True)
    cos = (unit * weight[data["class_index"]]).sum(axis=1)
    np.testing.assert_allclose(data["angle"], np.arccos(np.clip(cos, -1, 1)), atol=1e-4)
    assert ((data["angle"] >= 0) & (data["angle"] <= math.pi)).all()
    table = pd.read_csv(run_dir / "embeddings.csv")
    assert list(table.columns) == ["path", "split", "machine_type", "machine_id", "label",
                                   "class_index", "angle", "angle_mean"]
    np.testing.assert_allclose(table["angle"], data["angle"], rtol=1e-6)
    scores = pd.read_csv(run_dir / "scores.csv")
    for name in SCORES:
        assert np.isfinite(scores[f"score_{name}"]).all()


def test_metrics_json_holds_the_tables_and_names_profile_and_data(trained):
    _, run_dir, result = trained
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["average"] == pytest.approx(result["average"])
    assert saved["profile"] == "smoke" and "synthetic data" in saved["dataset"]["description"]
    assert [row["machine_type"] for row in saved["per_type"]] == ["fan", "ToyCar"]
    assert len(saved["per_id"]) == 8
    for row in saved["per_id"]:
        assert 0.0 <= row["auc"] <= 1.0 and 0.0 <= row["pauc"] <= 1.0
        assert row["n_normal"] == 3 and row["n_anomaly"] == 3
    fan = next(row for row in saved["per_type"] if row["machine_type"] == "fan")
    fan_ids = [row["auc"] for row in saved["per_id"] if row["machine_type"] == "fan"]
    assert fan["per_id_mean_auc"] == pytest.approx(np.mean(fan_ids))


def test_another_score_goes_to_its_own_folder(trained):
    _, run_dir, result = trained
    angle = evaluate(run_dir, score="angle", progress=False)
    assert angle["score"] == "angle" and (run_dir / "eval_angle" / "metrics.json").is_file()
    scores = pd.read_csv(run_dir / "eval_angle" / "scores.csv")
    np.testing.assert_allclose(scores["score"], scores["score_angle"])
    # the default run-folder results are untouched
    assert json.loads((run_dir / "metrics.json").read_text())["score"] == "ce"


def test_bad_inputs_give_clear_errors(trained, tmp_path):
    _, run_dir, _ = trained
    with pytest.raises(ValueError, match="score: unknown score 'mse'"):
        evaluate(run_dir, score="mse", progress=False)
    with pytest.raises(FileNotFoundError, match="run folder .* does not exist"):
        evaluate(tmp_path / "missing", progress=False)
    (tmp_path / "no_config").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        evaluate(tmp_path / "no_config", progress=False)
    # A run folder whose training never finished an epoch: config.json but no checkpoint
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text((run_dir / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="has no checkpoint best.pt"):
        evaluate(half, progress=False)
    with pytest.raises(FileNotFoundError, match="data root .*elsewhere does not exist"):
        evaluate(run_dir, data_root=tmp_path / "elsewhere", progress=False)
