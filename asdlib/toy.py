r"""A 2-D toy problem for the loss chapters: see what ArcFace, mixup, ArcMix and Noisy-ArcMix do.

Chapters 4 (ArcFace), 5 (mixup), 6 (ArcMix) and 7 (Noisy-ArcMix) train this toy. It is a
**teaching toy, not a benchmark**: a few Gaussian classes in a small input space, a small MLP
that maps every point to a **2-D embedding** (so that the angle between an embedding and its
class weight can be drawn on a circle), and an angular head trained with the losses of
`asdlib.losses`. Nothing about it is tuned to make one loss win; what it shows is reported
as it comes out.

The data (`make_toy`):

- ``num_classes`` classes ("machine IDs"), three by default, class ``c`` drawn from
  :math:`\mathcal{N}(\mu_c, I)` in ``input_dim`` dimensions, with the class means
  :math:`\mu_c` drawn at random at distance ``separation`` from the origin. Three classes
  because on a circle every pair of three classes is adjacent: a mix of two classes has a
  place between them that is not the place of a third one (with four, a mix of two opposite
  classes would have to land on one of the other two);
- held-out normal points of every class, drawn the same way;
- held-out "anomalies" of every class: :math:`\mu_c + r\,u + \varepsilon` with
  ``r = anomaly_shift``, :math:`\varepsilon \sim \mathcal{N}(0, I)` and a unit direction ``u``
  of one of two kinds (``ANOMALY_KINDS``, half the anomalies each): **between**, towards the
  mean of another class drawn at random (a fault that makes the machine sound a little like
  another one), or **off**, a random direction (a fault in any direction of the input space).

The score of a held-out point, as in the book's anomaly detector, uses only its own class:
the angle :math:`\theta_y` between its embedding and its class weight (a larger angle is more
anomalous; ``angles_to_class``). ``toy_auc`` turns the normal and anomalous angles into an AUC
with `asdlib.metrics.auc_pauc`.

Training (`train_toy`) is a plain loop: Adam, mini-batches, and for the mixing modes one
``lambda ~ Beta(alpha, alpha)`` and one permutation per batch from `asdlib.losses.mix_for_mode`,
as in the training loop of the networks (inputs are mixed in the input space). The class weights
start evenly spaced on the circle and every run starts with a few warm-up epochs of the plain
normalised softmax, the same for every mode (see `train_toy`): both only keep 2-D training from
getting stuck. It runs in a second or two on a CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from asdlib import losses, metrics, profiles, runtime

__all__ = [
    "ALPHA",
    "ANOMALY_KINDS",
    "BATCH_SIZE",
    "LEARNING_RATE",
    "ToyData",
    "ToyResult",
    "angles_to_class",
    "example_batch",
    "make_toy",
    "mixed_test_points",
    "summarize",
    "toy_auc",
    "toy_mlp",
    "train_toy",
]

#: The two kinds of toy anomalies, by their code in ``ToyData.anomaly_kind``.
ANOMALY_KINDS = ("between", "off")
#: Points per mini-batch of `train_toy`.
BATCH_SIZE = 64
#: Adam's learning rate in `train_toy`.
LEARNING_RATE = 3e-3
#: Beta(alpha, alpha) of the mixing weight lambda in `train_toy`.
ALPHA = 0.5

@dataclass(frozen=True)
class ToyData:
    """The toy data set; every tensor is float32 (points) or int64 (labels).

    Shapes:
        - x_train: [num_classes * train_per_class, input_dim], y_train: [...]
        - x_test: [num_classes * test_per_class, input_dim], y_test: [...]
        - x_anomaly: [num_classes * test_per_class, input_dim], y_anomaly: [...] (the class
          each anomaly belongs to, i.e. the "machine ID" it is scored against)
        - anomaly_kind: [...], 0 for "between", 1 for "off" (``ANOMALY_KINDS``)
        - means: [num_classes, input_dim]
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_anomaly: torch.Tensor
    y_anomaly: torch.Tensor
    anomaly_kind: torch.Tensor
    means: torch.Tensor
    seed: int
    anomaly_shift: float

    @property
    def num_classes(self) -> int:
        return self.means.shape[0]

    @property
    def input_dim(self) -> int:
        return self.means.shape[1]


def make_toy(
    seed: int = 0,
    num_classes: int = 3,
    input_dim: int = 6,
    train_per_class: int = 200,
    test_per_class: int = 100,
    separation: float = 4.0,
    anomaly_shift: float = 2.5,
) -> ToyData:
    """Draw the toy data set (see the module docstring).

    Args:
        seed: seed of the data (a ``torch.Generator`` seeded with it draws everything).
        num_classes: number of classes.
        input_dim: dimension of the input space.
        train_per_class: training points per class.
        test_per_class: held-out normal points per class, and as many anomalies.
        separation: distance of every class mean from the origin.
        anomaly_shift: distance r of the anomalies' centres from their class mean.

    Returns:
        A `ToyData`.
    """
    if num_classes < 2 or input_dim < 2:
        raise ValueError(f"need num_classes >= 2 and input_dim >= 2, got {num_classes}, {input_dim}")
    gen = torch.Generator().manual_seed(seed)
    # Class means on a sphere of radius `separation`: [classes, input_dim]
    means = torch.randn(num_classes, input_dim, generator=gen)
    means = separation * means / means.norm(dim=1, keepdim=True)

    def normal_points(per_class):
        # Labels 0, 0, ..., 1, 1, ...: [classes * per_class]
        labels = torch.arange(num_classes).repeat_interleave(per_class)
        # Unit-variance Gaussian around each mean: [classes * per_class, input_dim]
        return means[labels] + torch.randn(len(labels), input_dim, generator=gen), labels

    x_train, y_train = normal_points(train_per_class)
    x_test, y_test = normal_points(test_per_class)
    # Anomalies, half of each kind: "between" moves towards another (random) class mean,
    # "off" moves in a random direction; both by anomaly_shift, plus unit noise
    y_anomaly = torch.arange(num_classes).repeat_interleave(test_per_class)
    kind = torch.arange(len(y_anomaly)) % 2  # [points], 0: between, 1: off
    other = (y_anomaly + torch.randint(1, num_classes, y_anomaly.shape, generator=gen)) % num_classes
    towards = means[other] - means[y_anomaly]
    random_dir = torch.randn(len(y_anomaly), input_dim, generator=gen)
    direction = torch.where(kind[:, None] == 0, towards, random_dir)
    direction = direction / direction.norm(dim=1, keepdim=True)
    noise = torch.randn(len(y_anomaly), input_dim, generator=gen)
    x_anomaly = means[y_anomaly] + anomaly_shift * direction + noise
    return ToyData(
        x_train, y_train, x_test, y_test, x_anomaly, y_anomaly, kind, means, seed, anomaly_shift
    )


def toy_mlp(input_dim: int, hidden: int = 64, embedding_dim: int = 2) -> nn.Sequential:
    """The toy's embedding network: input_dim -> hidden -> hidden -> 2, ReLU between layers."""
    return nn.Sequential(
        nn.Linear(input_dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, embedding_dim),
    )


@dataclass
class ToyResult:
    """What `train_toy` returns.

    Attributes:
        mode, margin, scale, seed, num_epochs, warmup_epochs: the settings of the run.
        model: the trained embedding network (eval mode).
        weight: the trained class weights, [num_classes, 2].
        embedding: {"train", "test", "anomaly"}: embeddings of the data's points, [points, 2].
        labels: {"train", "test", "anomaly"}: their class labels, [points].
        history: mean training loss of every epoch (the warm-up epochs first).
        data: the `ToyData` the model was trained on.
    """

    mode: str
    margin: float
    scale: float
    seed: int
    num_epochs: int
    warmup_epochs: int
    model: nn.Module
    weight: torch.Tensor
    embedding: dict
    labels: dict
    history: list = field(default_factory=list)
    data: ToyData | None = None

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings of new points: [points, input_dim] -> [points, 2]."""
        return self.model(x)

    def angles(self, split: str) -> torch.Tensor:
        """Angle (radians) of each point of ``split`` to its own class weight."""
        return angles_to_class(self.embedding[split], self.weight, self.labels[split])

    def accuracy(self, split: str = "test") -> float:
        """Fraction of the points of ``split`` whose nearest class weight (in angle) is their own."""
        cos = losses.cosine_logits(self.embedding[split], self.weight)  # [points, classes]
        return float((cos.argmax(dim=1) == self.labels[split]).float().mean())


def _circle(num_points: int) -> torch.Tensor:
    """``num_points`` unit vectors evenly spaced on the circle, the first at angle 0: [n, 2]."""
    angle = torch.arange(num_points) * (2 * math.pi / num_points)
    return torch.stack((angle.cos(), angle.sin()), dim=1)


def angles_to_class(embedding: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Angle theta_y between every embedding and the weight of its own class, in radians.

    Shapes:
        - embedding: [points, dim]; weight: [classes, dim]; labels: [points]
        - output: [points], values in [0, pi]
    """
    # Cosine to every class: [points, classes]
    cos = losses.cosine_logits(embedding, weight)
    # The own class only: [points]
    cos_y = cos.gather(1, labels.long()[:, None]).squeeze(1)
    return torch.arccos(cos_y)


def toy_auc(result: ToyResult, kind: str | None = None) -> float:
    """AUC of the angle to the own class as an anomaly score: held-out normals vs anomalies.

    Args:
        result: a trained toy.
        kind: None for all anomalies, or one of ``ANOMALY_KINDS`` for that kind only.
    """
    normal = result.angles("test").numpy()
    anomaly = result.angles("anomaly")
    if kind is not None:
        if kind not in ANOMALY_KINDS:
            raise ValueError(f"kind must be None or one of {ANOMALY_KINDS}, got {kind!r}")
        anomaly = anomaly[result.data.anomaly_kind == ANOMALY_KINDS.index(kind)]
    anomaly = anomaly.numpy()
    labels = np.r_[np.zeros(len(normal)), np.ones(len(anomaly))]
    auc, _ = metrics.auc_pauc(labels, np.r_[normal, anomaly])
    return auc


def summarize(runs: dict) -> pd.DataFrame:
    """One row per trained toy: accuracy, angles (degrees) and AUCs of the held-out points.

    Args:
        runs: ``{name: ToyResult}``; tuple names, e.g. ``(mode, seed)``, give a MultiIndex.

    Returns:
        A DataFrame with the columns ``accuracy``, ``normal angle`` (mean), ``normal angle p90``
        (90th percentile), ``anomaly angle`` (mean), ``AUC`` (all anomalies), ``AUC between``
        and ``AUC off`` (one kind each).
    """
    rows = []
    for run in runs.values():
        normal = torch.rad2deg(run.angles("test"))
        anomaly = torch.rad2deg(run.angles("anomaly"))
        rows.append({
            "accuracy": run.accuracy("test"),
            "normal angle": float(normal.mean()),
            "normal angle p90": float(normal.quantile(0.9)),
            "anomaly angle": float(anomaly.mean()),
            "AUC": toy_auc(run),
            "AUC between": toy_auc(run, "between"),
            "AUC off": toy_auc(run, "off"),
        })
    keys = list(runs)
    if keys and all(isinstance(key, tuple) for key in keys):
        index = pd.MultiIndex.from_tuples(keys)
    else:
        index = pd.Index(keys)
    return pd.DataFrame(rows, index=index)


def example_batch(seed: int = 0):
    """The small made-up batch of mixed clips that chapters 6 and 7 compute their losses on by hand.

    Six clips with 8-d embeddings and five classes; clip ``i`` of class ``y_a[i]`` was mixed
    with a clip of class ``y_b[i]``, always another class.

    Returns:
        ``(embedding, weight, y_a, y_b)``.

    Shapes:
        - embedding: [6, 8]; weight: [5, 8] (one row per class); y_a, y_b: [6]
    """
    gen = torch.Generator().manual_seed(seed)
    embedding = torch.randn(6, 8, generator=gen)  # [batch, dim]
    weight = torch.randn(5, 8, generator=gen)  # [classes, dim]
    y_a = torch.tensor([0, 1, 2, 3, 4, 0])  # [batch]
    y_b = torch.tensor([1, 2, 3, 4, 0, 2])  # [batch]
    return embedding, weight, y_a, y_b


def mixed_test_points(data: ToyData, num_points: int = 400, seed: int = 0):
    """Mixtures of held-out normal points of two different classes, lambda uniform in [0, 1].

    Each pair has its own lambda (`asdlib.losses.mix`), unlike training, where
    `asdlib.losses.mix_for_mode` draws one lambda per batch.

    ``num_points`` pairs are drawn and the pairs of two points of the same class dropped (about
    1 / num_classes of them).

    Used to look at where a trained toy puts mixed inputs (chapter 5).

    Returns:
        ``(x_mix, y_a, y_b, lam)``: ``x_mix = lam * x_a + (1 - lam) * x_b`` with ``x_a`` of class
        ``y_a`` and ``x_b`` of class ``y_b != y_a``.

    Shapes:
        - x_mix: [num_points, input_dim]; y_a, y_b, lam: [num_points]
    """
    gen = torch.Generator().manual_seed(seed)
    # Two random held-out points per mixture: [num_points] indices each
    i = torch.randint(0, len(data.y_test), (num_points,), generator=gen)
    j = torch.randint(0, len(data.y_test), (num_points,), generator=gen)
    # Keep the pairs of two different classes
    keep = data.y_test[i] != data.y_test[j]
    i, j = i[keep], j[keep]
    lam = torch.rand(len(i), generator=gen)  # [pairs]
    x_mix = losses.mix(data.x_test[i], data.x_test[j], lam[:, None])  # [pairs, input_dim]
    return x_mix, data.y_test[i], data.y_test[j], lam


def train_toy(
    mode: str = "arcface",
    margin: float = 0.7,
    scale: float = 30.0,
    seed: int = 0,
    epochs: int | None = None,
    data: ToyData | None = None,
    warmup_epochs: int = 5,
) -> ToyResult:
    """Train the toy's MLP and angular head with one of the four losses of `asdlib.losses`.

    Adam with learning rate `LEARNING_RATE`, mini-batches of `BATCH_SIZE` points, and for the
    mixing modes lambda ~ Beta(`ALPHA`, `ALPHA`).

    Args:
        mode: "arcface", "mixup", "arcmix" or "noisy_arcmix" (`asdlib.losses.MODES`).
            ``mode="arcface", margin=0`` is the plain normalised softmax (no margin).
        margin: m, in radians (unused by "mixup").
        scale: s.
        seed: seed of the initial weights, the batch order and the mixing draws.
        epochs: passes over the training points; None takes the active profile's `toy_epochs`.
        data: the data set; None draws ``make_toy(seed=0)`` (the same data for every seed).
        warmup_epochs: epochs of the plain normalised softmax (no margin, no mixing) before
            the `epochs` of `mode`. The warm-up is the same for every mode (same seed, same
            start), so the modes differ only in what follows. Without it, a 2-D embedding that
            starts on the far side of the circle from its class gets almost no gradient (the
            derivative of cos(theta) vanishes near 180 degrees) and its class can stay lost.

    Returns:
        A `ToyResult`.
    """
    if mode not in losses.MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes are {', '.join(losses.MODES)}")
    epochs = profiles.get_profile().toy_epochs if epochs is None else int(epochs)
    if epochs < 0 or warmup_epochs < 0:
        raise ValueError(f"epochs and warmup_epochs must be >= 0, got {epochs}, {warmup_epochs}")
    data = make_toy() if data is None else data
    # Warm-up (plain normalised softmax), then the mode itself: (mode, margin) per epoch
    schedule = [("arcface", 0.0)] * warmup_epochs + [(mode, margin)] * epochs
    # The matrices are tiny: one CPU thread is much faster than several (on a busy machine,
    # several threads can be ten times slower)
    with runtime.torch_threads(1):
        model, head = _initial_networks(data, margin, scale, seed)
        history = _fit(model, head, data, schedule, seed)
        model.eval()
        with torch.no_grad():
            embedding = {"train": model(data.x_train), "test": model(data.x_test),
                         "anomaly": model(data.x_anomaly)}
    labels = {"train": data.y_train, "test": data.y_test, "anomaly": data.y_anomaly}
    return ToyResult(mode=mode, margin=float(margin), scale=float(scale), seed=seed,
                     num_epochs=epochs, warmup_epochs=warmup_epochs, model=model,
                     weight=head.weight.detach().clone(), embedding=embedding, labels=labels,
                     history=history, data=data)


def _initial_networks(data: ToyData, margin: float, scale: float, seed: int) -> tuple:
    """`(model, head)` before training: the MLP's weights drawn from `seed`, the angular head
    with `margin` and `scale` and its class weights evenly spaced on the unit circle."""
    # Initial weights from `seed`, without touching the global random state
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = toy_mlp(data.input_dim)
        head = losses.ArcMarginHead(data.num_classes, embedding_dim=2, margin=margin, scale=scale)
    # From a random start, two weights close together in 2-D tend to stay together, and their
    # classes never separate
    with torch.no_grad():
        head.weight.copy_(_circle(data.num_classes))
    return model, head


def _fit(model: nn.Module, head: nn.Module, data: ToyData, schedule: list, seed: int) -> list:
    """The training loop of `train_toy`: one epoch per `(mode, margin)` of `schedule`, with
    `head.scale`; returns the mean loss of every epoch."""
    # Batch order and mixing draws from their own generator
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=LEARNING_RATE)
    history = []
    for epoch_mode, epoch_margin in schedule:
        loss_fn = losses.loss_for_mode(epoch_mode)
        order = torch.randperm(len(data.y_train), generator=gen)
        total, count = 0.0, 0
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            # One lambda and one permutation per batch, in the input space (arcface: no mixing)
            (x,), y_a, y_b, lam = losses.mix_for_mode(
                epoch_mode, (data.x_train[batch],), data.y_train[batch], alpha=ALPHA,
                generator=gen)
            embedding = model(x)  # [batch, 2]
            loss = loss_fn(embedding, head.weight, y_a, y_b, lam, margin=epoch_margin,
                           scale=head.scale)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
        history.append(total / count)
    return history
