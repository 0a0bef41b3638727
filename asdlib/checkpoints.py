"""The files of a run folder: names, run info, checkpoints, and the one `load_model`.

Chapter 8 of the book ("Training TASTgram") explains them. A run folder written by
`asdlib.train.train` holds:

- ``config.json`` (`RUN_INFO`): the `asdlib.profiles.TrainConfig`, the data root, the dataset
  fingerprint (`asdlib.dcase.dataset_fingerprint`) and the class map; written once the data has
  been read, so a run that could not start leaves nothing behind;
- ``last.pt`` (`LAST`): the checkpoint of the latest finished epoch;
- ``best.pt`` (`BEST`): the checkpoint of the epoch with the lowest validation loss (the one
  that is evaluated, as the authors do);
- ``history.csv`` (`HISTORY`): one row per epoch.

Both checkpoints are complete: the model, the optimizer, the schedule, the gradient scaler, the
history and the best validation loss so far, so training can resume from either. Every random
draw of training comes from a generator seeded by (seed, epoch, process), so no random state
needs saving: a run resumed from epoch k draws what an uninterrupted run draws. When
``last.pt`` is damaged (a truncated copy, a full disk), `resume_point` falls back to
``best.pt`` and the epochs after it are trained again, with the same numbers.
"""

from __future__ import annotations

import json
import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from asdlib import runtime
from asdlib.profiles import TrainConfig

__all__ = [
    "BEST",
    "DamagedCheckpoint",
    "CHECKPOINT_FORMAT",
    "HISTORY",
    "LAST",
    "RUN_INFO",
    "check_same_run",
    "class_map_from_json",
    "class_map_to_json",
    "contiguous_state",
    "load_checkpoint",
    "load_model",
    "model_from_checkpoint",
    "read_run_info",
    "resume_point",
    "write_run_info",
]

#: File names inside a run folder.
RUN_INFO = "config.json"
LAST = "last.pt"
BEST = "best.pt"
HISTORY = "history.csv"
#: Version of the checkpoint layout (bumped when the keys change meaning).
CHECKPOINT_FORMAT = 1
#: The checkpoint files by the name `load_model` and `asdlib.evaluate` take.
WHICH = {"best": BEST, "last": LAST}
#: What every `config.json` holds (`read_run_info` checks it).
RUN_INFO_KEYS = ("config", "data_root", "dataset", "class_map")
#: How to get a missing or damaged best.pt back (`asdlib.train.train` rebuilds it).
REBUILD_BEST = ("run the same `python -m asdlib train` command again: it trains the epochs up "
                "to the best one again and rewrites best.pt (every draw is seeded: the same "
                "numbers on the same machine); or evaluate the latest epoch instead "
                "(--checkpoint last)")


class DamagedCheckpoint(ValueError):
    """A checkpoint file that cannot be read (truncated, not a checkpoint)."""


# ----------------------------------------------------------------------------------------
# Run info
# ----------------------------------------------------------------------------------------


def class_map_to_json(cmap: dict) -> list:
    """`{(type, id): k}` as a JSON-friendly list `[[type, id, k], ...]` in class order."""
    return [[t, i, int(k)] for (t, i), k in sorted(cmap.items(), key=lambda item: item[1])]


def class_map_from_json(rows) -> dict:
    """The inverse of `class_map_to_json`."""
    return {(t, i): int(k) for t, i, k in rows}


def read_run_info(run_dir) -> dict:
    """The `config.json` of a run folder: config, data root, dataset, class map.

    Raises:
        FileNotFoundError: the folder or its `config.json` is missing.
        ValueError: `config.json` is damaged (not JSON, or without what a run folder's holds);
            the message names the file.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    info_path = run_dir / RUN_INFO
    if not info_path.is_file():
        raise FileNotFoundError(f"run folder {run_dir} has no {RUN_INFO}: it is not a training "
                                "run folder (python -m asdlib train --out FOLDER writes one)")
    damaged = (f"{info_path} is damaged ({{}}); it is written when a run starts: restore it, "
               "or delete the run folder and train again")
    try:
        info = json.loads(info_path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(damaged.format(f"not JSON: {err}")) from None
    if not isinstance(info, dict):
        raise ValueError(damaged.format(f"a JSON {type(info).__name__}, not an object"))
    missing = [key for key in RUN_INFO_KEYS if key not in info]
    if missing:
        raise ValueError(damaged.format(f"it lacks {', '.join(missing)}"))
    try:
        TrainConfig.from_dict(info["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(damaged.format(f"its config: {err}")) from None
    return info


def write_run_info(run_dir, info: dict) -> None:
    """Write `config.json` atomically."""
    runtime.write_text_atomic(json.dumps(info, indent=1) + "\n", Path(run_dir) / RUN_INFO)


def check_same_run(run_dir, config: TrainConfig, dataset: dict) -> None:
    """Refuse a run folder written for another config or dataset (the message lists each field
    that differs, folder value first)."""
    info = read_run_info(run_dir)
    differences = TrainConfig.from_dict(info["config"]).differences(config)
    theirs = info.get("dataset", {})
    if theirs.get("hash") != dataset["hash"]:
        differences.append(f"dataset: {theirs.get('description')} (fingerprint "
                           f"{theirs.get('hash')}) vs {dataset['description']} (fingerprint "
                           f"{dataset['hash']})")
    if differences:
        raise ValueError(f"run folder {run_dir} holds a run with a different config "
                         f"(folder vs requested): {'; '.join(differences)}. Use another "
                         f"--out folder, or delete this one to start over.")


# ----------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------


def contiguous_state(model: nn.Module) -> dict:
    """The model's state dict with standard (not channels-last) strides, on the CPU."""
    return {k: v.detach().to("cpu", memory_format=torch.contiguous_format).clone()
            for k, v in model.state_dict().items()}


def load_checkpoint(path, config: TrainConfig | None = None, map_location="cpu") -> dict:
    """Read a checkpoint; with `config`, check it was written for that config.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is damaged (truncated, not a checkpoint), of another format, or
            written for another config (the message lists every differing field, checkpoint
            value first). Each message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        way_out = (REBUILD_BEST if path.name == BEST and (path.parent / LAST).is_file()
                   else "delete it, or train the run again")
        raise DamagedCheckpoint(f"checkpoint {path} is damaged and cannot be read (truncated or "
                                f"not a checkpoint: {str(err).splitlines()[0].split('. ')[0]}); {way_out}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{path}: checkpoint format {found!r}, this asdlib reads format "
                         f"{CHECKPOINT_FORMAT}")
    if config is not None:
        differences = TrainConfig.from_dict(checkpoint["config"]).differences(config)
        if differences:
            raise ValueError(
                f"checkpoint {path} was written for a different config "
                f"(checkpoint vs requested): {'; '.join(differences)}. Use another run "
                f"folder, or delete this one to start over.")
    return checkpoint


def resume_point(run_dir, config: TrainConfig) -> dict | None:
    """The checkpoint to resume a run from: `last.pt`, else `best.pt` when `last.pt` is damaged.

    Returns:
        The checkpoint dict, or None when the folder holds no checkpoint yet.

    Raises:
        ValueError: the checkpoints belong to another config, or both are damaged.
    """
    run_dir = Path(run_dir)
    last, best = run_dir / LAST, run_dir / BEST
    if not last.is_file():
        return load_checkpoint(best, config) if best.is_file() else None
    try:
        return load_checkpoint(last, config)
    except DamagedCheckpoint:
        if not best.is_file():
            raise
        checkpoint = load_checkpoint(best, config)
        warnings.warn(f"{last} is damaged; resuming from {best} (epoch {checkpoint['epoch']}): "
                      "the epochs after it are trained again and give the same numbers",
                      stacklevel=2)
        return checkpoint


def model_from_checkpoint(checkpoint: dict, device=None) -> nn.Module:
    """The network of a checkpoint dict, in eval mode (built by `TrainConfig.build_model`)."""
    config = TrainConfig.from_dict(checkpoint["config"])
    model = config.build_model(len(checkpoint["class_map"]))
    model.load_state_dict(checkpoint["model"])
    return model.to(device or "cpu").eval()


def load_model(run_dir, which: str = "best", device=None) -> nn.Module:
    """The trained network of a run folder, in eval mode.

    Args:
        run_dir: a folder written by `asdlib.train.train`.
        which: "best" (lowest validation loss) or "last" (latest epoch).
        device: where to put it (default: the CPU).

    Raises:
        FileNotFoundError: the folder has no such checkpoint (training never finished an epoch).
        ValueError: an unknown `which`, or a damaged checkpoint.
    """
    return model_from_checkpoint(load_checkpoint(checkpoint_path(run_dir, which)), device)


def checkpoint_path(run_dir, which: str = "best") -> Path:
    """The path of the "best" or "last" checkpoint of a run folder (which must exist)."""
    if which not in WHICH:
        raise ValueError(f"which: must be 'best' or 'last', got {which!r}")
    path = Path(run_dir) / WHICH[which]
    if not path.is_file():
        if which == "best" and (Path(run_dir) / LAST).is_file():
            raise FileNotFoundError(f"run folder {run_dir} has no {BEST} (deleted?) but has "
                                    f"{LAST}: {REBUILD_BEST}")
        raise FileNotFoundError(f"run folder {run_dir} has no checkpoint {path.name}: train it "
                                "first (python -m asdlib train ...); training writes it after "
                                "its first epoch")
    return path
