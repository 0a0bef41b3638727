"""
Experiments: train once, read many times

Used by chapters 8-11 (training, the ablation, the comparison with the paper). A training run
is a pure function of its config (`asdlib.train.TrainConfig`) and of the dataset it learns
from, so its results can be kept and shared: `load_or_train(config)` looks for
`<ASDLIB_HOME>/runs/<hash>/`, where `<hash>` hashes the config and the dataset fingerprint,
and trains (or finishes a half-done run) only when the results are not there. A chapter that
needs the same run as another reads it; a rebuilt book with a warm cache trains nothing.

    >>> from asdlib.experiments import load_or_train
    >>> from asdlib.train import TrainConfig
    >>> run = load_or_train(TrainConfig.from_profile("book", mode="noisy_arcmix"))  # doctest: +SKIP
    >>> run.metrics["average"]["auc"], run.history.tail(1), run.scores.head()      # doctest: +SKIP

`Run` gives the results as plain objects: the config, the per-epoch history and the per-clip
scores as DataFrames, the metrics dict, the embeddings, and the trained model on demand.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from asdlib import metrics, profiles, runtime
from asdlib.train import TrainConfig, dataset_fingerprint

__all__ = [
    "MODE_LABELS",
    "MODEL_LABELS",
    "Run",
    "load_or_train",
    "open_run",
    "paper_results",
    "run_hash",
    "run_label",
    "results_table",
    "synthetic_dataset",
]

#: How the paper names the networks and the losses (its table rows read "TASTgram (NAMix)").
MODEL_LABELS = {"tastgram": "TASTgram", "stgram": "STgram"}
MODE_LABELS = {"arcface": "ArcFace", "mixup": "Mixup", "arcmix": "ArcMix", "noisy_arcmix": "NAMix"}


def run_label(config: TrainConfig) -> str:
    """The paper's name of a run: `TASTgram (NAMix)`, `STgram (ArcFace)`, ..."""
    return f"{MODEL_LABELS[config.model]} ({MODE_LABELS[config.mode]})"


def synthetic_dataset(profile: str | None = None, seed: int = 0, types=None,
                      progress: bool = True) -> Path:
    """The synthetic dataset of a profile, generated once under `<ASDLIB_HOME>/data/`.

    Args:
        profile: "smoke", "book" or "paper" (None: `ASDLIB_PROFILE`, else book).
        seed: the generator's seed.
        types: machine types to write (None: all six).
        progress: show a progress bar while generating.

    Returns:
        The data root (DCASE layout), e.g. `<ASDLIB_HOME>/data/synth_book_seed0_v2`; the folder
        names the generator version, so a new generator never meets an old folder.
    """
    from asdlib import synth

    chosen = profiles.get_profile(profile)
    name = f"synth_{chosen.name}_seed{seed}_v{synth.GENERATOR_VERSION}"
    if types is not None:
        name += "_" + "-".join(sorted([types] if isinstance(types, str) else types))
    root = runtime.home() / "data" / name
    synth.generate(root, profile=chosen.name, seed=seed, types=types, progress=progress)
    return root


def run_hash(config: TrainConfig, dataset: dict) -> str:
    """The folder name of a run: a hash of its config and its dataset fingerprint."""
    text = json.dumps({"config": config.to_dict(), "dataset": dataset["hash"]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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
        from asdlib.train import load_model

        return load_model(self.path, which, device)

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
    from asdlib.train import read_run_info

    path = Path(path)
    info = read_run_info(path)
    if not (path / "metrics.json").is_file():
        raise FileNotFoundError(f"run folder {path} has no metrics.json: evaluate it first "
                                "(python -m asdlib evaluate --run FOLDER)")
    return Run(path, TrainConfig.from_dict(info["config"]), info)


def _is_complete(path: Path, config: TrainConfig) -> bool:
    """Training finished and the evaluation written."""
    if not (path / "metrics.json").is_file() or not (path / "history.csv").is_file():
        return False
    history = pd.read_csv(path / "history.csv")
    return len(history) > 0 and int(history["epoch"].max()) >= config.num_epochs


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
    from asdlib.evaluate import evaluate
    from asdlib.train import train

    if data_root is None:
        data_root = synthetic_dataset(config.profile, progress=progress)
    data_root = Path(data_root).expanduser().resolve()
    dataset = dataset_fingerprint(data_root)
    runs_dir = Path(runs_dir) if runs_dir is not None else runtime.home() / "runs"
    path = runs_dir / run_hash(config, dataset)
    if not _is_complete(path, config):
        train(config, data_root, path, device=device, progress=progress, dataset=dataset)
        evaluate(path, data_root, device=device, progress=progress)
    return open_run(path)


def results_table(runs, protocol: str = "per_id_mean") -> pd.DataFrame:
    """The paper-layout table (AUC / pAUC in %) of some runs.

    Args:
        runs: a dict name -> `Run` (or name -> list of runs: then the mean over seeds), or
            a list of runs (named by `Run.label` and seed).
        protocol: "per_id_mean" (DCASE 2020) or "pooled" (the authors' script).
    """
    if not isinstance(runs, dict):
        runs = {f"{run.label} seed {run.config.seed}": run for run in runs}
    if all(isinstance(value, Run) for value in runs.values()):
        return metrics.paper_table({name: run.results_frame() for name, run in runs.items()},
                                   protocol)
    mean, _ = metrics.seed_summary(
        {name: [run.results_frame() for run in value] for name, value in runs.items()}, protocol)
    return mean


def paper_results(table: str = "ablation") -> pd.DataFrame:
    """The paper's published numbers (AUC / pAUC in %) in the layout of `results_table`.

    Args:
        table: "ablation" (TASTgram / STgram x ArcFace / NAMix) or "comparison" (other
            methods of the DCASE 2020 development set).

    Returns:
        Rows = methods, columns = (machine_type, AUC / pAUC), types in the paper's order,
        then Average. These numbers are on the REAL DCASE 2020 Task 2 development set.
    """
    path = resources.files("asdlib") / "resources" / "paper_results.csv"
    with resources.as_file(path) as csv:
        frame = pd.read_csv(csv)
    if table not in set(frame["table"]):
        raise ValueError(f"table: must be one of {sorted(set(frame['table']))}, got {table!r}")
    frame = frame[frame["table"] == table]
    types = list(metrics.TABLE_TYPES) + ["Average"]
    columns = pd.MultiIndex.from_product([types, ["AUC", "pAUC"]],
                                         names=["machine_type", "metric"])
    rows = {}
    for method, part in frame.groupby("method", sort=False):
        values = {}
        for _, row in part.iterrows():
            machine_type = "Average" if row["machine_type"] == "average" else row["machine_type"]
            values[(machine_type, "AUC")] = float(row["auc"])
            values[(machine_type, "pAUC")] = float(row["pauc"])
        rows[method] = [values.get(column, np.nan) for column in columns]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("run")


# ----------------------------------------------------------------------------------------
# Command line: python -m asdlib table RUN [RUN ...]
# ----------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    """The options of `python -m asdlib table`."""
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="evaluated run folders (python -m asdlib train ... then evaluate)")
    parser.add_argument("--protocol", choices=metrics.PROTOCOLS, default="per_id_mean",
                        help="per_id_mean: AUC per machine ID, averaged per type (DCASE 2020); "
                             "pooled: all IDs of a type together (the authors' script)")
    parser.add_argument("--paper", choices=("ablation", "comparison", "none"), default="ablation",
                        help="which table of the paper to print beside ours (default ablation)")


def run(args) -> int:
    """Run `python -m asdlib table` with parsed arguments; returns the exit status."""
    command = "python -m asdlib table"
    runs = []
    for path in args.runs:
        if not Path(path).is_dir():
            raise SystemExit(f"{command}: error: RUN: run folder {path} does not exist")
        try:
            runs.append(open_run(path))
        except (FileNotFoundError, ValueError) as err:
            raise SystemExit(f"{command}: error: RUN: {err}") from None
    ours = results_table({f"{run.label} seed {run.config.seed} [ours, {i + 1}]": run
                          for i, run in enumerate(runs)}, args.protocol)
    tables = [ours]
    if args.paper != "none":
        paper = paper_results(args.paper)
        paper.index = [f"{name} [paper]" for name in paper.index]
        tables.append(paper[[c for c in paper.columns if c in ours.columns]])
    pd.set_option("display.width", 200)
    print(f"AUC / pAUC in %, protocol={args.protocol}")
    print(pd.concat(tables).round(2).to_string())
    print("\nwhich data each row is on:")
    for i, run in enumerate(runs):
        print(f"  [ours, {i + 1}] {run.path}: profile={run.config.profile}, {run.dataset}")
    if args.paper != "none":
        print("  [paper] Choi & Choi, ICASSP 2024: real DCASE 2020 Task 2 development set, "
              "10 s clips, per-type figures as published")
    return 0
