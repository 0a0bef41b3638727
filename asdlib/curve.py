"""The learning curve: the two reference models against the training sound per machine.

Chapter 2 ("Why the classifier loses here") draws it. On the book's data (100 training clips of
2 s per machine ID, a fiftieth of the real data's) every ID-classifier network loses to the 2020
autoencoder. Whether that is the method or the amount of data is a measurement: train the two
models that calibration may look at (the chapter-2 autoencoder and STgram + ArcFace, never a
compared variant) on more and more training clips per machine, with the book's recipe and
stopping rule, on the same test clips, and see where the curves go. Two more factors, at some
sizes: all 41 machine IDs in the classifier (the authors train on the development and the
additional IDs; the test clips stay those of the development IDs) and stronger machine
individuality (`asdlib.synth.INDIVIDUALITY_LEVELS`).

Every point is a `CurvePoint`. ``python -m asdlib curve`` (``make curve``) trains the points
that are missing, two processes with one torch thread each, and publishes each finished point at
once into ``asdlib/evidence/<point>/`` (per-clip scores of both models, the network's history and
metrics, the times) with ``asdlib/evidence/MANIFEST.json``; a stopped call resumes (the runs are
`asdlib.store` folders). `curve_table` reads the published points, checks them against the
manifest, and gives both models' average AUC with bootstrap standard errors (test clips
resampled) and their paired difference.

The synthetic clips are keyed by (type, ID, split, label, number), so every point has the same
test clips, and the first N training clips of a larger point are those of a smaller one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from asdlib import baseline, evaluate, experiments, layout, profiles, runtime, synth, tables
from asdlib.profiles import TrainConfig

__all__ = ["CURVE", "EVIDENCE_DIR", "CurvePoint", "curve_table", "publish_curve", "read_point", "trend"]

#: Where the published points are: inside the package, like the published runs.
EVIDENCE_DIR = Path(str(resources.files("asdlib") / "evidence"))
#: The network of the curve: the paper's reference row, the only one calibration may look at.
NETWORK = ("stgram", "arcface")
#: How much sound the real data has per machine ID: about 1 000 normal training clips of 10 s
#: (DCASE 2020 Task 2 development set), in clips of the book's 2 s.
REAL_DATA_CLIPS_PER_ID = 5000


@dataclasses.dataclass(frozen=True)
class CurvePoint:
    """One point of the learning curve: the training clips per ID, the IDs, the individuality.

    Attributes:
        train_per_id: normal training clips of 2 s per machine ID.
        ids: ``"dev"`` (the 23 development IDs in the classifier) or ``"all"`` (all 41).
        individuality: ``"kept"`` (the book's machines) or ``"strong"``.
        base: the profile whose recipe, stopping rule, test clips and seeds the point keeps
            (the tests use "smoke").
    """

    train_per_id: int
    ids: str = "dev"
    individuality: str = "kept"
    base: str = "book"

    @property
    def name(self) -> str:
        """`train300`, `train300-41ids`, `train300-strong`: the point's folder name."""
        return (f"train{self.train_per_id}" + ("-41ids" if self.ids == "all" else "")
                + ("-strong" if self.individuality == "strong" else ""))

    def profile(self) -> profiles.Profile:
        """The book profile with this point's data (the book profile itself at its own size)."""
        book = profiles.get_profile(self.base)
        if (self.train_per_id, self.ids, self.individuality) == (book.train_per_id, book.ids,
                                                                  "kept"):
            return book
        return dataclasses.replace(book, name=f"curve-{self.name}", train_per_id=self.train_per_id,
                                   ids=self.ids, individuality=self.individuality)

    def autoencoder_point(self) -> "CurvePoint":
        """Whose autoencoder this point compares with: its own, or for all 41 IDs the one of
        the development IDs (the DCASE 2020 baseline trains on those; the clips are the same)."""
        return dataclasses.replace(self, ids="dev")


#: The measured points, in the order `publish_curve` trains them (the cheap, informative
#: ones first): the book's 100 clips per ID, then 300, 1000 and 3000, and the two factors at
#: 100, 300 and 1000.
CURVE = [CurvePoint(100), CurvePoint(300), CurvePoint(300, individuality="strong"),
         CurvePoint(300, ids="all"), CurvePoint(1000), CurvePoint(100, individuality="strong"),
         CurvePoint(100, ids="all"), CurvePoint(1000, individuality="strong"),
         CurvePoint(1000, ids="all"), CurvePoint(3000)]


def _point(name: str, points=None) -> CurvePoint:
    points = CURVE if points is None else points
    found = [p for p in points if p.name == name]
    if not found:
        raise ValueError(f"points: unknown point {name!r}; the curve has {[p.name for p in points]}")
    return found[0]


# ----------------------------------------------------------------------------------------
# Training a point (in a worker process)
# ----------------------------------------------------------------------------------------


def _job(job) -> dict:
    """Train one model of one point, in a worker process with one torch thread:
    ("autoencoder" | "network", `CurvePoint`, home, `asdlib.experiments.Workers`). The network
    trains on the workers' device (with its clips held there if they say so); the autoencoder
    on `asdlib.runtime.device()` (the GPU, where there is one)."""
    kind, point, home, workers = job
    os.environ[runtime.HOME_VAR] = home
    profile = point.profile()
    with runtime.torch_threads(1):
        root = experiments.synthetic_dataset(profile, progress=False)
        started = time.perf_counter()
        if kind == "autoencoder":
            baseline.load_or_run_baseline(root, profile, seed=profile.seeds[0], progress=False)
        else:
            config = TrainConfig.from_profile(profile, model=NETWORK[0], mode=NETWORK[1])
            experiments.load_or_train(config, root, setup=workers.setup())
    return {"kind": kind, "name": point.name, "seconds": time.perf_counter() - started}


def _export_point(point: CurvePoint, dest: Path, seconds: dict, workers) -> dict:
    """Write a point's small results into `dest`; returns its files and sha256 sums."""
    profile = point.profile()
    root = experiments.synthetic_dataset(profile, progress=False)
    config = TrainConfig.from_profile(profile, model=NETWORK[0], mode=NETWORK[1])
    run = experiments.load_or_train(config, root, setup=workers.setup())
    experiments.export_run(run, root, dest / "network", embeddings=False)
    if point.ids == "dev":
        results, _, _ = baseline.load_or_run_baseline(root, profile, seed=profile.seeds[0],
                                                       progress=False)
        prefix = str(root) + os.sep
        results = results.assign(path=results["path"].str.replace(prefix, "", regex=False))
        experiments.write_csv_gz(results, dest / "autoencoder_scores.csv.gz")
    info = {"point": dataclasses.asdict(point), "name": point.name,
            "profile": profile.summary(), "dataset": run.info["dataset"],
            "generator_version": synth.GENERATOR_VERSION,
            "train_clips": int(run.info.get("num_train_clips", 0)),
            "epochs": len(run.history),
            "best_epoch": int(run.history.loc[run.history["val_loss"].idxmin(), "epoch"]),
            "network_train_seconds": float(run.history["seconds"].sum()),
            "seconds_this_machine": seconds,
            "machine": experiments.machine_line(workers.jobs, workers.device)}
    runtime.write_text_atomic(json.dumps(info, indent=1) + "\n", dest / "point.json")
    return {p.relative_to(dest).as_posix(): experiments.sha256(p)
            for p in sorted(dest.rglob("*")) if p.is_file()}


def _manifest(folder: Path) -> dict:
    path = folder / "MANIFEST.json"
    return json.loads(path.read_text()) if path.is_file() else {"points": {}}


def _publish(point: CurvePoint, seconds: dict, dest_dir: Path, workers) -> None:
    """Export one finished point into `dest_dir` and record it in the manifest (atomically)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    work = dest_dir / f".{point.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    files = _export_point(point, work, seconds, workers)
    final = dest_dir / point.name
    if final.exists():
        shutil.rmtree(final)
    os.rename(work, final)
    manifest = _manifest(dest_dir)
    manifest["points"][point.name] = {"files": files}
    manifest["command"] = "make curve"
    runtime.write_text_atomic(json.dumps(manifest, indent=1, sort_keys=True) + "\n",
                              dest_dir / "MANIFEST.json")


def publish_curve(points=None, workers=None, progress: bool = True, dest=None,
                  on_published=None) -> list:
    """Train the curve's missing points and publish each one as soon as both its models are done.

    Args:
        points: `CurvePoint`s or names of `CURVE` points (default: all of `CURVE`, in order).
        workers: an `asdlib.experiments.Workers`, as for the published runs (default: two CPU
            processes, one torch thread each; the autoencoder and the network of a point train
            side by side). ``python -m asdlib curve --gpu`` gives the GPU route's: the data
            generated with every core, the network's clips held on the GPU.
        progress: a progress bar over the models (and the data being generated).
        dest: where to publish (default `EVIDENCE_DIR`).
        on_published: optional ``fn(point)`` called after each point is published (``make
            curve`` commits it there).

    Returns:
        The names of the points published by this call.
    """
    chosen = [p if isinstance(p, CurvePoint) else _point(p) for p in points] if points else list(CURVE)
    workers = workers if workers is not None else experiments.Workers()
    runtime.device(workers.device)  # a device this machine lacks is refused before anything runs
    dest = Path(dest) if dest is not None else EVIDENCE_DIR
    done = set(_manifest(dest)["points"])
    todo = [p for p in chosen if p.name not in done]
    job_list = []
    for point in todo:
        # generated here with `workers.synth_workers` processes, then read by the jobs
        experiments.synthetic_dataset(point.profile(), progress=progress,
                                      workers=workers.synth_workers)
        job_list.append(("network", point, str(runtime.home()), workers))
        if point.ids == "dev":
            job_list.append(("autoencoder", point, str(runtime.home()), workers))
    waiting = {p.name: {j[0] for j in job_list if j[1] == p} for p in todo}
    seconds = {p.name: {} for p in todo}
    published = []
    bar = runtime.progress_bar(total=len(job_list), show=progress, desc="learning curve",
                               unit="model")

    def finished(result):
        name = result["name"]
        seconds[name][result["kind"]] = result["seconds"]
        waiting[name].discard(result["kind"])
        bar.update(1)
        if not waiting[name]:
            point = _point(name, todo)
            _publish(point, seconds[name], dest, workers)
            published.append(name)
            if on_published is not None:
                on_published(point)

    for result in workers.imap(_job, job_list):
        finished(result)
    bar.close()
    return published


# ----------------------------------------------------------------------------------------
# Reading the published curve
# ----------------------------------------------------------------------------------------


def read_point(name: str, folder=None) -> dict:
    """A published point: ``network`` (the test clips' scores), ``autoencoder`` (its results
    frame, the development IDs' autoencoder for a 41-ID point) and ``info`` (`point.json`).

    The files are checked against `MANIFEST.json` first.
    """
    folder = Path(folder) if folder is not None else EVIDENCE_DIR
    manifest = _manifest(folder)
    if name not in manifest["points"]:
        raise FileNotFoundError(f"the point {name} is not published in {folder}; train it with "
                                f"python -m asdlib curve --points {name}")
    experiments.verify_files(folder / name, manifest["points"][name]["files"],
                             folder / "MANIFEST.json")
    info = json.loads((folder / name / "point.json").read_text())
    point = CurvePoint(**info["point"])
    scores = pd.read_csv(folder / name / "network" / "scores.csv.gz", dtype={"machine_id": str})
    network = scores[scores["label"] >= 0]
    dev = {(t, i) for t, ids in layout.DEV_IDS.items() for i in ids}
    network = network[[k in dev for k in zip(network["machine_type"], network["machine_id"])]]
    ae_name = point.autoencoder_point().name
    if ae_name != name:
        experiments.verify_files(folder / ae_name, manifest["points"][ae_name]["files"],
                                 folder / "MANIFEST.json")
    autoencoder = pd.read_csv(folder / ae_name / "autoencoder_scores.csv.gz",
                              dtype={"machine_id": str})
    return {"network": network.reset_index(drop=True), "autoencoder": autoencoder, "info": info,
            "all_scores": scores}


def curve_table(folder=None, n_boot: int = 1000) -> pd.DataFrame:
    """One row per published point: both models' average AUC (%, per-ID mean over the
    development IDs) with bootstrap standard errors, their difference with the SE of the paired
    difference, the network's epochs and training minutes, and the share of normal test clips
    whose machine ID the network names (`asdlib.evaluate.id_recognition`)."""
    folder = Path(folder) if folder is not None else EVIDENCE_DIR
    names = _manifest(folder)["points"]
    points = {n: CurvePoint(**json.loads((folder / n / "point.json").read_text())["point"])
              for n in names}
    rows = []
    # the book's machines with the development IDs by size first, then the factors
    for name, point in sorted(points.items(), key=lambda item: (
            (item[1].ids, item[1].individuality) != ("dev", "kept"), item[1].individuality,
            item[1].ids, item[1].train_per_id)):
        if point.autoencoder_point().name not in names:
            continue  # its autoencoder is not published yet
        read = read_point(name, folder)
        mean, se, replicates = tables.standard_errors(
            {"autoencoder": read["autoencoder"], "network": read["network"]}, n_boot=n_boot)
        difference = replicates["network"] - replicates["autoencoder"]
        key = ("Average", "AUC")
        config = TrainConfig.from_dict(json.loads(
            (folder / point.name / "network" / "config.json").read_text())["config"])
        named = evaluate.id_recognition(read["network"], config.margin, config.scale)
        info = read["info"]
        rows.append({
            "point": point.name, "train_per_id": point.train_per_id, "ids": point.ids,
            "individuality": point.individuality,
            "autoencoder": mean.loc["autoencoder", key], "autoencoder_se": se.loc["autoencoder", key],
            "network": mean.loc["network", key], "network_se": se.loc["network", key],
            "gap": mean.loc["network", key] - mean.loc["autoencoder", key],
            "gap_se": float(difference[key].std(ddof=1)),
            "epochs": info["epochs"], "best_epoch": info["best_epoch"],
            "network_minutes": info["network_train_seconds"] / 60,
            "normal_named": 100 * float(named["normal_named"].mean()),
        })
    return pd.DataFrame(rows).set_index("point") if rows else pd.DataFrame()


def trend(table: pd.DataFrame) -> dict:
    """The gap's straight-line trend in log10(clips per ID), over the book's machines with the
    development IDs, and where it would cross 0 and +5 points (an extrapolation past the last
    measured point; None where the trend does not rise).

    Returns:
        ``{"points", "per_decade" (points of gap per tenfold clips), "level_at", "lead5_at"}``.
    """
    main = table[(table["ids"] == "dev") & (table["individuality"] == "kept")]
    if len(main) < 2:
        return {"points": len(main), "per_decade": None, "level_at": None, "lead5_at": None}
    x = np.log10(main["train_per_id"].to_numpy(dtype=float))
    slope, intercept = np.polyfit(x, main["gap"].to_numpy(dtype=float), 1)

    def crossing(level):
        return float(10 ** ((level - intercept) / slope)) if slope > 0 else None

    return {"points": len(main), "per_decade": float(slope), "level_at": crossing(0.0),
            "lead5_at": crossing(5.0)}
