r"""
Training: the orchestration around the loop of `asdlib.loop`

Chapter 8 of the book ("Training TASTgram") explains this module.

Paper: S. Choi and J.-W. Choi, "Noisy-ArcMix: Additive Noisy Angular Margin Loss Combined With
Mixup for Anomalous Sound Detection", ICASSP 2024, pp. 516-520
(https://arxiv.org/abs/2310.06364).

The network learns to tell the machine IDs of the *normal* training clips apart; the anomaly
score of a test clip is later how badly it fits its own ID (`asdlib.evaluate`). `train` does
what surrounds the training step of `asdlib.loop`:

1. read the data root (`asdlib.dcase`), decode its training clips once into the int16 clip
   cache (`asdlib.cache`) and hold out a seeded 5 % for validation (`validation_split`);
2. build the network and its log-Mel front end from the config (`TrainConfig.build_model`),
   AdamW and a cosine-annealing schedule stepped once per epoch;
3. resume from the run folder's last checkpoint when there is one (`asdlib.runfolder`);
4. per epoch: `asdlib.loop.train_one_epoch`, then `asdlib.loop.validate` on the held-out clips
   (clean clips, margin on the true ID: the mean anomaly score of normal clips, the same number
   for every mode), then the two checkpoints, both written atomically: `last.pt` and `best.pt`
   (the lowest validation loss so far);
5. stop after `num_epochs`, or earlier by the stopping rule `should_stop` when the config has a
   `patience` (the validation loss has not improved for that many epochs).

The recipe of the authors (AdamW, lr 1e-4, cosine annealing to 0.1 lr stepped per epoch,
300 epochs, batch 64, seed 2023, best-validation-loss checkpoint) is the `paper` profile
(`asdlib.profiles`). Two deliberate differences, both about numerics on the GPU:

- mixed precision uses bfloat16 (or float16 WITH a gradient scaler when the GPU has no
  bfloat16); the reference's float16 without a scaler can underflow its gradients;
- the angular-margin part of every loss runs in float32 (`asdlib.losses` switches autocast off).

Every random draw comes from its own generator (the initial weights from the seed, the
validation split, the batch order and the mixing draws from (seed, epoch, process)); the global
random state of the process is left as it was.

`torchrun --nproc_per_node N -m asdlib train ...` trains data-parallel: each process sees
`1/N` of every epoch (`DistributedSampler`) with a batch of `batch_size // N` clips (so the
global batch stays `batch_size`; each process draws its own mixing lambda), the gradients are
averaged over the processes at every step, and only rank 0 validates and writes files.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from asdlib import cache, dcase, loop, models, runfolder, runtime, store
from asdlib.layout import SAMPLE_RATE
from asdlib.profiles import TrainConfig

__all__ = [
    "DeviceBatches",
    "Setup",
    "should_stop",
    "train",
    "training_data",
    "validation_split",
]


# ----------------------------------------------------------------------------------------
# Data: the index, the class map, the clip cache and the validation split
# ----------------------------------------------------------------------------------------


def training_data(data_root) -> tuple:
    """The training clips of a data root and their class map.

    Returns:
        `(train_index, class_map)`: the `asdlib.dcase.build_index` rows of split "train" and
        `asdlib.dcase.class_map` of them.

    Raises:
        FileNotFoundError: the data root is missing or holds no training clip.
    """
    index = dcase.build_index(data_root)
    train_index = index[index["split"] == "train"].reset_index(drop=True)
    if train_index.empty:
        raise FileNotFoundError(f"data root {data_root} holds no training clip "
                                "(<root>/<machine_type>/train/normal_id_XX_NNNNNNNN.wav)")
    return train_index, dcase.class_map(train_index)


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


def should_stop(val_losses, patience: int | None) -> bool:
    """The stopping rule: True once the lowest validation loss is `patience` epochs old.

    The same rule for every model and mode, fixed before any comparison was looked at: with
    validation losses `[3.0, 2.0, 2.5, 2.4]` and patience 2, the best epoch (2.0) is two epochs
    back, so training stops. `patience=None` never stops early.
    """
    if patience is None or not len(val_losses):
        return False
    best = int(np.argmin(val_losses))  # the first epoch with the lowest loss
    return len(val_losses) - 1 - best >= patience


# ----------------------------------------------------------------------------------------
# Speed and the distributed set-up
# ----------------------------------------------------------------------------------------


def _distributed():
    """`(rank, world_size, local_rank, started_here)`; starts the process group under torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, 0, False
    started = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        started = True
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), started


def _barrier(world_size: int) -> None:
    if world_size > 1:
        dist.barrier()


def _all_agree(flag: bool, world_size: int, device) -> bool:
    """Rank 0's `flag` on every process (the flag itself with one process)."""
    if world_size > 1:
        value = torch.tensor([float(flag)], device=device if device.type == "cuda" else "cpu")
        dist.broadcast(value, src=0)
        flag = bool(value.item())
    return flag


def _mean_over_processes(total: float, count: int, world_size: int, device) -> float:
    """The mean loss per clip over every process (a plain division with one process)."""
    if world_size > 1:
        both = torch.tensor([total, float(count)], dtype=torch.float64,
                            device=device if device.type == "cuda" else "cpu")
        dist.all_reduce(both)
        total, count = float(both[0]), int(both[1])
    return total / max(count, 1)


# ----------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Setup:
    """How a run trains: where and how fast, never what it computes (that is the
    `TrainConfig`). The defaults suit a CPU in a notebook.

    Attributes:
        device: "cpu", "cuda", ... (None: `asdlib.runtime.device()`; under torchrun on GPUs,
            `cuda:<LOCAL_RANK>`).
        progress: show tqdm progress bars (epochs and batches).
        num_workers: DataLoader worker processes (0: load in this process).
        channels_last: NHWC memory layout of the network: the same numbers up to float
            rounding, about 1.4x faster on this book's CPU (PReLU and convolution backward).
        compile_model: `torch.compile` the Tgram network and the MobileFaceNet (in place, so
            checkpoints keep their names). The same numbers up to float rounding; it costs a
            minute or more of compiling first, so it pays off for long runs only (the paper
            profile). `python -m asdlib bench --compile` shows what it gains on a machine.
        data_on_device: hold every training clip on the device (int16) and cut the batches
            there (`DeviceBatches`) instead of reading them through a DataLoader: the same
            batches in the same order, without copies from the host (for a GPU with the
            memory: the book's largest data is 4.4 GB).
    """

    device: str | None = None
    progress: bool = True
    num_workers: int = 0
    channels_last: bool = True
    compile_model: bool = False
    data_on_device: bool = False


@dataclasses.dataclass(frozen=True)
class _Process:
    """This process's place in a (possibly data-parallel) run."""

    setup: Setup
    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def train(config: TrainConfig, data_root, out_dir, setup: Setup | None = None, *,
          on_epoch_end=None, dataset=None) -> pd.DataFrame:
    """Train one network on the normal clips of a DCASE-layout data root.

    Resumes from the checkpoints in `out_dir` when they exist (same config and data required);
    returns at once when that run is already complete. A second `train` of the same `out_dir`
    waits for the first (a file lock) and then finds the run done. Under `torchrun` it trains
    data-parallel (see the module docstring).

    Args:
        config: what to train (`TrainConfig.from_profile(...)`).
        data_root: a folder in the DCASE layout (`<root>/<type>/train/normal_id_XX_*.wav`),
            synthetic or real.
        out_dir: the run folder (`asdlib.runfolder`: `config.json`, `last.pt`, `best.pt`,
            `history.csv`).
        setup: where and how fast (`Setup`; default: `Setup()`).
        on_epoch_end: optional `fn(record)` called (on rank 0) after each epoch's checkpoint
            is written, with that epoch's history row as a dict.
        dataset: optional `asdlib.runfolder.dataset_fingerprint(data_root)`, when the caller has it.

    Returns:
        The per-epoch history (epoch, train_loss, val_loss, val_accuracy, lr, seconds,
        best) as a DataFrame (on rank 0; None on the other ranks).

    Raises:
        FileNotFoundError: `data_root` is missing or holds no training clip.
        ValueError: `out_dir` holds a run of another config or dataset, or damaged checkpoints.
        asdlib.audio.ClipError: a training clip cannot be read (the message names it).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    setup = setup if setup is not None else Setup()
    if not isinstance(setup, Setup):
        raise TypeError(f"setup must be an asdlib.train.Setup, got {type(setup).__name__}")
    data_root = Path(data_root).expanduser().resolve()
    out_dir = Path(out_dir).expanduser().resolve()
    rank, world_size, local_rank, started_group = _distributed()
    device = setup.device
    if device is None and world_size > 1 and torch.cuda.is_available():
        device = f"cuda:{local_rank}"
    device = runtime.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    process = _Process(setup, device, rank, world_size)
    try:
        if rank != 0:
            return _train(config, data_root, out_dir, process, on_epoch_end, dataset)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        # A second train() of this folder waits, then finds it done. The lock is train's own
        # because a person may name the folder (python -m asdlib train --out); under
        # asdlib.runfolder.build_once the folder is the store's partial one, held by nobody else.
        with store.hold(out_dir, f"the run {config.summary()}"):
            try:
                history = _train(config, data_root, out_dir, process, on_epoch_end, dataset)
            except loop.Diverged as err:
                raise loop.Diverged(f"{err}; to train with other settings, delete {out_dir} "
                                    "or choose another run folder (--out)") from None
            _restore_best(config, data_root, out_dir, process)
            return history
    finally:
        if started_group:
            dist.destroy_process_group()


class DeviceBatches:
    """The batches a DataLoader over `Subset(clips, positions)` gives, cut from clips held on
    the device: `(wav [batch, samples] float32, labels [batch], rows [batch])`.

    `sampler` (a `DistributedSampler`, reshuffled by `set_epoch`) orders the positions as it
    orders a DataLoader's; without one they come in order. The int16 samples become float32
    exactly as `asdlib.cache.ClipDataset` makes them (divided by 32768), so the batches are the
    DataLoader's, bit for bit.
    """

    def __init__(self, wavs: torch.Tensor, labels: torch.Tensor, positions, batch_size: int,
                 sampler=None):
        self.wavs, self.labels, self.batch_size, self.sampler = wavs, labels, batch_size, sampler
        self.positions = torch.as_tensor(np.asarray(positions), dtype=torch.int64)

    def __len__(self) -> int:
        count = len(self.sampler) if self.sampler is not None else len(self.positions)
        return math.ceil(count / self.batch_size)

    def __iter__(self):
        order = (torch.as_tensor(list(self.sampler), dtype=torch.int64)
                 if self.sampler is not None else torch.arange(len(self.positions)))
        for start in range(0, len(order), self.batch_size):
            rows = self.positions[order[start:start + self.batch_size]].to(self.wavs.device)
            yield self.wavs[rows].float() / 32768.0, self.labels[rows], rows


class _ReachedEpoch(Exception):
    """Stops `_train` after the epoch `_restore_best` needs."""


def _restore_best(config, data_root, out_dir: Path, process: _Process) -> None:
    """Rewrite a missing or damaged `best.pt` of a run whose `last.pt` is sound.

    Every random draw of training is seeded by (seed, epoch, process), so training the epochs
    up to the best one again (in `<out_dir>/.rebuild-best`, resumable) gives that checkpoint
    again; on the CPU model that trained the run, bit for bit. A rebuilt checkpoint whose
    validation loss differs from the history's is kept with a warning that says by how much.
    """
    best, last = out_dir / runfolder.BEST, out_dir / runfolder.LAST
    if not last.is_file() or process.world_size > 1:  # (under torchrun: train it alone)
        return
    try:
        runfolder.load_checkpoint(best, config)
        return
    except (FileNotFoundError, runfolder.DamagedCheckpoint):
        pass
    final = runfolder.load_checkpoint(last, config)
    history = final["history"]
    best_epoch = int(np.argmin([r["val_loss"] for r in history])) + 1
    if best_epoch == final["epoch"]:
        runtime.save_atomic(final, best)
        return
    print(f"{best} is missing or damaged: training epochs 1-{best_epoch} again to rebuild it",
          file=sys.stderr, flush=True)
    work = out_dir / ".rebuild-best"

    def stop(record):
        if record["epoch"] >= best_epoch:
            raise _ReachedEpoch

    try:
        _train(config, data_root, work, process, stop, None)
    except _ReachedEpoch:
        pass
    rebuilt = runfolder.load_checkpoint(work / runfolder.BEST, config)
    want = history[best_epoch - 1]["val_loss"]
    if rebuilt["epoch"] != best_epoch or rebuilt["val_loss"] != want:
        warnings.warn(f"the rebuilt {best} (epoch {rebuilt['epoch']}, validation loss "
                      f"{rebuilt['val_loss']!r}) differs from the run's history (epoch "
                      f"{best_epoch}, {want!r}): trained on another CPU model or torch?",
                      stacklevel=3)
    os.replace(work / runfolder.BEST, best)
    shutil.rmtree(work)


def _read_data(config, data_root, out_dir, process: _Process, dataset) -> tuple:
    """The run's clips (from the clip cache), its validation split and its `config.json`
    content, written by rank 0 only now that the data has been read (a run that cannot start
    leaves nothing behind).

    Returns:
        `(clips, train_positions, val_positions, info)`.
    """
    dataset = dataset or runfolder.dataset_fingerprint(data_root)
    if (out_dir / runfolder.RUN_INFO).exists():
        runfolder.check_same_run(out_dir, config, dataset)
    train_index, cmap = training_data(data_root)
    # The clip cache is a store folder: the first process builds it, the others wait and read
    clips = cache.clip_dataset(train_index, config.num_samples, cmap, process.setup.progress and process.is_main)
    train_pos, val_pos = validation_split(len(clips), config.val_fraction, config.seed)
    info = {"config": config.to_dict(), "data_root": str(data_root), "dataset": dataset,
            "class_map": runfolder.class_map_to_json(cmap), "num_train_clips": len(train_index)}
    if process.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not (out_dir / runfolder.RUN_INFO).exists():
            runfolder.write_run_info(out_dir, info)
    _barrier(process.world_size)
    return clips, train_pos, val_pos, info


def _build(config, num_classes: int, process: _Process) -> tuple:
    """The objects a run trains, as `(step, parts)`.

    `step` is the `asdlib.loop.Step` of every training step: the model (initial weights from
    the seed, the global random state untouched), AdamW, the log-Mel front end, the autocast
    dtype and a gradient scaler for float16 only (its gradients underflow without loss scaling;
    bfloat16 needs none). `parts` names the objects whose state a checkpoint holds
    (`asdlib.runfolder.make_checkpoint`): "model", "optimizer", "scaler" and "scheduler"
    (cosine annealing, stepped per epoch).
    """
    device, setup = process.device, process.setup
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = config.build_model(num_classes)
    amp_dtype = runtime.autocast_dtype(config.amp, device)
    model = models.speed_up(model.to(device), setup.channels_last, setup.compile_model, amp_dtype,
                            device.type)
    # foreach: one fused update over all tensors (the default on CUDA only); same maths
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, foreach=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.num_epochs, eta_min=config.min_lr_ratio * config.lr)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    step = loop.Step(model, optimizer, config.mode, config.build_logmel().to(device),
                     alpha=config.alpha, device=device, amp_dtype=amp_dtype, scaler=scaler,
                     distributed=process.world_size > 1)
    return step, {"model": model, "optimizer": optimizer, "scheduler": scheduler,
                  "scaler": scaler}


def _loaders(config, clips, positions: tuple, process: _Process) -> tuple:
    """`(sampler, train_loader, val_loader)`: the sampler reshuffles every epoch from (seed,
    epoch); each process gets `batch_size // world_size` clips of every batch."""
    train_pos, val_pos = positions
    device = process.device
    train_set = Subset(clips, train_pos.tolist())
    sampler = DistributedSampler(train_set, num_replicas=process.world_size, rank=process.rank,
                                 shuffle=True, seed=config.seed, drop_last=False)
    batch_size = max(2, config.batch_size // process.world_size)
    if process.setup.data_on_device:
        # [clips, samples] int16 and [clips], on the device: batches are cut there
        held = torch.from_numpy(np.array(clips.wavs)).to(device)
        labels = torch.as_tensor(np.array(clips.labels), dtype=torch.int64, device=device)
        return (sampler, DeviceBatches(held, labels, train_pos, batch_size, sampler),
                DeviceBatches(held, labels, val_pos, config.batch_size))
    pin, workers = device.type == "cuda", process.setup.num_workers
    # The loaders' own generator: their worker seeds never come from the global one
    generator = torch.Generator().manual_seed(config.seed)
    train_loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler,
                              num_workers=workers, pin_memory=pin, generator=generator)
    val_loader = DataLoader(Subset(clips, val_pos.tolist()), batch_size=config.batch_size,
                            shuffle=False, num_workers=workers, pin_memory=pin,
                            generator=generator)
    return sampler, train_loader, val_loader


def _train(config, data_root, out_dir, process: _Process, on_epoch_end, dataset):
    """The body of `train` (arguments checked there), on one process of `world_size`."""
    clips, train_pos, val_pos, info = _read_data(config, data_root, out_dir, process, dataset)
    step, parts = _build(config, len(info["class_map"]), process)
    is_main, world_size = process.is_main, process.world_size

    # ---- resume from the last finished epoch
    history, best_val_loss, start_epoch = [], math.inf, 0
    checkpoint = runfolder.resume_point(out_dir, config)
    if checkpoint is not None:
        history, best_val_loss, start_epoch = runfolder.restore(checkpoint, parts)
    if start_epoch >= config.num_epochs or should_stop([r["val_loss"] for r in history],
                                                       config.patience):
        return pd.DataFrame(history) if is_main else None

    sampler, train_loader, val_loader = _loaders(config, clips, (train_pos, val_pos), process)
    show = process.setup.progress and is_main
    epochs = runtime.progress_bar(range(start_epoch, config.num_epochs), show=show,
                                  desc=f"{config.model} {config.mode}", unit="epoch",
                                  initial=start_epoch, total=config.num_epochs)
    for epoch in epochs:
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        lr = step.optimizer.param_groups[0]["lr"]
        total, count = loop.train_one_epoch(step, train_loader,
                                            loop.epoch_generator(config.seed, epoch, process.rank),
                                            progress=show, desc=f"epoch {epoch + 1}")
        train_loss = _mean_over_processes(total, count, world_size, step.device)
        parts["scheduler"].step()

        # ---- rank 0: validate, record, write both checkpoints (each complete: training can
        # resume from either)
        if is_main:
            val_loss, val_accuracy = loop.validate(step.model, val_loader, step.logmel_fn,
                                                   step.device, step.amp_dtype)
            record = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                      "val_accuracy": val_accuracy, "lr": lr,
                      "seconds": time.perf_counter() - started, "best": val_loss < best_val_loss}
            history.append(record)
            best_val_loss = min(best_val_loss, val_loss)
            _write_epoch(out_dir, runfolder.make_checkpoint(info, parts, history, best_val_loss),
                         history)
            epochs.set_postfix(val_loss=f"{val_loss:.3f}", val_acc=f"{val_accuracy:.2f}")
            if on_epoch_end is not None:
                on_epoch_end(record)
        _barrier(world_size)
        # The stopping rule, on every process alike (the history is rank 0's: share its verdict)
        if _all_agree(is_main and should_stop([r["val_loss"] for r in history], config.patience),
                      world_size, step.device):
            break
    return pd.DataFrame(history) if is_main else None


def _write_epoch(out_dir: Path, state: dict, history: list) -> None:
    """Write an epoch's checkpoint as `last.pt`, and as `best.pt` when its validation loss is
    the lowest so far, then the history so far as `history.csv` (each file atomically)."""
    if history[-1]["best"]:
        runtime.save_atomic(state, out_dir / runfolder.BEST)
    runtime.save_atomic(state, out_dir / runfolder.LAST)
    runtime.write_text_atomic(pd.DataFrame(history).to_csv(index=False),
                              out_dir / runfolder.HISTORY)
