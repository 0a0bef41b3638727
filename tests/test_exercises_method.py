"""Tests of the exercise checkers of chapters 3-7 and of the shared verdict helper.

For every checker: a correct answer passes, typical mistakes get their specific message, and a
stub that raises NotImplementedError gets the friendly message (and nothing raises).
"""

import math

import pytest
import torch
import torch.nn.functional as F

import asdlib.exercises as exercises
from asdlib import losses
from asdlib.exercises import Mistake, expect_close, run_check
from asdlib.exercises import arcface, arcmix, features, mixup, noisy_arcmix

from exercise_helpers import stub, verdict_of


# ----------------------------------------------------------------------------------------
# The shared helper
# ----------------------------------------------------------------------------------------


def test_run_check_statuses():
    def check(fn):
        expect_close(fn(torch.ones(2)), torch.full((2,), 2.0), "the double",
                     {"plus": (torch.full((2,), 3.0), "did you add 2?")})
        return "fine"

    assert run_check("x", check, lambda x: 2 * x, quiet=True).status == "passed"
    wrong = run_check("x", check, lambda x: x + 2, quiet=True)
    assert wrong.status == "wrong" and "off by 1" in wrong.message and "did you add 2?" in wrong.message
    assert not wrong
    todo = run_check("x", check, stub, quiet=True)
    assert todo.status == "not_implemented" and "not implemented yet" in todo.message
    error = run_check("x", check, lambda x: x.nope(), quiet=True)
    assert error.status == "error" and "AttributeError" in error.message
    shape = run_check("x", check, lambda x: x[0], quiet=True)
    assert shape.status == "wrong" and "shape (2,)" in shape.message


def test_package_reexports_checkers():
    assert exercises.check_arcface_score is arcface.check_arcface_score
    assert "check_noisy_arcmix_soft" in dir(exercises)
    with pytest.raises(AttributeError):
        exercises.check_that_does_not_exist


def test_stubs_get_the_friendly_message_from_every_checker(capsys):
    checkers = [
        features.check_hz_to_mel, features.check_frequency_attention_weights,
        arcface.check_cosface_logits, arcface.check_arcface_score,
        mixup.check_soft_targets,
        arcmix.check_arcmix_per_clip, noisy_arcmix.check_noisy_arcmix_soft,
    ]
    for checker in checkers:
        verdict, printed = verdict_of(checker, stub, capsys)
        assert verdict.status == "not_implemented", checker.__name__
        assert "not implemented yet" in printed


# ----------------------------------------------------------------------------------------
# Chapter 3
# ----------------------------------------------------------------------------------------


def test_slaney_reference_matches_torchaudio():
    from torchaudio.functional.functional import _hz_to_mel

    for freq in (0.0, 440.0, 999.0, 1000.0, 3000.0, 8000.0):
        got = float(features.slaney_hz_to_mel(torch.tensor(freq)))
        assert got == pytest.approx(_hz_to_mel(freq, mel_scale="slaney"), rel=1e-9, abs=1e-9)


def test_check_hz_to_mel(capsys):
    assert verdict_of(features.check_hz_to_mel, features.slaney_hz_to_mel, capsys)[0].passed
    htk = lambda f: 2595.0 * torch.log10(1.0 + f / 700.0)  # noqa: E731
    assert "HTK" in verdict_of(features.check_hz_to_mel, htk, capsys)[1]
    linear = lambda f: f / (200.0 / 3.0)  # noqa: E731
    assert "linear everywhere" in verdict_of(features.check_hz_to_mel, linear, capsys)[1]


def test_check_frequency_attention_weights(capsys):
    check = features.check_frequency_attention_weights
    good = lambda x: torch.sigmoid(x.amax(dim=-1) + x.mean(dim=-1))  # noqa: E731
    assert verdict_of(check, good, capsys)[0].passed
    frames = lambda x: torch.sigmoid(x.amax(dim=-2) + x.mean(dim=-2))  # noqa: E731
    assert "dim=-1" in verdict_of(check, frames, capsys)[1]
    no_sigmoid = lambda x: x.amax(dim=-1) + x.mean(dim=-1)  # noqa: E731
    assert "sigmoid" in verdict_of(check, no_sigmoid, capsys)[1]
    max_only = lambda x: torch.sigmoid(x.amax(dim=-1))  # noqa: E731
    assert "mean over frames" in verdict_of(check, max_only, capsys)[1]


# ----------------------------------------------------------------------------------------
# Chapter 4
# ----------------------------------------------------------------------------------------


def cosface(embedding, weight, labels, margin, scale):
    cos = F.normalize(embedding, dim=1) @ F.normalize(weight, dim=1).t()
    return scale * (cos - margin * F.one_hot(labels, weight.shape[0]))


def test_check_cosface_logits(capsys):
    assert verdict_of(arcface.check_cosface_logits, cosface, capsys)[0].passed
    arc = lambda e, w, y, m, s: losses.arcface_logits(e, w, y, m, s)  # noqa: E731
    printed = verdict_of(arcface.check_cosface_logits, arc, capsys)[1]
    assert "logit of the target class is off by" in printed and "angle" in printed
    everywhere = lambda e, w, y, m, s: s * (losses.cosine_logits(e, w) - m)  # noqa: E731
    assert "target class only" in verdict_of(arcface.check_cosface_logits, everywhere, capsys)[1]
    raw = lambda e, w, y, m, s: s * (e @ w.t() - m * F.one_hot(y, w.shape[0]))  # noqa: E731
    assert "normalise" in verdict_of(arcface.check_cosface_logits, raw, capsys)[1]


def test_the_margin_problem_reaches_the_fallback():
    embedding, weight, labels = arcface.margin_problem()
    cos = losses.cosine_logits(embedding, weight).gather(1, labels[:, None])
    assert int((cos <= math.cos(math.pi - 0.7)).sum()) == 2


def test_check_arcface_score(capsys):
    def score(e, w, y, m, s):
        return F.cross_entropy(losses.arcface_logits(e, w, y, m, s), y, reduction="none")

    assert verdict_of(arcface.check_arcface_score, score, capsys)[0].passed
    mean = lambda e, w, y, m, s: score(e, w, y, m, s).mean()  # noqa: E731
    assert "reduction='none'" in verdict_of(arcface.check_arcface_score, mean, capsys)[1]
    plain = lambda e, w, y, m, s: F.cross_entropy(s * losses.cosine_logits(e, w), y, reduction="none")  # noqa: E731
    assert "margin" in verdict_of(arcface.check_arcface_score, plain, capsys)[1]
    negative = lambda e, w, y, m, s: -score(e, w, y, m, s)  # noqa: E731
    assert "log p" in verdict_of(arcface.check_arcface_score, negative, capsys)[1]


# ----------------------------------------------------------------------------------------
# Chapter 5
# ----------------------------------------------------------------------------------------


def soft(y_a, y_b, lam, num_classes):
    return lam * F.one_hot(y_a, num_classes) + (1 - lam) * F.one_hot(y_b, num_classes)


def test_check_soft_targets(capsys):
    assert verdict_of(mixup.check_soft_targets, soft, capsys)[0].passed

    def overwrite(y_a, y_b, lam, num_classes):
        target = torch.zeros(len(y_a), num_classes)
        rows = torch.arange(len(y_a))
        target[rows, y_a] = lam
        target[rows, y_b] = 1 - lam
        return target

    assert "+=" in verdict_of(mixup.check_soft_targets, overwrite, capsys)[1]
    swapped = lambda a, b, lam, k: soft(a, b, 1 - lam, k)  # noqa: E731
    assert "swapped" in verdict_of(mixup.check_soft_targets, swapped, capsys)[1]


# ----------------------------------------------------------------------------------------
# Chapters 6 and 7
# ----------------------------------------------------------------------------------------


def per_clip(e, w, y_a, y_b, lam, m, s, margin_b_on_a=False):
    logits_a = losses.arcface_logits(e, w, y_a, m, s)
    logits_b = logits_a if margin_b_on_a else losses.arcface_logits(e, w, y_b, m, s)
    return (lam * F.cross_entropy(logits_a, y_a, reduction="none")
            + (1 - lam) * F.cross_entropy(logits_b, y_b, reduction="none"))


def test_check_arcmix_per_clip(capsys):
    assert verdict_of(arcmix.check_arcmix_per_clip, per_clip, capsys)[0].passed
    noisy = lambda *a: per_clip(*a, margin_b_on_a=True)  # noqa: E731
    assert "Noisy-ArcMix" in verdict_of(arcmix.check_arcmix_per_clip, noisy, capsys)[1]
    mean = lambda *a: per_clip(*a).mean()  # noqa: E731
    assert "reduction='none'" in verdict_of(arcmix.check_arcmix_per_clip, mean, capsys)[1]
    no_margin = lambda e, w, a, b, lam, m, s: per_clip(e, w, a, b, lam, 0.0, s)  # noqa: E731
    assert "mixup" in verdict_of(arcmix.check_arcmix_per_clip, no_margin, capsys)[1]


def noisy_soft(e, w, y_a, y_b, lam, m, s, margin_on=None):
    logits = losses.arcface_logits(e, w, y_a if margin_on is None else margin_on(y_a, y_b, lam), m, s)
    return F.cross_entropy(logits, soft(y_a, y_b, lam, w.shape[0]).to(logits.dtype))


def test_check_noisy_arcmix_soft(capsys):
    assert verdict_of(noisy_arcmix.check_noisy_arcmix_soft, noisy_soft, capsys)[0].passed
    majority = lambda *a: noisy_soft(*a, margin_on=lambda ya, yb, lam: ya if lam >= 0.5 else yb)  # noqa: E731
    printed = verdict_of(noisy_arcmix.check_noisy_arcmix_soft, majority, capsys)[1]
    assert "majority" in printed and "lambda = 0.3" in printed
    on_b = lambda *a: noisy_soft(*a, margin_on=lambda ya, yb, lam: yb)  # noqa: E731
    assert "not on y_b" in verdict_of(noisy_arcmix.check_noisy_arcmix_soft, on_b, capsys)[1]
    arc = lambda e, w, a, b, lam, m, s: losses.arcmix_loss(e, w, a, b, lam, m, s)  # noqa: E731
    assert "ArcMix" in verdict_of(noisy_arcmix.check_noisy_arcmix_soft, arc, capsys)[1]


def test_mistake_is_an_exception():
    assert issubclass(Mistake, Exception)
