r"""
The training loop: one step, one epoch, validation, embedding

Chapter 8 of the book ("Training TASTgram") rebuilds `train_step` from scratch and checks it
against this one. `asdlib.train.train` calls these functions, and `asdlib.bench` times them, so
the book, the trainer and the benchmark run the same step.

One step on a batch of raw waves and their machine-ID labels:

1. compute the log-Mels of the batch on the training device (`asdlib.features.LogMel`);
2. for the mixing modes, mix wave and log-Mel with one $\lambda \sim \text{Beta}(\alpha, \alpha)$
   and one permutation (`asdlib.losses.mix_for_mode`): the Tgram branch sees the mixed wave,
   the Sgram and TAgram branches the mixed log-Mel, as the authors do;
3. embed, compute the mode's loss (`asdlib.losses.loss_for_mode`) from the embedding and the
   ArcFace weights, and take one optimizer step.

Mixed precision (CUDA only) wraps the forward pass in `torch.autocast`; the angular-margin part of
every loss runs in float32 whatever the autocast dtype (`asdlib.losses`), and float16 comes with a
gradient scaler. Under `torchrun` every process computes the gradient of its own part of the
batch and `average_gradients` replaces it by the mean over the processes before the step: that
is all data-parallel training is.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from asdlib import losses, runtime

__all__ = [
    "Diverged",
    "Step",
    "average_gradients",
    "embed",
    "epoch_generator",
    "train_one_epoch",
    "train_step",
    "validate",
]


class Diverged(ValueError):
    """A training loss that is not finite: the run diverged (`train_one_epoch` stops there)."""


@dataclasses.dataclass(frozen=True)
class Step:
    """What every training step of a run uses: the network, its optimizer and how it trains.

    Built once per run (`asdlib.train`, `asdlib.bench`, chapter 8) and handed to `train_step`
    and `train_one_epoch`; only the batches and the mixing generator change from step to step.

    Attributes:
        model: an `asdlib.models.ASDNet` (TASTgram or STgram).
        optimizer: its optimizer (AdamW in the book).
        mode: "arcface", "mixup", "arcmix" or "noisy_arcmix" (`asdlib.losses.MODES`).
        logmel_fn: the log-Mel front end (`TrainConfig.build_logmel()`), on the device.
        alpha: lambda ~ Beta(alpha, alpha) of the mixing modes.
        device: where the batches go ("cpu", "cuda", a `torch.device`).
        amp_dtype: the autocast dtype (`asdlib.runtime.autocast_dtype`), None for float32.
        scaler: a `torch.amp.GradScaler` (needed for float16), or None.
        distributed: average the gradients over the `torchrun` processes before the step.

    Raises:
        ValueError: an unknown mode (checked here, before any batch is drawn).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    mode: str
    logmel_fn: nn.Module
    alpha: float = 0.5
    device: torch.device = torch.device("cpu")
    amp_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    distributed: bool = False

    def __post_init__(self):
        if self.mode not in losses.MODES:
            raise ValueError(f"unknown training mode {self.mode!r}; valid modes are "
                             f"{', '.join(losses.MODES)}")
        # A frozen dataclass sets its own fields through object.__setattr__
        object.__setattr__(self, "device", torch.device(self.device))


def train_step(step: Step, wav, labels, generator: torch.Generator | None = None) -> torch.Tensor:
    """One optimizer step of `step.model` on a batch; returns the batch's loss (before the step).

    Args:
        step: the model, optimizer and settings of the run (`Step`); the model in train mode.
        wav: the raw waves of the batch, on the training device.
        labels: the machine-ID class of each clip.
        generator: the generator of the mixing draws (lambda and the permutation).

    Returns:
        The loss, a detached scalar tensor.

    Shapes:
        - wav: `[batch, samples]`; labels: `[batch]`.
    """
    model, optimizer, scaler = step.model, step.optimizer, step.scaler
    with torch.no_grad():
        # [batch, n_mels, frames], computed on the device, in float32
        logmel = step.logmel_fn(wav)
        # One lambda and one permutation for wave and log-Mel (arcface: no mixing)
        (wav, logmel), y_a, y_b, lam = losses.mix_for_mode(step.mode, (wav, logmel), labels,
                                                           alpha=step.alpha,
                                                           generator=generator)
    head = model.arcface
    with torch.autocast(wav.device.type, dtype=step.amp_dtype, enabled=step.amp_dtype is not None):
        # [batch, 128]
        embedding = model.embed(wav, logmel)
        # The margin part runs in float32 whatever the autocast dtype (asdlib.losses)
        loss = losses.loss_for_mode(step.mode)(embedding, head.weight, y_a, y_b, lam,
                                               margin=head.margin, scale=head.scale,
                                               sub_centers=head.sub_centers)
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        if step.distributed:
            average_gradients(model)
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        if step.distributed:
            average_gradients(model)
        scaler.step(optimizer)
        scaler.update()
    return loss.detach()


def average_gradients(model: nn.Module) -> None:
    """Replace every gradient by its mean over the `torchrun` processes (data parallelism)."""
    world_size = dist.get_world_size()
    for parameter in model.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world_size


def epoch_generator(seed: int, epoch: int, rank: int = 0) -> torch.Generator:
    """The generator of the mixing draws of one epoch on one process.

    Seeded from (seed, epoch, rank), so a resumed run draws the same lambdas and permutations
    as an uninterrupted one.
    """
    state = np.random.SeedSequence([seed, epoch, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def train_one_epoch(step: Step, loader, generator: torch.Generator, progress: bool = True,
                    desc: str = "epoch") -> tuple:
    """One pass over `loader` with `train_step`; returns `(loss sum, clips)` of this process.

    A last batch of a single clip is skipped: BatchNorm cannot normalise one clip.

    Args:
        step: the model, optimizer and settings of the run (`Step`).
        loader: batches `(wav, labels, rows)`, e.g. a DataLoader over `asdlib.cache.ClipDataset`.
        generator: the generator of the epoch's mixing draws (`epoch_generator`).
        progress: show a progress bar of the batches.
        desc: the bar's label, also named in the `Diverged` message.

    Raises:
        Diverged: at the first step whose loss is not finite (NaN or infinite).
    """
    step.model.train()
    total_loss, count = 0.0, 0
    batches = runtime.progress_bar(loader, show=progress, desc=desc, unit="batch", leave=False)
    for number, (wav, labels, _) in enumerate(batches, start=1):
        if len(labels) < 2:
            continue
        # [batch, samples], [batch]
        wav = wav.to(step.device, non_blocking=True)
        labels = labels.to(step.device, non_blocking=True)
        loss = train_step(step, wav, labels, generator)
        # One GPU -> CPU sync per step, for the log
        value = float(loss)
        if not math.isfinite(value):
            raise Diverged(f"training diverged: the loss of {desc}, step {number} is {value}"
                           f" (learning rate {step.optimizer.param_groups[0]['lr']:g}); "
                           "lower the learning rate (--lr). The finished epochs' checkpoints "
                           "are kept")
        total_loss += value * len(labels)
        count += len(labels)
        batches.set_postfix(loss=f"{value:.3f}")
    return total_loss, count


@torch.no_grad()
def validate(model, loader, logmel_fn: nn.Module, device: torch.device, amp_dtype=None) -> tuple:
    """Mean ArcFace loss (margin on the true ID, no mixing) and ID accuracy on clean clips.

    The loss is the mean anomaly score of normal clips: the same quantity whatever the
    training mode, so the validation curves of all modes can be compared.

    Returns:
        `(loss, accuracy)`.
    """
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for wav, labels, _ in loader:
        wav = wav.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        # [batch, n_mels, frames], float32
        logmel = logmel_fn(wav)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            # [batch, 128]
            embedding = model.embed(wav, logmel)
        # Margin on the true ID: the anomaly score of each clip; [batch, classes]
        logits = model.arcface(embedding, labels)
        total_loss += float(F.cross_entropy(logits, labels, reduction="sum"))
        # Accuracy from the plain cosines (no margin): [batch]
        predicted = model.arcface(embedding).argmax(dim=1)
        correct += int((predicted == labels).sum())
        count += len(labels)
    return total_loss / count, correct / count


@torch.no_grad()
def embed(model, loader, logmel_fn: nn.Module, amp_dtype=None, progress: bool = True,
          desc: str = "embedding") -> np.ndarray:
    """The embedding of every clip of `loader`, in order (model in eval mode), computed on the
    model's device.

    Returns:
        float32 embeddings, `[clips, 128]`.
    """
    model.eval()
    device = next(model.parameters()).device
    out = []
    for wav, _, _ in runtime.progress_bar(loader, show=progress, desc=desc, unit="batch",
                                          leave=False):
        wav = wav.to(device)
        # [batch, n_mels, frames]
        logmel = logmel_fn(wav)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            # [batch, 128]
            embedding = model.embed(wav, logmel)
        out.append(embedding.float().cpu())
    return torch.cat(out).numpy()
