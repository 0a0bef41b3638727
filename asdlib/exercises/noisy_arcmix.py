"""Checkers of chapter 7 (Noisy-ArcMix): the loss as one soft-target cross-entropy."""

from __future__ import annotations

import torch.nn.functional as F

from asdlib.exercises import expect_close, expect_shape, run_check
from asdlib.exercises.arcmix import mix_problem
from asdlib.losses import arcface_logits, arcmix_loss, mixup_loss, noisy_arcmix_loss

__all__ = ["check_noisy_arcmix_soft"]


def check_noisy_arcmix_soft(fn):
    """Check ``fn(embedding, weight, y_a, y_b, lam, margin, scale) -> scalar``; print a verdict."""

    def check(fn):
        margin, scale = 0.5, 16.0
        embedding, weight, y_a, y_b = mix_problem(seed=2)
        # lambda above and below one half: the margin stays on y_a in both
        for lam in (0.7, 0.3):
            got = fn(embedding.clone(), weight.clone(), y_a.clone(), y_b.clone(), lam, margin, scale)
            expected = noisy_arcmix_loss(embedding, weight, y_a, y_b, lam, margin, scale)
            expect_shape(got, (), f"the loss (lambda = {lam})")
            logits_b = arcface_logits(embedding, weight, y_b, margin, scale)
            on_b = lam * F.cross_entropy(logits_b, y_a) + (1 - lam) * F.cross_entropy(logits_b, y_b)
            hint_b = (
                "for lambda < 0.5 you put the margin on the majority label y_b; Noisy-ArcMix keeps "
                "it on y_a whatever lambda is (the 'inconsistent' margin)"
                if lam < 0.5 else "the margin belongs on y_a, not on y_b"
            )
            expect_close(got, expected, f"the loss (lambda = {lam})", {
                "margin on b": (on_b, hint_b),
                "arcmix": (arcmix_loss(embedding, weight, y_a, y_b, lam, margin, scale),
                           "that is ArcMix (a margin on each term's own label, chapter 6); "
                           "Noisy-ArcMix uses ONE set of logits, with the margin on y_a"),
                "mixup": (mixup_loss(embedding, weight, y_a, y_b, lam, scale),
                          "there is no margin (that is mixup); put the margin on y_a"),
                "swapped": (noisy_arcmix_loss(embedding, weight, y_a, y_b, 1 - lam, margin, scale),
                            "the soft target is lambda on y_a and 1 - lambda on y_b; yours is swapped"),
                "sum": (expected * len(y_a), "did you sum over the batch? average it"),
            })
        return "one soft-target cross-entropy, margin on y_a for lambda above and below 0.5."

    return run_check("Noisy-ArcMix with soft targets", check, fn)
