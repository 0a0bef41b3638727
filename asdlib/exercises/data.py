"""Checkers of chapter 1 (the task and the data): AUC by counting pairs, the per-ID mean.

``check_pair_auc(fn)``: ``fn(labels, score) -> float``, the AUC as the share of (anomalous,
normal) pairs that the score orders correctly, ties counting one half.

``check_per_id_mean_auc(fn)``: ``fn(frame) -> {machine_type: AUC}``, the DCASE 2020 per-type
AUC: one AUC per machine ID, then the mean over the type's IDs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from asdlib.exercises import Mistake, run_check

__all__ = ["check_pair_auc", "check_per_id_mean_auc", "pair_auc_cases", "per_id_example"]


def pair_auc_cases(seed=0):
    """Small (labels, score) sets with ties, rounded scores and unequal class sizes.

    Returns:
        A list of ``(labels, score)`` NumPy pairs (labels 0/1 int, score float64).
    """
    rng = np.random.default_rng(seed)
    cases = []
    for normal, anomalous, decimals in ((7, 5, 1), (12, 3, 0), (4, 9, 1), (30, 30, 2)):
        labels = np.r_[np.zeros(normal, dtype=int), np.ones(anomalous, dtype=int)]
        # Anomalies score higher on average; rounding makes ties
        score = np.r_[rng.normal(0.0, 1.0, normal), rng.normal(0.8, 1.0, anomalous)]
        score = np.round(score, decimals)
        order = rng.permutation(len(labels))
        cases.append((labels[order], score[order]))
    return cases


def _pairs(labels, score):
    """(anomalous - normal) score differences of every pair: [anomalous, normal]."""
    return score[labels == 1][:, None] - score[labels == 0][None, :]


def _as_float(value, what):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Mistake(f"{what} should be one number, got {type(value).__name__}") from None
    if not math.isfinite(number):
        raise Mistake(f"{what} is {number}; it should be a finite number between 0 and 1")
    return number


def check_pair_auc(fn):
    """Check ``fn(labels, score) -> float`` = the AUC by counting pairs; print a verdict."""

    def check(fn):
        for case, (labels, score) in enumerate(pair_auc_cases()):
            got = _as_float(fn(labels.copy(), score.copy()), "your AUC")
            expected = roc_auc_score(labels, score)
            if abs(got - expected) < 1e-9:
                continue
            difference = _pairs(labels, score)
            ties = int((difference == 0).sum())
            where = (f"on test set {case} ({(labels == 1).sum()} anomalous, "
                     f"{(labels == 0).sum()} normal clips, {ties} tied pairs)")
            hints = [
                ((difference > 0).mean(), "you counted ties as 0: a tied pair is a coin flip, "
                                          "count it one half (the H(0) = 1/2 of the formula)"),
                ((difference >= 0).mean(), "you counted ties as 1: a tied pair is a coin flip, "
                                           "count it one half"),
                (1 - expected, "that is 1 - AUC: did you compare normal minus anomalous? the "
                               "anomalous clip should score higher"),
                ((difference > 0).sum() + 0.5 * ties,
                 "you returned the number of correctly ordered pairs; divide by the number of "
                 "pairs, N+ x N-"),
            ]
            for wrong, hint in hints:
                if abs(got - wrong) < 1e-9:
                    raise Mistake(f"your AUC is {got:.4f} {where}, expected {expected:.4f}; {hint}.")
            raise Mistake(f"your AUC is {got:.4f} {where}, expected {expected:.4f} "
                          f"(sklearn.metrics.roc_auc_score).")
        return "the share of correctly ordered (anomalous, normal) pairs, ties counting 1/2."

    return run_check("AUC by counting pairs", check, fn)


def per_id_example():
    """A results frame in which the per-ID mean, the pooled AUC and the clip-weighted mean differ.

    Two machine types; the IDs of a type have different numbers of test clips and their scores
    live on different scales (as when one ID is recorded in more noise).

    Returns:
        DataFrame with columns machine_type, machine_id, label, score.
    """
    rng = np.random.default_rng(7)
    rows = []
    # (type, ID, normal clips, anomalous clips, score offset, separation)
    plan = [("fan", "id_00", 8, 8, 0.0, 1.5), ("fan", "id_02", 20, 6, 3.0, 0.4),
            ("fan", "id_04", 5, 12, -1.0, 1.0), ("valve", "id_00", 10, 10, 0.0, 0.2),
            ("valve", "id_02", 6, 16, 5.0, 2.0)]
    for machine_type, machine_id, normal, anomalous, offset, separation in plan:
        for label, count in ((0, normal), (1, anomalous)):
            for value in rng.normal(offset + separation * label, 1.0, count):
                rows.append((machine_type, machine_id, label, float(value)))
    return pd.DataFrame(rows, columns=["machine_type", "machine_id", "label", "score"])


def _as_dict(got):
    if isinstance(got, pd.DataFrame) and got.shape[1] == 1:
        got = got.iloc[:, 0]
    if isinstance(got, pd.Series):
        got = got.to_dict()
    if not isinstance(got, dict):
        raise Mistake(f"return a dict {{machine_type: AUC}} (or a pandas Series indexed by "
                      f"machine type), got {type(got).__name__}")
    return got


def check_per_id_mean_auc(fn):
    """Check ``fn(frame) -> {machine_type: AUC}`` = the mean of the per-ID AUCs; print a verdict."""

    def check(fn):
        frame = per_id_example()
        got = _as_dict(fn(frame.copy()))
        expected, wrong = {}, {}
        for machine_type, of_type in frame.groupby("machine_type", sort=False):
            per_id = of_type.groupby("machine_id").apply(
                lambda clips: roc_auc_score(clips["label"], clips["score"]), include_groups=False)
            clips = of_type.groupby("machine_id").size()
            expected[machine_type] = float(per_id.mean())
            wrong[machine_type] = {
                "pooled": (roc_auc_score(of_type["label"], of_type["score"]),
                           "that is the pooled AUC, one ROC curve over all clips of the type "
                           "(what the Noisy-ArcMix script computes); the DCASE 2020 protocol "
                           "computes one AUC per machine ID and averages them"),
                "weighted": (float((per_id * clips).sum() / clips.sum()),
                             "you weighted each ID by its number of clips; the DCASE mean gives "
                             "every machine ID the same weight"),
                "min": (float(per_id.min()), "that is the worst ID's AUC (the mAUC column); "
                                             "the per-type AUC is the mean over the IDs"),
                "median": (float(per_id.median()), "that is the median over the IDs; use the "
                                                   "arithmetic mean"),
            }
        missing = [t for t in expected if t not in got]
        if missing:
            raise Mistake(f"no value for machine type(s) {missing}; return one AUC per type "
                          f"(keys: {list(expected)})")
        for machine_type, value in expected.items():
            number = _as_float(got[machine_type], f"the AUC of {machine_type}")
            if abs(number - value) < 1e-9:
                continue
            for wrong_value, hint in wrong[machine_type].values():
                if abs(number - wrong_value) < 1e-9:
                    raise Mistake(f"the AUC of {machine_type} is {number:.4f}, expected "
                                  f"{value:.4f}; {hint}.")
            raise Mistake(f"the AUC of {machine_type} is {number:.4f}, expected {value:.4f} "
                          f"(mean over its IDs of the per-ID AUC).")
        return "one AUC per machine ID, then the plain mean over the IDs of each type."

    return run_check("per-ID mean AUC", check, fn)
