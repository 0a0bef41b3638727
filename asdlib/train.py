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
3. resume from the run folder's last checkpoint when there is one (`asdlib.checkpoints`);
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

from asdlib import cache, checkpoints, dcase, loop, models, runtime, store
from asdlib.layout import SAMPLE_RATE
from asdlib.profiles import TrainConfig

__all__ = [
    "DeviceBatches",
    "clip_dataset",
    "should_stop",
    "speed_up",
    "train",
    "training_data",
    "validation_split",
]


# ----------------------------------------------------------------------------------------
# Data: the index, the class map, the clip cache and the validation split
# ----------------------------------------------------------------------------------------


def clip_dataset(index: pd.DataFrame, config: TrainConfig, cmap: dict, progress: bool = True):
    """The clips of `index` from the int16 clip cache under `<ASDLIB_HOME>/cache`.

    Returns:
        An `asdlib.cache.ClipDataset`: item `i` is `(wav [samples] float32, label, i)`.
    """
    return cache.cached_dataset(index, runtime.home() / "cache", config.num_samples,
                                SAMPLE_RATE, class_map=cmap, progress=progress)


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


def speed_up(model: nn.Module, channels_last: bool = True, compile_model: bool = False,
             amp_dtype=None, device_type: str = "cpu"):
    """The speed settings of the training loop; they change how fast, not what is computed.

    `channels_last`: the NHWC memory layout (about 1.4x faster on this book's CPU: PReLU and
    convolution backward). `compile_model`: `torch.compile` of the Tgram network and the
    MobileFaceNet, in place, so that the state-dict names stay those of the reference. With
    bfloat16 autocast on a CPU (`amp_dtype`), the layers of `asdlib.models.float32_islands`
    stay in float32. `asdlib.bench` times the model exactly as set up here.
    """
    if amp_dtype == torch.bfloat16 and device_type == "cpu":
        models.keep_in_float32(models.float32_islands(model))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile_model:
        model.tgramnet.compile()
        model.mobilefacenet.compile()
    return model


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


def train(config: TrainConfig, data_root, out_dir, *, device=None, progress: bool = True,
          num_workers: int = 0, channels_last: bool = True, compile_model: bool = False,
          on_epoch_end=None, dataset=None, data_on_device: bool = False) -> pd.DataFrame:
    """Train one network on the normal clips of a DCASE-layout data root.

    Resumes from the checkpoints in `out_dir` when they exist (same config and data required);
    returns at once when that run is already complete. A second `train` of the same `out_dir`
    waits for the first (a file lock) and then finds the run done. Under `torchrun` it trains
    data-parallel (see the module docstring).

    Args:
        config: what to train (`TrainConfig.from_profile(...)`).
        data_root: a folder in the DCASE layout (`<root>/<type>/train/normal_id_XX_*.wav`),
            synthetic or real.
        out_dir: the run folder (`asdlib.checkpoints`: `config.json`, `last.pt`, `best.pt`,
            `history.csv`).
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
        dataset: optional `asdlib.dcase.dataset_fingerprint(data_root)`, when the caller has it.
        data_on_device: hold every training clip on the device (int16) and cut the batches
            there (`DeviceBatches`) instead of reading them through a DataLoader: the same
            batches in the same order, without copies from the host (for a GPU with the
            memory: the book's largest data is 4.4 GB).

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
    data_root = Path(data_root).expanduser().resolve()
    out_dir = Path(out_dir).expanduser().resolve()
    rank, world_size, local_rank, started_group = _distributed()
    if device is None and world_size > 1 and torch.cuda.is_available():
        device = f"cuda:{local_rank}"
    device = runtime.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    options = dict(device=device, progress=progress, num_workers=num_workers,
                   data_on_device=data_on_device,
                   channels_last=channels_last, compile_model=compile_model,
                   on_epoch_end=on_epoch_end, dataset=dataset, rank=rank, world_size=world_size)
    try:
        if rank != 0:
            return _train(config, data_root, out_dir, **options)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        # a second train() of this folder waits, then finds it done
        with store.hold(out_dir, f"the run {config.summary()}"):
            try:
                history = _train(config, data_root, out_dir, **options)
            except loop.Diverged as err:
                raise loop.Diverged(f"{err}; to train with other settings, delete {out_dir} "
                                    "or choose another run folder (--out)") from None
            _restore_best(config, data_root, out_dir, options)
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


def _restore_best(config, data_root, out_dir: Path, options: dict) -> None:
    """Rewrite a missing or damaged `best.pt` of a run whose `last.pt` is sound.

    Every random draw of training is seeded by (seed, epoch, process), so training the epochs
    up to the best one again (in `<out_dir>/.rebuild-best`, resumable) gives that checkpoint
    again; on the CPU model that trained the run, bit for bit. A rebuilt checkpoint whose
    validation loss differs from the history's is kept with a warning that says by how much.
    """
    best, last = out_dir / checkpoints.BEST, out_dir / checkpoints.LAST
    if not last.is_file() or options["world_size"] > 1:  # (under torchrun: train it alone)
        return
    try:
        checkpoints.load_checkpoint(best, config)
        return
    except (FileNotFoundError, checkpoints.DamagedCheckpoint):
        pass
    final = checkpoints.load_checkpoint(last, config)
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
        _train(config, data_root, work, **dict(options, on_epoch_end=stop))
    except _ReachedEpoch:
        pass
    rebuilt = checkpoints.load_checkpoint(work / checkpoints.BEST, config)
    want = history[best_epoch - 1]["val_loss"]
    if rebuilt["epoch"] != best_epoch or rebuilt["val_loss"] != want:
        warnings.warn(f"the rebuilt {best} (epoch {rebuilt['epoch']}, validation loss "
                      f"{rebuilt['val_loss']!r}) differs from the run's history (epoch "
                      f"{best_epoch}, {want!r}): trained on another CPU model or torch?",
                      stacklevel=3)
    os.replace(work / checkpoints.BEST, best)
    shutil.rmtree(work)


def _train(config, data_root, out_dir, *, device, progress, num_workers, channels_last,
           compile_model, on_epoch_end, dataset, rank, world_size, data_on_device):
    """The body of `train` (arguments checked there), on one process of `world_size`."""
    is_main = rank == 0
    # ---- data: fingerprint, index, classes, cached clips, validation split
    dataset = dataset or dcase.dataset_fingerprint(data_root)
    if (out_dir / checkpoints.RUN_INFO).exists():
        checkpoints.check_same_run(out_dir, config, dataset)
    train_index, cmap = training_data(data_root)
    # The clip cache is a store folder: the first process builds it, the others wait and read
    clips = clip_dataset(train_index, config, cmap, progress and is_main)
    train_pos, val_pos = validation_split(len(clips), config.val_fraction, config.seed)
    class_map = checkpoints.class_map_to_json(cmap)
    if is_main:
        # Written only now that the data has been read: a run that cannot start leaves nothing
        out_dir.mkdir(parents=True, exist_ok=True)
        if not (out_dir / checkpoints.RUN_INFO).exists():
            checkpoints.write_run_info(out_dir, {
                "config": config.to_dict(), "data_root": str(data_root), "dataset": dataset,
                "class_map": class_map, "num_train_clips": len(train_index)})
    _barrier(world_size)

    # ---- model (initial weights from the seed, global random state untouched), optimizer
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = config.build_model(len(cmap))
    amp_dtype = runtime.autocast_dtype(config.amp, device)
    model = speed_up(model.to(device), channels_last, compile_model, amp_dtype, device.type)
    logmel_fn = config.build_logmel().to(device)
    # foreach: one fused update over all tensors (the default on CUDA only); same maths
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, foreach=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.num_epochs, eta_min=config.min_lr_ratio * config.lr)
    # float16 gradients underflow without loss scaling; bfloat16 needs none
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None

    # ---- resume from the last finished epoch
    history, best_val_loss, start_epoch = [], math.inf, 0
    checkpoint = checkpoints.resume_point(out_dir, config)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        if scaler is not None and checkpoint.get("scaler"):
            scaler.load_state_dict(checkpoint["scaler"])
        history = list(checkpoint["history"])
        best_val_loss = checkpoint["best_val_loss"]
        start_epoch = checkpoint["epoch"]
    if start_epoch >= config.num_epochs or should_stop([r["val_loss"] for r in history],
                                                       config.patience):
        return pd.DataFrame(history) if is_main else None

    # ---- loaders: the sampler reshuffles every epoch from (seed, epoch)
    train_set = Subset(clips, train_pos.tolist())
    sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank,
                                 shuffle=True, seed=config.seed, drop_last=False)
    batch_size = max(2, config.batch_size // world_size)
    if data_on_device:
        # [clips, samples] int16 and [clips], on the device: batches are cut there
        held = torch.from_numpy(np.array(clips.wavs)).to(device)
        labels = torch.as_tensor(np.array(clips.labels), dtype=torch.int64, device=device)
        train_loader = DeviceBatches(held, labels, train_pos, batch_size, sampler)
        val_loader = DeviceBatches(held, labels, val_pos, config.batch_size)
    else:
        pin = device.type == "cuda"
        # The loaders' own generator: their worker seeds never come from the global one
        loader_generator = torch.Generator().manual_seed(config.seed)
        train_loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler,
                                  num_workers=num_workers, pin_memory=pin,
                                  generator=loader_generator)
        val_loader = DataLoader(Subset(clips, val_pos.tolist()), batch_size=config.batch_size,
                                shuffle=False, num_workers=num_workers, pin_memory=pin,
                                generator=loader_generator)

    epochs = runtime.progress_bar(range(start_epoch, config.num_epochs), show=progress and is_main,
                                  desc=f"{config.model} {config.mode}", unit="epoch",
                                  initial=start_epoch, total=config.num_epochs)
    for epoch in epochs:
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        total, count = loop.train_one_epoch(
            model, optimizer, train_loader, mode=config.mode, logmel_fn=logmel_fn,
            alpha=config.alpha, generator=loop.epoch_generator(config.seed, epoch, rank),
            device=device, amp_dtype=amp_dtype, scaler=scaler, distributed=world_size > 1,
            progress=progress and is_main, desc=f"epoch {epoch + 1}")
        train_loss = _mean_over_processes(total, count, world_size, device)
        scheduler.step()

        # ---- rank 0: validate, record, write the checkpoints
        if is_main:
            val_loss, val_accuracy = loop.validate(model, val_loader, logmel_fn, device, amp_dtype)
            is_best = val_loss < best_val_loss
            best_val_loss = min(best_val_loss, val_loss)
            record = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                      "val_accuracy": val_accuracy, "lr": lr,
                      "seconds": time.perf_counter() - started, "best": is_best}
            history.append(record)
            # Both checkpoints are complete: training can resume from either
            state = {"format": checkpoints.CHECKPOINT_FORMAT, "config": config.to_dict(),
                     "class_map": class_map, "dataset": dataset, "epoch": epoch + 1,
                     "model": checkpoints.contiguous_state(model),
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "scaler": scaler.state_dict() if scaler is not None else None,
                     "history": history, "best_val_loss": best_val_loss,
                     "val_loss": val_loss, "val_accuracy": val_accuracy}
            if is_best:
                runtime.save_atomic(state, out_dir / checkpoints.BEST)
            runtime.save_atomic(state, out_dir / checkpoints.LAST)
            runtime.write_text_atomic(pd.DataFrame(history).to_csv(index=False),
                                      out_dir / checkpoints.HISTORY)
            epochs.set_postfix(val_loss=f"{val_loss:.3f}", val_acc=f"{val_accuracy:.2f}")
            if on_epoch_end is not None:
                on_epoch_end(record)
        _barrier(world_size)
        # The stopping rule, on every process alike (the history is rank 0's: share its verdict)
        if _all_agree(is_main and should_stop([r["val_loss"] for r in history], config.patience),
                      world_size, device):
            break
    return pd.DataFrame(history) if is_main else None
