"""ArcFace, mixup, ArcMix and Noisy-ArcMix: the training objectives of the book.

Paper: S. Choi and J.-W. Choi, "Noisy-ArcMix: Additive Noisy Angular Margin Loss Combined
With Mixup for Anomalous Sound Detection", ICASSP 2024, pp. 516-520
(https://arxiv.org/abs/2310.06364). The ArcFace head follows J. Deng et al., "ArcFace:
Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019.

Explained in chapters 4 (ArcFace), 5 (mixup), 6 (ArcMix) and 7 (Noisy-ArcMix).

Every loss works on the 128-d ``embedding`` of a clip and the weight matrix of an angular
head (one row per class, or per sub-centre). With ``cos`` the cosine between the normalised
embedding and the normalised class weights, ``theta = arccos(cos)``, margin ``m`` (radians)
and scale ``s``, the poster writes

.. math::

    \\mathcal{L}_{\\text{ArcFace}}(\\mathbf{x}, \\mathbf{y}) =
        -\\mathbf{y}^\\top \\log \\frac{e^{s \\cos(\\theta + m\\mathbf{y})}}
                                     {\\sum_{k=1}^K e^{s \\cos(\\theta_k + m\\mathbf{y}_k)}}

    \\mathbf{x}^{ij} = \\lambda \\mathbf{x}^i + (1 - \\lambda) \\mathbf{x}^j

    \\mathcal{L}_{\\text{AMix}} = \\lambda \\mathcal{L}_{\\text{AF}}(\\mathbf{x}^{ij}, \\mathbf{y}^i)
        + (1 - \\lambda) \\mathcal{L}_{\\text{AF}}(\\mathbf{x}^{ij}, \\mathbf{y}^j)

    \\mathcal{L}_{\\text{NAMix}}(\\mathbf{x}^{ij}, \\mathbf{y}^{ij}) =
        -\\mathbf{y}^{ij \\top} \\log \\frac{e^{s \\cos(\\theta + m\\mathbf{y}^i)}}
                                          {\\sum_{k=1}^K e^{s \\cos(\\theta_k + m\\mathbf{y}_k^i)}},
    \\qquad \\mathbf{y}^{ij} = \\lambda \\mathbf{y}^i + (1 - \\lambda) \\mathbf{y}^j

All functions accept any batch size, run on CPU and CUDA, and compute the cosine / sine /
margin part in float32 even under ``torch.autocast`` (the logits come back in float32).

Input checks: shape and dtype checks are free (no device work). Two checks read values and
therefore force a GPU -> CPU synchronisation when the tensors live on a GPU: the label range
check (``labels.min()`` / ``labels.max()``) and the finiteness check of the embedding. Both
cost one small reduction per call; the training loop syncs once per step anyway when it logs
``loss.item()``.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "MODES",
    "MIXING_MODES",
    "ArcMarginHead",
    "arcface_logits",
    "cos_with_margin",
    "cosine_logits",
]

# The training modes, by name (chapter 9 trains one model per mode).
MODES = ("arcface", "mixup", "arcmix", "noisy_arcmix")

# The modes whose batches are mixed with `mix_batch` before the forward pass.
MIXING_MODES = ("mixup", "arcmix", "noisy_arcmix")


# ----------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------


def _check_embedding_weight(embedding, weight, sub_centers):
    """Check ranks and sizes of `embedding` and `weight`; return the number of classes."""
    if not torch.is_tensor(embedding) or embedding.dim() != 2:
        shape = tuple(embedding.shape) if torch.is_tensor(embedding) else type(embedding)
        raise ValueError(f"embedding must be a 2-D tensor [batch, dim], got {shape}")
    if not torch.is_tensor(weight) or weight.dim() != 2:
        shape = tuple(weight.shape) if torch.is_tensor(weight) else type(weight)
        raise ValueError(f"weight must be a 2-D tensor [classes * sub_centers, dim], got {shape}")
    if weight.shape[1] != embedding.shape[1]:
        raise ValueError(
            f"weight has dim {weight.shape[1]} per row but embedding has dim "
            f"{embedding.shape[1]}; expected weight of shape [classes * sub_centers, "
            f"{embedding.shape[1]}]"
        )
    if not isinstance(sub_centers, int) or sub_centers < 1:
        raise ValueError(f"sub_centers must be a positive int, got {sub_centers!r}")
    if weight.shape[0] % sub_centers != 0:
        raise ValueError(
            f"weight has {weight.shape[0]} rows, not a multiple of sub_centers={sub_centers}"
        )
    # Forces a GPU sync when the embedding lives on a GPU.
    if not bool(torch.isfinite(embedding).all()):
        raise ValueError("embedding contains NaN or infinite values")
    return weight.shape[0] // sub_centers


def _check_labels(labels, name, batch, num_classes):
    """Check that `labels` is a 1-D integer tensor of `batch` class indices in range."""
    if not torch.is_tensor(labels) or labels.dim() != 1:
        shape = tuple(labels.shape) if torch.is_tensor(labels) else type(labels)
        raise ValueError(f"{name} must be a 1-D tensor of class indices [batch], got {shape}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class indices, got dtype {labels.dtype}")
    if labels.shape[0] != batch:
        raise ValueError(
            f"{name} has {labels.shape[0]} entries but the embedding batch has {batch}"
        )
    # Forces a GPU sync when the labels live on a GPU.
    if batch > 0 and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"{name} must lie in [0, {num_classes}), got values in "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )


def _check_margin(margin):
    """Check 0 <= margin < pi/2 (radians)."""
    if not 0.0 <= float(margin) < math.pi / 2:
        raise ValueError(f"margin must lie in [0, pi/2) radians, got {margin!r}")


def _check_lam(lam):
    """Check 0 <= lam <= 1 and return it as a Python float."""
    lam = float(lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must lie in [0, 1], got {lam!r}")
    return lam


# ----------------------------------------------------------------------------------------
# Cosine logits and the angular margin
# ----------------------------------------------------------------------------------------


def cosine_logits(embedding, weight, sub_centers=1):
    """Cosine between each embedding and each class weight: cos(theta).

    .. math:: \\cos\\theta_{bk} = \\frac{x_b}{\\lVert x_b \\rVert} \\cdot
              \\frac{W_k}{\\lVert W_k \\rVert}

    With sub-centres (Deng et al., "Sub-center ArcFace", ECCV 2020) each class owns
    ``sub_centers`` weight rows and its cosine is the largest of them. Row layout of
    `weight`: class-major, i.e. row ``c * sub_centers + j`` is sub-centre ``j`` of class
    ``c`` (so the rows of one class are contiguous).

    Computed in float32 (autocast is switched off inside) and clamped to [-1, 1].

    Args:
        embedding: Embeddings of the clips.
        weight: Class weights (rows need not be normalised).
        sub_centers: Number of sub-centres k per class.

    Returns:
        The cosines, float32.

    Shapes:
        - embedding: [batch, dim]
        - weight: [classes * sub_centers, dim]
        - output: [batch, classes]
    """
    num_classes = _check_embedding_weight(embedding, weight, sub_centers)
    with torch.autocast(device_type=embedding.device.type, enabled=False):
        # Unit-length embeddings and weight rows, in float32.
        x = F.normalize(embedding.float(), dim=1)  # [batch, dim]
        w = F.normalize(weight.float(), dim=1)  # [classes * sub_centers, dim]
        # Cosine to every weight row.
        cos = x @ w.t()  # [batch, classes * sub_centers]
        # Best sub-centre of each class.
        cos = cos.view(-1, num_classes, sub_centers)  # [batch, classes, sub_centers]
        cos = cos.amax(dim=2)  # [batch, classes]
        # Rounding can push |cos| a hair above 1.
        return cos.clamp(-1.0, 1.0)


def cos_with_margin(cos, margin):
    """The margin-penalised target cosine phi = cos(theta + m), with the monotonic fallback.

    .. math::

        \\phi = \\begin{cases}
            \\cos\\theta \\cos m - \\sin\\theta \\sin m & \\text{if } \\cos\\theta > \\cos(\\pi - m) \\\\
            \\cos\\theta - m \\sin(\\pi - m)          & \\text{otherwise}
        \\end{cases}

    For theta + m > pi, cos(theta + m) would grow again with theta; the fallback (the
    reference's "th/mm" branch) keeps the target logit decreasing in theta.
    ``sin(theta) = sqrt(1 - cos^2)`` is taken safely: 1 - cos^2 is clamped at 0 and the
    square root is only evaluated where it is positive, so the gradient stays finite at
    cos = +-1 exactly (there it is the gradient of ``cos * cos(m)``).

    Args:
        cos: Cosines in [-1, 1] (any shape), float32 or float64.
        margin: m in the poster, in radians, in [0, pi/2).

    Returns:
        phi, same shape and dtype as `cos`.

    Shapes:
        - cos: [*]
        - output: [*]
    """
    _check_margin(margin)
    # sin^2 = 1 - cos^2, never negative.
    sin_sq = (1.0 - cos * cos).clamp(min=0.0)  # [*]
    # sqrt only where sin^2 > 0 (sqrt'(0) is infinite); sin = 0 there.
    positive = sin_sq > 0
    sin = torch.where(positive, torch.sqrt(torch.where(positive, sin_sq, 1.0)), 0.0)  # [*]
    # cos(theta + m) by the angle-addition formula.
    phi = cos * math.cos(margin) - sin * math.sin(margin)  # [*]
    # Fallback where theta + m would pass pi: threshold cos(pi - m), shift m * sin(pi - m).
    threshold = math.cos(math.pi - margin)
    shift = margin * math.sin(math.pi - margin)
    return torch.where(cos > threshold, phi, cos - shift)


def arcface_logits(embedding, weight, labels=None, margin=0.7, scale=30.0, sub_centers=1):
    """ArcFace logits: the scaled cosines, with the angular margin on each clip's label.

    .. math:: \\text{logits}_{bk} = s \\cdot \\begin{cases}
                  \\phi(\\cos\\theta_{bk}) & k = y_b \\\\
                  \\cos\\theta_{bk}        & k \\neq y_b \\end{cases}

    where phi = cos(theta + m) with the fallback of :func:`cos_with_margin`.
    ``labels=None`` gives ``scale * cos`` (no margin anywhere).

    Args:
        embedding: Embeddings of the clips.
        weight: Class weights, class-major sub-centre rows (see :func:`cosine_logits`).
        labels: Class index of each clip that gets the margin, or None.
        margin: m in the poster, in radians, in [0, pi/2).
        scale: s in the poster.
        sub_centers: Number of sub-centres k per class.

    Returns:
        Logits in float32.

    Shapes:
        - embedding: [batch, dim]
        - weight: [classes * sub_centers, dim]
        - labels: [batch] (int64)
        - output: [batch, classes]
    """
    _check_margin(margin)
    cos = cosine_logits(embedding, weight, sub_centers)  # [batch, classes]
    if labels is None:
        return scale * cos
    _check_labels(labels, "labels", cos.shape[0], cos.shape[1])
    with torch.autocast(device_type=cos.device.type, enabled=False):
        # Margin-penalised cosine for every class (only the label's one is kept).
        phi = cos_with_margin(cos, margin)  # [batch, classes]
        # One-hot mask of the labels.
        onehot = F.one_hot(labels.long(), cos.shape[1]).to(cos.dtype)  # [batch, classes]
        # phi on the label, plain cosine elsewhere, scaled.
        return scale * (onehot * phi + (1.0 - onehot) * cos)  # [batch, classes]


class ArcMarginHead(nn.Module):
    """Angular-margin (ArcFace) classification head with a learnable weight.

    ``weight`` has one row per class (per sub-centre, class-major), Xavier-uniform
    initialised. Its name and shape match the reference model's ``arcface.weight``
    ([41, 128] for 41 classes and a 128-d embedding).

    Args:
        num_classes: Number of classes K (41 machine IDs in DCASE 2020 Task 2).
        embedding_dim: Size of the embedding.
        margin: m in the poster, in radians.
        scale: s in the poster.
        sub_centers: Number of sub-centres k per class.

    Shapes:
        - embedding: [batch, embedding_dim]
        - labels: [batch] or None
        - output: [batch, num_classes]
    """

    def __init__(self, num_classes, embedding_dim=128, margin=0.7, scale=30.0, sub_centers=1):
        super().__init__()
        _check_margin(margin)
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.margin = margin
        self.scale = scale
        self.sub_centers = sub_centers
        # One row per (class, sub-centre), class-major.
        self.weight = nn.Parameter(torch.empty(num_classes * sub_centers, embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, embedding, labels=None):
        """Logits with the margin on `labels` (no margin when `labels` is None)."""
        return arcface_logits(
            embedding, self.weight, labels, self.margin, self.scale, self.sub_centers
        )

    def extra_repr(self):
        return (
            f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}, "
            f"margin={self.margin}, scale={self.scale}, sub_centers={self.sub_centers}"
        )
