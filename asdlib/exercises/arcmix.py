"""Checkers of chapter 6 (ArcMix): the per-clip ArcMix loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from asdlib.exercises import Mistake, expect_close, run_check
from asdlib.losses import arcface_logits, arcmix_loss

__all__ = ["check_arcmix_per_clip", "mix_problem"]


def mix_problem(batch=6, classes=4, dim=3, seed=0):
    """A small float64 mixed batch: ``(embedding, weight, y_a, y_b)`` with y_b != y_a."""
    gen = torch.Generator().manual_seed(seed)
    embedding = torch.randn(batch, dim, generator=gen, dtype=torch.float64)
    weight = torch.randn(classes, dim, generator=gen, dtype=torch.float64)
    y_a = torch.arange(batch) % classes
    y_b = (y_a + 1 + torch.arange(batch) % (classes - 1)) % classes
    return embedding, weight, y_a, y_b


def _ce(logits, labels):
    return F.cross_entropy(logits, labels, reduction="none")


def check_arcmix_per_clip(fn):
    """Check ``fn(embedding, weight, y_a, y_b, lam, margin, scale) -> [batch]``; print a verdict."""

    def check(fn):
        margin, scale, lam = 0.5, 16.0, 0.3
        embedding, weight, y_a, y_b = mix_problem()
        got = fn(embedding.clone(), weight.clone(), y_a.clone(), y_b.clone(), lam, margin, scale)
        logits_a = arcface_logits(embedding, weight, y_a, margin, scale)
        logits_b = arcface_logits(embedding, weight, y_b, margin, scale)
        plain = arcface_logits(embedding, weight, None, margin, scale)
        expected = lam * _ce(logits_a, y_a) + (1 - lam) * _ce(logits_b, y_b)
        if torch.is_tensor(got) and got.dim() == 0:
            raise Mistake(
                f"you returned one number; the loss per clip has shape {tuple(expected.shape)} "
                "(reduction='none'); its mean is asdlib's arcmix_loss"
            )
        expect_close(got, expected, "the per-clip loss", {
            "noisy": (lam * _ce(logits_a, y_a) + (1 - lam) * _ce(logits_a, y_b),
                      "the second term used the logits with the margin on y_a: in ArcMix each "
                      "term puts the margin on its own label (margin on y_a only is Noisy-ArcMix, "
                      "chapter 7)"),
            "half": (lam * _ce(logits_a, y_a) + (1 - lam) * _ce(plain, y_b),
                     "the second term has no margin: it needs the margin on y_b"),
            "mixup": (lam * _ce(plain, y_a) + (1 - lam) * _ce(plain, y_b),
                      "there is no margin at all (that is mixup, chapter 5)"),
            "swapped": ((1 - lam) * _ce(logits_a, y_a) + lam * _ce(logits_b, y_b),
                        "lambda weighs the y_a term, 1 - lambda the y_b term; yours are swapped"),
        })
        mean = arcmix_loss(embedding, weight, y_a, y_b, lam, margin, scale)
        if not torch.allclose(got.detach().double().mean(), mean):
            raise Mistake("the mean over clips does not equal asdlib.losses.arcmix_loss")
        return "lambda CE(margin on y_a, y_a) + (1 - lambda) CE(margin on y_b, y_b), per clip."

    return run_check("ArcMix per clip", check, fn)
