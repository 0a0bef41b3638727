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

`asdlib.runfolder.Run` gives the results as plain objects: the config, the per-epoch history and the per-clip
scores as DataFrames, the metrics dict, the embeddings, and the trained model on demand.

**Published runs.** The runs of chapters 7-11 (the book profile reads the evidence profile's,
`asdlib.profiles.Profile.runs_profile`) take hours on a 2-core CPU, so they
are trained once by `make runs` (`publish_runs`: two processes, one thread each, resumable) and
their small results (config, dataset fingerprint, history, metrics, per-clip scores, and for the
runs the figures need, the embeddings; no checkpoints) ship inside the package under
`asdlib/published/` with a manifest. `load_or_train` reads a published run when its key (config
and dataset fingerprint) matches, and trains otherwise; a test fails when a published run no
longer matches the code (it names `make runs`).

Both the runs (`asdlib.runfolder.build_once`) and the synthetic datasets are `asdlib.store` folders: two processes (two
notebooks of a classroom sharing `ASDLIB_HOME`) that want the same run train it once; the
second waits and reads it. The tables of runs in the paper's layout are in `asdlib.tables`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asdlib import baseline, evaluate, metrics, profiles, runfolder, runtime, store, synth, train
from asdlib.profiles import TrainConfig

__all__ = [
    "AUTOENCODER_LABEL",
    "BOOK_RUNS",
    "PUBLISHED_DIR",
    "Workers",
    "autoencoder_name",
    "autoencoder_results",
    "book_runs",
    "check_published",
    "export_run",
    "load_or_train",
    "open_run",
    "publish_runs",
    "published_manifest",
    "sha256",
    "synthetic_dataset",
    "verify_files",
    "verify_published",
    "write_csv_gz",
]

def synthetic_dataset(profile: "str | profiles.Profile | None" = None, seed: int | None = None,
                      types=None, progress: bool = True, workers: int = 1) -> Path:
    """The synthetic dataset of a profile, generated once under `<ASDLIB_HOME>/data/`.

    Args:
        profile: "smoke", "book" or "paper" (None: `ASDLIB_PROFILE`, else book), or a
            `Profile` (its name names the folder).
        seed: the generator's seed (default: the profile's `data_seed`).
        types: machine types to write (None: all six).
        progress: show a progress bar while generating.
        workers: processes writing clips (the same bytes whatever the number).

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
        synth.generate(work, profile=chosen, seed=seed, types=types, progress=progress,
                       workers=workers)

    return store.folder(runtime.home() / "data", name, build,
                        description=f"the synthetic dataset {name}")


def open_run(path) -> runfolder.Run:
    """`asdlib.runfolder.open_run`, checking a published run's files against its manifest
    first (`verify_published`)."""
    path = Path(path)
    if path.resolve().parent == PUBLISHED_DIR.resolve():
        verify_published(path)
    return runfolder.open_run(path)


#: The runs of the book's chapters 7-11, for the profiles whose runs are published:
#: (model, mode) -> "all" (every seed of the profile) or "first" (its first seed). The first
#: seed of every TASTgram run keeps its embeddings (the figures of chapters 8 and 9 need them).
BOOK_RUNS = {
    ("stgram", "arcface"): "all",
    ("tastgram", "arcface"): "all",
    ("stgram", "noisy_arcmix"): "all",
    ("tastgram", "noisy_arcmix"): "all",
    ("tastgram", "arcmix"): "all",
    ("tastgram", "mixup"): "first",
}
#: Where the published runs are: inside the package, so that a Colab install has them too.
PUBLISHED_DIR = Path(str(resources.files("asdlib") / "published"))
#: The command that trains and publishes them.
PUBLISH_COMMAND = "make runs"


def publish_command(profile_name: str) -> str:
    """The command that publishes a profile's runs (the manifest and commit messages name it):
    plain `make runs` for the runs the book reads."""
    if profile_name in (profiles.DEFAULT, profiles.get_profile(profiles.DEFAULT).runs_profile().name):
        return PUBLISH_COMMAND
    return f"{PUBLISH_COMMAND} PROFILE={profile_name}"


def book_runs(profile=None) -> list:
    """The `TrainConfig` of every run of `BOOK_RUNS` for a profile's runs
    (`asdlib.profiles.Profile.runs_profile`: the book profile's are the evidence profile's), in
    publishing order."""
    chosen = profiles.get_profile(profile).runs_profile()
    configs = []
    for (model, mode), which in BOOK_RUNS.items():
        seeds = chosen.seeds if which == "all" else chosen.seeds[:1]
        configs += [TrainConfig.from_profile(chosen, model=model, mode=mode, seed=s) for s in seeds]
    return configs


def _keeps_embeddings(config: TrainConfig) -> bool:
    return config.model == "tastgram" and config.seed == profiles.get_profile(config.profile).seeds[0]


def published_manifest() -> dict | None:
    """The manifest of the published runs (`asdlib/published/MANIFEST.json`), None if none."""
    path = PUBLISHED_DIR / "MANIFEST.json"
    return json.loads(path.read_text()) if path.is_file() else None


def verify_files(folder, files: dict, manifest_path) -> None:
    """Check a published folder against the sha256 sums its manifest lists (`files`: path
    relative to `folder` -> sha256).

    Raises:
        ValueError: a file was changed, truncated, added or removed since publishing (the
            message names the file, the manifest and the way out).
    """
    folder = Path(folder)
    way_out = ("reinstall asdlib (pip install --force-reinstall), or `git checkout "
               f"{Path('asdlib') / folder.parent.name}` in a clone, or train and publish again "
               f"(the manifest names the command)")
    present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    if present != sorted(files):
        raise ValueError(f"published folder {folder} holds {present}, {manifest_path} lists "
                         f"{sorted(files)}: {way_out}")
    for name, digest in files.items():
        if sha256(folder / name) != digest:
            raise ValueError(f"published file {folder / name} does not match the sha256 of "
                             f"{manifest_path} (changed or damaged since it was published): "
                             f"{way_out}")


def verify_published(path) -> None:
    """Check the files of a published run against the sha256 sums of `MANIFEST.json`.

    Raises:
        ValueError: a file was changed, truncated, added or removed since publishing, or the
            run is not in the manifest (the message names the file and the way out).
    """
    path = Path(path)
    manifest = published_manifest() or {"runs": []}
    entry = next((e for e in manifest["runs"] if e["hash"] == path.name), None)
    if entry is None:
        raise ValueError(f"published run {path} is not in {PUBLISHED_DIR / 'MANIFEST.json'}: "
                         f"train and publish again with {PUBLISH_COMMAND}")
    verify_files(path, entry["files"], PUBLISHED_DIR / "MANIFEST.json")


#: How the tables name the chapter-2 autoencoder.
AUTOENCODER_LABEL = "DCASE 2020 autoencoder"


def autoencoder_name(profile, dataset: dict) -> str:
    """The folder name of a profile's autoencoder results on a dataset (published or not)."""
    chosen = profiles.get_profile(profile)
    return "autoencoder-" + store.key(baseline.cache_inputs(chosen, dataset["hash"],
                                                             chosen.seeds[0]),
                                      length=runfolder.KEY_LENGTH)


def autoencoder_results(profile=None, data_root=None, progress: bool = True) -> pd.DataFrame:
    """The chapter-2 autoencoder's results frame beside a profile's runs (on the data of
    `asdlib.profiles.Profile.runs_profile`, where the networks are compared): published
    (`publish_runs` publishes it with the runs) or trained now
    (`asdlib.baseline.load_or_run_baseline`, a few minutes). Paths are relative to the data
    root, like a published run's.
    """
    chosen = profiles.get_profile(profile).runs_profile()
    if data_root is None:
        dataset = profile_dataset(chosen)
        path = PUBLISHED_DIR / autoencoder_name(chosen, dataset)
        if (path / runfolder.SCORES_PUBLISHED).is_file():
            verify_published(path)
            return pd.read_csv(path / runfolder.SCORES_PUBLISHED, dtype={"machine_id": str})
        data_root = synthetic_dataset(chosen, progress=progress)
    root = Path(data_root).expanduser().resolve()
    results, _, _ = baseline.load_or_run_baseline(root, chosen, seed=chosen.seeds[0],
                                                  progress=progress)
    return results.assign(path=results["path"].str.replace(str(root) + os.sep, "", regex=False))


def _published_run(config: TrainConfig, dataset: dict) -> runfolder.Run | None:
    path = PUBLISHED_DIR / runfolder.key(config, dataset)
    if not (path / runfolder.METRICS).is_file():
        return None
    verify_published(path)
    return runfolder.Run(path, config, runfolder.read_run_info(path))


def _dataset_of(config: TrainConfig, data_root):
    """(data root or None, fingerprint): the default synthetic data is named without generating it."""
    if data_root is not None:
        root = Path(data_root).expanduser().resolve()
        return root, runfolder.dataset_fingerprint(root)
    return None, profile_dataset(config.profile)


def profile_dataset(profile=None) -> dict:
    """The fingerprint of a profile's synthetic data (`asdlib.runfolder.synthetic_fingerprint`),
    known without generating it: what published runs of that profile are keyed by."""
    chosen = profiles.get_profile(profile)
    return runfolder.synthetic_fingerprint(synth.expected_info(chosen, chosen.data_seed))


def load_or_train(config: TrainConfig, data_root=None, *, setup: train.Setup | None = None,
                  runs_dir=None, published: bool = True) -> runfolder.Run:
    """The results of `config` on a dataset: a published run, the run cache, or trained now.

    Args:
        config: what to train.
        data_root: DCASE-layout data (default: `synthetic_dataset(config.profile)`, generated
            only if the run has to be trained).
        setup: where and how fast to train (`asdlib.train.Setup`: device, progress bars,
            clips held on the device, ...); evaluation uses its device and progress too.
        runs_dir: the run cache (default: `<ASDLIB_HOME>/runs`).
        published: read a published run (`asdlib/published`) when its config and dataset match;
            False trains (or reads the run cache) whatever was published.

    Returns:
        The `Run`, trained and evaluated (authors' "ce" score). A run found complete is read
        without training anything; a half-finished one resumes from its last epoch.
    """
    setup = setup if setup is not None else train.Setup()
    root, dataset = _dataset_of(config, data_root)
    if published:
        run = _published_run(config, dataset)
        if run is not None:
            return run
    if root is None:
        root = synthetic_dataset(config.profile, progress=setup.progress)
        dataset = runfolder.dataset_fingerprint(root)

    def build(work: Path) -> None:
        train.train(config, root, work, setup, dataset=dataset)
        evaluate.evaluate(work, root, device=setup.device, progress=setup.progress)

    path = runfolder.build_once("runs", runfolder.key_inputs(config, dataset), build,
                                f"the run {config.summary()}", parent=runs_dir)
    return runfolder.open_run(path)


# ----------------------------------------------------------------------------------------
# Publishing the book's runs: python -m asdlib runs (make runs)
# ----------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    """The sha256 of a file's bytes, in hex (what the manifests of published results list)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_csv_gz(frame: pd.DataFrame, path) -> None:
    """A DataFrame as a gzipped CSV, atomically, with no file name and mtime 0 in the gzip
    header: the same frame always gives the same bytes."""
    with runtime.atomic_path(path) as tmp:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
            f.write(frame.to_csv(index=False).encode())


def machine_line(jobs: int, device=None) -> str:
    """The machine that trained something, in one line (the manifests name it): the CPU, the
    worker processes, torch and Python, and the device (a GPU by name)."""
    return (f"{runtime.cpu_model()} ({platform.machine()}), {os.cpu_count()} cores, {jobs} jobs "
            f"x 1 torch thread, torch {torch.__version__}, Python {platform.python_version()}, "
            f"device {_device_line(device)}")


def export_run(run: runfolder.Run, data_root: Path, dest: Path, embeddings: bool) -> dict:
    """Copy the small results of a trained run into `dest` (paths relative to the data root)."""
    dest.mkdir(parents=True, exist_ok=True)
    info = dict(run.info, data_root=None)
    runtime.write_text_atomic(json.dumps(info, indent=1) + "\n", dest / runfolder.RUN_INFO)
    shutil.copyfile(run.path / runfolder.HISTORY, dest / runfolder.HISTORY)
    result = dict(run.metrics, data_root=None, device=None)
    runtime.write_text_atomic(json.dumps(result, indent=1) + "\n", dest / runfolder.METRICS)
    prefix = str(data_root) + os.sep
    scores = run.scores.assign(path=run.scores["path"].str.replace(prefix, "", regex=False))
    write_csv_gz(scores, dest / runfolder.SCORES_PUBLISHED)
    if embeddings:
        with np.load(run.path / runfolder.EMBEDDINGS) as data:
            arrays = {key: data[key] for key in data.files}
        arrays["embedding"] = arrays["embedding"].astype(np.float16)
        arrays["path"] = np.array([p.replace(prefix, "") for p in arrays["path"]])
        with runtime.atomic_path(dest / runfolder.EMBEDDINGS) as tmp:
            np.savez_compressed(tmp, **arrays)
    return {name.name: sha256(name) for name in sorted(dest.iterdir())}


@dataclasses.dataclass(frozen=True)
class Workers:
    """How `publish_runs` trains the runs: in how many processes, where, with which memory
    settings. It changes how fast, never what a run computes (the published bytes are the same).

    Attributes:
        jobs: worker processes, one torch thread each (on a 2-core CPU, two one-thread
            processes train faster than one two-thread process; on a GPU, several runs share it).
        device: where to train (None: `asdlib.runtime.device()`).
        data_on_device: hold the training clips on the device (`asdlib.train.Setup`).
        reuse_freed_memory: `asdlib.runtime.reuse_freed_memory` in the workers (CPU speed).
        synth_workers: processes generating the synthetic data if it is not there yet.
    """

    jobs: int = 2
    device: str | None = None
    data_on_device: bool = False
    reuse_freed_memory: bool = True
    synth_workers: int = 1

    def setup(self) -> train.Setup:
        """The `asdlib.train.Setup` of one worker's run (no progress bars)."""
        return train.Setup(device=self.device, progress=False, data_on_device=self.data_on_device)

    def imap(self, fn, jobs: list):
        """``fn(job)`` for every job, in `self.jobs` spawned processes (a fresh one per job), or
        here one after another when there is one process or one job; yields each result as soon
        as it is done (in the order they finish). `fn` must be importable by name (spawn)."""
        if self.jobs > 1 and len(jobs) > 1:
            context = multiprocessing.get_context("spawn")
            initializer = runtime.reuse_freed_memory if self.reuse_freed_memory else None
            with context.Pool(self.jobs, initializer=initializer, maxtasksperchild=1) as pool:
                yield from pool.imap_unordered(fn, jobs)
        else:
            if self.reuse_freed_memory:
                runtime.reuse_freed_memory()
            for job in jobs:
                yield fn(job)


def _train_one(job) -> str:
    """One published run, in a worker process with one torch thread (`publish_runs`):
    `job` is (config as a dict, data root, ASDLIB_HOME, `Workers`); returns the run's folder."""
    config_dict, data_root, home, workers = job
    os.environ[runtime.HOME_VAR] = home
    config = TrainConfig.from_dict(config_dict)
    with runtime.torch_threads(1):
        run = load_or_train(config, data_root, setup=workers.setup(), published=False)
    return str(run.path)


def _train_all(configs: list, data_root: Path, workers: Workers):
    """Train `configs` in `workers.jobs` processes; yields each finished run's folder at once."""
    jobs = [(c.to_dict(), str(data_root), str(runtime.home()), workers) for c in configs]
    yield from workers.imap(_train_one, jobs)


def _device_line(device) -> str:
    chosen = runtime.device(device)
    if chosen.type == "cuda":
        return f"{torch.cuda.get_device_name(chosen)}, CUDA {torch.version.cuda}"
    return str(chosen)


def _move_into_place(work: Path, dest: Path) -> None:
    """Replace the folder `dest` by the finished folder `work` (no reader sees a half-written one)."""
    if dest.exists():
        shutil.rmtree(dest)
    os.rename(work, dest)


@dataclasses.dataclass
class _Manifest:
    """One profile's entries of a publishing folder's `MANIFEST.json`, written again after
    every run published, so that a stopped `publish_runs` keeps what it finished.

    Attributes:
        dest: the publishing folder.
        profile: whose runs.
        dataset: the fingerprint of the data they were trained on.
        wanted: folder name -> `TrainConfig` (None: the autoencoder), in publishing order.
        machine: the machine line of the entries and of the profile.
        jobs: worker processes (a field of the profile's line).
        old: the manifest found in `dest` (the other profiles' entries are kept as they are).
        entries: this profile's entries published so far.
        written: the manifest as last written.
    """

    dest: Path
    profile: profiles.Profile
    dataset: dict
    wanted: dict
    machine: str
    jobs: int
    old: dict = dataclasses.field(init=False)
    entries: list = dataclasses.field(init=False)
    written: dict = dataclasses.field(init=False)
    started: float = dataclasses.field(init=False, default_factory=time.perf_counter)

    def __post_init__(self):
        """Read `dest`'s manifest: keep this profile's entries that are still wanted and whose
        folder is there, remove every folder no entry names (another scale, data or code);
        then write the manifest."""
        path = self.dest / "MANIFEST.json"
        self.old = json.loads(path.read_text()) if path.is_file() else {}
        self.entries = [e for e in self.old.get("runs", []) if e.get("profile") == self.profile.name
                        and e["hash"] in self.wanted and (self.dest / e["hash"]).is_dir()]
        kept = {e["hash"] for e in self.entries + self.others}
        for folder in [p for p in self.dest.iterdir() if p.is_dir() and p.name not in kept]:
            shutil.rmtree(folder)
        self.write()

    @property
    def others(self) -> list:
        """The entries of the other profiles whose runs are still published under their own
        name (a profile that now reads another's runs, as the book profile reads the evidence
        profile's, has its old entries dropped)."""
        return [e for e in self.old.get("runs", []) if e.get("profile") != self.profile.name
                and e.get("profile") in _own_runs_profiles()]

    def published(self) -> set:
        """The folder names of this profile's published entries."""
        return {e["hash"] for e in self.entries}

    def write(self) -> dict:
        """Write `MANIFEST.json` (entries in publishing order) and return it."""
        name = self.profile.name
        manifest = {"profiles": {other: line for other, line in self.old.get("profiles", {}).items()
                                 if other in _own_runs_profiles()}}
        manifest["profiles"][name] = {
            "dataset": self.dataset, "generator_version": synth.GENERATOR_VERSION,
            "command": publish_command(name),
            "runs": sum(c is not None for c in self.wanted.values()), "jobs": self.jobs, "torch_threads_per_job": 1,
            "machine": self.machine, "wall_seconds_this_call": time.perf_counter() - self.started}
        order = list(self.wanted)
        manifest["runs"] = self.others + sorted(self.entries, key=lambda e: order.index(e["hash"]))
        runtime.write_text_atomic(json.dumps(manifest, indent=1) + "\n", self.dest / "MANIFEST.json")
        self.written = manifest
        return manifest

    def add(self, entry: dict) -> dict:
        """Enter a published folder; the manifest as written."""
        self.entries.append(entry)
        return self.write()

    def todo(self) -> list:
        """The configs not yet published, seed by seed: a call stopped part-way leaves every
        variant trained on the same seeds, so the paired differences of chapter 10 can be read
        from what is published so far."""
        missing = [c for name, c in self.wanted.items()
                   if c is not None and name not in self.published()]
        return sorted(missing, key=lambda c: self.profile.seeds.index(c.seed))


def _own_runs_profiles() -> set:
    """The names of the profiles whose runs are their own (`Profile.runs_profile`)."""
    return {name for name, p in profiles.PROFILES.items() if p.runs_profile().name == name}


def _publish_autoencoder(manifest: _Manifest, data_root: Path, progress: bool) -> dict | None:
    """Publish the profile's autoencoder results beside the networks, unless they are there;
    its manifest entry (None when it was there)."""
    chosen = manifest.profile
    name = autoencoder_name(chosen, manifest.dataset)
    if name in manifest.published():
        return None
    started = time.perf_counter()
    results = autoencoder_results(chosen, data_root, progress=progress)
    work = manifest.dest / f".{name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    write_csv_gz(results, work / runfolder.SCORES_PUBLISHED)
    _move_into_place(work, manifest.dest / name)
    average = metrics.per_type_table(results)
    entry = {
        "hash": name, "profile": chosen.name, "label": AUTOENCODER_LABEL,
        "model": "autoencoder", "mode": None, "seed": chosen.seeds[0],
        "files": {runfolder.SCORES_PUBLISHED:
                  sha256(manifest.dest / name / runfolder.SCORES_PUBLISHED)},
        "epochs": chosen.baseline_epochs, "train_seconds": time.perf_counter() - started,
        "average_auc": float(average["per_id_mean_auc"].mean()),
        "average_pauc": float(average["per_id_mean_pauc"].mean()),
        "machine": manifest.machine}
    manifest.add(entry)
    return entry


def _publish_run(manifest: _Manifest, path, data_root: Path) -> dict:
    """Export the trained run at `path` into the publishing folder and enter it; its entry."""
    run = open_run(path)
    name = runfolder.key(run.config, manifest.dataset)
    work = manifest.dest / f".{name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    files = export_run(run, data_root, work, _keeps_embeddings(run.config))
    _move_into_place(work, manifest.dest / name)
    entry = {"hash": name, "profile": manifest.profile.name, "label": run.label,
             "model": run.config.model, "mode": run.config.mode, "seed": run.config.seed,
             "files": files, "epochs": len(run.history),
             "train_seconds": float(run.history["seconds"].sum()),
             "average_auc": run.metrics["average"]["auc"],
             "average_pauc": run.metrics["average"]["pauc"], "machine": manifest.machine}
    manifest.add(entry)
    return entry


def publish_runs(profile=None, workers: Workers | None = None, dest=None, progress: bool = True,
                 on_published=None) -> dict:
    """Train every run of `book_runs(profile)` and publish each one as soon as it is done.

    The runs are trained by `workers.jobs` processes with one torch thread each, each through
    `load_or_train(..., published=False)`: the run cache of `ASDLIB_HOME`, so a stopped call
    resumes every run from its last finished epoch. Each finished run is exported into `dest`
    (default `asdlib/published/`) at once and entered in `MANIFEST.json`, after the profile's
    autoencoder results; runs published before for the same profile and data are kept (only
    the missing ones train), runs that are no longer among `book_runs` are removed.

    Args:
        profile: whose runs (default: the active profile; the book profile's are the evidence
            profile's, `asdlib.profiles.Profile.runs_profile`).
        workers: processes, device and memory settings (default `Workers()`: two CPU jobs).
        dest: where to publish (default `PUBLISHED_DIR`).
        progress: a progress bar, and one line per published run.
        on_published: optional ``fn(entry)`` after the autoencoder and after each run is
            published (its manifest entry), e.g. `commit_published`.

    Returns:
        The manifest.
    """
    chosen = profiles.get_profile(profile).runs_profile()
    workers = workers if workers is not None else Workers()
    runtime.device(workers.device)  # a device this machine lacks is refused before anything runs
    root = synthetic_dataset(chosen, progress=progress, workers=workers.synth_workers)
    dataset = runfolder.dataset_fingerprint(root)
    dest = Path(dest) if dest is not None else PUBLISHED_DIR
    dest.mkdir(parents=True, exist_ok=True)
    configs = book_runs(chosen)
    wanted = {runfolder.key(c, dataset): c for c in configs}
    wanted[autoencoder_name(chosen, dataset)] = None
    machine = machine_line(workers.jobs, workers.device)
    manifest = _Manifest(dest, chosen, dataset, wanted, machine, workers.jobs)
    entry = _publish_autoencoder(manifest, root, progress)
    if entry is not None and on_published is not None:
        on_published(entry)
    todo = manifest.todo()
    bar = runtime.progress_bar(total=len(configs), initial=len(configs) - len(todo),
                               show=progress, desc="published runs", unit="run")
    if progress:
        bar.write(f"{len(configs) - len(todo)} of {len(configs)} runs published; training "
                  f"{len(todo)}: " + ", ".join(f"{runfolder.run_label(c)} seed {c.seed}" for c in todo))
    with contextlib.closing(_train_all(todo, root, workers)) as finished:
        for path in finished:
            entry = _publish_run(manifest, path, root)
            bar.update(1)
            if progress:
                bar.write(f"published {entry['label']} seed {entry['seed']}: {entry['epochs']} "
                          f"epochs, {entry['train_seconds'] / 60:.1f} min, average AUC "
                          f"{100 * entry['average_auc']:.2f} %")
            if on_published is not None:
                on_published(entry)
    bar.close()
    return manifest.written


def _git(folder: Path, *args) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise ValueError("commit: git is not installed") from None


def check_committable(dest=None) -> Path:
    """The publishing folder (default `PUBLISHED_DIR`) if `commit_published` can commit it.

    Raises:
        ValueError: git is missing, or the folder is not inside a git checkout (an installed
            package, for example): publish without committing there.
    """
    dest = Path(dest) if dest is not None else PUBLISHED_DIR
    dest.mkdir(parents=True, exist_ok=True)
    if _git(dest, "rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        raise ValueError(f"commit: {dest} is not inside a git checkout; publish without "
                         "committing (no --commit), or from a clone of the book's repository")
    return dest


def commit_published(entry: dict, dest=None) -> bool:
    """Commit the publishing folder to git at once, with a message naming what was published:
    runs train in pieces, and a stopped `make runs` then loses no finished run.

    Only the publishing folder is committed, whatever else is staged or changed.

    Args:
        entry: the manifest entry of what was just published (`publish_runs`' ``on_published``).
        dest: the publishing folder (default `PUBLISHED_DIR`).

    Returns:
        Whether a commit was made (False when the folder had nothing new).

    Raises:
        ValueError: see `check_committable`.
        RuntimeError: git refused the commit (its message is included).
    """
    dest = check_committable(dest)
    _git(dest, "add", "-A", "--", ".")
    if not _git(dest, "status", "--porcelain", "--", ".").stdout.strip():
        return False
    command = publish_command(entry["profile"])
    message = (f"{entry['profile'].capitalize()} profile: {entry['label']} seed {entry['seed']} "
               f"published ({command}; {entry['epochs']} epochs, average AUC "
               f"{100 * entry['average_auc']:.2f} %)")
    result = _git(dest, "commit", "-q", "-m", message, "--", ".")
    if result.returncode != 0:
        raise RuntimeError(f"git commit of {dest} failed: {(result.stderr or result.stdout).strip()}")
    return True


def _published_summary() -> str:
    manifest = published_manifest()
    if manifest is None:
        return "nothing"
    counts = {}
    for entry in manifest["runs"]:
        counts[entry["profile"]] = counts.get(entry["profile"], 0) + 1
    return ", ".join(f"{n} runs of the {name} profile" for name, n in counts.items())


def check_published(label: str, seed: int, profile=None, home=None) -> dict:
    """Retrain one published run from scratch (a fresh ASDLIB_HOME) and compare its metrics.

    Returns:
        ``{"published": ..., "retrained": ..., "equal": bool}`` of the average AUC / pAUC.
    """
    chosen = profiles.get_profile(profile).runs_profile()
    config = next((c for c in book_runs(chosen) if runfolder.run_label(c) == label and c.seed == seed), None)
    if config is None:
        raise ValueError(f"label and seed: no published run {label!r} seed {seed}; the runs are "
                         f"{sorted({runfolder.run_label(c) for c in book_runs(chosen)})} with seeds "
                         f"{list(chosen.seeds)}")
    published = _published_run(config, profile_dataset(chosen))
    if published is None:
        raise ValueError(f"label: {label} seed {seed} of the {chosen.name} profile is not "
                         f"published for the current code and data (published: "
                         f"{_published_summary()}); run {PUBLISH_COMMAND} first")
    home = Path(home or tempfile.mkdtemp(prefix="asdlib-check-"))
    previous = os.environ.get(runtime.HOME_VAR)
    os.environ[runtime.HOME_VAR] = str(home)
    try:
        with runtime.torch_threads(1):
            retrained = load_or_train(config, setup=train.Setup(progress=False), published=False)
    finally:
        if previous is None:
            os.environ.pop(runtime.HOME_VAR)
        else:
            os.environ[runtime.HOME_VAR] = previous
    a, b = published.metrics["average"], retrained.metrics["average"]
    return {"published": a, "retrained": b, "equal": a == b, "home": str(home)}
