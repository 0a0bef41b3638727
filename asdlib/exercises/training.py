"""Checkers of chapter 8 (training TASTgram) and chapter 11 (what the paper's recipe costs).

``check_angle_score(fn)``: ``fn(embedding, weight, labels) -> [clips]``, the angle in radians
between each clip's embedding and the class weight of its own machine ID
(``asdlib.evaluate.anomaly_scores(..., score="angle")``).

``check_global_kernel(fn)``: ``fn(n_mels, frames) -> (height, width)``, the kernel of
MobileFaceNet's global depthwise convolution ``linear7`` for an input of that size
(``asdlib.models.global_kernel_size``).

``check_loader_bytes(fn)``: ``fn(num_clips, num_samples, n_mels, hop_length) -> bytes``, the RAM
that holding every training wave and log-Mel as float32 takes (the authors' loader), chapter 11.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from asdlib.exercises import Mistake, expect_close, expect_shape, run_check
from asdlib.features import num_frames
from asdlib.models import global_kernel_size

__all__ = ["angle_problem", "check_angle_score", "check_global_kernel", "check_loader_bytes"]


def angle_problem(seed=0):
    """A few embeddings, class weights and labels for the angle checkers.

    Returns:
        ``(embedding, weight, labels)``: float64 ``[clips=7, dim=8]``, ``[classes=4, dim=8]``
        (rows of different lengths) and ``[clips]`` int64. One embedding points exactly along
        its class weight (twice as long), so that its cosine rounds to 1 or a hair above.
    """
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(4, 8, generator=generator, dtype=torch.float64)
    # Rows of different lengths: a forgotten normalisation shows
    weight = weight * torch.tensor([[0.5], [2.0], [1.0], [3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3, 1, 2, 0])
    embedding = 2.5 * torch.randn(7, 8, generator=generator, dtype=torch.float64)
    # Clip 4 lies exactly on its class weight
    embedding[4] = 2.0 * weight[1]
    return embedding, weight, labels


def _tensor(got, what):
    if not torch.is_tensor(got):
        raise Mistake(f"{what} should be a torch.Tensor, got {type(got).__name__}")
    return got.detach().to(torch.float64)


def check_angle_score(fn):
    """Check ``fn(embedding, weight, labels) -> [clips]`` angles in radians; print a verdict."""

    def check(fn):
        embedding, weight, labels = angle_problem()
        got = _tensor(fn(embedding.clone(), weight.clone(), labels.clone()), "the angles")
        if got.dim() == 2 and got.shape == (len(labels), len(weight)):
            raise Mistake(f"you returned the angle to every class, shape {tuple(got.shape)}; the "
                          f"score is the angle to the clip's OWN class only (pick column "
                          f"labels[i] of row i, e.g. with .gather(1, labels[:, None]))")
        expect_shape(got, labels.shape, "the angles")
        if torch.isnan(got).any():
            where = torch.nonzero(torch.isnan(got))[:, 0].tolist()
            raise Mistake(f"clip(s) {where} got NaN. Clip 4 lies exactly on its class weight: "
                          f"rounding can push its cosine a hair above 1, and arccos(1.0000001) is "
                          f"NaN; clamp the cosine to [-1, 1] before arccos")
        unit_x, unit_w = F.normalize(embedding, dim=1), F.normalize(weight, dim=1)
        cos_all = unit_x @ unit_w.t()
        cos_own = cos_all.gather(1, labels[:, None])[:, 0]
        raw_own = (embedding * weight[labels]).sum(dim=1)
        # The library's "angle" score, in float64 (arccos is steep near cos = 1)
        expected = torch.arccos(cos_own.clamp(-1.0, 1.0))
        expect_close(got, expected, "the vector of angles", {
            "degrees": (torch.rad2deg(expected),
                        "these are degrees; the book's scores are radians (leave out the "
                        "conversion, or use torch.deg2rad)"),
            "cosine": (cos_own, "you returned the cosine; the score is the angle, arccos(cos), "
                                "which grows as a clip moves away from its class"),
            "one minus cosine": (1 - cos_own, "1 - cos(theta) ranks the clips the same way but is "
                                              "not the angle; take arccos of the cosine"),
            "not normalised": (torch.arccos(raw_own.clamp(-1, 1)),
                               "you took arccos of the plain dot product; normalise the embedding "
                               "and the class weight to length 1 first (F.normalize)"),
            "nearest class": (torch.arccos(cos_all.amax(dim=1).clamp(-1, 1)),
                              "you measured the angle to the NEAREST class weight; the score uses "
                              "the clip's own machine ID, labels[i], even when another class is "
                              "closer (that is exactly what makes a clip look anomalous)"),
        }, rtol=1e-6, atol=1e-6)
        return "the angle to the own class weight, in radians, safe at cos = 1."

    return run_check("angle score", check, fn)


def _kernel_no_conv1(height, width):
    for _ in range(3):
        height, width = (height - 1) // 2 + 1, (width - 1) // 2 + 1
    return height, width


def _kernel_no_padding(height, width):
    for _ in range(4):
        height, width = (height - 3) // 2 + 1, (width - 3) // 2 + 1
    return height, width


def check_global_kernel(fn):
    """Check ``fn(n_mels, frames) -> (height, width)``; print a verdict."""

    def check(fn):
        sizes = [(128, 313), (128, 63), (128, 32), (64, 100), (40, 17)]
        wrong = {
            "floor": (lambda h, w: (h // 16, w // 16),
                      "you divided by 16 and rounded down. Each stride-2 convolution with kernel 3 "
                      "and padding 1 gives floor((n + 2 - 3) / 2) + 1 = ceil(n / 2) outputs, so an "
                      "odd length rounds UP at every step"),
            "no conv1": (_kernel_no_conv1,
                         "you counted three halvings (the bottleneck groups); conv1 has stride 2 "
                         "too, so the map is halved four times"),
            "no padding": (_kernel_no_padding,
                           "you left out the padding: every 3x3 convolution here pads by 1, "
                           "out = floor((n + 2 * 1 - 3) / stride) + 1"),
            "swapped": (lambda h, w: global_kernel_size((h, w))[::-1],
                        "height and width are swapped: the kernel is (mels side, frames side)"),
        }
        for n_mels, frames in sizes:
            expected = tuple(global_kernel_size((n_mels, frames)))
            got = fn(n_mels, frames)
            try:
                got = tuple(int(v) for v in got)
            except (TypeError, ValueError):
                raise Mistake(f"return a pair of ints (height, width), got {got!r}") from None
            if got == expected:
                continue
            for rule, hint in wrong.values():
                if got == tuple(rule(n_mels, frames)):
                    raise Mistake(f"for {n_mels} mels x {frames} frames you got {got}, expected "
                                  f"{expected}: {hint}")
            raise Mistake(f"for {n_mels} mels x {frames} frames you got {got}, expected "
                          f"{expected}. Follow the map through conv1 (3x3, stride 2, padding 1) "
                          f"and the first 3x3 convolution of each bottleneck group (stride 2, "
                          f"padding 1); the other layers keep its size")
        return f"right for all of {sizes}: (8, 20) for the authors' 10 s clips."

    return run_check("global kernel", check, fn)


def check_loader_bytes(fn):
    """Check ``fn(num_clips, num_samples, n_mels, hop_length) -> bytes``; print a verdict."""

    def check(fn):
        cases = [(1000, 160000, 128, 512), (37, 32000, 64, 256)]
        for num_clips, num_samples, n_mels, hop_length in cases:
            frames = num_frames(num_samples, hop_length)
            expected = num_clips * (num_samples + n_mels * frames) * 4
            got = fn(num_clips, num_samples, n_mels, hop_length)
            if not isinstance(got, (int, float)) and not torch.is_tensor(got):
                raise Mistake(f"return one number of bytes, got {type(got).__name__}")
            got = float(got)
            if math.isclose(got, expected, rel_tol=1e-9):
                continue
            what = f"for {num_clips} clips of {num_samples} samples"
            hints = [
                (num_clips * num_samples * 4, "you counted the waves only; the authors' loader "
                                              "keeps every log-Mel too (n_mels x frames floats)"),
                (num_clips * n_mels * frames * 4, "you counted the log-Mels only; the waves are "
                                                  "kept too (the Tgram branch reads them)"),
                (num_clips * (num_samples + n_mels * frames) * 2,
                 "that is 2 bytes per value (int16, our cache); the authors hold float32, 4 bytes"),
                (num_clips * (num_samples + n_mels * (num_samples // hop_length)) * 4,
                 f"the frame count is off by one: a centred STFT gives samples // hop + 1 = "
                 f"{frames} frames, not {num_samples // hop_length}"),
                (expected / 2**20, "that is MiB; return bytes"),
                (expected / 1e6, "that is MB; return bytes"),
                (expected / 2**30, "that is GiB; return bytes"),
                (expected / 1e9, "that is GB; return bytes"),
            ]
            for value, hint in hints:
                if math.isclose(got, value, rel_tol=1e-6):
                    raise Mistake(f"{what} you got {got:.6g}, expected {expected}: {hint}")
            raise Mistake(f"{what} you got {got:.6g} bytes, expected {expected} "
                          f"(float32 wave + float32 log-Mel of {n_mels} x {frames} per clip)")
        return "float32 wave + float32 log-Mel per clip, in bytes."

    return run_check("loader bytes", check, fn)
