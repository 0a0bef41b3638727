r"""ArcFace, mixup, ArcMix and Noisy-ArcMix: the training objectives of the book.

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

    \mathcal{L}_{\text{ArcFace}}(\mathbf{x}, \mathbf{y}) =
        -\mathbf{y}^\top \log \frac{e^{s \cos(\theta + m\mathbf{y})}}
                                     {\sum_{k=1}^K e^{s \cos(\theta_k + m\mathbf{y}_k)}}

    \mathbf{x}^{ij} = \lambda \mathbf{x}^i + (1 - \lambda) \mathbf{x}^j

    \mathcal{L}_{\text{AMix}} =
        \lambda \mathcal{L}_{\text{AF}}(\mathbf{x}^{ij}, \mathbf{y}^i)
        + (1 - \lambda) \mathcal{L}_{\text{AF}}(\mathbf{x}^{ij}, \mathbf{y}^j)

    \mathcal{L}_{\text{NAMix}}(\mathbf{x}^{ij}, \mathbf{y}^{ij}) =
        -\mathbf{y}^{ij \top} \log \frac{e^{s \cos(\theta + m\mathbf{y}^i)}}
                                          {\sum_{k=1}^K e^{s \cos(\theta_k + m\mathbf{y}_k^i)}},
    \qquad \mathbf{y}^{ij} = \lambda \mathbf{y}^i + (1 - \lambda) \mathbf{y}^j

All functions accept any batch size, run on CPU and CUDA, and compute the cosine / sine /
margin part in float32 even under ``torch.autocast`` (the logits come back in float32;
float64 inputs are kept in float64, which the tests use for tight comparisons).

Input checks: only shapes and dtypes, which cost no device work. No function here reads the
values of its inputs (a finiteness or label-range check would force a GPU -> CPU synchronisation
at every training step): values are checked where they enter asdlib, when a clip is read
(`asdlib.audio`) and when the class map is built (`asdlib.dcase`). A label out of range still
fails, in ``F.one_hot`` or ``F.cross_entropy``.
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
    "arcface_loss",
    "arcmix_loss",
    "cos_with_margin",
    "cosine_logits",
    "loss_for_mode",
    "mix",
    "mix_batch",
    "mix_for_mode",
    "mixup_loss",
    "noisy_arcmix_loss",
]

# The training modes, by name (chapter 9 trains one model per mode).
MODES = ("arcface", "mixup", "arcmix", "noisy_arcmix")

# The modes whose batches are mixed (`mix_for_mode`) before the forward pass.
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
    return weight.shape[0] // sub_centers


def _check_labels(labels, name, batch):
    """Check that `labels` is a 1-D integer tensor of `batch` class indices (shape and dtype)."""
    if not torch.is_tensor(labels) or labels.dim() != 1:
        shape = tuple(labels.shape) if torch.is_tensor(labels) else type(labels)
        raise ValueError(f"{name} must be a 1-D tensor of class indices [batch], got {shape}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class indices, got dtype {labels.dtype}")
    if labels.shape[0] != batch:
        raise ValueError(
            f"{name} has {labels.shape[0]} entries but the embedding batch has {batch}"
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
    r"""Cosine between each embedding and each class weight: cos(theta).

    .. math:: \cos\theta_{bk} = \frac{x_b}{\lVert x_b \rVert} \cdot
              \frac{W_k}{\lVert W_k \rVert}

    With sub-centres (Deng et al., "Sub-center ArcFace", ECCV 2020) each class owns
    ``sub_centers`` weight rows and its cosine is the largest of them. Row layout of
    `weight`: class-major, i.e. row ``c * sub_centers + j`` is sub-centre ``j`` of class
    ``c`` (so the rows of one class are contiguous).

    Computed in float32 (autocast is switched off inside; float64 inputs stay float64) and
    clamped to [-1, 1].

    Args:
        embedding: Embeddings of the clips.
        weight: Class weights (rows need not be normalised).
        sub_centers: Number of sub-centres k per class.

    Returns:
        The cosines, float32 (float64 for float64 inputs).

    Shapes:
        - embedding: [batch, dim]
        - weight: [classes * sub_centers, dim]
        - output: [batch, classes]
    """
    num_classes = _check_embedding_weight(embedding, weight, sub_centers)
    with torch.autocast(device_type=embedding.device.type, enabled=False):
        # At least float32 (float16 / bfloat16 inputs are upcast, float64 stays float64).
        dtype = torch.promote_types(embedding.dtype, weight.dtype)
        dtype = torch.promote_types(dtype, torch.float32)
        # Unit-length embeddings and weight rows.
        x = F.normalize(embedding.to(dtype), dim=1)  # [batch, dim]
        w = F.normalize(weight.to(dtype), dim=1)  # [classes * sub_centers, dim]
        # Cosine to every weight row.
        cos = x @ w.t()  # [batch, classes * sub_centers]
        # Best sub-centre of each class.
        cos = cos.view(-1, num_classes, sub_centers)  # [batch, classes, sub_centers]
        cos = cos.amax(dim=2)  # [batch, classes]
        # Rounding can push |cos| a hair above 1.
        return cos.clamp(-1.0, 1.0)


def cos_with_margin(cos, margin):
    r"""The margin-penalised target cosine phi = cos(theta + m), with the monotonic fallback.

    .. math::

        \phi = \begin{cases}
            \cos\theta \cos m - \sin\theta \sin m
                & \text{if } \cos\theta > \cos(\pi - m) \\
            \cos\theta - m \sin(\pi - m)          & \text{otherwise}
        \end{cases}

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
    r"""ArcFace logits: the scaled cosines, with the angular margin on each clip's label.

    .. math:: \text{logits}_{bk} = s \cdot \begin{cases}
                  \phi(\cos\theta_{bk}) & k = y_b \\
                  \cos\theta_{bk}        & k \neq y_b \end{cases}

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
        Logits in float32 (float64 for float64 inputs).

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
    _check_labels(labels, "labels", cos.shape[0])
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


# ----------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------


def arcface_loss(embedding, weight, labels, margin=0.7, scale=30.0, sub_centers=1):
    r"""ArcFace loss: cross-entropy of the margin logits, batch mean (chapter 4).

    .. math:: \mathcal{L}_{\text{ArcFace}}(\mathbf{x}, \mathbf{y}) =
              -\mathbf{y}^\top \log \frac{e^{s \cos(\theta + m\mathbf{y})}}
                                           {\sum_{k=1}^K e^{s \cos(\theta_k + m\mathbf{y}_k)}}

    Args:
        embedding: Embeddings of the clips.
        weight: Class weights, class-major sub-centre rows.
        labels: Class index of each clip.
        margin: m in the poster, in radians.
        scale: s in the poster.
        sub_centers: Number of sub-centres k per class.

    Returns:
        Scalar loss.

    Shapes:
        - embedding: [batch, dim]
        - weight: [classes * sub_centers, dim]
        - labels: [batch]
        - output: []
    """
    logits = arcface_logits(embedding, weight, labels, margin, scale, sub_centers)
    return F.cross_entropy(logits, labels.long())


def _check_mix_inputs(embedding, weight, y_a, y_b, lam, sub_centers):
    """Shared checks of the three mixing losses; returns lam as a float."""
    _check_embedding_weight(embedding, weight, sub_centers)
    _check_labels(y_a, "y_a", embedding.shape[0])
    _check_labels(y_b, "y_b", embedding.shape[0])
    return _check_lam(lam)


def mixup_loss(embedding, weight, y_a, y_b, lam, scale=30.0, sub_centers=1):
    r"""Mixup on scaled cosine logits (no margin), batch mean (chapter 5).

    .. math:: \mathcal{L}_{\text{CE}}(\mathbf{x}^{ij}, \mathbf{y}^{ij}) =
              -\mathbf{y}^{ij \top} \log \frac{e^{s \cos\theta}}{\sum_{k=1}^K e^{s \cos\theta_k}}
              = \lambda \, \text{CE}(s\cos\theta, y^i)
                + (1 - \lambda) \, \text{CE}(s\cos\theta, y^j)

    with the soft label y^{ij} = lam * onehot(y_a) + (1 - lam) * onehot(y_b).

    Args:
        embedding: Embeddings of the mixed clips.
        weight: Class weights, class-major sub-centre rows.
        y_a: Labels of the first clip of each pair (weight `lam`).
        y_b: Labels of the second clip of each pair (weight `1 - lam`).
        lam: Mixing weight lambda in [0, 1].
        scale: s in the poster.
        sub_centers: Number of sub-centres k per class.

    Returns:
        Scalar loss.

    Shapes:
        - embedding: [batch, dim]
        - weight: [classes * sub_centers, dim]
        - y_a, y_b: [batch]
        - output: []
    """
    lam = _check_mix_inputs(embedding, weight, y_a, y_b, lam, sub_centers)
    # Scaled cosines, no margin anywhere.
    logits = scale * cosine_logits(embedding, weight, sub_centers)  # [batch, classes]
    # CE against each label, weighted by lambda.
    loss_a = F.cross_entropy(logits, y_a.long())
    loss_b = F.cross_entropy(logits, y_b.long())
    return lam * loss_a + (1.0 - lam) * loss_b


def arcmix_loss(embedding, weight, y_a, y_b, lam, margin=0.7, scale=30.0, sub_centers=1):
    r"""ArcMix: lambda-weighted ArcFace losses, margin on each term's own label (chapter 6).

    .. math:: \mathcal{L}_{\text{AMix}}(\mathbf{x}^{ij}, \mathbf{y}^i, \mathbf{y}^j) =
              \lambda \mathcal{L}_{\text{AF}}(\mathbf{x}^{ij}, \mathbf{y}^i)
              + (1 - \lambda) \mathcal{L}_{\text{AF}}(\mathbf{x}^{ij}, \mathbf{y}^j)

    The first term puts the margin on y_a, the second on y_b.

    Args:
        embedding: Embeddings of the mixed clips.
        weight: Class weights, class-major sub-centre rows.
        y_a: Labels of the first clip of each pair (weight `lam`).
        y_b: Labels of the second clip of each pair (weight `1 - lam`).
        lam: Mixing weight lambda in [0, 1].
        margin: m in the poster, in radians.
        scale: s in the poster.
        sub_centers: Number of sub-centres k per class.

    Returns:
        Scalar loss.

    Shapes:
        - embedding: [batch, dim]
        - weight: [classes * sub_centers, dim]
        - y_a, y_b: [batch]
        - output: []
    """
    lam = _check_mix_inputs(embedding, weight, y_a, y_b, lam, sub_centers)
    # Margin on y_a, CE against y_a.
    logits_a = arcface_logits(embedding, weight, y_a, margin, scale, sub_centers)
    loss_a = F.cross_entropy(logits_a, y_a.long())
    # Margin on y_b, CE against y_b.
    logits_b = arcface_logits(embedding, weight, y_b, margin, scale, sub_centers)
    loss_b = F.cross_entropy(logits_b, y_b.long())
    return lam * loss_a + (1.0 - lam) * loss_b


def noisy_arcmix_loss(embedding, weight, y_a, y_b, lam, margin=0.7, scale=30.0, sub_centers=1):
    r"""Noisy-ArcMix: one set of logits with the margin on y_a only, soft-label CE (chapter 7).

    .. math:: \mathcal{L}_{\text{NAMix}}(\mathbf{x}^{ij}, \mathbf{y}^{ij}) =
              -\mathbf{y}^{ij \top} \log \frac{e^{s \cos(\theta + m\mathbf{y}^i)}}
                  {\sum_{k=1}^K e^{s \cos(\theta_k + m\mathbf{y}_k^i)}},
              \qquad \mathbf{y}^{ij} = \lambda \mathbf{y}^i + (1 - \lambda) \mathbf{y}^j

    The margin sits on y_a whatever lambda is: for lambda < 0.5 it lands on the minority
    class of the mix (the poster's "inconsistent" margin). The logit of y_b (when it differs
    from y_a) is the plain scaled cosine.

    Args:
        embedding: Embeddings of the mixed clips.
        weight: Class weights, class-major sub-centre rows.
        y_a: Labels of the first clip of each pair (weight `lam`, gets the margin).
        y_b: Labels of the second clip of each pair (weight `1 - lam`, no margin).
        lam: Mixing weight lambda in [0, 1].
        margin: m in the poster, in radians.
        scale: s in the poster.
        sub_centers: Number of sub-centres k per class.

    Returns:
        Scalar loss.

    Shapes:
        - embedding: [batch, dim]
        - weight: [classes * sub_centers, dim]
        - y_a, y_b: [batch]
        - output: []
    """
    lam = _check_mix_inputs(embedding, weight, y_a, y_b, lam, sub_centers)
    # One set of logits, margin on y_a only.
    logits = arcface_logits(embedding, weight, y_a, margin, scale, sub_centers)  # [batch, classes]
    # Soft-label CE, written as two hard-label CEs.
    loss_a = F.cross_entropy(logits, y_a.long())
    loss_b = F.cross_entropy(logits, y_b.long())
    return lam * loss_a + (1.0 - lam) * loss_b


# ----------------------------------------------------------------------------------------
# Mixing a batch
# ----------------------------------------------------------------------------------------


def mix(x_a, x_b, lam):
    r"""The mixup equation: :math:`\mathbf{x}^{ij} = \lambda \mathbf{x}^i + (1 - \lambda) \mathbf{x}^j`.

    Args:
        x_a: the first inputs (weight `lam`).
        x_b: the second inputs (weight `1 - lam`), same shape.
        lam: a number, or a tensor that broadcasts against the inputs (one lambda per pair).

    Shapes:
        - x_a, x_b: [*]; output: [*]
    """
    return lam * x_a + (1.0 - lam) * x_b


def mix_batch(wav, logmel, labels, alpha=0.5, generator=None, lam=None):
    r"""Mix every clip of a batch with another clip of the same batch (mixup, chapter 5).

    .. math:: \mathbf{x}^{ij} = \lambda \mathbf{x}^i + (1 - \lambda) \mathbf{x}^j,
              \qquad \lambda \sim \text{Beta}(\alpha, \alpha)

    ONE lambda per batch and ONE random permutation ``perm`` of the batch, shared by the
    wave and the log-Mel: clip i is mixed with clip ``perm[i]``, ``y_a = labels`` and
    ``y_b = labels[perm]``.

    Randomness: both draws come from `generator` (the global torch RNG when None), so a
    seeded ``torch.Generator`` (or ``torch.manual_seed``) makes the result reproducible.
    torch cannot sample a Beta variate from a given generator, so lambda is drawn by
    numpy's ``default_rng`` seeded with one integer drawn from `generator`; then the
    permutation is drawn with ``torch.randperm`` from the same generator.

    Args:
        wav: Raw waves of the batch.
        logmel: Log-Mel spectrograms of the batch.
        labels: Class index of each clip.
        alpha: Beta distribution parameter (0.5 in the paper), > 0.
        generator: Optional ``torch.Generator``.
        lam: Force lambda to this value in [0, 1] (the permutation is still drawn).

    Returns:
        ``(wav_mix, logmel_mix, y_a, y_b, lam)`` with ``lam`` a Python float.

    Shapes:
        - wav: [batch, samples] or [batch, 1, samples] (any trailing shape)
        - logmel: [batch, mels, frames] or [batch, 1, mels, frames] (any trailing shape)
        - labels: [batch]
        - wav_mix, logmel_mix: same as wav, logmel
        - y_a, y_b: [batch]
    """
    (wav_mix, logmel_mix), y_a, y_b, lam = _mix_together(
        {"wav": wav, "logmel": logmel}, labels, alpha, generator, lam)
    return wav_mix, logmel_mix, y_a, y_b, lam


def mix_for_mode(mode, inputs, labels, alpha=0.5, generator=None):
    """The inputs of one training step of `mode`: mixed for the mixing modes, as given else.

    The one place where the training loop (`asdlib.loop.train_step`: wave and log-Mel) and the
    2-D toy (`asdlib.toy`: the points) decide whether to mix. For a mode of ``MIXING_MODES``
    every tensor of `inputs` is mixed with the same lambda and the same permutation, drawn as in
    :func:`mix_batch` (one integer that seeds numpy's Beta(alpha, alpha), then the permutation,
    both from `generator`). For "arcface" nothing is drawn and nothing changes.

    Args:
        mode: One of ``MODES``.
        inputs: A tuple of tensors of the same batch (e.g. ``(wav, logmel)``, or ``(x,)``).
        labels: Class index of each clip, ``[batch]``.
        alpha: Beta distribution parameter, > 0 (unused by "arcface").
        generator: Optional ``torch.Generator`` of the draws.

    Returns:
        ``(inputs, y_a, y_b, lam)``: the (mixed) inputs as a tuple, the labels of both
        partners and lambda; for "arcface" ``(inputs, labels, labels, 1.0)``. These are the
        arguments a loss of `loss_for_mode` takes.

    Raises:
        ValueError: an unknown mode, or inputs whose batch sizes do not match the labels.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes are {', '.join(MODES)}")
    if mode not in MIXING_MODES:
        return tuple(inputs), labels, labels, 1.0
    named = {f"inputs[{i}]": tensor for i, tensor in enumerate(inputs)}
    return _mix_together(named, labels, alpha, generator)


def _mix_together(named: dict, labels, alpha, generator, lam=None):
    """Mix every tensor of `named` (name -> tensor, names for the error messages) with one
    lambda and one permutation; returns ``(mixed tuple, y_a, y_b, lam)`` (see `mix_batch`)."""
    if not torch.is_tensor(labels) or labels.dim() != 1:
        shape = tuple(labels.shape) if torch.is_tensor(labels) else type(labels)
        raise ValueError(f"labels must be a 1-D tensor [batch], got {shape}")
    batch = labels.shape[0]
    for name, tensor in named.items():
        if not torch.is_tensor(tensor) or tensor.dim() < 2:
            shape = tuple(tensor.shape) if torch.is_tensor(tensor) else type(tensor)
            raise ValueError(f"{name} must be a tensor [batch, ...] of rank >= 2, got {shape}")
        if tensor.shape[0] != batch:
            raise ValueError(
                f"{name} has batch size {tensor.shape[0]} but labels has {batch} entries"
            )
    device = generator.device if generator is not None else torch.device("cpu")
    if lam is None:
        if not float(alpha) > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        # One integer from the torch generator seeds numpy's Beta sampler.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=device))
        lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    else:
        lam = _check_lam(lam)
    # One permutation for the whole batch.
    perm = torch.randperm(batch, generator=generator, device=device)  # [batch]
    # Same lambda and permutation for every tensor; each keeps its shape.
    mixed = tuple(mix(t, t[perm.to(t.device)], lam) for t in named.values())
    # Labels of both partners: [batch] each.
    return mixed, labels, labels[perm.to(labels.device)], lam


# ----------------------------------------------------------------------------------------
# Picking a loss by name
# ----------------------------------------------------------------------------------------


def _arcface_mode(embedding, weight, y_a, y_b, lam, margin=0.7, scale=30.0, sub_centers=1):
    """ArcFace in the uniform signature: no mixing, so `lam` must be 1 and `y_b` is unused."""
    if float(lam) != 1.0:
        raise ValueError(f"mode 'arcface' does not mix batches: lam must be 1.0, got {lam!r}")
    return arcface_loss(embedding, weight, y_a, margin, scale, sub_centers)


def _mixup_mode(embedding, weight, y_a, y_b, lam, margin=0.7, scale=30.0, sub_centers=1):
    """Mixup in the uniform signature: `margin` is unused (mixup has none)."""
    return mixup_loss(embedding, weight, y_a, y_b, lam, scale, sub_centers)


_LOSSES = {
    "arcface": _arcface_mode,
    "mixup": _mixup_mode,
    "arcmix": arcmix_loss,
    "noisy_arcmix": noisy_arcmix_loss,
}


def loss_for_mode(mode):
    """The loss function of a training mode, all with one call signature.

    Every returned function is called as
    ``loss_fn(embedding, weight, y_a, y_b, lam, margin=0.7, scale=30.0, sub_centers=1)``.
    For ``"arcface"`` (no mixing) pass ``y_b = y_a`` and ``lam = 1.0``; ``y_b`` is unused and
    any other ``lam`` raises. For ``"mixup"`` the margin is unused. :func:`mix_for_mode`
    gives the inputs and the ``(y_a, y_b, lam)`` of a mode.

    Args:
        mode: One of ``MODES``: "arcface", "mixup", "arcmix", "noisy_arcmix".

    Returns:
        The loss function.
    """
    if mode not in _LOSSES:
        raise ValueError(f"unknown mode {mode!r}; valid modes are {', '.join(MODES)}")
    return _LOSSES[mode]
