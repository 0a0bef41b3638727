r"""
Evaluation: anomaly scores, AUC / pAUC tables, DCASE score and decision files

Chapter 8 of the book ("Training TASTgram") explains this module; chapter 1 explains the
metrics (`asdlib.metrics`).

The network was trained to recognise the machine ID of normal clips. A test clip that does
not sound like its own machine gets a high **anomaly score**. The authors' score is the
cross-entropy of the *margin* logits at the clip's own machine-ID class $y$ (model in eval
mode, the ArcFace margin $m$ applied as in training):

$$A_{\text{ce}}(x) = -\log \frac{e^{s \cos(\theta_y + m)}}
    {e^{s \cos(\theta_y + m)} + \sum_{k \neq y} e^{s \cos\theta_k}}$$

Two alternatives, selectable by name (`SCORES`):

- `"angle"`: $\theta_y$ itself, the angle (radians) between the embedding and the class
  weight of its ID: no softmax, so the other IDs play no role;
- `"angle_mean"`: the angle between the embedding and the mean (unit-length) training
  embedding of its ID.

Decisions (normal / anomalous) need a threshold. As the DCASE 2021+ baselines do, we fit a
gamma distribution (`scipy.stats.gamma.fit`, shape, location and scale) to the scores of the
*training* clips of each machine ID and put the threshold at its 90th percentile: about 10 %
of normal clips would be flagged. DCASE 2020 itself ranked systems by AUC / pAUC only; the
decision files are here for readers who submit to the later challenges.

Files written (default: into the run folder for the `ce` score, `<run>/eval_<score>/` for the
others): `metrics.json`, `scores.csv` (every test clip, every score), the DCASE files
`dcase/anomaly_score_<type>_id_XX.csv` and `dcase/decision_result_<type>_id_XX.csv`
(file name and value, no header), and `embeddings.npz` + `embeddings.csv` (embedding and angle
to its class centre of every training and test clip, for the angle and UMAP figures).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from asdlib import metrics, runtime
from asdlib.train import (
    TrainConfig,
    _autocast_dtype,
    build_logmel,
    class_map_from_json,
    clip_dataset,
    dataset_fingerprint,
    load_checkpoint,
    read_run_info,
    reuse_freed_memory,
)

__all__ = [
    "SCORES",
    "THRESHOLD_PERCENTILE",
    "anomaly_scores",
    "embed_clips",
    "evaluate",
    "gamma_threshold",
    "read_metrics",
    "write_dcase_files",
]

#: Anomaly scores, by name: the authors' cross-entropy and two angles.
SCORES = ("ce", "angle", "angle_mean")
#: Percentile of the gamma distribution fitted to the training scores used as threshold.
THRESHOLD_PERCENTILE = 0.9
#: Format version of metrics.json.
METRICS_FORMAT = 1


# ----------------------------------------------------------------------------------------
# Embeddings and scores
# ----------------------------------------------------------------------------------------


@torch.no_grad()
def embed_clips(model, clips, config: TrainConfig, device=None, batch_size: int = 64,
                progress: bool = True, desc: str = "embedding") -> np.ndarray:
    """The embedding of every clip of a dataset (model in eval mode).

    Args:
        model: a trained `asdlib.models.ASDNet`.
        clips: a dataset of `(wav, label, i)` items (`asdlib.cache.ClipDataset`).
        config: the run's config (log-Mel settings, mixed precision).
        device: where to compute (default: the model's device).
        batch_size: clips per forward pass (results do not depend on it: BatchNorm uses its
            running statistics in eval mode).
        progress: show a progress bar.

    Returns:
        float32 embeddings.

    Shapes:
        - output: `[clips, 128]`.
    """
    from torch.utils.data import DataLoader

    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device, memory_format=torch.channels_last).eval()
    logmel_fn = build_logmel(config).to(device)
    amp_dtype = _autocast_dtype(config.amp, device)
    loader = DataLoader(clips, batch_size=batch_size, shuffle=False)
    out = []
    for wav, _, _ in runtime.progress_bar(loader, show=progress, desc=desc, unit="batch", leave=False):
        wav = wav.to(device)
        # [batch, n_mels, frames]
        logmel = logmel_fn(wav)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            # [batch, 128]
            embedding = model.embed(wav, logmel)
        out.append(embedding.float().cpu())
    return torch.cat(out).numpy()


def _angle(cos: torch.Tensor) -> torch.Tensor:
    return torch.arccos(cos.clamp(-1.0, 1.0))


def anomaly_scores(embedding, weight, labels, score: str = "ce", margin: float = 0.7,
                   scale: float = 30.0, sub_centers: int = 1, centres=None) -> np.ndarray:
    """Anomaly score of each clip from its embedding and its machine-ID class.

    Args:
        embedding: the clips' embeddings.
        weight: the ArcFace class weights (`model.arcface.weight`).
        labels: the machine-ID class of each clip.
        score: "ce" (the authors': cross-entropy of the margin logits at the clip's class),
            "angle" (angle to the class weight) or "angle_mean" (angle to `centres[label]`).
        margin, scale, sub_centers: the ArcFace head's m (radians), s and sub-centres.
        centres: for "angle_mean", one centre per class (e.g. mean training embeddings).

    Returns:
        float64 scores, larger = more anomalous.

    Shapes:
        - embedding: `[clips, 128]`; weight: `[classes * sub_centers, 128]`;
          labels: `[clips]`; centres: `[classes, 128]`; output: `[clips]`.
    """
    from asdlib.losses import arcface_logits, cosine_logits

    if score not in SCORES:
        raise ValueError(f"score: unknown score {score!r}; choose one of {list(SCORES)}")
    embedding = torch.as_tensor(np.asarray(embedding), dtype=torch.float32)
    weight = torch.as_tensor(np.asarray(weight), dtype=torch.float32)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if score == "ce":
        # Margin on the clip's own class, as in training: [clips, classes]
        logits = arcface_logits(embedding, weight, labels, margin, scale, sub_centers)
        values = F.cross_entropy(logits, labels, reduction="none")
    elif score == "angle":
        # Cosine to the (best sub-centre of the) own class: [clips]
        cos = cosine_logits(embedding, weight, sub_centers).gather(1, labels[:, None])[:, 0]
        values = _angle(cos)
    else:
        if centres is None:
            raise ValueError("score 'angle_mean' needs centres (one per class)")
        centres = F.normalize(torch.as_tensor(np.asarray(centres), dtype=torch.float32), dim=1)
        # Cosine to the own class centre: [clips]
        cos = (F.normalize(embedding, dim=1) * centres[labels]).sum(dim=1)
        values = _angle(cos)
    return values.double().numpy()


def class_centres(embedding, labels, num_classes: int) -> np.ndarray:
    """Mean unit-length embedding of each class (NaN rows for a class without clips).

    Shapes:
        - embedding: `[clips, 128]`; labels: `[clips]`; output: `[num_classes, 128]`.
    """
    unit = embedding / np.linalg.norm(embedding, axis=1, keepdims=True).clip(1e-12)
    centres = np.full((num_classes, embedding.shape[1]), np.nan, dtype=np.float64)
    for k in range(num_classes):
        if (labels == k).any():
            centres[k] = unit[labels == k].mean(axis=0)
    return centres


def gamma_threshold(train_scores, percentile: float = THRESHOLD_PERCENTILE):
    """Decision threshold from the scores of normal training clips (DCASE 2021+ baselines).

    Fits a gamma distribution (shape, location, scale) to `train_scores` with
    `scipy.stats.gamma.fit` and returns its `percentile` quantile. When the fit fails or
    gives a non-finite value (too few or identical scores), the empirical quantile is used.

    Returns:
        `(threshold, method)` with method "gamma" or "empirical".
    """
    from scipy import stats

    scores = np.asarray(train_scores, dtype=np.float64)
    if scores.ndim != 1 or len(scores) == 0 or not np.isfinite(scores).all():
        raise ValueError("train_scores must be a non-empty 1-D array of finite scores")
    if len(scores) >= 3 and np.ptp(scores) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                shape, loc, scale = stats.gamma.fit(scores)
                threshold = float(stats.gamma.ppf(percentile, shape, loc=loc, scale=scale))
            except (ValueError, RuntimeError, FloatingPointError):
                threshold = float("nan")
        if np.isfinite(threshold):
            return threshold, "gamma"
    return float(np.quantile(scores, percentile)), "empirical"


# ----------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------


def write_dcase_files(scores: pd.DataFrame, folder) -> list:
    """The DCASE score and decision files, one pair per (machine type, machine ID).

    `anomaly_score_<type>_id_XX.csv`: `file name,score` per line;
    `decision_result_<type>_id_XX.csv`: `file name,0 or 1` per line; no header (DCASE format).
    Written atomically.

    Args:
        scores: a frame with columns path, machine_type, machine_id, score, decision.
        folder: where to write (created).

    Returns:
        The written paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for (machine_type, machine_id), rows in scores.groupby(["machine_type", "machine_id"],
                                                           sort=False):
        names = rows["path"].map(lambda p: Path(p).name)
        for prefix, column in (("anomaly_score", "score"), ("decision_result", "decision")):
            path = folder / f"{prefix}_{machine_type}_{machine_id}.csv"
            frame = pd.DataFrame({"file": names, column: rows[column]})
            runtime.write_text_atomic(frame.to_csv(index=False, header=False), path)
            written.append(path)
    return written


def _save_npz_atomic(target: Path, **arrays) -> None:
    with runtime.atomic_path(target) as tmp:  # tmp ends in .npz, so numpy keeps its name
        np.savez_compressed(tmp, **arrays)


def read_metrics(folder) -> dict:
    """The `metrics.json` of a run folder (or of an `eval_<score>` folder)."""
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: evaluate the run first "
                                "(python -m asdlib evaluate --run FOLDER)")
    return json.loads(path.read_text())


# ----------------------------------------------------------------------------------------
# The evaluation
# ----------------------------------------------------------------------------------------


def evaluate(run_dir, data_root=None, score: str = "ce", which: str = "best", out_dir=None,
             batch_size: int = 64, device=None, progress: bool = True) -> dict:
    """Score every test clip of the data root with a trained run and write the results.

    Args:
        run_dir: a run folder written by `asdlib.train.train`.
        data_root: the DCASE-layout data (default: the one the run was trained on).
        score: the anomaly score, one of `SCORES` ("ce" is the authors').
        which: "best" (lowest validation loss) or "last" checkpoint.
        out_dir: where to write (default: `run_dir` for "ce", else `run_dir/eval_<score>`).
        batch_size: clips per forward pass.
        device: where to compute (default: `asdlib.runtime.device()`).
        progress: show progress bars.

    Returns:
        The content of `metrics.json`: profile, dataset, config, per-ID / per-type tables,
        averages (fractions in [0, 1]), thresholds.

    Raises:
        FileNotFoundError: the run folder, its checkpoint or the data root is missing.
        ValueError: an unknown score, or data of another clip length than the run's.
    """
    from asdlib import dcase, runtime

    if score not in SCORES:
        raise ValueError(f"score: unknown score {score!r}; choose one of {list(SCORES)}")
    if which not in ("best", "last"):
        raise ValueError(f"which: must be 'best' or 'last', got {which!r}")
    started = time.perf_counter()
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    checkpoint_path = run_dir / ("best.pt" if which == "best" else "last.pt")
    if not checkpoint_path.is_file():
        raise FileNotFoundError(f"run folder {run_dir} has no checkpoint {checkpoint_path.name}: "
                                "train it first (python -m asdlib train ...)")
    data_root = Path(data_root if data_root is not None else info["data_root"])
    if not data_root.is_dir():
        raise FileNotFoundError(f"data root {data_root} does not exist (the run was trained on "
                                f"{info['data_root']}; pass --data to evaluate elsewhere)")
    out_dir = Path(out_dir) if out_dir is not None else (
        run_dir if score == "ce" else run_dir / f"eval_{score}")
    out_dir.mkdir(parents=True, exist_ok=True)
    device = runtime.device(device)
    if device.type == "cpu":
        reuse_freed_memory()

    # ---- the model of the chosen checkpoint
    checkpoint = load_checkpoint(checkpoint_path)
    config = TrainConfig.from_dict(checkpoint["config"])
    cmap = class_map_from_json(checkpoint["class_map"])
    from asdlib.train import build_model

    model = build_model(config, len(cmap))
    model.load_state_dict(checkpoint["model"])
    model = model.to(device).eval()
    head = model.arcface

    # ---- the clips: training clips (thresholds, class centres) and test clips
    index = dcase.build_index(data_root)
    known = pd.Series([k in cmap for k in zip(index["machine_type"], index["machine_id"])],
                      index=index.index)
    if (~known & (index["split"] == "test")).any():
        skipped = index[~known & (index["split"] == "test")]
        warnings.warn(f"{len(skipped)} test clip(s) of machine IDs the run was not trained on "
                      f"were skipped (e.g. {skipped['path'].iloc[0]})", stacklevel=2)
    index = index[known]
    train_index = index[index["split"] == "train"].reset_index(drop=True)
    test_index = index[index["split"] == "test"].reset_index(drop=True)
    if test_index.empty:
        raise FileNotFoundError(f"data root {data_root} holds no test clip of the run's "
                                f"{len(cmap)} machine IDs")
    if train_index.empty:
        raise FileNotFoundError(f"data root {data_root} holds no training clip of the run's "
                                "machine IDs (needed for the thresholds and class centres)")
    parts = {}
    for split, rows in (("train", train_index), ("test", test_index)):
        clips = clip_dataset(rows, config, cmap, progress)
        embedding = embed_clips(model, clips, config, device, batch_size, progress,
                                desc=f"embedding {split} clips")
        parts[split] = (clips.index.reset_index(drop=True), embedding,
                        clips.labels.astype(np.int64))

    # ---- every score of every clip
    weight = head.weight.detach().float().cpu().numpy()
    centres = class_centres(parts["train"][1], parts["train"][2], len(cmap))
    frames = {}
    for split, (rows, embedding, labels) in parts.items():
        frame = rows[["path", "machine_type", "machine_id"]].copy()
        frame["split"] = split
        frame["label"] = rows["is_anomaly"].to_numpy(dtype=np.int64)  # 1 / 0 / -1 (unknown)
        frame["class_index"] = labels
        for name in SCORES:
            frame[f"score_{name}"] = anomaly_scores(embedding, weight, labels, name, head.margin,
                                                    head.scale, head.sub_centers, centres)
        frame["score"] = frame[f"score_{score}"]
        frames[split] = frame

    # ---- thresholds from the training scores, per machine ID
    thresholds = {}
    for (machine_type, machine_id), rows in frames["train"].groupby(["machine_type", "machine_id"],
                                                                     sort=False):
        value, method = gamma_threshold(rows["score"].to_numpy())
        thresholds[(machine_type, machine_id)] = (value, method)
    test = frames["test"]
    test["threshold"] = [thresholds[k][0] for k in zip(test["machine_type"], test["machine_id"])]
    test["decision"] = (test["score"] > test["threshold"]).astype(int)

    # ---- AUC / pAUC tables (labelled clips only)
    labelled = test[test["label"] >= 0]
    result = {"format": METRICS_FORMAT, "profile": config.profile, "score": score,
              "checkpoint": which, "epoch": int(checkpoint["epoch"]),
              "run": config.summary(), "config": config.to_dict(),
              "dataset": info.get("dataset") or dataset_fingerprint(data_root),
              "data_root": str(data_root), "device": str(device),
              "val_loss": checkpoint.get("val_loss"),
              "val_accuracy": checkpoint.get("val_accuracy"),
              "num_test_clips": int(len(test)), "num_train_clips": int(len(frames["train"]))}
    if not labelled.empty:
        per_id = metrics.per_id_table(labelled)
        per_type = metrics.per_type_table(labelled)
        id_rows = per_id.reset_index()
        id_rows["threshold"] = [thresholds[k][0] for k in zip(id_rows["machine_type"],
                                                              id_rows["machine_id"])]
        id_rows["threshold_method"] = [thresholds[k][1] for k in zip(id_rows["machine_type"],
                                                                     id_rows["machine_id"])]
        id_rows["f1"] = [
            _f1(labelled[(labelled["machine_type"] == t) & (labelled["machine_id"] == i)])
            for t, i in zip(id_rows["machine_type"], id_rows["machine_id"])]
        result["per_id"] = id_rows.to_dict(orient="records")
        result["per_type"] = per_type.reset_index().to_dict(orient="records")
        result["average"] = {
            "auc": float(per_type["per_id_mean_auc"].mean()),
            "pauc": float(per_type["per_id_mean_pauc"].mean()),
            "pooled_auc": float(per_type["pooled_auc"].mean()),
            "pooled_pauc": float(per_type["pooled_pauc"].mean()),
            "mauc": float(per_type["mauc"].min()),
        }
    result["thresholds"] = {"method": "gamma fit of the training scores per machine ID "
                            f"(scipy.stats.gamma), {100 * THRESHOLD_PERCENTILE:g}th percentile",
                            "percentile": THRESHOLD_PERCENTILE}
    result["seconds"] = time.perf_counter() - started

    # ---- files: scores, DCASE files, embeddings, metrics.json last
    runtime.write_text_atomic(test.to_csv(index=False), out_dir / "scores.csv")
    write_dcase_files(test, out_dir / "dcase")
    both = pd.concat([frames["train"], frames["test"]], ignore_index=True)
    embedding = np.concatenate([parts["train"][1], parts["test"][1]])
    angle = both["score_angle"].to_numpy()
    table = both[["path", "split", "machine_type", "machine_id", "label", "class_index"]].copy()
    table["angle"] = angle
    table["angle_mean"] = both["score_angle_mean"].to_numpy()
    runtime.write_text_atomic(table.to_csv(index=False), out_dir / "embeddings.csv")
    _save_npz_atomic(out_dir / "embeddings.npz", embedding=embedding.astype(np.float32),
                     angle=angle, angle_mean=table["angle_mean"].to_numpy(),
                     path=table["path"].to_numpy(dtype=str),
                     split=table["split"].to_numpy(dtype=str),
                     machine_type=table["machine_type"].to_numpy(dtype=str),
                     machine_id=table["machine_id"].to_numpy(dtype=str),
                     label=table["label"].to_numpy(), class_index=table["class_index"].to_numpy(),
                     class_weight=weight)
    runtime.write_text_atomic(json.dumps(result, indent=1, default=_json_default) + "\n",
                       out_dir / "metrics.json")
    return result


def _f1(rows: pd.DataFrame) -> float:
    """F1 of the decisions (anomaly = positive) of some labelled clips."""
    true_pos = int(((rows["decision"] == 1) & (rows["label"] == 1)).sum())
    flagged, positives = int(rows["decision"].sum()), int(rows["label"].sum())
    if flagged + positives == 0:
        return float("nan")
    return 2 * true_pos / (flagged + positives)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ----------------------------------------------------------------------------------------
# Command line: python -m asdlib evaluate ...
# ----------------------------------------------------------------------------------------


def result_table(result: dict) -> pd.DataFrame:
    """The per-type AUC / pAUC (%) of a `metrics.json`, both protocols, plus the average."""
    per_type = pd.DataFrame(result["per_type"]).set_index("machine_type")
    table = pd.DataFrame({
        "AUC": 100 * per_type["per_id_mean_auc"], "pAUC": 100 * per_type["per_id_mean_pauc"],
        "mAUC": 100 * per_type["mauc"],
        "pooled AUC": 100 * per_type["pooled_auc"], "pooled pAUC": 100 * per_type["pooled_pauc"]})
    average = result["average"]
    table.loc["Average"] = [100 * average["auc"], 100 * average["pauc"], 100 * average["mauc"],
                            100 * average["pooled_auc"], 100 * average["pooled_pauc"]]
    return table.round(2)


def print_result(result: dict) -> None:
    """Print a `metrics.json` as a short report naming the run, the profile and the data."""
    print(f"{result['run']}, score={result['score']}, {result['checkpoint']} checkpoint "
          f"(epoch {result['epoch']})")
    print(f"data: {result['dataset']['description']}")
    if "per_type" in result:
        print("AUC / pAUC / mAUC: mean over machine IDs (DCASE 2020); pooled: all IDs of a type "
              "together (the authors' script)")
        print(result_table(result).to_string())
    else:
        print("no labelled test clip: score files written, no AUC")


def add_arguments(parser) -> None:
    """The options of `python -m asdlib evaluate`."""
    add = parser.add_argument
    add("--run", required=True, help="run folder written by python -m asdlib train")
    add("--data", default=None,
        help="data root to evaluate on (default: the one the run was trained on)")
    add("--score", choices=SCORES, default="ce",
        help="anomaly score (default ce: the authors' cross-entropy of the margin logits)")
    add("--checkpoint", choices=("best", "last"), default="best",
        help="which checkpoint (default best: lowest validation loss)")
    add("--out", default=None,
        help="output folder (default: the run folder for ce, <run>/eval_<score> otherwise)")
    add("--batch-size", type=int, default=64, help="clips per forward pass (default 64)")
    add("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    add("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    """Run `python -m asdlib evaluate` with parsed arguments; returns the exit status."""
    command = "python -m asdlib evaluate"
    if not Path(args.run).is_dir():
        raise SystemExit(f"{command}: error: --run: run folder {args.run} does not exist")
    if args.data is not None and not Path(args.data).is_dir():
        raise SystemExit(f"{command}: error: --data: data root {args.data} does not exist")
    try:
        result = evaluate(args.run, args.data, score=args.score, which=args.checkpoint,
                          out_dir=args.out, batch_size=args.batch_size, device=args.device,
                          progress=not args.quiet)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"{command}: error: {err}") from None
    print_result(result)
    out = args.out or (args.run if args.score == "ce" else Path(args.run) / f"eval_{args.score}")
    print(f"written: {out}/metrics.json, scores.csv, dcase/*.csv, embeddings.npz")
    return 0
