"""Figures of the book, one function per figure: ``plot_<thing>(..., ax=None or fig=None)``.

Each function draws into the Axes or Figure it is given (or a new one) and returns it; nothing
here calls ``plt.show()`` or changes matplotlib's global style on import. New figures are at most
8 inches wide: the width of a page of the rendered book, where a wider figure is shrunk until its
labels cannot be read (the browser test checks it).

- :func:`plot_machine_spectrograms` - a normal and an anomalous clip of every machine type,
  chapter 1 ("The task and the data").
- :func:`plot_roc`, :func:`plot_per_id_auc`, :func:`plot_score_histogram` - evaluation,
  chapters 1-2; :func:`plot_loss_curves` - training losses, chapter 2.
- :func:`plot_mel_filterbank`, :func:`plot_feature_maps`, :func:`plot_frame_weights` - the
  input features, chapter 3.
- :func:`plot_margin_curve`, :func:`plot_toy_embeddings`, :func:`plot_angle_histograms`,
  :func:`plot_toy_runs` - ArcFace and the 2-D toy, chapters 4-7.
- :func:`plot_beta`, :func:`plot_mix_path` - mixup, chapter 5.
- :func:`plot_lambda_curves` - the losses against lambda, chapter 7.
- :func:`plot_training_curves` - loss, accuracy and learning rate per epoch, chapter 8;
  :func:`plot_angle_distributions`, :func:`plot_embedding_map` - angles and UMAP maps of
  trained networks, chapter 9; :func:`plot_ablation` - the ablation over seeds, chapter 10;
  :func:`plot_memory_footprint` - what holding the data costs, chapter 11;
  :func:`plot_learning_curve` - the two reference models against the training sound per
  machine, chapter 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asdlib import layout, metrics, synth
from asdlib.features import LogMel

__all__ = ["plot_machine_spectrograms"]


def _first_clip(folder: Path, label: str, machine_id: str | None, number: int | None):
    """The test clip of ``label`` with the lowest ID (or ``machine_id``) and number."""
    found = []
    for path in folder.glob(f"{label}_id_*.wav"):
        parsed = layout.parse_filename(path.name)
        if parsed and machine_id in (None, parsed[1]) and number in (None, parsed[2]):
            found.append((parsed[1], parsed[2], path))
    if not found:
        wanted = f"{label} clip" + (f" of {machine_id}" if machine_id else "")
        raise FileNotFoundError(f"no {wanted}" + (f" number {number}" if number is not None else "")
                                + f" in {folder}")
    return min(found)


def plot_machine_spectrograms(root, types=None, machine_ids=None, number=None, fig=None):
    """Log-Mel spectrograms of one normal and one anomalous test clip per machine type.

    A grid of ``len(types)`` rows by 2 columns (normal left, anomalous right). The two clips of
    a row share one colour scale, so their levels can be compared. On the synthetic data the
    anomaly kind is named in the title.

    Args:
        root: a dataset folder in the DCASE layout (``<root>/<type>/test/*.wav``).
        types: machine types to show (default: every type found under ``root``, in
            ``asdlib.layout.MACHINE_TYPES`` order).
        machine_ids: ``{machine_type: machine_id}`` to choose the ID shown (default: the lowest
            ID with a normal test clip).
        number: the clip number to show (default: the lowest available).
        fig: a matplotlib Figure to draw into (default: a new one).

    Returns:
        The Figure.
    """
    import matplotlib.pyplot as plt
    import soundfile as sf
    import torch

    root = Path(root)
    if types is None:
        types = [t for t in layout.MACHINE_TYPES if (root / t / "test").is_dir()]
    if not types:
        raise FileNotFoundError(f"root: no <type>/test folders in {root}")
    machine_ids = machine_ids or {}
    synthetic = (root / "synth_info.json").exists()
    if fig is None:
        fig = plt.figure(figsize=(7.5, 1.8 * len(types)), layout="constrained")
    axes = np.asarray(fig.subplots(len(types), 2, squeeze=False))
    logmel = LogMel()
    for row, machine_type in enumerate(types):
        folder = root / machine_type / "test"
        normal = _first_clip(folder, "normal", machine_ids.get(machine_type), number)
        # the anomalous clip of the same ID as the normal one
        anomaly = _first_clip(folder, "anomaly", normal[0], number)
        images = []
        for machine_id, clip_number, path in (normal, anomaly):
            wav, rate = sf.read(str(path), dtype="float32")
            with torch.no_grad():
                # [1, samples] -> [mels, frames]
                images.append((logmel(torch.from_numpy(wav)[None])[0].numpy(), len(wav) / rate))
        low = min(np.percentile(image, 1) for image, _ in images)
        high = max(image.max() for image, _ in images)
        for col, ((image, seconds), (machine_id, clip_number, path)) in enumerate(
                zip(images, (normal, anomaly))):
            ax = axes[row, col]
            ax.imshow(image, origin="lower", aspect="auto", cmap="magma", vmin=low, vmax=high,
                      extent=(0, seconds, 0, image.shape[0]))
            label = path.name.split("_")[0]
            title = f"{machine_type} {machine_id} {label} #{clip_number}"
            if synthetic and label == "anomaly":
                title += f" ({synth.anomaly_kind(machine_type, clip_number).replace('_', ' ')})"
            ax.set_title(title, fontsize=9)
            ax.set_ylabel("Mel band" if col == 0 else "")
            ax.set_xlabel("time (s)" if row == len(types) - 1 else "")
    return fig


# --------------------------------------------------------------------------------------------
# Chapters 3-7: the input features, ArcFace, mixup, ArcMix and Noisy-ArcMix
# --------------------------------------------------------------------------------------------

__all__ += [
    "plot_mel_filterbank",
    "plot_feature_maps",
    "plot_frame_weights",
    "plot_margin_curve",
    "plot_toy_embeddings",
    "plot_angle_histograms",
    "plot_toy_runs",
    "plot_beta",
    "plot_mix_path",
    "plot_lambda_curves",
]


def _new_axes(ax, figsize=(6, 3.5)):
    """``ax`` itself, or the Axes of a new figure."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _numpy(x):
    """A tensor or array-like as a float64 NumPy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def plot_mel_filterbank(fbank, sample_rate=16000, every=8, ax=None):
    """The triangular filters of a Mel filter bank, against frequency (chapter 3).

    Args:
        fbank: the filter bank, ``[freqs, mels]`` (``n_fft // 2 + 1`` frequency bins).
        sample_rate: sampling rate in Hz (the bins span 0 to ``sample_rate / 2``).
        every: draw every ``every``-th filter (all of them are hard to tell apart).
        ax: the Axes to draw into (default: a new figure).

    Returns:
        The Axes.
    """
    ax = _new_axes(ax)
    fbank = _numpy(fbank)
    freqs = np.linspace(0, sample_rate / 2, fbank.shape[0])
    for m in range(0, fbank.shape[1], every):
        ax.plot(freqs, fbank[:, m], lw=1)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("filter weight")
    ax.set_title(f"Mel filter bank: every {every}th of {fbank.shape[1]} filters", fontsize=10)
    return ax


def plot_feature_maps(maps, titles, seconds=None, fig=None):
    """Feature maps side by side, each with its own colour scale (chapter 3).

    Args:
        maps: a list of ``[mels, frames]`` maps (tensors or arrays).
        titles: one title per map.
        seconds: clip length, for a time axis in seconds (default: frame numbers).
        fig: a Figure to draw into (default: a new one).

    Returns:
        The Figure.
    """
    import matplotlib.pyplot as plt

    if len(maps) != len(titles):
        raise ValueError(f"got {len(maps)} maps but {len(titles)} titles")
    if fig is None:
        fig = plt.figure(figsize=(min(8.0, 2.8 * len(maps)), 2.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(maps)))
    for ax, image, title in zip(axes, maps, titles):
        image = _numpy(image)
        extent = None if seconds is None else (0, seconds, 0, image.shape[0])
        shown = ax.imshow(image, origin="lower", aspect="auto", cmap="magma", extent=extent)
        fig.colorbar(shown, ax=ax, shrink=0.85)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("time (s)" if seconds is not None else "frame")
    axes[0].set_ylabel("band")
    return fig


def plot_frame_weights(weights, seconds=None, ylim=None, ax=None):
    """Per-frame weights of the temporal attention (TAgram), one line per clip (chapter 3).

    Args:
        weights: ``{label: [frames] weights}``, e.g. ``{"normal": w1, "anomaly": w2}``.
        seconds: clip length, for a time axis in seconds (default: frame numbers).
        ylim: (low, high) of the weight axis (default: fitted to the weights).
        ax: the Axes to draw into (default: a new figure).

    Returns:
        The Axes.
    """
    ax = _new_axes(ax, figsize=(7, 3))
    for label, weight in weights.items():
        weight = _numpy(weight)
        time = np.arange(len(weight)) if seconds is None else np.linspace(0, seconds, len(weight))
        ax.plot(time, weight, lw=1.2, label=label)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("time (s)" if seconds is not None else "frame")
    ax.set_ylabel("frame weight $w_t$")
    ax.legend(fontsize=9)
    return ax


def plot_margin_curve(theta, curves, mark=None, ax=None):
    """Target logit (before the scale) against the angle theta (chapter 4).

    Args:
        theta: angles in radians, ``[points]``.
        curves: ``{label: [points] values}``.
        mark: an angle in radians to mark with a dashed line (e.g. pi - m), or None.
        ax: the Axes to draw into (default: a new figure).

    Returns:
        The Axes.
    """
    ax = _new_axes(ax)
    degrees = np.degrees(_numpy(theta))
    for label, values in curves.items():
        ax.plot(degrees, _numpy(values), lw=1.5, label=label)
    if mark is not None:
        ax.axvline(np.degrees(float(mark)), color="grey", ls="--", lw=1)
        ax.annotate(f"{np.degrees(float(mark)):.0f}°", (np.degrees(float(mark)), 0.9),
                    xytext=(4, 0), textcoords="offset points", color="grey", fontsize=9)
    ax.set_xlabel(r"angle to the target class $\theta_y$ (degrees)")
    ax.set_ylabel("target logit / scale")
    ax.legend(fontsize=9)
    return ax


def plot_toy_embeddings(embedding, labels, weight, anomalies=None, title=None, ax=None):
    """2-D toy embeddings on the unit circle, coloured by class, with the class weights.

    Every embedding is drawn at its angle, at a radius slightly above 1 (a small random
    jitter shows where points pile up); the class weights are arrows of length 1
    (chapters 4-7).

    Args:
        embedding: ``[points, 2]`` embeddings (any length; only the angle is drawn).
        labels: ``[points]`` class of each embedding.
        weight: ``[classes, 2]`` class weights.
        anomalies: optional ``[points, 2]`` embeddings drawn as grey crosses, inside the circle.
        title: Axes title.
        ax: the Axes to draw into (default: a new square figure).

    Returns:
        The Axes.
    """
    ax = _new_axes(ax, figsize=(4, 4))
    rng = np.random.default_rng(0)
    colors = [f"C{k}" for k in range(10)]
    circle = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(circle), np.sin(circle), color="lightgrey", lw=1)
    embedding, labels, weight = _numpy(embedding), _numpy(labels).astype(int), _numpy(weight)
    angle = np.arctan2(embedding[:, 1], embedding[:, 0])
    radius = 1.05 + 0.12 * rng.random(len(angle))
    for k in range(weight.shape[0]):
        mine = labels == k
        ax.scatter(radius[mine] * np.cos(angle[mine]), radius[mine] * np.sin(angle[mine]), s=4,
                   color=colors[k % 10], alpha=0.6, label=f"class {k}")
        direction = weight[k] / np.linalg.norm(weight[k])
        ax.annotate("", xy=tuple(direction), xytext=(0, 0),
                    arrowprops=dict(arrowstyle="->", color=colors[k % 10], lw=1.5))
    if anomalies is not None:
        anomalies = _numpy(anomalies)
        angle = np.arctan2(anomalies[:, 1], anomalies[:, 0])
        radius = 0.8 + 0.12 * rng.random(len(angle))
        ax.scatter(radius * np.cos(angle), radius * np.sin(angle), s=6, marker="x",
                   color="dimgrey", alpha=0.5, lw=0.7, label="anomalies")
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_angle_histograms(angles, bins=36, title=None, ax=None):
    """Overlaid histograms of angles (given in radians, drawn in degrees) (chapters 4-7).

    Args:
        angles: ``{label: [points] angles in radians}``.
        bins: number of bins between 0 and 180 degrees.
        title: Axes title.
        ax: the Axes to draw into (default: a new figure).

    Returns:
        The Axes.
    """
    ax = _new_axes(ax)
    edges = np.linspace(0, 180, bins + 1)
    for label, values in angles.items():
        ax.hist(np.degrees(_numpy(values)), bins=edges, density=True, histtype="step", lw=1.5,
                label=label)
    ax.set_xlabel(r"angle to the own class weight $\theta_y$ (degrees)")
    ax.set_ylabel("density")
    ax.legend(fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_toy_runs(runs, fig=None):
    """Trained 2-D toys side by side: embeddings with anomalies above, angle histograms below.

    One column per run: the held-out normal points and anomalies on the circle
    (`plot_toy_embeddings`), and the histograms of their angles to the own class weight
    (`plot_angle_histograms`) (chapters 6 and 7).

    Args:
        runs: ``{title: asdlib.toy.ToyResult}``.
        fig: a Figure to draw into (default: a new one).

    Returns:
        The Figure.
    """
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(min(8.0, 2.8 * len(runs)), 5.8), layout="constrained")
    axes = np.asarray(fig.subplots(2, len(runs), squeeze=False))
    for column, (title, run) in enumerate(runs.items()):
        plot_toy_embeddings(run.embedding["test"], run.labels["test"], run.weight,
                            anomalies=run.embedding["anomaly"], title=title, ax=axes[0, column])
        angles = {"normal": run.angles("test"), "anomaly": run.angles("anomaly")}
        plot_angle_histograms(angles, title=f"{title}: angle to the own class", ax=axes[1, column])
    return fig


def plot_beta(alpha, samples=None, ax=None):
    """Density of Beta(alpha, alpha), with a histogram of samples if given (chapter 5).

    Args:
        alpha: the parameter of the symmetric Beta distribution.
        samples: optional draws of lambda, ``[draws]``.
        ax: the Axes to draw into (default: a new figure).

    Returns:
        The Axes.
    """
    from scipy import stats

    ax = _new_axes(ax)
    grid = np.linspace(0.005, 0.995, 400)
    ax.plot(grid, stats.beta(alpha, alpha).pdf(grid), lw=1.5, label=f"Beta({alpha:g}, {alpha:g}) density")
    if samples is not None:
        ax.hist(_numpy(samples), bins=25, range=(0, 1), density=True, alpha=0.4,
                label=f"{len(_numpy(samples))} samples")
    ax.set_xlabel(r"$\lambda$")
    ax.set_ylabel("density")
    ax.legend(fontsize=9)
    return ax


def plot_mix_path(lam, position, label=None, ax=None):
    """Where mixed inputs land between their two classes, against lambda (chapter 5).

    Args:
        lam: ``[points]`` mixing weights of the first input.
        position: ``[points]`` angular position between the two class weights,
            0 = on the first class, 1 = on the second.
        label: legend label.
        ax: the Axes to draw into (default: a new figure).

    Returns:
        The Axes.
    """
    ax = _new_axes(ax, figsize=(4.5, 4))
    ax.scatter(_numpy(lam), _numpy(position), s=5, alpha=0.5, label=label)
    ax.plot([0, 1], [1, 0], color="grey", ls="--", lw=1)
    ax.set_xlabel(r"$\lambda$ (weight of the first input)")
    ax.set_ylabel(r"position $\theta_a / (\theta_a + \theta_b)$")
    if label:
        ax.legend(fontsize=9)
    return ax


def plot_lambda_curves(lam, curves, ylabel, title=None, zero_line=False, ax=None):
    """Curves against the mixing weight lambda, one per loss (chapter 7).

    Args:
        lam: ``[points]`` values of lambda.
        curves: ``{label: [points] values}``.
        ylabel: what the curves are.
        title: Axes title.
        zero_line: draw a thin line at y = 0.
        ax: the Axes to draw into (default: a new figure).

    Returns:
        The Axes.
    """
    ax = _new_axes(ax)
    lam = _numpy(lam)
    for label, values in curves.items():
        ax.plot(lam, _numpy(values), lw=1.5, label=label)
    if zero_line:
        ax.axhline(0, color="lightgrey", lw=0.8)
    ax.set_xlabel(r"$\lambda$ (weight of $y_a$)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


# --------------------------------------------------------------------------------------------
# Chapters 1-2: evaluation (ROC, AUC, pAUC) and the autoencoder baseline
# --------------------------------------------------------------------------------------------

__all__ += [
    "plot_roc",
    "plot_per_id_auc",
    "plot_score_histogram",
    "plot_loss_curves",
]


def plot_roc(labels, score, max_fpr=0.1, title=None, ax=None):
    """ROC curve with the partial-AUC region (false-positive rate up to ``max_fpr``) shaded.

    The title (unless given) names the AUC and the standardised pAUC of
    ``asdlib.metrics.auc_pauc`` (chapter 1).

    Args:
        labels: ``[clips]`` 1 for an anomalous clip, 0 for a normal one.
        score: ``[clips]`` anomaly scores (larger = more anomalous).
        max_fpr: p of the partial AUC.
        title: Axes title (default: the AUC and pAUC).
        ax: the Axes to draw into (default: a new square figure).

    Returns:
        The Axes.
    """
    from sklearn.metrics import roc_curve

    ax = _new_axes(ax, figsize=(4.2, 4))
    labels, score = _numpy(labels), _numpy(score)
    auc, pauc = metrics.auc_pauc(labels.astype(int), score, max_fpr)
    fpr, tpr, _ = roc_curve(labels, score, drop_intermediate=False)
    # The curve up to FPR = p, cut there by linear interpolation
    inside = fpr <= max_fpr
    cut_fpr = np.r_[fpr[inside], max_fpr]
    cut_tpr = np.r_[tpr[inside], np.interp(max_fpr, fpr, tpr)]
    ax.fill_between(cut_fpr, cut_tpr, color="C1", alpha=0.35, lw=0,
                    label=f"partial area, FPR $\\leq$ {max_fpr:g}")
    ax.plot(fpr, tpr, color="C0", lw=1.8, label="ROC curve")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="random scores")
    ax.axvline(max_fpr, color="C1", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false-positive rate (normal clips flagged)")
    ax.set_ylabel("true-positive rate (anomalies caught)")
    ax.set_title(title or f"AUC {auc:.3f}, pAUC (p = {max_fpr:g}) {pauc:.3f}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_per_id_auc(per_id, column="auc", title=None, ax=None):
    """Bars of the AUC (or pAUC) of every machine ID, grouped and coloured by machine type.

    Args:
        per_id: a table from ``asdlib.metrics.per_id_table`` (index machine_type, machine_id),
            values in [0, 1].
        column: ``"auc"`` or ``"pauc"``.
        title: Axes title.
        ax: the Axes to draw into (default: a new wide figure).

    Returns:
        The Axes.
    """
    ax = _new_axes(ax, figsize=(7, 3.2))
    if column not in per_id.columns:
        raise ValueError(f"column must be one of {list(per_id.columns)}, got {column!r}")
    position, ticks, names = 0, [], []
    for k, machine_type in enumerate(dict.fromkeys(per_id.index.get_level_values(0))):
        values = per_id.loc[machine_type, column]
        places = position + np.arange(len(values))
        ax.bar(places, 100 * values.to_numpy(), color=f"C{k % 10}", width=0.8, label=machine_type)
        ticks += list(places)
        names += [machine_id.replace("id_", "") for machine_id in values.index]
        position += len(values) + 1
    ax.axhline(50, color="grey", ls="--", lw=1)
    ax.set_xticks(ticks, names, fontsize=8)
    ax.set_xlabel("machine ID")
    ax.set_ylabel(f"{'AUC' if column == 'auc' else 'pAUC'} (%)")
    # Room above 100 % for the legend
    ax.set_ylim(0, 118)
    ax.set_yticks(range(0, 101, 20))
    ax.legend(fontsize=8, ncol=6, loc="upper center", frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_score_histogram(results, machine_type, machine_id=None, bins=20, ax=None):
    """Histograms of the anomaly scores of the normal and the anomalous test clips of a machine.

    Args:
        results: a results frame (columns machine_type, machine_id, label, score).
        machine_type: the machine type.
        machine_id: one ID of that type (default: all its IDs together).
        bins: number of bins (shared by both histograms).
        ax: the Axes to draw into (default: a new figure).

    Returns:
        The Axes.
    """
    ax = _new_axes(ax, figsize=(5, 3))
    chosen = results[results["machine_type"] == machine_type]
    if machine_id is not None:
        chosen = chosen[chosen["machine_id"] == machine_id]
    if chosen.empty:
        raise ValueError(f"results hold no clip of {machine_type} {machine_id or ''}".strip())
    edges = np.histogram_bin_edges(chosen["score"].to_numpy(dtype=np.float64), bins=bins)
    for label, name, color in ((0, "normal", "C0"), (1, "anomaly", "C3")):
        values = chosen.loc[chosen["label"] == label, "score"].to_numpy(dtype=np.float64)
        ax.hist(values, bins=edges, alpha=0.55, color=color, label=f"{name} ({len(values)})")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("clips")
    ax.set_title(f"{machine_type} {machine_id or '(all IDs)'}", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def plot_loss_curves(losses, ylabel="training loss", logy=False, ax=None):
    """Training loss against the epoch, one line per model (e.g. per machine type).

    Args:
        losses: ``{label: [epochs] losses}``.
        ylabel: what the loss is.
        logy: logarithmic y axis.
        ax: the Axes to draw into (default: a new figure).

    Returns:
        The Axes.
    """
    ax = _new_axes(ax, figsize=(5, 3))
    for label, values in losses.items():
        values = _numpy(values)
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, lw=1.2, label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return ax


# --------------------------------------------------------------------------------------------
# Chapters 8-10: training curves, angle distributions, embedding maps, the ablation
# --------------------------------------------------------------------------------------------

__all__ += [
    "plot_training_curves",
    "plot_angle_distributions",
    "plot_embedding_map",
    "plot_ablation",
    "plot_memory_footprint",
]


def plot_training_curves(history, columns, ylabel, title=None, mark_best=True, ax=None):
    """Columns of a training history against the epoch (chapter 8).

    Args:
        history: the per-epoch DataFrame of ``asdlib.train.train`` (columns ``epoch``, ``lr``,
            ``train_loss``, ``val_loss``, ``val_accuracy``, ``best``, ...).
        columns: ``{column: legend label}`` (or a list of column names) to draw.
        ylabel: what the values are.
        title: Axes title.
        mark_best: draw a dotted line at the epoch of the kept (``best``) checkpoint.
        ax: the Axes to draw into (default: a new figure).

    Returns:
        The Axes.
    """
    from matplotlib.ticker import MaxNLocator

    ax = _new_axes(ax, figsize=(5, 3))
    if not isinstance(columns, dict):
        columns = {column: column for column in columns}
    missing = [column for column in columns if column not in history.columns]
    if missing:
        raise ValueError(f"history has no column(s) {missing}; it has {list(history.columns)}")
    epochs = history["epoch"].to_numpy()
    for column, label in columns.items():
        ax.plot(epochs, _numpy(history[column]), marker="o", ms=3, lw=1.4, label=label)
    if mark_best and "best" in history.columns and history["best"].astype(bool).any():
        best = int(epochs[np.flatnonzero(history["best"].astype(bool).to_numpy())[-1]])
        ax.axvline(best, color="grey", ls=":", lw=1, label=f"kept checkpoint (epoch {best})")
    # Whole epochs only on the x axis
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_angle_distributions(angles, bins=30, title=None, ax=None, medians_only=None):
    """Histograms of angles (radians in, degrees drawn) on shared bins, with their medians.

    Unlike :func:`plot_angle_histograms` (fixed 0-180 degree bins, chapters 4-7), the bins
    span the range of the data, so narrow distributions of a trained network stay readable
    (chapter 9).

    Args:
        angles: ``{label: [clips] angles in radians}``, drawn as histograms.
        bins: number of bins, shared by all histograms.
        title: Axes title.
        ax: the Axes to draw into (default: a new figure).
        medians_only: ``{label: [clips] angles}`` drawn only as their median (a dotted line),
            e.g. the training clips, whose narrow peak would set the y-scale for the others.

    Returns:
        The Axes.
    """
    ax = _new_axes(ax, figsize=(5, 3.2))
    degrees = {label: np.degrees(_numpy(values)) for label, values in angles.items()}
    every = np.concatenate([values for values in degrees.values() if len(values)])
    edges = np.histogram_bin_edges(every, bins=bins)
    for k, (label, values) in enumerate(degrees.items()):
        color = f"C{k % 10}"
        ax.hist(values, bins=edges, density=True, histtype="step", lw=1.6, color=color,
                label=f"{label} ({len(values)}, median {np.median(values):.1f}°)")
        ax.axvline(np.median(values), color=color, ls="--", lw=1)
    for label, values in (medians_only or {}).items():
        median = float(np.median(np.degrees(_numpy(values))))
        ax.axvline(median, color="0.3", ls=":", lw=1.2, label=f"{label}: median {median:.1f}°")
    ax.set_xlabel(r"angle to the own class $\theta_y$ (degrees)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_embedding_map(xy, groups, anomalous, title=None, ax=None):
    """A 2-D map of embeddings (e.g. UMAP): colour = machine type, one label per machine ID.

    Normal clips are small faded dots in their type's colour; anomalous clips are triangles in
    the same colour with a black edge, so that an anomaly lying inside the cluster of its own
    machine stands out. Every machine ID is labelled at the median of its normal clips with its
    number; the legend names the types (chapter 9).

    Args:
        xy: ``[clips, 2]`` map coordinates.
        groups: ``[clips]`` group of each clip, ``"<type> id_XX"`` (a plain name is its own type).
        anomalous: ``[clips]`` 1 (or True) for an anomalous clip, 0 for a normal one.
        title: Axes title.
        ax: the Axes to draw into (default: a new square figure).

    Returns:
        The Axes.
    """
    ax = _new_axes(ax, figsize=(5, 5))
    xy = _numpy(xy)
    groups = np.asarray(groups)
    anomalous = np.asarray(anomalous).astype(bool)
    if not (len(xy) == len(groups) == len(anomalous)) or xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"xy must be [clips, 2] and groups, anomalous [clips]; got {xy.shape}, "
                         f"{groups.shape}, {anomalous.shape}")
    types = np.array([str(g).split(" ")[0] for g in groups])
    order = metrics.type_order(set(types.tolist()))
    colours = {t: f"C{k % 10}" for k, t in enumerate(order)}
    for machine_type in order:
        mine = types == machine_type
        ax.scatter(*xy[mine & ~anomalous].T, s=8, color=colours[machine_type], alpha=0.35, lw=0,
                   label=machine_type)
        ax.scatter(*xy[mine & anomalous].T, s=22, color=colours[machine_type], marker="^",
                   edgecolors="k", linewidths=0.5)
    for name in dict.fromkeys(groups.tolist()):
        normal = (groups == name) & ~anomalous
        if normal.any():
            x, y = np.median(xy[normal], axis=0)
            ax.text(x, y, str(name).split("_")[-1], fontsize=7, ha="center", va="center",
                    fontweight="bold", color="k")
    ax.scatter([], [], s=22, color="white", marker="^", edgecolors="k", linewidths=0.5,
               label="anomalous (type's colour)")
    ax.legend(fontsize=7, loc="best", markerscale=1.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"{len(set(groups.tolist()))} machine IDs", fontsize=10)
    return ax


def plot_ablation(mean, std=None, metric="AUC", paper=None, ax=None):
    """Grouped bars: one group per machine type (and the average), one bar per method (chapter 10).

    Args:
        mean: a table in the layout of ``asdlib.tables.paper_table`` (rows = methods,
            columns = (machine_type, "AUC" / "pAUC"), values in %).
        std: the same layout with a spread or a standard error (``asdlib.tables.standard_errors``),
            drawn as error bars (or None).
        metric: ``"AUC"`` or ``"pAUC"``.
        paper: optional table of the same layout (``asdlib.tables.published``); its
            rows with the same names as ``mean`` are drawn as diamonds in the bar's colour.
        ax: the Axes to draw into (default: a new wide figure).

    Returns:
        The Axes.
    """
    ax = _new_axes(ax, figsize=(8, 3.6))
    if metric not in ("AUC", "pAUC"):
        raise ValueError(f"metric must be 'AUC' or 'pAUC', got {metric!r}")
    types = list(dict.fromkeys(mean.columns.get_level_values(0)))
    methods = list(mean.index)
    width = 0.8 / max(len(methods), 1)
    places = np.arange(len(types))
    paper_label = "paper (real DCASE data)"
    for k, method in enumerate(methods):
        shift = places - 0.4 + (k + 0.5) * width
        values = [mean.loc[method, (t, metric)] for t in types]
        errors = None if std is None else [std.loc[method, (t, metric)] for t in types]
        ax.bar(shift, values, width=width * 0.95, yerr=errors, capsize=2, color=f"C{k % 10}",
               label=str(method), error_kw={"lw": 0.8})
        if paper is not None and method in paper.index:
            published = [paper.loc[method].get((t, metric), np.nan) for t in types]
            # In the bar's own colour with a black edge: whose number it is stays readable
            ax.scatter(shift, published, marker="D", s=22, color=f"C{k % 10}", edgecolors="k",
                       linewidths=0.8, zorder=3, label=paper_label)
            # One legend entry for all the paper's diamonds
            paper_label = None
    shown = [mean.xs(metric, axis=1, level=1).to_numpy()]
    if paper is not None:
        shown.append(paper.reindex(methods).xs(metric, axis=1, level=1).to_numpy(dtype=float))
    low = min(np.nanmin(v) for v in shown)
    high = max(np.nanmax(v) for v in shown)
    # Up to 100 %, and past it when the paper's numbers or the bars reach it: nothing clipped
    ax.set_ylim(max(0.0, min(50.0, low - 5)), max(100.0, high + 2))
    ax.axhline(50, color="grey", ls="--", lw=0.8)
    ax.set_xticks(places, types)
    ax.set_ylabel(f"{metric} (%)")
    # Outside the bars, on the right
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_memory_footprint(sizes, title=None, ax=None):
    """Horizontal bars of memory or disk sizes, in GB, each labelled with its value (chapter 11).

    Args:
        sizes: ``{label: bytes}``.
        title: Axes title.
        ax: the Axes to draw into (default: a new figure).

    Returns:
        The Axes.
    """
    ax = _new_axes(ax, figsize=(8, 0.6 + 0.55 * len(sizes)))
    labels = list(sizes)
    values = np.array([float(sizes[label]) for label in labels]) / 1e9
    places = np.arange(len(labels))[::-1]
    ax.barh(places, values, color=[f"C{k % 10}" for k in range(len(labels))], height=0.6)
    for place, value in zip(places, values):
        ax.annotate(f"{value:,.1f} GB" if value >= 0.1 else f"{1000 * value:,.0f} MB",
                    (value, place), xytext=(4, 0), textcoords="offset points", va="center",
                    fontsize=9)
    ax.set_yticks(places, labels, fontsize=9)
    ax.set_xlabel("GB (10^9 bytes)")
    ax.set_xlim(0, 1.2 * max(values.max(), 1e-9))
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_learning_curve(table, real_data=None, paper=None, ax=None):
    """Average AUC of the two reference models against the training clips per machine ID.

    Args:
        table: `asdlib.curve.curve_table()` (one row per point: ``train_per_id``, ``ids``,
            ``individuality``, ``autoencoder`` / ``network`` and their ``_se``).
        real_data: clips of the same length per machine ID in the real data (a vertical line).
        paper: optional ``{label: AUC}`` drawn as horizontal dotted lines, labelled as the
            paper's (other data: the real DCASE 2020 development set).
        ax: Axes to draw into.

    The book's machines with the development IDs are the lines (with bootstrap SE bars); the
    factors are single markers: all 41 IDs in the classifier (squares) and strong individuality
    (triangles), the autoencoder in grey and the network in colour.
    """
    ax = _new_axes(ax, figsize=(6.5, 4))
    colours = {"autoencoder": "0.35", "network": "C0"}
    names = {"autoencoder": "DCASE 2020 autoencoder", "network": "STgram + ArcFace"}
    main = table[(table["ids"] == "dev") & (table["individuality"] == "kept")].sort_values("train_per_id")
    for model in ("autoencoder", "network"):
        ax.errorbar(main["train_per_id"], main[model], yerr=main[f"{model}_se"], marker="o",
                    color=colours[model], capsize=3, label=names[model])
    for (column, value), marker, what in ((("ids", "all"), "s", "41 IDs in the classifier"),
                                          (("individuality", "strong"), "^", "strong individuality")):
        rows = table[table[column] == value]
        for model in ("autoencoder", "network"):
            if model == "autoencoder" and column == "ids":
                continue  # the 41-ID points share the development IDs' autoencoder
            if len(rows):
                ax.errorbar(rows["train_per_id"], rows[model], yerr=rows[f"{model}_se"],
                            marker=marker, linestyle="none", color=colours[model], capsize=3,
                            mfc="white", label=f"{names[model]}, {what}")
    if real_data:
        ax.axvline(real_data, color="k", linestyle="--", linewidth=1)
        ax.text(real_data, ax.get_ylim()[1], "real data ", rotation=90, va="top", ha="right",
                fontsize=8)
    for (label, value), style in zip((paper or {}).items(), (":", "-.")):
        ax.axhline(value, color="C3", linestyle=style, linewidth=1, label=f"{label} (paper, real data)")
    ax.set_xscale("log")
    ax.set_xlabel("normal training clips of 2 s per machine ID")
    ax.set_ylabel("average AUC (%)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return ax
