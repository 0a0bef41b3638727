"""Checkers of chapter 9 (angle distributions).

``check_class_centres(fn)``: ``fn(embedding, labels, num_classes) -> [classes, dim]``, the centre
of each class as the mean of its clips' unit-length embeddings
(``asdlib.evaluate.class_centres``). Only the direction of a centre matters for an angle, so
any positive length per row is accepted.

``check_detection_rate(fn)``: ``fn(normal, anomaly) -> float``, the share of anomalous
clips whose angle exceeds the 90th percentile of the normal clips' angles: the true-positive
rate of the angle score at a false-positive rate of 10 %.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from asdlib.evaluate import class_centres
from asdlib.exercises import Mistake, expect_shape, run_check

__all__ = ["centre_problem", "check_class_centres", "check_detection_rate"]


def centre_problem(seed=0):
    """Embeddings of 3 classes with very different lengths, and their labels.

    Returns:
        ``(embedding, labels)``: float64 ``[clips=12, dim=5]`` and int64 ``[clips]``. Within a
        class the lengths differ by a factor of up to 20, so the mean of the raw embeddings
        points elsewhere than the mean of the unit-length ones.
    """
    generator = torch.Generator().manual_seed(seed)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 1, 0])
    base = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    embedding = base[labels] + 0.8 * torch.randn(12, 5, generator=generator, dtype=torch.float64)
    lengths = torch.tensor([1.0, 20.0, 0.5, 3.0, 0.2, 10.0, 7.0, 1.0, 0.3, 2.0, 15.0, 0.1],
                           dtype=torch.float64)
    return embedding * lengths[:, None], labels


def _directions(x):
    return F.normalize(torch.as_tensor(np.asarray(x), dtype=torch.float64), dim=1)


def check_class_centres(fn):
    """Check ``fn(embedding, labels, num_classes) -> [classes, dim]``; print a verdict."""

    def check(fn):
        embedding, labels = centre_problem()
        num_classes = 3
        expected = _directions(class_centres(embedding.numpy(), labels.numpy(), num_classes))
        got = fn(embedding.clone(), labels.clone(), num_classes)
        if not torch.is_tensor(got):
            got = torch.as_tensor(np.asarray(got))
        got = got.detach().to(torch.float64)
        if got.shape == (embedding.shape[1],):
            raise Mistake("you returned one vector for all clips; there is one centre per class "
                          f"(shape [{num_classes}, {embedding.shape[1]}]): average the clips of "
                          "class k only, for every k")
        expect_shape(got, expected.shape, "the centres")
        if torch.isnan(got).any():
            raise Mistake("your centres contain NaN; every class of this problem has clips, so "
                          "check the division (count of clips per class)")
        norms = got.norm(dim=1)
        if (norms < 1e-12).any():
            raise Mistake(f"centre(s) {torch.nonzero(norms < 1e-12)[:, 0].tolist()} are zero "
                          "vectors: an angle to a zero vector is undefined")
        cosine = (F.normalize(got, dim=1) * expected).sum(dim=1)  # [classes]
        if bool((cosine > 1 - 1e-9).all()):
            return "one centre per class, pointing along the mean unit-length embedding."
        raw = torch.stack([embedding[labels == k].mean(dim=0) for k in range(num_classes)])
        if torch.allclose(F.normalize(got, dim=1), _directions(raw), atol=1e-8):
            raise Mistake("your centres point along the mean of the RAW embeddings: long "
                          "embeddings outweigh short ones. Normalise every embedding to length 1 "
                          "first (F.normalize(embedding, dim=1)), then average per class")
        rolled = expected.roll(1, dims=0)
        if torch.allclose(F.normalize(got, dim=1), rolled, atol=1e-8) or torch.allclose(
                F.normalize(got, dim=1), expected.roll(-1, dims=0), atol=1e-8):
            raise Mistake("each centre belongs to another class (row k must be the centre of "
                          "the clips with label k)")
        worst = float(torch.rad2deg(torch.arccos(cosine.clamp(-1, 1))).max())
        raise Mistake(f"a centre points {worst:.1f} degrees away from the mean unit-length "
                      "embedding of its class")

    return run_check("class centres", check, fn)


def check_detection_rate(fn):
    """Check ``fn(normal, anomaly) -> float`` (TPR at 10 % FPR); print a verdict."""

    def check(fn):
        rng = np.random.default_rng(3)
        normal = rng.normal(0.6, 0.1, 200)
        anomaly = rng.normal(0.8, 0.15, 57)
        threshold = np.quantile(normal, 0.9)
        expected = float((anomaly > threshold).mean())
        got = fn(normal.copy(), anomaly.copy())
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise Mistake(f"return one number (a share between 0 and 1), got {got!r}") from None
        if abs(got - expected) < 1e-9:
            return (f"{100 * expected:.1f} % of the anomalies lie beyond the 90th percentile of the "
                    f"normal angles.")
        hints = [
            ((anomaly > np.quantile(normal, 0.1)).mean(),
             "you used the 10th percentile of the normal angles; a 10 % false-positive rate means "
             "the threshold leaves 10 % of the normal clips ABOVE it: the 90th percentile"),
            ((normal > np.quantile(anomaly, 0.9)).mean(),
             "you swapped the roles: the threshold comes from the NORMAL angles and the share is "
             "counted among the anomalous ones"),
            (100 * expected, "that is a percentage; return a share between 0 and 1"),
            (float((anomaly > threshold).sum()), "that is a count; divide by the number of "
                                                 "anomalous clips"),
            ((anomaly < threshold).mean(), "you counted the anomalies BELOW the threshold; an "
                                           "anomaly is detected when its angle is larger"),
        ]
        for value, hint in hints:
            if abs(got - float(value)) < 1e-9:
                raise Mistake(f"you got {got:.4g}, expected {expected:.4g}: {hint}")
        raise Mistake(f"you got {got:.4g}, expected {expected:.4g} (threshold = "
                      f"np.quantile(normal, 0.9); share of anomaly angles above it)")

    return run_check("detection rate", check, fn)
