"""Checkers of chapter 4 (ArcFace): CosFace logits and the ArcFace anomaly score."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from asdlib.exercises import Mistake, expect_close, expect_shape, run_check
from asdlib.losses import arcface_logits, cosine_logits

__all__ = ["check_arcface_score", "check_cosface_logits", "margin_problem"]


def margin_problem(batch=8, classes=5, dim=4, seed=0):
    """A small float64 problem in which two clips point away from their class (theta + m > pi).

    Returns:
        ``(embedding, weight, labels)`` of shapes [batch, dim], [classes, dim], [batch].
    """
    gen = torch.Generator().manual_seed(seed)
    embedding = torch.randn(batch, dim, generator=gen, dtype=torch.float64)
    weight = torch.randn(classes, dim, generator=gen, dtype=torch.float64)
    labels = torch.arange(batch) % classes
    # The first two clips point almost opposite to their own class weight
    noise = torch.randn(2, dim, generator=gen, dtype=torch.float64)
    embedding[:2] = -weight[labels[:2]] + 0.05 * noise
    return embedding, weight, labels


def _split(got, expected, onehot):
    """The target entries and the other entries of two [batch, classes] tensors."""
    target = onehot.bool()
    return got[target], expected[target], got[~target], expected[~target]


def check_cosface_logits(fn):
    """Check ``fn(embedding, weight, labels, margin, scale)`` = CosFace logits; print a verdict."""

    def check(fn):
        margin, scale = 0.35, 30.0
        embedding, weight, labels = margin_problem()
        got = fn(embedding.clone(), weight.clone(), labels.clone(), margin, scale)
        cos = cosine_logits(embedding, weight)
        onehot = F.one_hot(labels, weight.shape[0]).to(cos.dtype)
        expected = scale * (cos - margin * onehot)
        expect_shape(got, expected.shape, "the logits")
        got_t, exp_t, got_o, exp_o = _split(got.detach().double(), expected, onehot)
        # The other classes first: s * cos(theta_k), no margin
        raw = embedding @ weight.t()
        expect_close(got_o, exp_o, "the logit of the non-target classes", {
            "no norm": (scale * raw[~onehot.bool()], "did you normalise the embeddings and the "
                                                     "class weights to unit length?"),
            "no scale": (cos[~onehot.bool()], "did you multiply by the scale s?"),
            "margin everywhere": ((scale * (cos - margin))[~onehot.bool()],
                                  "the margin belongs to the target class only"),
        })
        arcface = arcface_logits(embedding, weight, labels, margin, scale)
        expect_close(got_t, exp_t, "the logit of the target class", {
            "arcface": (arcface[onehot.bool()], "you added the margin to the angle, cos(theta + m) "
                                                "(that is ArcFace); CosFace subtracts it from the "
                                                "cosine: s (cos(theta) - m)"),
            "plus": ((scale * (cos + margin))[onehot.bool()],
                     "the margin must make the target harder: subtract m, do not add it"),
            "no margin": ((scale * cos)[onehot.bool()], "there is no margin on the target class"),
            "unscaled margin": ((scale * cos - margin)[onehot.bool()],
                                "the margin is inside the scale: s (cos - m), not s cos - m"),
        })
        return "s (cos(theta_y) - m) on the target class and s cos(theta_k) elsewhere."

    return run_check("CosFace logits", check, fn)


def check_arcface_score(fn):
    """Check ``fn(embedding, weight, labels, margin, scale) -> [batch]`` anomaly scores."""

    def check(fn):
        margin, scale = 0.7, 30.0
        embedding, weight, labels = margin_problem(seed=1)
        # Not the largest cosine for some clips: the score must use the known label
        got = fn(embedding.clone(), weight.clone(), labels.clone(), margin, scale)
        logits = arcface_logits(embedding, weight, labels, margin, scale)
        expected = F.cross_entropy(logits, labels, reduction="none")
        if torch.is_tensor(got) and got.dim() == 0:
            raise Mistake(
                f"you returned one number for the whole batch; the score is per clip, shape "
                f"{tuple(expected.shape)}: use reduction='none' in F.cross_entropy"
            )
        plain = F.cross_entropy(scale * cosine_logits(embedding, weight), labels, reduction="none")
        predicted = logits.argmax(dim=1)
        probability = torch.softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)
        expect_close(got, expected, "the score", {
            "no margin": (plain, "did you score with the plain logits s cos(theta)? the reference "
                                 "keeps the margin on the clip's own machine ID at test time"),
            "negative": (-expected, "a larger score must mean 'more anomalous': the cross-entropy "
                                    "is -log p(own ID), did you return log p?"),
            "probability": (probability, "you returned p(own ID); the score is -log p(own ID) "
                                         "(small p = surprising = anomalous)"),
            "predicted": (F.cross_entropy(logits, predicted, reduction="none"),
                          "did you score against the predicted class? use the clip's known "
                          "machine ID"),
        })
        return "the cross-entropy of the margin logits at each clip's own machine ID, per clip."

    return run_check("ArcFace anomaly score", check, fn)
