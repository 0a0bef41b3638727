"""Tests of the exercise checkers of chapter 1 (AUC by counting pairs, the per-ID mean AUC).

For every checker: a correct answer passes, typical mistakes get their specific message, and a
stub that raises NotImplementedError gets the friendly message (and nothing raises).
"""

import numpy as np
from sklearn.metrics import roc_auc_score

import asdlib.exercises as exercises
from asdlib import metrics
from asdlib.exercises import data

from exercise_helpers import stub, verdict_of


def _differences(labels, score):
    return score[labels == 1][:, None] - score[labels == 0][None, :]


def pair_auc(labels, score):
    difference = _differences(labels, score)
    return ((difference > 0).sum() + 0.5 * (difference == 0).sum()) / difference.size


def test_package_reexports_the_chapter_1_checkers():
    assert exercises.check_pair_auc is data.check_pair_auc
    assert exercises.check_per_id_mean_auc is data.check_per_id_mean_auc


def test_cases_have_ties():
    for labels, score in data.pair_auc_cases():
        assert set(labels) == {0, 1}
    assert sum((_differences(*case) == 0).sum() for case in data.pair_auc_cases()) > 0


def test_pair_auc_correct_answers_pass(capsys):
    verdict, printed = verdict_of(data.check_pair_auc, pair_auc, capsys)
    assert verdict.passed and printed.startswith("PASSED")
    # sklearn itself passes too
    assert data.check_pair_auc(lambda labels, score: roc_auc_score(labels, score)).passed


def test_pair_auc_ties_as_zero(capsys):
    verdict, printed = verdict_of(
        data.check_pair_auc, lambda l, s: (_differences(l, s) > 0).mean(), capsys)
    assert verdict.status == "wrong"
    assert "you counted ties as 0" in printed and "one half" in printed


def test_pair_auc_ties_as_one(capsys):
    verdict, printed = verdict_of(
        data.check_pair_auc, lambda l, s: (_differences(l, s) >= 0).mean(), capsys)
    assert verdict.status == "wrong" and "you counted ties as 1" in printed


def test_pair_auc_flipped(capsys):
    verdict, printed = verdict_of(data.check_pair_auc, lambda l, s: 1 - pair_auc(l, s), capsys)
    assert verdict.status == "wrong" and "1 - AUC" in printed


def test_pair_auc_not_normalised(capsys):
    def count(labels, score):
        difference = _differences(labels, score)
        return (difference > 0).sum() + 0.5 * (difference == 0).sum()

    verdict, printed = verdict_of(data.check_pair_auc, count, capsys)
    assert verdict.status == "wrong" and "divide by the number of pairs" in printed


def test_pair_auc_not_a_number(capsys):
    verdict, printed = verdict_of(data.check_pair_auc, lambda l, s: "0.5", capsys)
    # "0.5" converts to a float: a wrong value, not a crash
    assert verdict.status == "wrong"
    verdict, printed = verdict_of(data.check_pair_auc, lambda l, s: [0.5, 0.5], capsys)
    assert verdict.status == "wrong" and "one number" in printed


def test_pair_auc_stub_is_friendly(capsys):
    verdict, printed = verdict_of(data.check_pair_auc, stub, capsys)
    assert verdict.status == "not_implemented"
    assert "not implemented yet" in printed


def per_id_mean(frame):
    out = {}
    for machine_type, of_type in frame.groupby("machine_type"):
        aucs = [roc_auc_score(clips["label"], clips["score"])
                for _, clips in of_type.groupby("machine_id")]
        out[machine_type] = float(np.mean(aucs))
    return out


def test_per_id_example_separates_the_summaries():
    table = metrics.per_type_table(data.per_id_example())
    # the per-ID mean, the pooled AUC and the worst ID all differ, for every type
    for machine_type, row in table.iterrows():
        assert abs(row["per_id_mean_auc"] - row["pooled_auc"]) > 0.01
        assert abs(row["per_id_mean_auc"] - row["mauc"]) > 0.01


def test_per_id_mean_passes(capsys):
    verdict, printed = verdict_of(data.check_per_id_mean_auc, per_id_mean, capsys)
    assert verdict.passed
    # a pandas Series from asdlib.metrics passes too
    assert data.check_per_id_mean_auc(
        lambda frame: metrics.per_type_table(frame)["per_id_mean_auc"]).passed


def test_per_id_mean_pooled(capsys):
    def pooled(frame):
        return {t: roc_auc_score(f["label"], f["score"]) for t, f in frame.groupby("machine_type")}

    verdict, printed = verdict_of(data.check_per_id_mean_auc, pooled, capsys)
    assert verdict.status == "wrong" and "pooled AUC" in printed and "averages them" in printed


def test_per_id_mean_weighted_by_clips(capsys):
    def weighted(frame):
        out = {}
        for machine_type, of_type in frame.groupby("machine_type"):
            groups = list(of_type.groupby("machine_id"))
            aucs = np.array([roc_auc_score(c["label"], c["score"]) for _, c in groups])
            sizes = np.array([len(c) for _, c in groups])
            out[machine_type] = float((aucs * sizes).sum() / sizes.sum())
        return out

    verdict, printed = verdict_of(data.check_per_id_mean_auc, weighted, capsys)
    assert verdict.status == "wrong" and "number of clips" in printed


def test_per_id_mean_worst_id(capsys):
    verdict, printed = verdict_of(
        data.check_per_id_mean_auc, lambda frame: metrics.per_type_table(frame)["mauc"], capsys)
    assert verdict.status == "wrong" and "mAUC" in printed


def test_per_id_mean_missing_type_and_wrong_type(capsys):
    verdict, printed = verdict_of(data.check_per_id_mean_auc, lambda frame: {"fan": 0.9}, capsys)
    assert verdict.status == "wrong" and "valve" in printed
    verdict, printed = verdict_of(data.check_per_id_mean_auc, lambda frame: 0.9, capsys)
    assert verdict.status == "wrong" and "return a dict" in printed


def test_per_id_mean_stub_is_friendly(capsys):
    verdict, printed = verdict_of(data.check_per_id_mean_auc, stub, capsys)
    assert verdict.status == "not_implemented" and "not implemented yet" in printed
