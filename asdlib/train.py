r"""
Training: one plain loop for ArcFace, mixup, ArcMix and Noisy-ArcMix

Chapter 8 of the book ("Training TASTgram") explains this module.

Paper: S. Choi and J.-W. Choi, "Noisy-ArcMix: Additive Noisy Angular Margin Loss Combined With
Mixup for Anomalous Sound Detection", ICASSP 2024, pp. 516-520
(https://arxiv.org/abs/2310.06364).

The network learns to tell the machine IDs of the *normal* training clips apart; the anomaly
score of a test clip is later how badly it fits its own ID (`asdlib.evaluate`). One epoch:

1. draw a batch of raw waves from the int16 clip cache (`asdlib.cache`);
2. compute their log-Mels **on the training device**, the whole batch at once
   (`asdlib.features.LogMel`);
3. for the mixing modes, mix wave and log-Mel with one $\lambda \sim \text{Beta}(\alpha, \alpha)$
   and one permutation (`asdlib.losses.mix_batch`): the Tgram branch sees the mixed wave, the
   Sgram and TAgram branches the mixed log-Mel, as the authors do;
4. embed, compute the mode's loss (`asdlib.losses.loss_for_mode`), AdamW step.

After each epoch: the validation loss and accuracy on the held-out 5 % (clean clips, margin on
the true ID: the mean anomaly score of normal clips, the same number for every mode), one
cosine-annealing step, and two checkpoints, both written atomically (temporary file, then
`os.replace`): `last.pt` (everything needed to resume) and `best.pt` (the model of the lowest
validation loss so far). An interrupted run continues from `last.pt`.

The recipe of the authors (AdamW, lr 1e-4, cosine annealing to 0.1 lr stepped per epoch,
300 epochs, batch 64, seed 2023, best-validation-loss checkpoint) is the `paper` profile
(`asdlib.profiles`). Two deliberate differences, both about numerics on the GPU:

- mixed precision uses bfloat16 (or float16 WITH a gradient scaler when the GPU has no
  bfloat16); the reference's float16 without a scaler can underflow its gradients;
- the angular-margin part of every loss runs in float32 (`asdlib.losses` switches autocast off).

`torchrun --nproc_per_node N -m asdlib train ...` trains with DistributedDataParallel: each
process sees `1/N` of every epoch (`DistributedSampler`) with a batch of `batch_size // N` clips
(so the global batch stays `batch_size`; each process draws its own mixing lambda), and only
rank 0 validates and writes files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from asdlib import profiles, runtime
from asdlib.layout import SAMPLE_RATE

__all__ = [
    "MODELS",
    "MODES",
    "TrainConfig",
    "build_model",
    "class_map_from_json",
    "dataset_fingerprint",
    "load_checkpoint",
    "load_model",
    "read_run_info",
    "reuse_freed_memory",
    "speed_up",
    "train",
]

#: The networks, by name: TASTgram (Tgram, Sgram, TAgram) and STgram (Sgram, Tgram).
MODELS = ("tastgram", "stgram")
#: The training modes: the paper's three plus plain mixup (see `asdlib.losses`).
MODES = ("arcface", "mixup", "arcmix", "noisy_arcmix")
#: Mixed-precision settings (CUDA only; the CPU always trains in float32).
AMP_CHOICES = ("auto", "bf16", "fp16", "off")

#: File names inside a run folder.
RUN_INFO = "config.json"
LAST = "last.pt"
BEST = "best.pt"
HISTORY = "history.csv"
#: Version of the checkpoint layout (bumped when the keys change meaning).
CHECKPOINT_FORMAT = 1


# ----------------------------------------------------------------------------------------
# The configuration of a run
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig(profiles.Recipe):
    """Everything that decides what a training run computes (not where or how fast).

    Build one from a profile with `TrainConfig.from_profile("book", model="stgram", ...)`.
    The defaults are the authors' recipe (the `paper` profile).

    Args:
        model: "tastgram" or "stgram".
        mode: "arcface", "mixup", "arcmix" or "noisy_arcmix".
        seed: seeds torch, numpy, the validation split, the batch order and the mixing draws.
        profile: the name of the profile this config came from (a label for printed results).
        seconds: clip length in seconds (clips are cropped or zero-padded to it).
        num_epochs, batch_size, lr, min_lr_ratio: AdamW with cosine annealing from `lr` down to
            `min_lr_ratio * lr`, stepped once per epoch.
        alpha: lambda ~ Beta(alpha, alpha) of the mixing modes.
        margin, scale: m (radians) and s of the ArcFace head.
        val_fraction: share of the training clips held out for validation (random, seeded).
        n_fft, hop_length, n_mels: the log-Mel settings; win_length: the Tgram window.
        sub_centers: sub-centres per class of the ArcFace head.
        amp: "auto" (bf16 where the GPU has it, else fp16 with a gradient scaler), "bf16",
            "fp16" (always with a scaler) or "off". Only used on CUDA.
    """

    # The fields of `asdlib.profiles.Recipe` (seconds, features, training hyper-parameters,
    # seed), then what only a run has:
    model: str = "tastgram"
    mode: str = "noisy_arcmix"
    profile: str = "paper"
    sub_centers: int = 1
    amp: str = "auto"

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model: unknown model {self.model!r}; choose one of {list(MODELS)}")
        if self.mode not in MODES:
            raise ValueError(f"mode: unknown mode {self.mode!r}; choose one of {list(MODES)}")
        if self.amp not in AMP_CHOICES:
            raise ValueError(f"amp: must be one of {list(AMP_CHOICES)}, got {self.amp!r}")
        for name in ("num_epochs", "batch_size", "n_fft", "hop_length", "n_mels", "win_length",
                     "sub_centers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a positive int, got {value!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size: BatchNorm needs at least 2 clips, got {self.batch_size}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction: must lie in (0, 1), got {self.val_fraction!r}")
        if not (self.lr > 0 and 0.0 < self.min_lr_ratio <= 1.0):
            raise ValueError(f"lr and min_lr_ratio: need lr > 0 and 0 < min_lr_ratio <= 1, got "
                             f"{self.lr!r} and {self.min_lr_ratio!r}")
        if not self.seconds > 0:
            raise ValueError(f"seconds: must be positive, got {self.seconds!r}")

    @classmethod
    def from_profile(cls, profile: str | profiles.Profile | None = None,
                     **overrides) -> "TrainConfig":
        """The config of a profile (`ASDLIB_PROFILE` or book when None), with `overrides`.

        Example: `TrainConfig.from_profile("book", model="stgram", mode="arcface", seed=1)`.
        """
        chosen = profile if isinstance(profile, profiles.Profile) else profiles.get_profile(profile)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; valid: {sorted(fields)}")
        values = {f.name: getattr(chosen, f.name) for f in dataclasses.fields(profiles.Recipe)}
        values["profile"] = chosen.name
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Rebuild a config from `to_dict()` (unknown keys are an error naming them)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown} (written by another "
                             f"asdlib version?)")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def differences(self, other: "TrainConfig | dict") -> list:
        """`["lr: 0.001 vs 0.002", ...]`: the fields where `self` and `other` differ."""
        mine, theirs = self.to_dict(), other if isinstance(other, dict) else other.to_dict()
        keys = sorted(set(mine) | set(theirs))
        return [f"{k}: {mine.get(k)!r} vs {theirs.get(k)!r}" for k in keys
                if mine.get(k) != theirs.get(k)]

    @property
    def num_samples(self) -> int:
        """Clip length in samples at 16 kHz."""
        return int(round(self.seconds * SAMPLE_RATE))

    def summary(self) -> str:
        """One line naming the model, mode, seed and profile (printed beside results)."""
        return (f"{self.model} {self.mode} seed={self.seed} (profile={self.profile}: "
                f"{self.seconds:g} s clips, {self.num_epochs} epochs, batch {self.batch_size}, "
                f"lr {self.lr:g})")


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """The STgram or TASTgram network of `config` for `num_classes` machine IDs."""
    from asdlib.models import ASDNet

    return ASDNet(num_classes, features=config.model, num_samples=config.num_samples,
                  n_mels=config.n_mels, hop_length=config.hop_length,
                  win_length=config.win_length, margin=config.margin, scale=config.scale,
                  sub_centers=config.sub_centers)


def speed_up(model: nn.Module, channels_last: bool = True, compile_model: bool = False):
    """The speed settings of the training loop; they change how fast, not what is computed.

    `channels_last`: the NHWC memory layout (about 1.4x faster on this book's CPU: PReLU and
    convolution backward). `compile_model`: `torch.compile` of the Tgram network and the
    MobileFaceNet, in place, so that the state-dict names stay those of the reference.
    `asdlib.bench` times the model exactly as set up here.
    """
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile_model:
        model.tgramnet.compile()
        model.mobilefacenet.compile()
    return model


def build_logmel(config: TrainConfig) -> nn.Module:
    """The log-Mel transform of `config` (the authors' settings by default)."""
    from asdlib.features import LogMel

    return LogMel(sample_rate=SAMPLE_RATE, n_fft=config.n_fft, hop_length=config.hop_length,
                  n_mels=config.n_mels)


# ----------------------------------------------------------------------------------------
# Data: the index, the class map, the clip cache and the validation split
# ----------------------------------------------------------------------------------------


def dataset_fingerprint(root) -> dict:
    """What identifies a dataset, independent of where it lies.

    Synthetic data (a `synth_info.json` in `root`): the hash of that file's content, which
    lists every option of the generator. Real data: the hash of the sorted list of
    (relative path, size) of its wav files.

    Returns:
        dict: ``kind`` ("synthetic" or "dcase"), ``hash`` (16 hex digits) and
        ``description`` (one line).

    Raises:
        FileNotFoundError: `root` is missing or holds no DCASE clip.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist (expected a folder in the "
                                "DCASE layout: <root>/<machine_type>/{train,test}/*.wav)")
    info_path = root / "synth_info.json"
    if info_path.exists():
        info = json.loads(info_path.read_text())
        text = json.dumps(info, sort_keys=True)
        description = (f"synthetic data (asdlib.synth v{info.get('version')}, profile "
                       f"{info.get('profile')}, seed {info.get('seed')}, "
                       f"{info.get('seconds'):g} s, {info.get('ids')} IDs, "
                       f"{len(info.get('types', []))} types)")
        kind = "synthetic"
    else:
        from asdlib.dcase import build_index

        index = build_index(root)
        files = sorted((os.path.relpath(p, root), os.path.getsize(p)) for p in index["path"])
        text = json.dumps(files)
        description = f"DCASE-layout data at {root} ({len(files)} clips)"
        kind = "dcase"
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return {"kind": kind, "hash": digest, "description": description}


def class_map_to_json(cmap: dict) -> list:
    """`{(type, id): k}` as a JSON-friendly list `[[type, id, k], ...]` in class order."""
    return [[t, i, int(k)] for (t, i), k in sorted(cmap.items(), key=lambda item: item[1])]


def class_map_from_json(rows) -> dict:
    """The inverse of `class_map_to_json`."""
    return {(t, i): int(k) for t, i, k in rows}


def _index_and_classes(data_root):
    """The clip index of `data_root` and the class map of its training clips."""
    from asdlib import dcase

    index = dcase.build_index(data_root)
    train_index = index[index["split"] == "train"].reset_index(drop=True)
    if train_index.empty:
        raise FileNotFoundError(f"data root {data_root} holds no training clip "
                                "(<root>/<machine_type>/train/normal_id_XX_NNNNNNNN.wav)")
    return index, train_index, dcase.class_map(train_index)


def clip_dataset(index: pd.DataFrame, config: TrainConfig, cmap: dict, progress: bool = True):
    """The clips of `index` from the int16 clip cache under `<ASDLIB_HOME>/cache`.

    Returns:
        An `asdlib.cache.ClipDataset`: item `i` is `(wav [samples] float32, label, i)`.
    """
    from asdlib import cache

    return cache.cached_dataset(index, runtime.home() / "cache", config.num_samples,
                                SAMPLE_RATE, class_map=cmap, progress=progress)


def validation_split(num_clips: int, val_fraction: float, seed: int):
    """A seeded random split of `range(num_clips)` into training and validation positions.

    Returns:
        `(train_positions, val_positions)`, two sorted int arrays; at least one clip each.
    """
    if num_clips < 3:
        raise ValueError(f"need at least 3 training clips for a validation split, got {num_clips}")
    order = np.random.default_rng(seed).permutation(num_clips)
    num_val = min(num_clips - 2, max(1, int(round(val_fraction * num_clips))))
    return np.sort(order[num_val:]), np.sort(order[:num_val])


# ----------------------------------------------------------------------------------------
# Device, precision, distributed set-up
# ----------------------------------------------------------------------------------------


def _autocast_dtype(amp: str, device: torch.device):
    """The autocast dtype on CUDA (None: train in float32)."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _distributed():
    """`(rank, world_size, local_rank, started_here)`; starts the process group under torchrun."""
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, 0, False
    started = False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        started = True
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), started


def reuse_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back.

    By default glibc serves every large block (the activations of a batch: tens of MB for
    10 s clips) with a fresh `mmap` and returns it on `free`, so each training step
    page-faults all its activations in again. With `mmap` off and a high trim threshold the
    freed blocks stay in the heap and are reused: a CPU training step measured about 1.2x
    faster for 2 s clips and 1.5x for 10 s clips on the book's machine. The price: the
    process keeps its peak memory until it exits. This changes the whole process (same as
    starting Python with `MALLOC_MMAP_MAX_=0`); `train` and `evaluate` call it on the CPU.

    Returns:
        True when applied (Linux with glibc), False elsewhere (nothing changes).
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt parameters of glibc's <malloc.h>: M_TRIM_THRESHOLD = -1, M_MMAP_MAX = -4
    return libc.mallopt(-4, 0) == 1 and libc.mallopt(-1, 2**31 - 1) == 1


def _epoch_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    """The generator of the mixing draws of one epoch on one process.

    Seeded from (seed, epoch, rank), so a resumed run draws the same lambdas and permutations
    as an uninterrupted one.
    """
    state = np.random.SeedSequence([seed, epoch, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class _LossModel(nn.Module):
    """The network and the mode's loss in one `forward`.

    DistributedDataParallel synchronises the gradients of what runs inside `forward`; putting
    the loss there keeps the ArcFace weight (used by the loss, not by `embed`) in the picture.
    """

    def __init__(self, model: nn.Module, config: TrainConfig):
        super().__init__()
        from asdlib.losses import loss_for_mode

        self.model = model
        self.loss_fn = loss_for_mode(config.mode)
        self.config = config

    def forward(self, wav, logmel, y_a, y_b, lam):
        # [batch, 128]
        embedding = self.model.embed(wav, logmel)
        head = self.model.arcface
        # The margin part runs in float32 whatever the autocast dtype (asdlib.losses)
        return self.loss_fn(embedding, head.weight, y_a, y_b, lam, margin=head.margin,
                            scale=head.scale, sub_centers=head.sub_centers)


# ----------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------


def load_checkpoint(path, config: TrainConfig | None = None, map_location="cpu") -> dict:
    """Read a checkpoint; with `config`, check it was written for that config.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the checkpoint's config differs from `config` (the message lists every
            differing field, checkpoint value first).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {checkpoint.get('format')!r}, this asdlib "
                         f"reads format {CHECKPOINT_FORMAT}")
    if config is not None:
        differences = TrainConfig.from_dict(checkpoint["config"]).differences(config)
        if differences:
            raise ValueError(
                f"checkpoint {path} was written for a different config "
                f"(checkpoint vs requested): {'; '.join(differences)}. Use another run "
                f"folder, or delete this one to start over.")
    return checkpoint


def read_run_info(run_dir) -> dict:
    """The `config.json` of a run folder: config, data root, dataset, class map.

    Raises:
        FileNotFoundError: the folder or its `config.json` is missing.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    info_path = run_dir / RUN_INFO
    if not info_path.is_file():
        raise FileNotFoundError(f"run folder {run_dir} has no {RUN_INFO}: it is not a training "
                                "run folder (python -m asdlib train --out FOLDER writes one)")
    return json.loads(info_path.read_text())


def load_model(run_dir, which: str = "best", device=None) -> nn.Module:
    """The trained network of a run folder, in eval mode.

    Args:
        run_dir: a folder written by `train`.
        which: "best" (lowest validation loss) or "last" (latest epoch).
        device: where to put it (default: the CPU).

    Raises:
        FileNotFoundError: the folder has no such checkpoint (training never finished an epoch).
    """
    if which not in ("best", "last"):
        raise ValueError(f"which: must be 'best' or 'last', got {which!r}")
    run_dir = Path(run_dir)
    path = run_dir / (BEST if which == "best" else LAST)
    if not path.is_file():
        raise FileNotFoundError(f"run folder {run_dir} has no checkpoint {path.name}: training "
                                "has not finished an epoch there yet")
    checkpoint = load_checkpoint(path)
    config = TrainConfig.from_dict(checkpoint["config"])
    model = build_model(config, len(checkpoint["class_map"]))
    model.load_state_dict(checkpoint["model"])
    return model.to(device or "cpu").eval()


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": _numpy_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_state() -> dict:
    name, key, pos, has_gauss, gauss = np.random.get_state()
    return {"name": name, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------


@torch.no_grad()
def _validate(model, loader, logmel_fn, device, amp_dtype):
    """Mean ArcFace loss (margin on the true ID, no mixing) and ID accuracy on clean clips."""
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


# ----------------------------------------------------------------------------------------
# The training loop
# ----------------------------------------------------------------------------------------


def train(config: TrainConfig, data_root, out_dir, *, device=None, progress: bool = True,
          num_workers: int = 0, channels_last: bool = True, compile_model: bool = False,
          on_epoch_end=None, dataset=None) -> pd.DataFrame:
    """Train one network on the normal clips of a DCASE-layout data root.

    Resumes from `<out_dir>/last.pt` when it exists (same config required); returns at once
    when that run is already complete. Under `torchrun` it trains with
    DistributedDataParallel (see the module docstring).

    Args:
        config: what to train (`TrainConfig.from_profile(...)`).
        data_root: a folder in the DCASE layout (`<root>/<type>/train/normal_id_XX_*.wav`),
            synthetic or real.
        out_dir: the run folder: `config.json`, `last.pt`, `best.pt`, `history.csv`.
        device: "cpu", "cuda", ... (default: `asdlib.runtime.device()`; under torchrun on
            GPUs, `cuda:<LOCAL_RANK>`).
        progress: show tqdm progress bars (epochs and batches).
        num_workers: DataLoader worker processes (0: load in this process).
        channels_last: NHWC memory layout of the network: the same numbers up to float
            rounding, about 1.4x faster on this book's CPU (PReLU and convolution backward).
        compile_model: `torch.compile` the Tgram network and the MobileFaceNet (in place, so
            checkpoints keep their names). The same numbers up to float rounding; it costs a
            minute or more of compiling first, so it pays off for long runs only (the paper
            profile). `python -m asdlib bench --compile` shows what it gains on a machine.
        on_epoch_end: optional `fn(record)` called (on rank 0) after each epoch's checkpoint
            is written, with that epoch's history row as a dict.
        dataset: optional `dataset_fingerprint(data_root)`, when the caller has it already.

    Returns:
        The per-epoch history (epoch, train_loss, val_loss, val_accuracy, lr, seconds,
        best) as a DataFrame (on rank 0; None on the other ranks).

    Raises:
        FileNotFoundError: `data_root` is missing or holds no training clip.
        ValueError: `out_dir` holds a run of another config or dataset.
    """
    from torch.utils.data import DataLoader, DistributedSampler, Subset

    from asdlib.losses import MIXING_MODES, mix_batch

    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    data_root = Path(data_root).expanduser().resolve()
    out_dir = Path(out_dir).expanduser().resolve()
    rank, world_size, local_rank, started_group = _distributed()
    if device is None and world_size > 1 and torch.cuda.is_available():
        device = f"cuda:{local_rank}"
    device = runtime.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    else:
        reuse_freed_memory()
    is_main = rank == 0
    try:
        # ---- data: index, classes, cached clips, validation split
        dataset = dataset or dataset_fingerprint(data_root)
        index, train_index, cmap = _index_and_classes(data_root)
        info = {"config": config.to_dict(), "data_root": str(data_root), "dataset": dataset,
                "class_map": class_map_to_json(cmap), "num_train_clips": len(train_index)}
        last_path = out_dir / LAST
        if out_dir.exists() and (out_dir / RUN_INFO).exists():
            _check_same_run(out_dir, config, dataset)
        if is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            if not (out_dir / RUN_INFO).exists():
                runtime.write_text_atomic(json.dumps(info, indent=1) + "\n", out_dir / RUN_INFO)
        # Only rank 0 builds the cache; the others open it once it is complete
        if is_main:
            clips = clip_dataset(train_index, config, cmap, progress)
        _barrier(world_size)
        if not is_main:
            clips = clip_dataset(train_index, config, cmap, progress=False)
        train_pos, val_pos = validation_split(len(clips), config.val_fraction, config.seed)

        # ---- seeds, model, optimizer, schedule
        torch.manual_seed(config.seed)
        np.random.seed(config.seed % 2**32)
        model = speed_up(build_model(config, len(cmap)).to(device), channels_last, compile_model)
        logmel_fn = build_logmel(config).to(device)
        # foreach: one fused update over all tensors (the default on CUDA only); same maths
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, foreach=True)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.num_epochs, eta_min=config.min_lr_ratio * config.lr)
        amp_dtype = _autocast_dtype(config.amp, device)
        # float16 gradients underflow without loss scaling; bfloat16 needs none
        scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

        # ---- resume from the last finished epoch
        history, best_val_loss, start_epoch = [], math.inf, 0
        if last_path.exists():
            # On the CPU: the RNG states must stay CPU tensors; load_state_dict moves the rest
            checkpoint = load_checkpoint(last_path, config)
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            scaler.load_state_dict(checkpoint["scaler"])
            _set_rng_state(checkpoint["rng"])
            history = list(checkpoint["history"])
            best_val_loss = checkpoint["best_val_loss"]
            start_epoch = checkpoint["epoch"]
        if start_epoch >= config.num_epochs:
            return pd.DataFrame(history) if is_main else None

        # ---- loaders: the sampler reshuffles every epoch from (seed, epoch)
        train_set = Subset(clips, train_pos.tolist())
        sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank,
                                     shuffle=True, seed=config.seed, drop_last=False)
        local_batch = max(2, config.batch_size // world_size)
        pin = device.type == "cuda"
        train_loader = DataLoader(train_set, batch_size=local_batch, sampler=sampler,
                                  num_workers=num_workers, pin_memory=pin)
        val_loader = DataLoader(Subset(clips, val_pos.tolist()), batch_size=config.batch_size,
                                shuffle=False, num_workers=num_workers, pin_memory=pin)
        step_model = _LossModel(model, config)
        if world_size > 1:
            step_model = nn.parallel.DistributedDataParallel(
                step_model, device_ids=[device.index] if device.type == "cuda" else None)
        mixing = config.mode in MIXING_MODES

        epochs = runtime.progress_bar(range(start_epoch, config.num_epochs), show=progress and is_main,
                                      desc=f"{config.model} {config.mode}", unit="epoch",
                                      initial=start_epoch, total=config.num_epochs)
        for epoch in epochs:
            started = time.perf_counter()
            sampler.set_epoch(epoch)
            generator = _epoch_generator(config.seed, epoch, rank)
            lr = optimizer.param_groups[0]["lr"]
            model.train()
            total_loss, count = 0.0, 0
            batches = runtime.progress_bar(train_loader, show=progress and is_main,
                                           desc=f"epoch {epoch + 1}", unit="batch", leave=False)
            for wav, labels, _ in batches:
                # BatchNorm cannot normalise a batch of one clip (a last odd batch): skip it
                if len(labels) < 2:
                    continue
                # [batch, samples], [batch]
                wav = wav.to(device, non_blocking=True)
                labels = labels.to(device, non_blocking=True)
                with torch.no_grad():
                    # [batch, n_mels, frames], computed on the device, in float32
                    logmel = logmel_fn(wav)
                    if mixing:
                        # One lambda and one permutation for wave and log-Mel
                        wav, logmel, y_a, y_b, lam = mix_batch(
                            wav, logmel, labels, alpha=config.alpha, generator=generator)
                    else:
                        y_a, y_b, lam = labels, labels, 1.0
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    loss = step_model(wav, logmel, y_a, y_b, lam)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                # One GPU -> CPU sync per step, for the log
                total_loss += float(loss.detach()) * len(labels)
                count += len(labels)
                batches.set_postfix(loss=f"{float(loss.detach()):.3f}")
            train_loss = _mean_over_processes(total_loss, count, world_size, device)
            scheduler.step()

            # ---- rank 0: validate, record, write the checkpoints
            if is_main:
                val_loss, val_accuracy = _validate(model, val_loader, logmel_fn, device, amp_dtype)
                is_best = val_loss < best_val_loss
                record = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                          "val_accuracy": val_accuracy, "lr": lr,
                          "seconds": time.perf_counter() - started, "best": is_best}
                history.append(record)
                state = _contiguous_state(model)
                # What both checkpoints carry: enough to rebuild and check the model
                header = {"format": CHECKPOINT_FORMAT, "config": config.to_dict(),
                          "class_map": info["class_map"], "dataset": dataset,
                          "epoch": epoch + 1, "model": state}
                if is_best:
                    best_val_loss = val_loss
                    runtime.save_atomic({**header, "val_loss": val_loss,
                                         "val_accuracy": val_accuracy}, out_dir / BEST)
                runtime.save_atomic({**header, "optimizer": optimizer.state_dict(),
                                     "scheduler": scheduler.state_dict(),
                                     "scaler": scaler.state_dict(), "rng": _rng_state(),
                                     "history": history, "best_val_loss": best_val_loss},
                                    last_path)
                runtime.write_text_atomic(pd.DataFrame(history).to_csv(index=False), out_dir / HISTORY)
                epochs.set_postfix(val_loss=f"{val_loss:.3f}", val_acc=f"{val_accuracy:.2f}")
                if on_epoch_end is not None:
                    on_epoch_end(record)
            _barrier(world_size)
        return pd.DataFrame(history) if is_main else None
    finally:
        if started_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _check_same_run(out_dir: Path, config: TrainConfig, dataset: dict) -> None:
    """Refuse a run folder written for another config or dataset."""
    info = read_run_info(out_dir)
    differences = TrainConfig.from_dict(info["config"]).differences(config)
    if info.get("dataset", {}).get("hash") != dataset["hash"]:
        differences.append(f"dataset: {info.get('dataset', {}).get('description')} "
                           f"vs {dataset['description']}")
    if differences:
        raise ValueError(f"run folder {out_dir} holds a run with a different config "
                         f"(folder vs requested): {'; '.join(differences)}. Use another "
                         f"--out folder, or delete this one to start over.")


def _contiguous_state(model: nn.Module) -> dict:
    """The model's state dict with standard (not channels-last) strides, on the CPU."""
    return {k: v.detach().to("cpu", memory_format=torch.contiguous_format).clone()
            for k, v in model.state_dict().items()}


def _barrier(world_size: int) -> None:
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()


def _mean_over_processes(total: float, count: int, world_size: int, device) -> float:
    """The mean loss per clip over every process (a plain division with one process)."""
    if world_size > 1:
        import torch.distributed as dist

        both = torch.tensor([total, float(count)], dtype=torch.float64,
                            device=device if device.type == "cuda" else "cpu")
        dist.all_reduce(both)
        total, count = float(both[0]), int(both[1])
    return total / max(count, 1)


# ----------------------------------------------------------------------------------------
# Command line: python -m asdlib train ...
# ----------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    """The options of `python -m asdlib train`."""
    add = parser.add_argument
    add("--data", required=True,
        help="data root in the DCASE layout (<root>/<type>/train/*.wav): synthetic "
             "(python -m asdlib synth) or real (python -m asdlib download)")
    add("--out", required=True, help="run folder to write (resumed if it exists)")
    add("--profile", choices=sorted(profiles.PROFILES), default=None,
        help=f"training recipe (default: ${profiles.ENV_VAR} or book)")
    add("--model", choices=MODELS, default="tastgram", help="network (default tastgram)")
    add("--mode", choices=MODES, default="noisy_arcmix", help="training loss (default noisy_arcmix)")
    add("--seed", type=int, default=None, help="seed (default: the profile's)")
    add("--epochs", type=int, default=None, dest="num_epochs",
        help="number of epochs (default: the profile's)")
    add("--batch-size", type=int, default=None, help="clips per batch (default: the profile's)")
    add("--lr", type=float, default=None, help="peak learning rate (default: the profile's)")
    add("--seconds", type=float, default=None,
        help="clip length in seconds (default: the profile's; 10 for the real data)")
    add("--amp", choices=AMP_CHOICES, default="auto",
        help="mixed precision on CUDA (default auto: bf16, else fp16 with a scaler)")
    add("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    add("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    add("--compile", action="store_true",
        help="torch.compile the network (a minute or more to start; for long runs)")
    add("--evaluate", action="store_true", help="evaluate the best checkpoint afterwards")
    add("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    """Run `python -m asdlib train` with parsed arguments; returns the exit status."""
    command = "python -m asdlib train"
    if not Path(args.data).is_dir():
        raise SystemExit(f"{command}: error: --data: data root {args.data} does not exist")
    names = ("seed", "num_epochs", "batch_size", "lr", "seconds")
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    try:
        config = TrainConfig.from_profile(args.profile, model=args.model, mode=args.mode,
                                          amp=args.amp, **overrides)
        history = train(config, args.data, args.out, device=args.device, progress=not args.quiet,
                        num_workers=args.workers, compile_model=args.compile)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"{command}: error: {err}") from None
    if history is None:  # not rank 0 of a distributed run
        return 0
    info = read_run_info(args.out)
    best = history.loc[history["val_loss"].idxmin()]
    chance = 100 / len(info["class_map"])
    print(f"trained {config.summary()}\n  on {info['dataset']['description']}\n"
          f"  best epoch {int(best['epoch'])}/{config.num_epochs}: val loss {best['val_loss']:.3f}, "
          f"val accuracy {100 * best['val_accuracy']:.1f} % (chance {chance:.1f} %)\n"
          f"  run folder: {args.out}")
    if args.evaluate:
        from asdlib import evaluate

        evaluate.print_result(evaluate.evaluate(args.out, device=args.device,
                                                progress=not args.quiet))
    return 0
