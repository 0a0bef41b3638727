"""Tests of the exercise checkers of chapter 2 (frame windows, the clip score).

For every checker: a correct answer passes, typical mistakes get their specific message, and a
stub that raises NotImplementedError gets the friendly message (and nothing raises).
"""

import torch

import asdlib.exercises as exercises
from asdlib.exercises import baseline as checkers

from exercise_helpers import stub, verdict_of


def windows_with(logmel, frames, step=1, order=(0, 2, 3, 1)):
    batch, n_mels, _ = logmel.shape
    # [batch, n_mels, windows, frames] -> chosen order
    windows = logmel.unfold(-1, frames, step).permute(*order)
    return windows.reshape(batch, windows.shape[1], frames * n_mels)


def test_package_reexports_the_chapter_2_checkers():
    assert exercises.check_frame_windows is checkers.check_frame_windows
    assert exercises.check_clip_score is checkers.check_clip_score


def test_frame_windows_correct_passes(capsys):
    verdict, printed = verdict_of(checkers.check_frame_windows, windows_with, capsys)
    assert verdict.passed and printed.startswith("PASSED")


def test_frame_windows_band_after_band(capsys):
    verdict, printed = verdict_of(
        checkers.check_frame_windows, lambda l, f: windows_with(l, f, order=(0, 2, 1, 3)), capsys)
    assert verdict.status == "wrong" and "band after band" in printed


def test_frame_windows_one_too_few(capsys):
    verdict, printed = verdict_of(
        checkers.check_frame_windows, lambda l, f: windows_with(l, f)[:, :-1], capsys)
    assert verdict.status == "wrong" and "one too few" in printed


def test_frame_windows_without_overlap(capsys):
    verdict, printed = verdict_of(
        checkers.check_frame_windows, lambda l, f: windows_with(l, f, step=f), capsys)
    assert verdict.status == "wrong" and "do not overlap" in printed


def test_frame_windows_other_shape(capsys):
    verdict, printed = verdict_of(
        checkers.check_frame_windows, lambda l, f: windows_with(l, f)[0], capsys)
    assert verdict.status == "wrong" and "should have shape (2, 8, 24)" in printed


def test_frame_windows_stub_is_friendly(capsys):
    verdict, printed = verdict_of(checkers.check_frame_windows, stub, capsys)
    assert verdict.status == "not_implemented" and "not implemented yet" in printed


def mean_window_error(model, windows, train=False):
    model.train(train)
    with torch.no_grad():
        # [clips, windows, dim]
        return windows - model(windows)


def test_clip_score_correct_passes(capsys):
    def score(model, windows):
        return mean_window_error(model, windows).pow(2).mean(dim=(1, 2))

    verdict, printed = verdict_of(checkers.check_clip_score, score, capsys)
    assert verdict.passed


def test_clip_score_in_training_mode(capsys):
    def score(model, windows):
        return mean_window_error(model, windows, train=True).pow(2).mean(dim=(1, 2))

    verdict, printed = verdict_of(checkers.check_clip_score, score, capsys)
    assert verdict.status == "wrong" and "model.eval()" in printed


def test_clip_score_sum_max_rmse_abs(capsys):
    mistakes = {
        "summed the squared errors": lambda e: e.pow(2).sum(-1).mean(1),
        "largest window error": lambda e: e.pow(2).mean(-1).amax(1),
        "square root": lambda e: e.pow(2).mean(-1).sqrt().mean(1),
        "absolute errors": lambda e: e.abs().mean(dim=(1, 2)),
    }
    for message, reduce in mistakes.items():
        verdict, printed = verdict_of(
            checkers.check_clip_score, lambda m, w, reduce=reduce: reduce(mean_window_error(m, w)),
            capsys)
        assert verdict.status == "wrong" and message in printed, printed


def test_clip_score_one_number_or_per_window(capsys):
    verdict, printed = verdict_of(
        checkers.check_clip_score, lambda m, w: mean_window_error(m, w).pow(2).mean(), capsys)
    assert verdict.status == "wrong" and "one number for all" in printed
    verdict, printed = verdict_of(
        checkers.check_clip_score, lambda m, w: mean_window_error(m, w).pow(2).mean(-1), capsys)
    assert verdict.status == "wrong" and "one error per window" in printed


def test_clip_score_stub_is_friendly(capsys):
    verdict, printed = verdict_of(checkers.check_clip_score, stub, capsys)
    assert verdict.status == "not_implemented" and "not implemented yet" in printed
