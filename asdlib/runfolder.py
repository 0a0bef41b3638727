"""A run's folder: its key, its files, its checkpoints, and reading it back.

Chapter 8 of the book ("Training TASTgram") explains it. Every module that writes or reads a
training run goes through this one: `asdlib.train` writes the checkpoints, `asdlib.evaluate`
the scores, `asdlib.experiments` finds, publishes and opens runs; none of them spells a file
name or builds a checkpoint itself.

A run is a pure function of its config (`asdlib.profiles.TrainConfig`) and of the data it
learns from, so its folder is named by both (`key`) and built once (`build_once`, through
`asdlib.store`: a second process waits, then reads). A run folder holds:

- ``config.json`` (`RUN_INFO`): the config, the data root, the dataset fingerprint
  (`dataset_fingerprint`) and the class map; written once the data has been read,
  so a run that could not start leaves nothing behind;
- ``last.pt`` (`LAST`): the checkpoint of the latest finished epoch;
- ``best.pt`` (`BEST`): the checkpoint of the epoch with the lowest validation loss (the one
  that is evaluated, as the authors do);
- ``history.csv`` (`HISTORY`): one row per epoch;
- after evaluation: ``scores.csv`` (`SCORES`, one row per test clip), ``metrics.json``
  (`METRICS`, written last), ``embeddings.csv`` / ``embeddings.npz`` and the DCASE score files
  under ``dcase/``. A published run keeps ``scores.csv.gz`` (`SCORES_PUBLISHED`) and no
  checkpoint.

Both checkpoints are complete (`make_checkpoint`): the model, the optimizer, the schedule, the
gradient scaler, the history and the best validation loss so far, so training can resume from
either (`resume_point`, `restore`). Every random draw of training comes from a generator
seeded by (seed, epoch, process), so no random state needs saving: a run resumed from epoch k
draws what an uninterrupted run draws. When ``last.pt`` is damaged (a truncated copy, a full
disk), `resume_point` falls back to ``best.pt`` and the epochs after it are trained again, with
the same numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from asdlib import dcase, runtime, store
from asdlib.layout import SYNTH_INFO
from asdlib.profiles import TrainConfig

__all__ = [
    "BEST",
    "CHECKPOINT_FORMAT",
    "DCASE_FILES",
    "DamagedCheckpoint",
    "EMBEDDINGS",
    "EMBEDDINGS_TABLE",
    "HISTORY",
    "LAST",
    "METRICS",
    "MODEL_LABELS",
    "MODE_LABELS",
    "RUN_INFO",
    "Run",
    "SCORES",
    "SCORES_PUBLISHED",
    "build_once",
    "check_same_run",
    "checkpoint_path",
    "class_map_from_json",
    "class_map_to_json",
    "contiguous_state",
    "key",
    "key_inputs",
    "load_checkpoint",
    "load_model",
    "make_checkpoint",
    "model_from_checkpoint",
    "open_run",
    "read_run_info",
    "restore",
    "resume_point",
    "run_label",
    "write_run_info",
]

#: File names inside a run folder.
RUN_INFO = "config.json"
LAST = "last.pt"
BEST = "best.pt"
HISTORY = "history.csv"
SCORES = "scores.csv"
#: A published run keeps its scores gzipped (and no checkpoint).
SCORES_PUBLISHED = "scores.csv.gz"
#: Written last by `asdlib.evaluate`: a folder with it is an evaluated run.
METRICS = "metrics.json"
EMBEDDINGS = "embeddings.npz"
EMBEDDINGS_TABLE = "embeddings.csv"
#: The folder of the DCASE score and decision files.
DCASE_FILES = "dcase"
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


#: How the paper names the networks and the losses (its table rows read "TASTgram (NAMix)").
MODEL_LABELS = {"tastgram": "TASTgram", "stgram": "STgram"}
MODE_LABELS = {"arcface": "ArcFace", "mixup": "Mixup", "arcmix": "ArcMix", "noisy_arcmix": "NAMix"}


def run_label(config: TrainConfig) -> str:
    """The paper's name of a run: `TASTgram (NAMix)`, `STgram (ArcFace)`, ..."""
    return f"{MODEL_LABELS[config.model]} ({MODE_LABELS[config.mode]})"


# ----------------------------------------------------------------------------------------
# The key: a run folder is named by what it is a function of
# ----------------------------------------------------------------------------------------


def dataset_fingerprint(root, progress: bool = False) -> dict:
    """What identifies a dataset by its clips, independent of where it lies.

    Every clip counts: its relative path, its size and its bytes (`content_digest`), so a
    copied folder with one clip changed, added or removed is another dataset, whatever files
    beside the clips say.

    Synthetic data whose ``synth_info.json`` records the digest of exactly these clips (the
    generator writes it) is named by the generator's options instead (`synthetic_fingerprint`):
    that fingerprint is known before the data is generated, so published results can be found
    without generating anything. A ``synth_info.json`` whose digest does not match the clips (a
    copy edited after generation) is ignored: the data is then named by its clips, as real data.

    Returns:
        dict: ``kind`` ("synthetic" or "dcase"), ``hash`` (16 hex digits) and
        ``description`` (one line).

    Raises:
        FileNotFoundError: ``root`` is missing or holds no DCASE clip.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist (expected a folder in the "
                                "DCASE layout: <root>/<machine_type>/{train,test}/*.wav)")
    index = dcase.build_index(root)
    digest = dcase.content_digest(root, index, progress)
    info_path = root / SYNTH_INFO
    info = None
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text())
        except ValueError:
            info = None
    if isinstance(info, dict) and info.get("content") == digest:
        return synthetic_fingerprint(info)
    description = f"DCASE-layout data at {root} ({len(index)} clips)"
    if info_path.exists():
        description += (f"; its {info_path.name} does not describe these clips (changed after "
                        "they were generated), so they are named by their content")
    return {"kind": "dcase", "hash": digest[:16], "description": description}


def synthetic_fingerprint(info: dict) -> dict:
    """The fingerprint of a synthetic dataset from its ``synth_info.json`` content (see
    `dataset_fingerprint`; `asdlib.synth.expected_info` gives that content without the data).
    Neither the digest of the clips (``content``: it checks the clips, the options name them)
    nor the profile's name (a label: two profiles that ask for the same clips get the same
    ones) is part of it."""
    description = (f"synthetic data (asdlib.synth v{info.get('version')}, profile "
                   f"{info.get('profile')}, seed {info.get('seed')}, "
                   f"{info.get('seconds'):g} s, {info.get('ids')} IDs, "
                   f"{len(info.get('types', []))} types)")
    digest = store.key({k: v for k, v in info.items() if k not in ("content", "profile")})
    return {"kind": "synthetic", "hash": digest, "description": description}


def key_inputs(config: TrainConfig, dataset: dict) -> dict:
    """What a run is a function of: its config and its dataset fingerprint.

    The config's `profile` is a label, not an input: two profiles with the same recipe and the
    same data train the same run (so a profile can be renamed without training anything).
    """
    return {"config": {k: v for k, v in config.to_dict().items() if k != "profile"},
            "dataset": dataset["hash"]}


def key(config: TrainConfig, dataset: dict) -> str:
    """The folder name of a run (published or in the run cache): `key_inputs`, hashed."""
    return store.key(key_inputs(config, dataset), length=KEY_LENGTH)


#: Hexadecimal digits of a run folder's name.
KEY_LENGTH = 12


def build_once(kind: str, inputs: dict, build, description: str, parent=None) -> Path:
    """Train once, read many: the folder of `inputs` under `<ASDLIB_HOME>/<kind>/` (or
    `parent`), named by `asdlib.store.key(inputs)` and built by `build(work)` only when it is
    not complete yet (a second process waits, then reads it; a stopped build resumes: see
    `asdlib.store.folder`). The one way the networks (`asdlib.experiments.load_or_train`, kind
    "runs") and the autoencoders (`asdlib.baseline.load_or_run_baseline`, kind "baseline") are
    kept.

    Returns:
        The complete folder.
    """
    parent = Path(parent) if parent is not None else runtime.home() / kind
    return store.folder(parent, store.key(inputs, length=KEY_LENGTH), build,
                        description=description)


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


def make_checkpoint(info: dict, parts: dict, history: list, best_val_loss: float) -> dict:
    """A complete checkpoint after an epoch: everything `restore` needs to go on training.

    Args:
        info: the run's `config.json` content (config, dataset, class map).
        parts: the objects whose state is saved: "model", "optimizer", "scheduler" and
            "scaler" (None without a gradient scaler).
        history: the epochs so far (dicts with epoch, val_loss, val_accuracy, ...), the last
            one just finished.
        best_val_loss: the lowest validation loss so far.
    """
    last = history[-1]
    scaler = parts.get("scaler")
    return {"format": CHECKPOINT_FORMAT, "config": info["config"],
            "class_map": info["class_map"], "dataset": info["dataset"], "epoch": last["epoch"],
            "model": contiguous_state(parts["model"]),
            "optimizer": parts["optimizer"].state_dict(),
            "scheduler": parts["scheduler"].state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "history": list(history), "best_val_loss": best_val_loss,
            "val_loss": last["val_loss"], "val_accuracy": last["val_accuracy"]}


def restore(checkpoint: dict, parts: dict) -> tuple:
    """Load a checkpoint (`make_checkpoint`) into the training objects `parts`.

    Returns:
        `(history, best_val_loss, epoch)`: where training goes on from.
    """
    parts["model"].load_state_dict(checkpoint["model"])
    parts["optimizer"].load_state_dict(checkpoint["optimizer"])
    parts["scheduler"].load_state_dict(checkpoint["scheduler"])
    if parts.get("scaler") is not None and checkpoint.get("scaler"):
        parts["scaler"].load_state_dict(checkpoint["scaler"])
    return list(checkpoint["history"]), checkpoint["best_val_loss"], checkpoint["epoch"]


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


# ----------------------------------------------------------------------------------------
# Reading a finished run
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """The results of one training run, read from its folder.

    Attributes:
        path: the run folder.
        config: its `TrainConfig`.
        info: its `config.json` (data root, dataset fingerprint, class map).
    """

    path: Path
    config: TrainConfig
    info: dict

    @property
    def label(self) -> str:
        """`TASTgram (NAMix)` etc., as in the paper's tables."""
        return run_label(self.config)

    @property
    def dataset(self) -> str:
        """One line naming the data the run was trained and evaluated on."""
        return self.info["dataset"]["description"]

    @functools.cached_property
    def history(self) -> pd.DataFrame:
        """One row per epoch: epoch, train_loss, val_loss, val_accuracy, lr, seconds, best."""
        return pd.read_csv(self.path / HISTORY)

    @property
    def published(self) -> bool:
        """Whether the run was read from published results (`asdlib/published`): gzipped
        scores and no checkpoint."""
        return not (self.path / SCORES).is_file() and (self.path / SCORES_PUBLISHED).is_file()

    @functools.cached_property
    def scores(self) -> pd.DataFrame:
        """One row per test clip: path, machine_type, machine_id, label (1 anomaly, 0 normal),
        score (the authors' score), every alternative score, threshold, decision. (Published
        runs give the path relative to the data root.)"""
        name = SCORES_PUBLISHED if self.published else SCORES
        return pd.read_csv(self.path / name, dtype={"machine_id": str})

    @functools.cached_property
    def metrics(self) -> dict:
        """The content of `metrics.json` (see `asdlib.evaluate.evaluate`)."""
        return json.loads((self.path / METRICS).read_text())

    @functools.cached_property
    def embeddings(self) -> dict:
        """Embeddings and angles of every training and test clip (`embeddings.npz` as a dict):
        embedding `[clips, 128]`, angle, angle_mean, path, split, machine_type, machine_id,
        label, class_index, class_weight `[classes, 128]`. A published run has them only if
        a figure of the book needs them (`asdlib.experiments.BOOK_RUNS`), stored as float16."""
        path = self.path / EMBEDDINGS
        if not path.is_file():
            raise FileNotFoundError(
                f"{self.label} seed {self.config.seed} was published without its embeddings "
                f"(only the runs of the figures keep them); train it yourself with "
                f"load_or_train(config, published=False)")
        with np.load(path) as data:
            out = {name: data[name] for name in data.files}
        out["embedding"] = out["embedding"].astype(np.float32)
        return out

    def results_frame(self, score: str = "score") -> pd.DataFrame:
        """The labelled test clips as a `asdlib.metrics` results frame (score column `score`)."""
        frame = self.scores[self.scores["label"] >= 0]
        return frame.assign(score=frame[score])

    def model(self, which: str = "best", device=None):
        """The trained network (eval mode) from its "best" or "last" checkpoint (not for a
        published run: those keep no checkpoint)."""
        if self.published:
            raise FileNotFoundError(f"{self.label} seed {self.config.seed} is a published run: it "
                                    "keeps no checkpoint; load_or_train(config, published=False) "
                                    "trains it here")
        return load_model(self.path, which, device)

    def summary(self) -> str:
        """One line: the run, its average AUC / pAUC, the profile and the data."""
        average = self.metrics.get("average", {})
        return (f"{self.label} seed {self.config.seed}: AUC {100 * average.get('auc', np.nan):.2f} "
                f"pAUC {100 * average.get('pauc', np.nan):.2f} (per-ID mean) | "
                f"profile={self.config.profile} | {self.dataset}"
                + (" | published run" if self.published else ""))

    def __repr__(self) -> str:
        return f"Run({self.label}, seed={self.config.seed}, path={str(self.path)!r})"


def open_run(path) -> Run:
    """The `Run` of a finished, evaluated run folder.

    Raises:
        FileNotFoundError: the folder, its `config.json` or its `metrics.json` is missing.
        ValueError: its `config.json` is damaged.
    """
    path = Path(path)
    info = read_run_info(path)
    if not (path / METRICS).is_file():
        raise FileNotFoundError(f"run folder {path} has no {METRICS}: evaluate it first "
                                "(python -m asdlib evaluate --run FOLDER)")
    return Run(path, TrainConfig.from_dict(info["config"]), info)
