"""Tests of the exercise checkers of chapters 8-11 (training, angles, ablations, cost).

For every checker: a correct answer passes, typical mistakes get their specific message, and a
stub that raises NotImplementedError gets the friendly message (and nothing raises).
"""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import asdlib.exercises as exercises
from asdlib.evaluate import anomaly_scores, class_centres
from asdlib.exercises import ablations, angles, training
from asdlib.features import num_frames
from asdlib.models import global_kernel_size

from exercise_helpers import stub, verdict_of


CHECKERS = [
    training.check_angle_score, training.check_global_kernel, training.check_loader_bytes,
    angles.check_class_centres, angles.check_detection_rate,
    ablations.check_main_effects,
]


def test_stubs_get_the_friendly_message(capsys):
    for checker in CHECKERS:
        verdict, printed = verdict_of(checker, stub, capsys)
        assert verdict.status == "not_implemented", checker.__name__
        assert "not implemented yet" in printed


def test_package_reexports_the_checkers():
    assert exercises.check_angle_score is training.check_angle_score
    assert exercises.check_class_centres is angles.check_class_centres
    assert exercises.check_main_effects is ablations.check_main_effects


# ----------------------------------------------------------------------------------------
# Chapter 8: the angle score and the global kernel
# ----------------------------------------------------------------------------------------


def good_angle(embedding, weight, labels):
    cos = F.normalize(embedding, dim=1) @ F.normalize(weight, dim=1).t()
    return torch.arccos(cos.gather(1, labels[:, None])[:, 0].clamp(-1, 1))


def test_angle_reference_equals_the_library_score():
    embedding, weight, labels = training.angle_problem()
    library = anomaly_scores(embedding, weight, labels, score="angle")
    np.testing.assert_allclose(good_angle(embedding, weight, labels).numpy(), library, atol=1e-3)


def test_angle_score_passes_and_names_mistakes(capsys):
    assert verdict_of(training.check_angle_score, good_angle, capsys)[0].passed

    def degrees(e, w, y):
        return torch.rad2deg(good_angle(e, w, y))

    def cosine(e, w, y):
        return torch.cos(good_angle(e, w, y))

    def raw(e, w, y):
        return torch.arccos((e * w[y]).sum(dim=1).clamp(-1, 1))

    def nearest(e, w, y):
        cos = F.normalize(e, dim=1) @ F.normalize(w, dim=1).t()
        return torch.arccos(cos.amax(dim=1).clamp(-1, 1))

    def all_classes(e, w, y):
        return torch.arccos((F.normalize(e, dim=1) @ F.normalize(w, dim=1).t()).clamp(-1, 1))

    def nan_at_one(e, w, y):
        out = good_angle(e, w, y)
        out[4] = float("nan")
        return out

    for fn, words in ((degrees, "degrees"), (cosine, "returned the cosine"),
                      (raw, "normalise"), (nearest, "NEAREST"), (all_classes, "OWN class"),
                      (nan_at_one, "clamp")):
        verdict, printed = verdict_of(training.check_angle_score, fn, capsys)
        assert verdict.status == "wrong", fn.__name__
        assert words in printed, (fn.__name__, printed)


def test_global_kernel_passes_and_names_mistakes(capsys):
    def good(n_mels, frames):
        for _ in range(4):
            n_mels, frames = (n_mels + 2 - 3) // 2 + 1, (frames + 2 - 3) // 2 + 1
        return n_mels, frames

    assert good(128, 313) == global_kernel_size((128, 313)) == (8, 20)
    assert verdict_of(training.check_global_kernel, good, capsys)[0].passed
    cases = {
        (lambda m, f: (m // 16, f // 16)): "rounded down",
        (lambda m, f: good(m * 2, f * 2)[::-1]): "expected",
        (lambda m, f: good(m, f)[::-1]): "swapped",
        (lambda m, f: training._kernel_no_conv1(m, f)): "conv1",
        (lambda m, f: training._kernel_no_padding(m, f)): "padding",
        (lambda m, f: "eight by twenty"): "pair of ints",
    }
    for fn, words in cases.items():
        verdict, printed = verdict_of(training.check_global_kernel, fn, capsys)
        assert verdict.status == "wrong"
        assert words in printed, printed


# ----------------------------------------------------------------------------------------
# Chapter 11: what the authors' in-RAM loader holds
# ----------------------------------------------------------------------------------------


def test_loader_bytes_passes_and_names_mistakes(capsys):
    def good(num_clips, num_samples, n_mels, hop_length):
        return num_clips * (num_samples + n_mels * num_frames(num_samples, hop_length)) * 4

    assert good(1, 160000, 128, 512) == (160000 + 128 * 313) * 4
    assert verdict_of(training.check_loader_bytes, good, capsys)[0].passed
    cases = {
        (lambda c, s, m, h: c * s * 4): "waves only",
        (lambda c, s, m, h: good(c, s, m, h) / 2): "int16",
        (lambda c, s, m, h: c * (s + m * (s // h)) * 4): "off by one",
        (lambda c, s, m, h: good(c, s, m, h) / 2**30): "GiB",
        (lambda c, s, m, h: c * m * num_frames(s, h) * 4): "log-Mels only",
        (lambda c, s, m, h: 12.0): "expected",
        (lambda c, s, m, h: "big"): "one number",
    }
    for fn, words in cases.items():
        verdict, printed = verdict_of(training.check_loader_bytes, fn, capsys)
        assert verdict.status == "wrong"
        assert words in printed, printed


# ----------------------------------------------------------------------------------------
# Chapter 9: class centres and the detection rate
# ----------------------------------------------------------------------------------------


def good_centres(embedding, labels, num_classes):
    unit = F.normalize(embedding, dim=1)
    return torch.stack([unit[labels == k].mean(dim=0) for k in range(num_classes)])


def test_class_centres_passes_and_names_mistakes(capsys):
    embedding, labels = angles.centre_problem()
    np.testing.assert_allclose(good_centres(embedding, labels, 3).numpy(),
                               class_centres(embedding.numpy(), labels.numpy(), 3))
    assert verdict_of(angles.check_class_centres, good_centres, capsys)[0].passed
    # Any positive length per row is fine: only directions matter for angles
    unit_rows = lambda e, y, k: F.normalize(good_centres(e, y, k), dim=1)  # noqa: E731
    assert verdict_of(angles.check_class_centres, unit_rows, capsys)[0].passed
    cases = {
        (lambda e, y, k: torch.stack([e[y == c].mean(dim=0) for c in range(k)])): "RAW",
        (lambda e, y, k: F.normalize(e, dim=1).mean(dim=0)): "one vector",
        (lambda e, y, k: good_centres(e, y, k).roll(1, dims=0)): "another class",
        (lambda e, y, k: torch.zeros(k, e.shape[1])): "zero",
        (lambda e, y, k: good_centres(e, y, k)[:2]): "shape",
        (lambda e, y, k: torch.ones(k, e.shape[1])): "degrees away",
    }
    for fn, words in cases.items():
        verdict, printed = verdict_of(angles.check_class_centres, fn, capsys)
        assert verdict.status == "wrong"
        assert words in printed, printed


def test_detection_rate_passes_and_names_mistakes(capsys):
    def good(normal, anomaly):
        return float((anomaly > np.quantile(normal, 0.9)).mean())

    assert verdict_of(angles.check_detection_rate, good, capsys)[0].passed
    cases = {
        (lambda n, a: float((a > np.quantile(n, 0.1)).mean())): "10th percentile",
        (lambda n, a: float((n > np.quantile(a, 0.9)).mean())): "swapped",
        (lambda n, a: 100 * good(n, a)): "percentage",
        (lambda n, a: float((a > np.quantile(n, 0.9)).sum())): "count",
        (lambda n, a: float((a < np.quantile(n, 0.9)).mean())): "BELOW",
        (lambda n, a: [1, 2]): "one number",
    }
    for fn, words in cases.items():
        verdict, printed = verdict_of(angles.check_detection_rate, fn, capsys)
        assert verdict.status == "wrong"
        assert words in printed, printed


# ----------------------------------------------------------------------------------------
# Chapter 10: main effects
# ----------------------------------------------------------------------------------------


def test_main_effects_passes_and_names_mistakes(capsys):
    st_af, tast_af, st_na, tast_na = ablations.ABLATION_ROWS

    def good(a):
        loss = ((a[st_na] - a[st_af]) + (a[tast_na] - a[tast_af])) / 2
        feature = ((a[tast_af] - a[st_af]) + (a[tast_na] - a[st_na])) / 2
        return loss, feature

    assert verdict_of(ablations.check_main_effects, good, capsys)[0].passed
    cases = {
        (lambda a: good(a)[::-1]): "swapped",
        (lambda a: (-good(a)[0], good(a)[1])): "wrong sign",
        (lambda a: (a[tast_na] - a[tast_af], good(a)[1])): "TASTgram row",
        (lambda a: (good(a)[0], a[tast_na] - a[st_na])): "NAMix row",
        (lambda a: (a[tast_na] - a[st_af], good(a)[1])): "both factors",
        (lambda a: (0.0, good(a)[1])): "expected",
        (lambda a: 1.0): "pair",
    }
    for fn, words in cases.items():
        verdict, printed = verdict_of(ablations.check_main_effects, fn, capsys)
        assert verdict.status == "wrong"
        assert words in printed, printed


# ----------------------------------------------------------------------------------------
# The figures of chapters 8-10 (asdlib.plots)
# ----------------------------------------------------------------------------------------


def test_plots_of_chapters_8_to_10_draw_into_the_given_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from asdlib import plots, tables

    fig, axes = plt.subplots(2, 2)
    history = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [3.0, 2.0, 1.5],
                            "val_loss": [2.5, 1.8, 1.9], "lr": [1e-3, 6e-4, 2e-4],
                            "best": [True, True, False]})
    assert plots.plot_training_curves(history, {"train_loss": "train", "val_loss": "val"},
                                      "loss", ax=axes[0, 0]) is axes[0, 0]
    # The kept checkpoint is the last epoch flagged best
    assert any("epoch 2" in text.get_text() for text in axes[0, 0].get_legend().get_texts())
    with pytest.raises(ValueError, match="no column"):
        plots.plot_training_curves(history, ["nope"], "x", ax=axes[0, 0])

    rng = np.random.default_rng(0)
    angles = {"normal": rng.uniform(0.2, 0.6, 50), "anomalous": rng.uniform(0.4, 1.0, 30)}
    ax = plots.plot_angle_distributions(angles, ax=axes[0, 1])
    assert ax is axes[0, 1] and len(ax.get_legend().get_texts()) == 2

    xy = rng.normal(size=(12, 2))
    groups = np.array(["fan id_00", "fan id_02", "pump id_00"] * 4)
    labels = np.array([0, 1] * 6)
    assert plots.plot_embedding_map(xy, groups, labels, ax=axes[1, 0]) is axes[1, 0]
    with pytest.raises(ValueError, match="xy must be"):
        plots.plot_embedding_map(xy[:5], groups, labels, ax=axes[1, 0])

    frames = []
    for seed in range(2):
        r = np.random.default_rng(seed)
        frames.append(pd.DataFrame({"machine_type": ["fan"] * 8 + ["pump"] * 8,
                                    "machine_id": (["id_00"] * 4 + ["id_02"] * 4) * 2,
                                    "label": [0, 0, 1, 1] * 4, "score": r.normal(size=16)}))
    mean, std = tables.seed_summary({"STgram (ArcFace)": frames, "TASTgram (NAMix)": frames[::-1]})
    paper = pd.DataFrame([[90.0] * mean.shape[1]], index=["TASTgram (NAMix)"], columns=mean.columns)
    ax = plots.plot_ablation(mean, std, "AUC", paper=paper, ax=axes[1, 1])
    labels_shown = [text.get_text() for text in ax.get_legend().get_texts()]
    assert ax is axes[1, 1] and labels_shown.count("paper (real DCASE data)") == 1
    with pytest.raises(ValueError, match="metric"):
        plots.plot_ablation(mean, std, "F1", ax=axes[1, 1])
    plt.close(fig)

    ax = plots.plot_memory_footprint({"RAM": 32.8e9, "disk": 13.1e9, "batch": 51e6})
    texts = [text.get_text() for text in ax.texts]
    assert texts == ["32.8 GB", "13.1 GB", "51 MB"]
    plt.close(ax.figure)
