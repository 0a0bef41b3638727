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

Why such a score can fail: a *normal* clip whose machine ID the network does not recognise
scores as high as an anomaly. `own_id_probability` recovers, from the two stored scores, the
probability the network gives the clip's own ID (softmax of $s\cos\theta_k$, no margin), so
that the share of normal test clips it names correctly can be counted for any run (chapter 2).

Decisions (normal / anomalous) need a threshold. As the DCASE 2021+ baselines do, we fit a
gamma distribution (`scipy.stats.gamma.fit`, shape, location and scale) to the scores of the
*training* clips of each machine ID and put the threshold at its 90th percentile: about 10 %
of normal clips would be flagged. DCASE 2020 itself ranked systems by AUC / pAUC only; the
decision files are here for readers who submit to the later challenges.

Three steps, each a function: `score_run` embeds every training and test clip with the chosen
checkpoint and computes every score; `summarize` fits the thresholds and computes the AUC / pAUC
tables (`asdlib.metrics`); `write_outputs` writes the files. `evaluate` runs all three.

Files written (default: into the run folder for the `ce` score on the run's own data,
`<run>/eval_<score>/` for the other scores, and `<run>/eval_<score>_<fingerprint>/` for other
data, so that evaluating elsewhere never overwrites the run's own results): `metrics.json`, `scores.csv` (every test clip, every score), the DCASE files
`dcase/anomaly_score_<type>_id_XX.csv` and `dcase/decision_result_<type>_id_XX.csv`
(file name and value, no header), and `embeddings.npz` + `embeddings.csv` (embedding and angle
to its class centre of every training and test clip, for the angle and UMAP figures).
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import special, stats
from torch.utils.data import DataLoader

from asdlib import cache, dcase, loop, losses, metrics, models, runfolder, runtime
from asdlib.profiles import TrainConfig

__all__ = [
    "SCORES",
    "THRESHOLD_PERCENTILE",
    "ScoredRun",
    "anomaly_scores",
    "check_score",
    "class_centres",
    "default_out_dir",
    "evaluate",
    "gamma_threshold",
    "id_recognition",
    "own_id_probability",
    "read_metrics",
    "score_run",
    "summarize",
    "write_dcase_files",
    "write_outputs",
]

#: Percentile of the gamma distribution fitted to the training scores used as threshold.
THRESHOLD_PERCENTILE = 0.9
#: Format version of metrics.json.
METRICS_FORMAT = 1


# ----------------------------------------------------------------------------------------
# Scores
# ----------------------------------------------------------------------------------------


def _angle(cos: torch.Tensor) -> torch.Tensor:
    return torch.arccos(cos.clamp(-1.0, 1.0))


def _score_ce(embedding, weight, labels, *, margin, scale, sub_centers, **_) -> torch.Tensor:
    """The authors' score: cross-entropy of the margin logits (margin on the clip's own class,
    as in training) at the clip's class."""
    # [clips, classes]
    logits = losses.arcface_logits(embedding, weight, labels, margin, scale, sub_centers)
    return F.cross_entropy(logits, labels, reduction="none")


def _score_angle(embedding, weight, labels, *, sub_centers, **_) -> torch.Tensor:
    """The angle between the embedding and the (best sub-centre of the) own class weight."""
    # Cosine to every class, then to the own one: [clips]
    cos = losses.cosine_logits(embedding, weight, sub_centers)
    return _angle(cos.gather(1, labels[:, None])[:, 0])


def _score_angle_mean(embedding, weight, labels, *, centres, **_) -> torch.Tensor:
    """The angle between the embedding and its class centre (`centres[label]`)."""
    if centres is None:
        raise ValueError("score 'angle_mean' needs centres (one per class)")
    centres = F.normalize(torch.as_tensor(np.asarray(centres), dtype=torch.float32), dim=1)
    # [clips]
    cos = (F.normalize(embedding, dim=1) * centres[labels]).sum(dim=1)
    return _angle(cos)


#: Anomaly scores, by name: the authors' cross-entropy and two angles. Each function takes
#: `(embedding, weight, labels)` as tensors and the keywords `margin, scale, sub_centers,
#: centres` (each uses what it needs), and returns one score per clip.
SCORES = {
    "ce": _score_ce,
    "angle": _score_angle,
    "angle_mean": _score_angle_mean,
}


def check_score(score: str) -> None:
    """Raise a ValueError naming the valid scores if `score` is not a name of `SCORES`."""
    if score not in SCORES:
        raise ValueError(f"score: unknown score {score!r}; choose one of {list(SCORES)}")


def anomaly_scores(embedding, weight, labels, score: str = "ce", margin: float = 0.7,
                   scale: float = 30.0, sub_centers: int = 1, centres=None) -> np.ndarray:
    """Anomaly score of each clip from its embedding and its machine-ID class.

    Args:
        embedding: the clips' embeddings.
        weight: the ArcFace class weights (`model.arcface.weight`).
        labels: the machine-ID class of each clip.
        score: a name of `SCORES`: "ce" (the authors': cross-entropy of the margin logits at
            the clip's class), "angle" (angle to the class weight) or "angle_mean" (angle to
            `centres[label]`).
        margin, scale, sub_centers: the ArcFace head's m (radians), s and sub-centres.
        centres: for "angle_mean", one centre per class (e.g. mean training embeddings).

    Returns:
        float64 scores, larger = more anomalous.

    Raises:
        ValueError: an unknown score (the message lists the valid ones), or "angle_mean"
            without centres.

    Shapes:
        - embedding: `[clips, 128]`; weight: `[classes * sub_centers, 128]`;
          labels: `[clips]`; centres: `[classes, 128]`; output: `[clips]`.
    """
    check_score(score)
    embedding = torch.as_tensor(np.asarray(embedding), dtype=torch.float32)
    weight = torch.as_tensor(np.asarray(weight), dtype=torch.float32)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    values = SCORES[score](embedding, weight, labels, margin=margin, scale=scale,
                           sub_centers=sub_centers, centres=centres)
    return values.double().numpy()


def own_id_probability(score_ce, score_angle, margin: float = 0.7, scale: float = 30.0) -> np.ndarray:
    r"""Probability the network gives each clip's own machine ID, from its ``ce`` and ``angle``
    scores (no embeddings needed: works for published runs too).

    With $a = s\,\phi(\cos\theta_y)$ (the margin logit), $b = s\cos\theta_y$ and
    $R = \sum_{k \neq y} e^{s \cos\theta_k}$, the ``ce`` score is $\log(1 + R e^{-a})$, so
    $R = e^{a}(e^{A_{\text{ce}}} - 1)$ and the margin-free softmax probability of the own ID is

    $$p_y = \frac{e^{b}}{e^{b} + R} = \sigma\big(b - a - \log(e^{A_{\text{ce}}} - 1)\big).$$

    $p_y > 0.5$: the network names the clip's ID (against all other IDs together). A ``ce`` of
    0 (the float32 score has underflowed) gives $p_y = 1$.

    Args:
        score_ce, score_angle: the ``ce`` and ``angle`` scores of the clips (`anomaly_scores`).
        margin, scale: the ArcFace head's m (radians) and s that computed ``score_ce``.

    Returns:
        float64 probabilities in [0, 1].

    Shapes:
        - score_ce, score_angle: `[clips]`; output: `[clips]`.
    """
    ce = np.asarray(score_ce, dtype=np.float64)
    theta = np.asarray(score_angle, dtype=np.float64)
    if ce.shape != theta.shape or ce.ndim != 1:
        raise ValueError(f"score_ce and score_angle must be 1-D arrays of one length, got shapes "
                         f"{ce.shape} and {theta.shape}")
    if not (np.isfinite(ce).all() and np.isfinite(theta).all()):
        raise ValueError("score_ce and score_angle must be finite")
    if ((theta < 0) | (theta > np.pi + 1e-6)).any():
        raise ValueError("score_angle must hold angles in radians, in [0, pi]")
    cos = np.cos(theta)
    a = scale * losses.cos_with_margin(torch.from_numpy(cos), margin).numpy()
    b = scale * cos
    rest = np.expm1(ce)  # R e^{-a}; <= 0 where the float32 ce underflowed
    log_rest = np.log(rest, out=np.full_like(rest, -np.inf), where=rest > 0)
    return special.expit(b - a - log_rest)


def id_recognition(scores: pd.DataFrame, margin: float = 0.7, scale: float = 30.0) -> pd.DataFrame:
    """How well a run names the machine ID of its test clips, and what the misnamed normal clips
    cost it, per machine type (a diagnosis: chapter 2, ``benchmarks/diagnose.py``).

    Args:
        scores: labelled test clips with ``machine_type, machine_id, label`` (1 anomaly, 0
            normal), ``score_ce`` and ``score_angle`` (a run's ``scores.csv``).
        margin, scale: the run's ArcFace m and s.

    Returns:
        One row per machine type (paper order), fractions in [0, 1]: ``normal_named`` and
        ``anomaly_named``, the shares of normal and anomalous test clips whose own ID gets
        p > 0.5 (`own_id_probability`); ``auc``, the per-ID mean AUC of the ``ce`` score;
        ``auc_named_normals``, the same with the misnamed normal clips left out (every anomalous
        clip kept; an ID none of whose normal clips is named is left out of the mean, NaN if
        that leaves none): how far the run would get if it recognised every normal machine. Not
        a metric to report (it removes clips by what the network said), only a diagnosis.
    """
    required = {"machine_type", "machine_id", "label", "score_ce", "score_angle"}
    if not isinstance(scores, pd.DataFrame) or not required <= set(scores.columns):
        raise ValueError(f"scores must be a DataFrame with columns {sorted(required)} (a run's "
                         f"scores.csv)")
    clips = scores[scores["label"] >= 0]
    named = own_id_probability(clips["score_ce"], clips["score_angle"], margin, scale) > 0.5
    clips = clips.assign(score=clips["score_ce"], named=named)
    shares = clips.groupby(["machine_type", "label"])["named"].mean().unstack("label")
    kept = clips[(clips["label"] == 1) | clips["named"]]
    # An ID none of whose normal clips is named has no AUC without them: left out of the mean.
    has_normal = kept.groupby(["machine_type", "machine_id"])["label"].transform("min") == 0
    kept = kept[has_normal]
    kept_auc = (metrics.per_id_table(kept)["auc"].groupby(level=0).mean() if len(kept)
                else pd.Series(dtype=np.float64))
    table = pd.DataFrame({
        "normal_named": shares[0],
        "anomaly_named": shares[1],
        "auc": metrics.per_type_table(clips)["per_id_mean_auc"],
        "auc_named_normals": kept_auc,
    })
    return table.loc[metrics.type_order(clips["machine_type"])]


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


def read_metrics(folder) -> dict:
    """The `metrics.json` of a run folder (or of an `eval_<score>` folder)."""
    path = Path(folder) / runfolder.METRICS
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: evaluate the run first "
                                "(python -m asdlib evaluate --run FOLDER)")
    return json.loads(path.read_text())


# ----------------------------------------------------------------------------------------
# The evaluation: score_run -> summarize -> write_outputs
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class ScoredRun:
    """What `score_run` computed: every score of every clip of a data root, by one checkpoint.

    Attributes:
        run_dir: the run folder.
        config: the run's `TrainConfig`.
        checkpoint: `which` ("best" / "last"), `epoch`, `val_loss`, `val_accuracy` of the
            checkpoint used.
        data_root: the data that was scored; dataset: its fingerprint
            (`asdlib.runfolder.dataset_fingerprint`); own_data: whether it is the run's own data.
        frames: {"train", "test"}: one row per clip (path, machine_type, machine_id, split,
            label 1 / 0 / -1, class_index, score_<name> for every name of `SCORES`).
        embeddings: {"train", "test"}: `[clips, 128]` float32, in the rows' order.
        class_weight: the ArcFace weights, `[classes * sub_centers, 128]`.
        device: where it was computed.
    """

    run_dir: Path
    config: TrainConfig
    checkpoint: dict
    data_root: Path
    dataset: dict
    own_data: bool
    frames: dict
    embeddings: dict
    class_weight: np.ndarray
    device: str


def _clips_to_score(data_root: Path, cmap: dict) -> dict:
    """``{"train": index, "test": index}`` of the clips of the run's machine IDs: the training
    clips give the thresholds and class centres, the test clips are evaluated. Test clips of
    other IDs are skipped with a warning."""
    index = dcase.build_index(data_root)
    known = pd.Series([k in cmap for k in zip(index["machine_type"], index["machine_id"])],
                      index=index.index)
    if (~known & (index["split"] == "test")).any():
        skipped = index[~known & (index["split"] == "test")]
        warnings.warn(f"{len(skipped)} test clip(s) of machine IDs the run was not trained on "
                      f"were skipped (e.g. {skipped['path'].iloc[0]})", stacklevel=3)
    index = index[known]
    parts = {split: index[index["split"] == split].reset_index(drop=True)
             for split in ("train", "test")}
    for split, what in (("test", "test clip"), ("train", "training clip (needed for the "
                                                         "thresholds and class centres)")):
        if parts[split].empty:
            raise FileNotFoundError(f"data root {data_root} holds no {what} of the run's "
                                    f"{len(cmap)} machine IDs")
    return parts


def score_run(run_dir, data_root=None, which: str = "best", batch_size: int = 64, device=None,
              progress: bool = True) -> ScoredRun:
    """Embed every training and test clip of a data root with a run's checkpoint and score it.

    The training clips give the thresholds and the class centres (`summarize`); the test clips
    are what is evaluated. Test clips of machine IDs the run was not trained on are skipped
    with a warning.

    Args:
        run_dir: a run folder written by `asdlib.train.train`.
        data_root: the DCASE-layout data (default: the one the run was trained on).
        which: "best" (lowest validation loss) or "last" checkpoint.
        batch_size: clips per forward pass (results do not depend on it: BatchNorm uses its
            running statistics in eval mode).
        device: where to compute (default: `asdlib.runtime.device()`).
        progress: show progress bars.

    Raises:
        FileNotFoundError: the run folder, its checkpoint or the data root is missing, or the
            data holds no clip of the run's machine IDs.
        ValueError: a damaged checkpoint.
    """
    run_dir = Path(run_dir)
    info = runfolder.read_run_info(run_dir)
    checkpoint = runfolder.load_checkpoint(runfolder.checkpoint_path(run_dir, which))
    data_root = Path(data_root if data_root is not None else info["data_root"]).expanduser().resolve()
    if not data_root.is_dir():
        raise FileNotFoundError(f"data root {data_root} does not exist (the run was trained on "
                                f"{info['data_root']}; pass --data to evaluate elsewhere)")
    device = runtime.device(device)
    config = TrainConfig.from_dict(checkpoint["config"])
    cmap = runfolder.class_map_from_json(checkpoint["class_map"])
    model = runfolder.model_from_checkpoint(checkpoint, device)
    amp_dtype = runtime.autocast_dtype(config.amp, device)
    model = models.speed_up(model, amp_dtype=amp_dtype, device_type=device.type)  # as trained
    dataset = runfolder.dataset_fingerprint(data_root)

    parts = _clips_to_score(data_root, cmap)

    # ---- embeddings, then every score of every clip
    logmel_fn = config.build_logmel().to(device)
    embeddings, labels, rows = {}, {}, {}
    for split, split_index in parts.items():
        clips = cache.clip_dataset(split_index, config.num_samples, cmap, progress)
        loader = DataLoader(clips, batch_size=batch_size, shuffle=False)
        embeddings[split] = loop.embed(model, loader, logmel_fn, amp_dtype, progress,
                                       desc=f"embedding {split} clips")
        labels[split] = clips.labels.astype(np.int64)
        rows[split] = clips.index.reset_index(drop=True)
    head = model.arcface
    weight = head.weight.detach().float().cpu().numpy()
    centres = class_centres(embeddings["train"], labels["train"], len(cmap))
    frames = {}
    for split in parts:
        frame = rows[split][["path", "machine_type", "machine_id"]].copy()
        frame["split"] = split
        frame["label"] = rows[split]["is_anomaly"].to_numpy(dtype=np.int64)  # 1 / 0 / -1
        frame["class_index"] = labels[split]
        for name in SCORES:
            frame[f"score_{name}"] = anomaly_scores(embeddings[split], weight, labels[split],
                                                    name, head.margin, head.scale,
                                                    head.sub_centers, centres)
        frames[split] = frame
    return ScoredRun(run_dir=run_dir, config=config,
                     checkpoint={"which": which, "epoch": int(checkpoint["epoch"]),
                                 "val_loss": checkpoint.get("val_loss"),
                                 "val_accuracy": checkpoint.get("val_accuracy")},
                     data_root=data_root, dataset=dataset,
                     own_data=dataset["hash"] == info.get("dataset", {}).get("hash"),
                     frames=frames, embeddings=embeddings, class_weight=weight,
                     device=str(device))


def summarize(scored: ScoredRun, score: str = "ce") -> tuple:
    """Thresholds, decisions and the AUC / pAUC tables of a `ScoredRun` for one score.

    Returns:
        `(test, result)`: the test clips with the columns `score` (the chosen one),
        `threshold` and `decision`; and the content of `metrics.json` (profile, dataset,
        config, per-ID and per-type tables, averages as fractions in [0, 1], thresholds).
    """
    check_score(score)
    frames = {split: frame.assign(score=frame[f"score_{score}"])
              for split, frame in scored.frames.items()}
    # ---- thresholds from the training scores, per machine ID
    thresholds = {key: gamma_threshold(rows["score"].to_numpy())
                  for key, rows in frames["train"].groupby(["machine_type", "machine_id"],
                                                           sort=False)}
    test = frames["test"]
    test["threshold"] = [thresholds[k][0] for k in zip(test["machine_type"], test["machine_id"])]
    test["decision"] = (test["score"] > test["threshold"]).astype(int)

    # ---- AUC / pAUC tables (labelled clips only)
    config = scored.config
    result = {"format": METRICS_FORMAT, "profile": config.profile, "score": score,
              "checkpoint": scored.checkpoint["which"], "epoch": scored.checkpoint["epoch"],
              "run": config.summary(), "config": config.to_dict(),
              "dataset": scored.dataset, "data_root": str(scored.data_root),
              "own_data": scored.own_data, "device": scored.device,
              "val_loss": scored.checkpoint["val_loss"],
              "val_accuracy": scored.checkpoint["val_accuracy"],
              "num_test_clips": int(len(test)), "num_train_clips": int(len(frames["train"]))}
    labelled = test[test["label"] >= 0]
    if not labelled.empty:
        per_type = metrics.per_type_table(labelled)
        id_rows = metrics.per_id_table(labelled).reset_index()
        keys = list(zip(id_rows["machine_type"], id_rows["machine_id"]))
        id_rows["threshold"] = [thresholds[k][0] for k in keys]
        id_rows["threshold_method"] = [thresholds[k][1] for k in keys]
        id_rows["f1"] = [_f1(labelled[(labelled["machine_type"] == t) & (labelled["machine_id"] == i)])
                         for t, i in keys]
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
    return test, result


def default_out_dir(run_dir, score: str, scored: ScoredRun) -> Path:
    """Where `evaluate` writes by default: the run folder itself only for the run's own
    results (the "ce" score of the best checkpoint on the run's own data); otherwise
    `<run>/eval_<score>[_last][_<fingerprint>]`: `_last` for the last checkpoint, the
    data's fingerprint for other data. So no other evaluation overwrites the run's results."""
    run_dir = Path(run_dir)
    name = f"eval_{score}"
    if scored.checkpoint["which"] != "best":
        name += f"_{scored.checkpoint['which']}"
    if not scored.own_data:
        name += f"_{scored.dataset['hash']}"
    return run_dir if name == "eval_ce" else run_dir / name


def write_outputs(out_dir, scored: ScoredRun, test: pd.DataFrame, result: dict) -> None:
    """Write `scores.csv`, the DCASE files, `embeddings.csv` / `.npz` and, last, `metrics.json`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runtime.write_text_atomic(test.to_csv(index=False), out_dir / runfolder.SCORES)
    write_dcase_files(test, out_dir / runfolder.DCASE_FILES)
    both = pd.concat([scored.frames["train"], scored.frames["test"]], ignore_index=True)
    embedding = np.concatenate([scored.embeddings["train"], scored.embeddings["test"]])
    table = both[["path", "split", "machine_type", "machine_id", "label", "class_index"]].copy()
    table["angle"] = both["score_angle"].to_numpy()
    table["angle_mean"] = both["score_angle_mean"].to_numpy()
    runtime.write_text_atomic(table.to_csv(index=False), out_dir / runfolder.EMBEDDINGS_TABLE)
    with runtime.atomic_path(out_dir / runfolder.EMBEDDINGS) as tmp:  # tmp keeps the .npz suffix
        np.savez_compressed(tmp, embedding=embedding.astype(np.float32),
                            angle=table["angle"].to_numpy(), angle_mean=table["angle_mean"].to_numpy(),
                            path=table["path"].to_numpy(dtype=str),
                            split=table["split"].to_numpy(dtype=str),
                            machine_type=table["machine_type"].to_numpy(dtype=str),
                            machine_id=table["machine_id"].to_numpy(dtype=str),
                            label=table["label"].to_numpy(), class_index=table["class_index"].to_numpy(),
                            class_weight=scored.class_weight)
    runtime.write_text_atomic(json.dumps(result, indent=1, default=_json_default) + "\n",
                              out_dir / runfolder.METRICS)


def evaluate(run_dir, data_root=None, score: str = "ce", which: str = "best", out_dir=None,
             batch_size: int = 64, device=None, progress: bool = True) -> dict:
    """Score every test clip of the data root with a trained run and write the results.

    `score_run`, then `summarize`, then `write_outputs` (see their docstrings).

    Args:
        run_dir: a run folder written by `asdlib.train.train`.
        data_root: the DCASE-layout data (default: the one the run was trained on).
        score: the anomaly score, one of `SCORES` ("ce" is the authors').
        which: "best" (lowest validation loss) or "last" checkpoint.
        out_dir: where to write (default: `default_out_dir`).
        batch_size: clips per forward pass.
        device: where to compute (default: `asdlib.runtime.device()`).
        progress: show progress bars.

    Returns:
        The content of `metrics.json`, with `out_dir` added (where it was written).

    Raises:
        FileNotFoundError: the run folder, its checkpoint or the data root is missing.
        ValueError: an unknown score, or a damaged checkpoint.
    """
    check_score(score)
    started = time.perf_counter()
    scored = score_run(run_dir, data_root, which, batch_size, device, progress)
    test, result = summarize(scored, score)
    result["seconds"] = time.perf_counter() - started
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(run_dir, score, scored)
    write_outputs(out_dir, scored, test, result)
    return dict(result, out_dir=str(out_dir))


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


