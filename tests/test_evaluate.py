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

from asdlib.evaluate import (SCORES, anomaly_scores, evaluate, gamma_threshold, id_recognition,
                             own_id_probability)
from asdlib.features import LogMel
from asdlib.runfolder import load_model
from asdlib.profiles import TrainConfig
from asdlib.train import Setup, train


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
              Setup(progress=False))
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


def test_every_score_is_one_entry_of_the_table_and_a_bad_name_lists_them():
    """`SCORES` maps each name to its function; `anomaly_scores` only looks the name up."""
    g = torch.Generator().manual_seed(0)
    embedding, weight = torch.randn(6, 8, generator=g), torch.randn(3, 8, generator=g)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    centres = torch.randn(3, 8, generator=g)
    assert list(SCORES) == ["ce", "angle", "angle_mean"]
    for name, function in SCORES.items():
        values = anomaly_scores(embedding, weight, labels, name, centres=centres)
        direct = function(embedding, weight, labels, margin=0.7, scale=30.0, sub_centers=1,
                          centres=centres)
        np.testing.assert_array_equal(values, direct.double().numpy())
        assert values.dtype == np.float64 and values.shape == (6,)
    with pytest.raises(ValueError, match=r"score: unknown score 'mse'; choose one of "
                                         r"\['ce', 'angle', 'angle_mean'\]"):
        anomaly_scores(embedding, weight, labels, "mse")
    with pytest.raises(ValueError, match="score 'angle_mean' needs centres"):
        anomaly_scores(embedding, weight, labels, "angle_mean")


# ---- own_id_probability / id_recognition: the diagnosis of what misnamed normal clips cost


def test_own_id_probability_by_hand():
    # Two classes along the axes, s = 30: a clip on w0 has cos 1 / 0, one at (0.6, 0.8) cos
    # 0.6 / 0.8.
    embedding = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    weight = np.eye(2, dtype=np.float32)
    labels = np.array([0, 1, 0])
    ce, angle = (anomaly_scores(embedding, weight, labels, name) for name in ("ce", "angle"))
    p = own_id_probability(ce, angle)
    assert p[0] == pytest.approx(1.0, abs=1e-6)  # its own ID: 1 / (1 + e^-30)
    assert p[1] == pytest.approx(1 / (1 + math.exp(30)), rel=1e-4)  # the other ID
    assert p[2] == pytest.approx(1 / (1 + math.exp(30 * (0.8 - 0.6))), rel=1e-3)


@pytest.mark.parametrize("margin", [0.0, 0.7, 1.2])
def test_own_id_probability_is_the_margin_free_softmax(margin):
    g = torch.Generator().manual_seed(0)
    embedding, weight = torch.randn(400, 16, generator=g), torch.randn(5, 16, generator=g)
    labels = torch.randint(0, 5, (400,), generator=g)
    ce = anomaly_scores(embedding, weight, labels, "ce", margin=margin)
    angle = anomaly_scores(embedding, weight, labels, "angle", margin=margin)
    # The peer: torch's softmax of the scaled cosines, in float64.
    cos = F.normalize(embedding.double(), dim=1) @ F.normalize(weight.double(), dim=1).T
    expected = torch.softmax(30 * cos, dim=1).gather(1, labels[:, None])[:, 0].numpy()
    p = own_id_probability(ce, angle, margin=margin)
    np.testing.assert_allclose(p, expected, atol=1e-5)
    assert 0.05 < (p > 0.5).mean() < 0.95  # both kinds of clips are in the test


def test_id_recognition_counts_named_clips_and_drops_misnamed_normals():
    # One type, one ID: 2 normal clips named (p ~ 1), 1 normal misnamed with the highest score,
    # 2 anomalous clips in between (misnamed too: the margin alone adds some 16 to their ce).
    theta = np.array([0.1, 0.1, 1.4, 0.6, 0.5])
    ce = np.array([0.0, 0.0, 40.0, 20.0, 18.0])
    scores = pd.DataFrame({"machine_type": "fan", "machine_id": "id_00",
                           "label": [0, 0, 0, 1, 1], "score_ce": ce, "score_angle": theta})
    named = own_id_probability(ce, theta) > 0.5
    assert named.tolist() == [True, True, False, False, False]
    table = id_recognition(scores)
    assert table.loc["fan", "normal_named"] == pytest.approx(2 / 3)
    assert table.loc["fan", "anomaly_named"] == 0.0
    assert table.loc["fan", "auc"] == pytest.approx(4 / 6)  # the misnamed normal outranks both
    assert table.loc["fan", "auc_named_normals"] == 1.0


def test_own_id_probability_and_id_recognition_reject_bad_input():
    with pytest.raises(ValueError, match="one length"):
        own_id_probability([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="finite"):
        own_id_probability([np.nan], [0.1])
    with pytest.raises(ValueError, match="radians"):
        own_id_probability([0.1], [7.0])
    with pytest.raises(ValueError, match="score_angle"):
        id_recognition(pd.DataFrame({"machine_type": ["fan"], "label": [0]}))


def test_id_recognition_leaves_out_an_id_without_named_normals():
    rows = []
    for machine_id, normal_ce in (("id_00", 0.0), ("id_02", 40.0)):  # id_02: every normal misnamed
        rows += [{"machine_type": "fan", "machine_id": machine_id, "label": label,
                  "score_ce": ce, "score_angle": 0.1 if ce == 0 else 1.4}
                 for label, ce in ((0, normal_ce), (0, normal_ce), (1, 30.0))]
    table = id_recognition(pd.DataFrame(rows))
    assert table.loc["fan", "normal_named"] == 0.5
    assert table.loc["fan", "auc"] == pytest.approx((1.0 + 0.0) / 2)
    assert table.loc["fan", "auc_named_normals"] == 1.0  # id_00 only
    # no ID with a named normal clip: NaN, not an error
    misnamed = pd.DataFrame(rows).query("machine_id == 'id_02'")
    assert np.isnan(id_recognition(misnamed).loc["fan", "auc_named_normals"])
