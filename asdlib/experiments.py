"""
Experiments: train once, read many times

Used by chapters 8-11 (training, the ablation, the comparison with the paper). A training run
is a pure function of its config (`asdlib.profiles.TrainConfig`) and of the dataset it learns
from, so its results can be kept and shared: `load_or_train(config)` looks for
`<ASDLIB_HOME>/runs/<hash>/`, where `<hash>` hashes the config and the dataset fingerprint,
and trains (or finishes a half-done run) only when the results are not there. A chapter that
needs the same run as another reads it; a rebuilt book with a warm cache trains nothing.

    >>> from asdlib.experiments import load_or_train
    >>> from asdlib.profiles import TrainConfig
    >>> run = load_or_train(TrainConfig.from_profile("book", mode="noisy_arcmix"))  # doctest: +SKIP
    >>> run.metrics["average"]["auc"], run.history.tail(1), run.scores.head()      # doctest: +SKIP

`Run` gives the results as plain objects: the config, the per-epoch history and the per-clip
scores as DataFrames, the metrics dict, the embeddings, and the trained model on demand.

Both the runs and the synthetic datasets are `asdlib.store` folders: two processes (two
notebooks of a classroom sharing `ASDLIB_HOME`) that want the same run train it once; the
second waits and reads it. The tables of runs in the paper's layout are in `asdlib.tables`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from asdlib import checkpoints, dcase, evaluate, profiles, runtime, store, synth, train
from asdlib.profiles import TrainConfig

__all__ = [
    "MODE_LABELS",
    "MODEL_LABELS",
    "Run",
    "load_or_train",
    "open_run",
    "run_hash",
    "run_label",
    "synthetic_dataset",
]

#: How the paper names the networks and the losses (its table rows read "TASTgram (NAMix)").
MODEL_LABELS = {"tastgram": "TASTgram", "stgram": "STgram"}
MODE_LABELS = {"arcface": "ArcFace", "mixup": "Mixup", "arcmix": "ArcMix", "noisy_arcmix": "NAMix"}


def run_label(config: TrainConfig) -> str:
    """The paper's name of a run: `TASTgram (NAMix)`, `STgram (ArcFace)`, ..."""
    return f"{MODEL_LABELS[config.model]} ({MODE_LABELS[config.mode]})"


def synthetic_dataset(profile: "str | profiles.Profile | None" = None, seed: int | None = None,
                      types=None, progress: bool = True) -> Path:
    """The synthetic dataset of a profile, generated once under `<ASDLIB_HOME>/data/`.

    Args:
        profile: "smoke", "book" or "paper" (None: `ASDLIB_PROFILE`, else book), or a
            `Profile` (its name names the folder).
        seed: the generator's seed (default: the profile's `data_seed`).
        types: machine types to write (None: all six).
        progress: show a progress bar while generating.

    Returns:
        The data root (DCASE layout), e.g. `<ASDLIB_HOME>/data/synth_book_seed0_v2`; the folder
        names the generator version, so a new generator never meets an old folder.
    """
    chosen = profiles.get_profile(profile)
    seed = chosen.data_seed if seed is None else seed
    name = f"synth_{chosen.name}_seed{seed}_v{synth.GENERATOR_VERSION}"
    if types is not None:
        name += "_" + "-".join(sorted([types] if isinstance(types, str) else types))

    def build(work: Path) -> None:
        synth.generate(work, profile=chosen, seed=seed, types=types, progress=progress)

    return store.folder(runtime.home() / "data", name, build,
                        description=f"the synthetic dataset {name}")


def run_hash(config: TrainConfig, dataset: dict) -> str:
    """The folder name of a run: a hash of its config and its dataset fingerprint."""
    return store.key({"config": config.to_dict(), "dataset": dataset["hash"]}, length=12)


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
        return pd.read_csv(self.path / "history.csv")

    @functools.cached_property
    def scores(self) -> pd.DataFrame:
        """One row per test clip: path, machine_type, machine_id, label (1 anomaly, 0 normal),
        score (the authors' score), every alternative score, threshold, decision."""
        return pd.read_csv(self.path / "scores.csv")

    @functools.cached_property
    def metrics(self) -> dict:
        """The content of `metrics.json` (see `asdlib.evaluate.evaluate`)."""
        return json.loads((self.path / "metrics.json").read_text())

    @functools.cached_property
    def embeddings(self) -> dict:
        """Embeddings and angles of every training and test clip (`embeddings.npz` as a dict):
        embedding `[clips, 128]`, angle, angle_mean, path, split, machine_type, machine_id,
        label, class_index, class_weight `[classes, 128]`."""
        with np.load(self.path / "embeddings.npz") as data:
            return {key: data[key] for key in data.files}

    def results_frame(self, score: str = "score") -> pd.DataFrame:
        """The labelled test clips as a `asdlib.metrics` results frame (score column `score`)."""
        frame = self.scores[self.scores["label"] >= 0]
        return frame.assign(score=frame[score])

    def model(self, which: str = "best", device=None):
        """The trained network (eval mode) from its "best" or "last" checkpoint."""
        return checkpoints.load_model(self.path, which, device)

    def summary(self) -> str:
        """One line: the run, its average AUC / pAUC, the profile and the data."""
        average = self.metrics.get("average", {})
        return (f"{self.label} seed {self.config.seed}: AUC {100 * average.get('auc', np.nan):.2f} "
                f"pAUC {100 * average.get('pauc', np.nan):.2f} (per-ID mean) | "
                f"profile={self.config.profile} | {self.dataset}")

    def __repr__(self) -> str:
        return f"Run({self.label}, seed={self.config.seed}, path={str(self.path)!r})"


def open_run(path) -> Run:
    """The `Run` of a finished, evaluated run folder."""
    path = Path(path)
    info = checkpoints.read_run_info(path)
    if not (path / "metrics.json").is_file():
        raise FileNotFoundError(f"run folder {path} has no metrics.json: evaluate it first "
                                "(python -m asdlib evaluate --run FOLDER)")
    return Run(path, TrainConfig.from_dict(info["config"]), info)


def load_or_train(config: TrainConfig, data_root=None, *, progress: bool = True, device=None,
                  runs_dir=None) -> Run:
    """The results of `config` on a dataset: read from the run cache, else trained now.

    Args:
        config: what to train.
        data_root: DCASE-layout data (default: `synthetic_dataset(config.profile)`).
        progress: show progress bars while training / evaluating.
        device: where to train (default: `asdlib.runtime.device()`).
        runs_dir: the run cache (default: `<ASDLIB_HOME>/runs`).

    Returns:
        The `Run`, trained and evaluated (authors' "ce" score). A run found complete is read
        without training anything; a half-finished one resumes from its last epoch.
    """
    if data_root is None:
        data_root = synthetic_dataset(config.profile, progress=progress)
    data_root = Path(data_root).expanduser().resolve()
    dataset = dcase.dataset_fingerprint(data_root)
    runs_dir = Path(runs_dir) if runs_dir is not None else runtime.home() / "runs"

    def build(work: Path) -> None:
        train.train(config, data_root, work, device=device, progress=progress, dataset=dataset)
        evaluate.evaluate(work, data_root, device=device, progress=progress)

    path = store.folder(runs_dir, run_hash(config, dataset), build,
                        description=f"the run {config.summary()}")
    return open_run(path)
