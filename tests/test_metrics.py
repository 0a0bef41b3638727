"""Tests of asdlib.metrics: AUC / pAUC, per-ID, per-type and pooled tables."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from asdlib.metrics import (
    PROTOCOLS,
    TABLE_TYPES,
    auc_pauc,
    per_id_table,
    per_type_table,
    weighted_auc_pauc,
)


def frame_of(groups):
    """Results frame from {(machine_type, machine_id): (normal scores, anomaly scores)}."""
    rows = []
    for (machine_type, machine_id), (normal, anomaly) in groups.items():
        for label, scores in ((0, normal), (1, anomaly)):
            for score in scores:
                rows.append(
                    {
                        "machine_type": machine_type,
                        "machine_id": machine_id,
                        "label": label,
                        "score": float(score),
                        "path": f"{machine_type}/test/{machine_id}.wav",
                    }
                )
    return pd.DataFrame(rows)


def random_frame(types=TABLE_TYPES, ids=("id_00", "id_02"), seed=0, n=30):
    """A results frame with a different separation per (type, ID)."""
    rng = np.random.default_rng(seed)
    groups = {}
    for t_index, machine_type in enumerate(types):
        for i_index, machine_id in enumerate(ids):
            shift = 0.5 + t_index + 2 * i_index
            groups[(machine_type, machine_id)] = (rng.normal(size=n), rng.normal(shift, 1, n // 2))
    return frame_of(groups)


def counted_pauc(labels, score, max_fpr):
    """Standardised pAUC by counting (no ties): an independent re-derivation.

    The k-th highest-scoring normal clip (k = 1 .. N-) covers FPR in [(k-1)/N-, k/N-], where
    the ROC curve sits at TPR = share of anomalous clips scoring above it.
    """
    labels, score = np.asarray(labels), np.asarray(score)
    normal = np.sort(score[labels == 0])[::-1]
    anomaly = score[labels == 1]
    area = 0.0
    for k, normal_score in enumerate(normal, start=1):
        left, right = (k - 1) / len(normal), min(k / len(normal), max_fpr)
        if right <= left:
            break
        area += (right - left) * np.mean(anomaly > normal_score)
    min_area, max_area = 0.5 * max_fpr**2, max_fpr
    return 0.5 * (1 + (area - min_area) / (max_area - min_area))


# ----------------------------------------------------------------------------------------
# auc_pauc
# ----------------------------------------------------------------------------------------


def test_auc_pauc_hand_counted():
    # Normals 0.1, 0.4, 0.6; anomalies 0.5, 0.8.
    # AUC: pairs (anomaly > normal): 0.5 beats 0.1 and 0.4 (2), 0.8 beats all 3 (3)
    #      -> 5 of 3 * 2 = 6 pairs = 0.833333.
    # ROC from the top: 0.8 (anomaly) -> TPR 1/2 at FPR 0; next 0.6 (normal) -> FPR 1/3.
    # So on FPR in [0, 0.1] the TPR is 1/2: raw area A = 0.1 * 0.5 = 0.05.
    # min_area = 0.5 * 0.1^2 = 0.005, max_area = 0.1:
    # pAUC = 0.5 * (1 + (0.05 - 0.005) / (0.1 - 0.005)) = 0.5 * (1 + 0.473684) = 0.736842.
    auc, pauc = auc_pauc([0, 0, 0, 1, 1], [0.1, 0.4, 0.6, 0.5, 0.8])
    assert auc == pytest.approx(5 / 6)
    assert pauc == pytest.approx(0.736842, abs=1e-6)
    assert isinstance(auc, float) and isinstance(pauc, float)


def test_auc_counts_ties_as_half():
    # Normal 0.5 vs anomalies 0.5 (tie: 1/2) and 0.9 (1): AUC = 1.5 / 2 = 0.75.
    auc, _ = auc_pauc([0, 1, 1], [0.5, 0.5, 0.9])
    assert auc == pytest.approx(0.75)


def test_auc_pauc_perfect_reversed_and_random():
    assert auc_pauc([0, 0, 1, 1], [0.0, 1.0, 2.0, 3.0]) == (1.0, 1.0)
    auc, pauc = auc_pauc([0, 0, 1, 1], [3.0, 2.0, 1.0, 0.0])
    assert auc == 0.0
    # Reversed ranking: A = 0, so pAUC = 0.5 * (1 - 0.005 / 0.095) = 0.473684 (McClish floor).
    assert pauc == pytest.approx(0.473684, abs=1e-6)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 4000)
    auc, pauc = auc_pauc(labels, rng.normal(size=4000))
    assert auc == pytest.approx(0.5, abs=0.03) and pauc == pytest.approx(0.5, abs=0.03)


def test_auc_pauc_match_sklearn_and_counting():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(97, int), np.ones(41, int)]
    score = rng.normal(size=138) + labels
    auc, pauc = auc_pauc(labels, score)
    assert auc == pytest.approx(roc_auc_score(labels, score))
    assert pauc == pytest.approx(roc_auc_score(labels, score, max_fpr=0.1))
    assert pauc == pytest.approx(counted_pauc(labels, score, 0.1))
    _, pauc_03 = auc_pauc(labels, score, max_fpr=0.3)
    assert pauc_03 == pytest.approx(counted_pauc(labels, score, 0.3))
    assert auc_pauc(labels, score, max_fpr=1.0)[1] == pytest.approx(auc)


def test_auc_pauc_bad_inputs():
    with pytest.raises(ValueError, match="labels has 3 entries but score has 2"):
        auc_pauc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="score has 1 NaN"):
        auc_pauc([0, 1, 1], [0.1, np.nan, 0.3])
    with pytest.raises(ValueError, match=r"one class only \(normal"):
        auc_pauc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"one class only \(anomaly"):
        auc_pauc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="labels must be 0 .* or 1"):
        auc_pauc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="must be 1-D"):
        auc_pauc([[0, 1]], [[0.1, 0.2]])
    with pytest.raises(ValueError, match=r"max_fpr must lie in \(0, 1\]"):
        auc_pauc([0, 1], [0.1, 0.2], max_fpr=0.0)


# ----------------------------------------------------------------------------------------
# per_id_table and per_type_table
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_fpr", [0.1, 0.25, 1.0])
def test_weighted_auc_pauc_is_sklearn_with_sample_weights(max_fpr):
    """Every row of weights gives what roc_auc_score gives with those sample weights: bootstrap
    counts (with zeros), real-valued weights, tied scores; a row without one class is NaN."""
    rng = np.random.default_rng(7)
    labels = np.r_[np.zeros(60), np.ones(40)].astype(int)
    score = rng.normal(size=100) + 0.8 * labels
    score[::7] = np.round(score[::7])  # ties, within and across the classes
    counts = np.zeros((20, 100))
    for value in (0, 1):
        where = np.flatnonzero(labels == value)
        counts[:, where] = rng.multinomial(len(where), np.full(len(where), 1 / len(where)), 20)
    weights = np.vstack([counts, rng.uniform(0, 3, size=(5, 100)), np.ones(100),
                         np.where(labels == 1, 0.0, 1.0)])  # the last row: no anomaly
    auc, pauc = weighted_auc_pauc(labels, score, weights, max_fpr)
    for row in range(len(weights) - 1):
        w = weights[row]
        assert auc[row] == pytest.approx(roc_auc_score(labels, score, sample_weight=w), abs=1e-12)
        expected = roc_auc_score(labels, score, sample_weight=w,
                                 max_fpr=None if max_fpr == 1.0 else max_fpr)
        assert pauc[row] == pytest.approx(expected, abs=1e-12)
    assert np.isnan(auc[-1]) and np.isnan(pauc[-1])
    assert (auc[-2], pauc[-2]) == pytest.approx(auc_pauc(labels, score, max_fpr), abs=1e-12)


def test_per_id_table_against_sklearn():
    frame = random_frame(types=("valve", "fan"), ids=("id_02", "id_00"))
    table = per_id_table(frame)
    # Types in the paper's order, IDs sorted.
    assert list(table.index) == [
        ("fan", "id_00"),
        ("fan", "id_02"),
        ("valve", "id_00"),
        ("valve", "id_02"),
    ]
    assert list(table.columns) == ["auc", "pauc", "n_normal", "n_anomaly"]
    for (machine_type, machine_id), row in table.iterrows():
        clips = frame[(frame.machine_type == machine_type) & (frame.machine_id == machine_id)]
        assert row["auc"] == pytest.approx(roc_auc_score(clips.label, clips.score))
        assert row["pauc"] == pytest.approx(roc_auc_score(clips.label, clips.score, max_fpr=0.1))
        assert (row["n_normal"], row["n_anomaly"]) == (30, 15)


def test_per_id_mean_and_pooled_differ_where_they_must():
    # Each ID is perfectly separated (per-ID AUC 1), but ID 02 scores 10 higher overall.
    # Pooled: normals {0, 1, 10, 11}, anomalies {2, 3, 12, 13}; anomaly-beats-normal pairs:
    # 2 -> 2, 3 -> 2, 12 -> 4, 13 -> 4, so 12 of 16 = 0.75.
    frame = frame_of({("fan", "id_00"): ([0, 1], [2, 3]), ("fan", "id_02"): ([10, 11], [12, 13])})
    row = per_type_table(frame).loc["fan"]
    assert row["per_id_mean_auc"] == 1.0 and row["per_id_mean_pauc"] == 1.0
    assert row["pooled_auc"] == pytest.approx(0.75)
    expected_pauc = roc_auc_score(frame.label, frame.score, max_fpr=0.1)
    assert row["pooled_pauc"] == pytest.approx(expected_pauc)
    assert row["pooled_pauc"] < 1.0
    assert (row["n_ids"], row["n_normal"], row["n_anomaly"]) == (2, 4, 4)


def test_per_type_table_means_and_mauc():
    # fan: id_00 AUC 1 (perfect), id_02 AUC 0.5 (normal 1 vs anomalies 0 and 2: 1 of 2 pairs),
    #      id_04 AUC 0.75 (normals 0, 2 vs anomalies 1, 3: pairs 1>0, 3>0, 3>2 = 3 of 4).
    groups = {
        ("fan", "id_00"): ([0.0], [1.0]),
        ("fan", "id_02"): ([1.0], [0.0, 2.0]),
        ("fan", "id_04"): ([0.0, 2.0], [1.0, 3.0]),
        ("pump", "id_00"): ([0.0, 1.0], [0.5, 2.0]),
    }
    frame = frame_of(groups)
    table = per_type_table(frame)
    assert list(table.index) == ["fan", "pump"]
    assert list(table.columns) == [
        "per_id_mean_auc",
        "per_id_mean_pauc",
        "mauc",
        "pooled_auc",
        "pooled_pauc",
        "n_ids",
        "n_normal",
        "n_anomaly",
    ]
    assert table.at["fan", "per_id_mean_auc"] == pytest.approx((1.0 + 0.5 + 0.75) / 3)
    assert table.at["fan", "mauc"] == pytest.approx(0.5)
    per_id = per_id_table(frame)
    assert table.at["fan", "mauc"] == per_id.loc["fan", "auc"].min()
    assert table.at["fan", "per_id_mean_pauc"] == pytest.approx(per_id.loc["fan", "pauc"].mean())
    # One ID only: per-ID mean, minimum and pooled coincide.
    pump = table.loc["pump"]
    assert pump["per_id_mean_auc"] == pump["mauc"] == pump["pooled_auc"] == pytest.approx(0.75)


def test_frame_errors_name_the_problem():
    frame = random_frame(types=("fan",))
    with pytest.raises(ValueError, match=r"missing columns \['score'\]"):
        per_id_table(frame.drop(columns="score"))
    with pytest.raises(ValueError, match="frame must be a pandas DataFrame"):
        per_id_table(frame.to_dict())
    with pytest.raises(ValueError, match="frame has no rows"):
        per_id_table(frame.iloc[:0])
    bad = frame.copy()
    bad.loc[3, "score"] = np.nan
    with pytest.raises(ValueError, match="column 'score' has 1 NaN .*fan id_00"):
        per_type_table(bad)
    bad = frame.copy()
    bad.loc[3, "label"] = 2
    with pytest.raises(ValueError, match="column 'label' must be 0"):
        per_id_table(bad)
    # A machine without anomalous clips: the error names the machine.
    only_normal = frame[~((frame.machine_id == "id_02") & (frame.label == 1))]
    with pytest.raises(ValueError, match=r"fan id_02: labels hold one class only \(normal"):
        per_id_table(only_normal)
