"""Checkers of chapter 2 (the autoencoder baseline): frame windows and the clip score.

``check_frame_windows(fn)``: ``fn(logmel, frames) -> windows``, the baseline's input vectors
(``asdlib.baseline.frame_windows``).

``check_clip_score(fn)``: ``fn(model, windows) -> score``, the mean reconstruction error over a
clip's windows (``asdlib.baseline.score_clips``).
"""

from __future__ import annotations

import copy

import torch

from asdlib.baseline import DCASEAutoencoder, frame_windows, score_clips
from asdlib.exercises import Mistake, expect_close, expect_shape, run_check
from asdlib.runtime import torch_threads

__all__ = ["check_clip_score", "check_frame_windows", "score_problem"]


def _as_tensor(got, what):
    if not torch.is_tensor(got):
        raise Mistake(f"{what} should be a torch.Tensor, got {type(got).__name__}")
    return got.detach()


def check_frame_windows(fn):
    """Check ``fn(logmel, frames) -> [batch, windows, frames * n_mels]``; print a verdict."""

    def check(fn):
        batch, n_mels, num_frames, frames = 2, 6, 11, 4
        generator = torch.Generator().manual_seed(0)
        # Distinct values, so that every misplaced entry shows
        logmel = torch.randn(batch, n_mels, num_frames, generator=generator, dtype=torch.float64)
        expected = frame_windows(logmel, frames)
        got = _as_tensor(fn(logmel.clone(), frames), "the windows")
        windows = num_frames - frames + 1
        if got.dim() == 3 and got.shape[0] == batch and got.shape[2] == frames * n_mels:
            if got.shape[1] == windows - 1:
                raise Mistake(
                    f"you made {got.shape[1]} windows from {num_frames} frames, one too few: the "
                    f"last window starts at frame num_frames - frames = {num_frames - frames}, so "
                    f"there are num_frames - frames + 1 = {windows}")
            if got.shape[1] == num_frames // frames:
                raise Mistake(
                    f"you made {got.shape[1]} windows from {num_frames} frames: your windows do not "
                    f"overlap. The baseline slides the window by ONE frame, giving "
                    f"num_frames - frames + 1 = {windows} windows")
        expect_shape(got, expected.shape, f"the windows of a [{batch}, {n_mels}, {num_frames}] "
                                          f"log-Mel with frames={frames}")
        # Band after band instead of frame after frame
        mel_major = logmel.unfold(-1, frames, 1).permute(0, 2, 1, 3).reshape(batch, windows, -1)
        expect_close(got, expected, "the content of the windows", {
            "mel-major": (mel_major, "you put the values band after band (all frames of band 0, "
                                     "then band 1, ...); the baseline concatenates whole frames: "
                                     "the n_mels values of frame w, then those of frame w+1, ... "
                                     "(permute to [batch, windows, frames, n_mels] before the "
                                     "reshape)"),
        }, rtol=0, atol=1e-12)
        return (f"{windows} overlapping windows of {frames} frames, frame after frame, "
                f"{frames * n_mels} values each.")

    return run_check("frame windows", check, fn)


def score_problem(seed=0):
    """A small autoencoder (in training mode, with trained BatchNorm statistics) and windows.

    Returns:
        ``(model, windows)``: a ``DCASEAutoencoder(input_dim=12, hidden_dim=16,
        bottleneck_dim=3, num_layers=2)`` and windows ``[clips=3, windows=7, 12]``, some of them
        anomalous (scaled up).
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DCASEAutoencoder(input_dim=12, hidden_dim=16, bottleneck_dim=3, num_layers=2)
    # Running statistics that differ from any single batch (one thread: tiny tensors)
    model.train()
    with torch.no_grad(), torch_threads(1):
        for _ in range(20):
            model(2.0 + 3.0 * torch.randn(64, 12, generator=generator))
    windows = torch.randn(3, 7, 12, generator=generator)
    # The third clip has a few loud windows
    windows[2, 2:4] *= 4.0
    return model, windows


def check_clip_score(fn):
    """Check ``fn(model, windows) -> [clips]`` mean window errors; print a verdict."""

    def check(fn):
        model, windows = score_problem()
        expected = score_clips(copy.deepcopy(model), windows)
        with torch_threads(1):
            got = fn(copy.deepcopy(model), windows.clone())
        got = _as_tensor(got, "the scores")
        if got.dim() == 0:
            raise Mistake(f"you returned one number for all {len(windows)} clips; the score is "
                          f"per clip (average over the windows and values of each clip only)")
        if got.dim() == 2 and got.shape == windows.shape[:2]:
            raise Mistake("you returned one error per window, shape [clips, windows]; a clip's "
                          "score is the mean over its windows")
        eval_model = copy.deepcopy(model).eval()
        train_model = copy.deepcopy(model).train()
        with torch.no_grad(), torch_threads(1):
            # [clips, windows, dim]
            error = windows - eval_model(windows)
            train_error = windows - train_model(windows)
        squared = error.pow(2)
        expect_close(got.float(), expected, "the vector of clip scores", {
            "train mode": (train_error.pow(2).mean(dim=(1, 2)),
                           "the model was in training mode: its BatchNorm layers normalised with "
                           "the statistics of these windows instead of the ones learned in "
                           "training. Call model.eval() before scoring"),
            "sum": (squared.sum(dim=-1).mean(dim=1),
                    "you summed the squared errors over the values of a window; the baseline "
                    "averages them (mean squared error)"),
            "max": (squared.mean(dim=-1).amax(dim=1),
                    "you took the largest window error; the baseline's score is the mean over "
                    "the windows"),
            "rmse": (squared.mean(dim=-1).sqrt().mean(dim=1),
                     "you took a square root (RMSE) per window; the score averages the squared "
                     "errors themselves"),
            "abs": (error.abs().mean(dim=(1, 2)),
                    "you averaged absolute errors; the baseline squares them"),
        }, rtol=1e-4, atol=1e-6)
        return "the mean over each clip's windows of the mean squared reconstruction error, in eval mode."

    return run_check("clip score", check, fn)
