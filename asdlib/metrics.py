r"""DCASE 2020 Task 2 evaluation: AUC, pAUC, per-ID, per-type and pooled tables.

Explained in chapter 1. The task: Y. Koizumi et al., "Description and Discussion on DCASE2020
Challenge Task2: Unsupervised Anomalous Sound Detection for Machine Condition Monitoring",
DCASE 2020 Workshop (https://arxiv.org/abs/2006.05822). The tables reproduce the layout of
S. Choi and J.-W. Choi, "Noisy-ArcMix", ICASSP 2024.

A clip's anomaly ``score`` is larger for clips that look more anomalous; ``label`` is 1 for an
anomalous clip and 0 for a normal one. The area under the ROC curve is the probability that a
random anomalous clip scores higher than a random normal one (ties count one half):

.. math:: \mathrm{AUC} = \frac{1}{N_- N_+} \sum_{i=1}^{N_-} \sum_{j=1}^{N_+}
          H(s(x_j^+) - s(x_i^-)), \qquad H(0) = 1/2

The partial AUC looks only at false-positive rates up to ``max_fpr`` = p = 0.1. We use
scikit-learn's ``roc_auc_score(..., max_fpr=p)``, the McClish-standardised partial area that
the DCASE 2020 baseline code (and the STgram-MFN and Noisy-ArcMix code after it) computes:

.. math:: \mathrm{pAUC} = \frac{1}{2}\Bigl(1 + \frac{A_p - p^2/2}{p - p^2/2}\Bigr),
          \qquad A_p = \int_0^p \mathrm{TPR}\, d\,\mathrm{FPR}

(0.5 for a random detector, 1 for a perfect one). Note: the task description writes pAUC as
A_p / p instead; the published numbers come from the code, so we follow the code.

Two ways to summarise a machine type, which give different numbers:

- ``per_id_mean`` (the DCASE 2020 protocol, used by STgram-MFN): AUC and pAUC per machine ID,
  then the arithmetic mean over the type's IDs.
- ``pooled`` (what the Noisy-ArcMix authors' evaluation script computes): all test clips of
  the type pooled into one ROC curve.

The tables built from these (the paper's layout, means and spreads over seeds, the published
numbers) are in :mod:`asdlib.tables`.

A *results frame* is a ``pandas.DataFrame`` with one row per test clip and the columns
``machine_type, machine_id, label, score`` (extra columns such as ``path`` are ignored).
"""

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

__all__ = [
    "PROTOCOLS",
    "PROTOCOL_COLUMNS",
    "RESULT_COLUMNS",
    "TABLE_TYPES",
    "auc_pauc",
    "check_protocol",
    "per_id_table",
    "per_type_table",
    "type_order",
    "weighted_auc_pauc",
]

# Column order of the paper's tables (the class-label order, in asdlib.layout, differs).
TABLE_TYPES = ("fan", "pump", "slider", "valve", "ToyCar", "ToyConveyor")

# Columns every results frame must have.
RESULT_COLUMNS = ("machine_type", "machine_id", "label", "score")

# The two ways to summarise a machine type, and the per_type_table columns they read.
PROTOCOLS = ("per_id_mean", "pooled")
PROTOCOL_COLUMNS = {
    "per_id_mean": ("per_id_mean_auc", "per_id_mean_pauc"),
    "pooled": ("pooled_auc", "pooled_pauc"),
}


def auc_pauc(labels, score, max_fpr=0.1):
    """AUC and standardised partial AUC of one set of clips.

    Args:
        labels: 1 for an anomalous clip, 0 for a normal one.
        score: Anomaly score of each clip (larger = more anomalous).
        max_fpr: p, the largest false-positive rate of the partial AUC, in (0, 1].

    Returns:
        ``(auc, pauc)`` as Python floats in [0, 1].

    Shapes:
        - labels: [clips]
        - score: [clips]
    """
    labels = np.asarray(labels)
    score = np.asarray(score, dtype=np.float64)
    if labels.ndim != 1 or score.ndim != 1:
        raise ValueError(
            f"labels and score must be 1-D, got shapes {labels.shape} and {score.shape}"
        )
    if len(labels) != len(score):
        raise ValueError(
            f"labels has {len(labels)} entries but score has {len(score)}; expected one each"
        )
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 (normal) or 1 (anomaly), got {np.unique(labels)}")
    if not np.isfinite(score).all():
        raise ValueError(f"score has {int((~np.isfinite(score)).sum())} NaN or infinite values")
    if len(np.unique(labels)) < 2:
        present = "normal (0)" if len(labels) and labels[0] == 0 else "anomaly (1)"
        raise ValueError(
            f"labels hold one class only ({present} or empty); AUC needs normal and "
            "anomalous clips"
        )
    if not 0.0 < float(max_fpr) <= 1.0:
        raise ValueError(f"max_fpr must lie in (0, 1], got {max_fpr!r}")
    auc = roc_auc_score(labels, score)
    pauc = roc_auc_score(labels, score, max_fpr=max_fpr)
    return float(auc), float(pauc)


def _check_frame(frame):
    """Check that `frame` is a results frame; raise a ValueError naming what is wrong."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [column for column in RESULT_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(
            f"frame is missing columns {missing}; a results frame has {list(RESULT_COLUMNS)}"
        )
    if len(frame) == 0:
        raise ValueError("frame has no rows")
    if not frame["label"].isin((0, 1)).all():
        raise ValueError(
            f"frame column 'label' must be 0 (normal) or 1 (anomaly), got "
            f"{sorted(frame['label'].unique().tolist(), key=str)}"
        )
    if not pd.api.types.is_numeric_dtype(frame["score"]):
        raise ValueError(f"frame column 'score' must be numeric, got dtype {frame['score'].dtype}")
    bad = ~np.isfinite(frame["score"].to_numpy(dtype=np.float64))
    if bad.any():
        first = frame[bad].iloc[0]
        raise ValueError(
            f"frame column 'score' has {int(bad.sum())} NaN or infinite values (first: "
            f"{first['machine_type']} {first['machine_id']})"
        )


def type_order(machine_types):
    """The paper's type order for the types present, then unknown types as they appear."""
    present = list(dict.fromkeys(machine_types))
    known = [machine_type for machine_type in TABLE_TYPES if machine_type in present]
    return known + [machine_type for machine_type in present if machine_type not in TABLE_TYPES]


def _auc_pauc_of(clips, what, max_fpr):
    """auc_pauc of the clips of a results frame, naming the group in any error."""
    try:
        return auc_pauc(clips["label"].to_numpy(), clips["score"].to_numpy(), max_fpr)
    except ValueError as error:
        raise ValueError(f"{what}: {error}") from None


def per_id_table(frame, max_fpr=0.1):
    """AUC and pAUC of every (machine type, machine ID): the DCASE 2020 unit of evaluation.

    Args:
        frame: Results frame (columns machine_type, machine_id, label, score).
        max_fpr: p of the partial AUC.

    Returns:
        DataFrame indexed by (machine_type, machine_id), types in ``TABLE_TYPES`` order and
        IDs sorted, with columns ``auc``, ``pauc`` (fractions in [0, 1]), ``n_normal``,
        ``n_anomaly``.
    """
    _check_frame(frame)
    rows = []
    groups = frame.groupby(["machine_type", "machine_id"], sort=False)
    for machine_type in type_order(frame["machine_type"]):
        for machine_id in sorted(key[1] for key in groups.groups if key[0] == machine_type):
            # All test clips of this machine.
            clips = groups.get_group((machine_type, machine_id))
            auc, pauc = _auc_pauc_of(clips, f"{machine_type} {machine_id}", max_fpr)
            rows.append(
                {
                    "machine_type": machine_type,
                    "machine_id": machine_id,
                    "auc": auc,
                    "pauc": pauc,
                    "n_normal": int((clips["label"] == 0).sum()),
                    "n_anomaly": int((clips["label"] == 1).sum()),
                }
            )
    return pd.DataFrame(rows).set_index(["machine_type", "machine_id"])


def per_type_table(frame, max_fpr=0.1):
    """Per machine type: the DCASE 2020 per-ID means, the minimum, and the pooled values.

    Columns (fractions in [0, 1]):

    - ``per_id_mean_auc``, ``per_id_mean_pauc``: arithmetic mean over the type's IDs of the
      per-ID AUC / pAUC (DCASE 2020 protocol, ``protocol="per_id_mean"``).
    - ``mauc``: the minimum per-ID AUC of the type (its worst machine).
    - ``pooled_auc``, ``pooled_pauc``: one ROC curve over all test clips of the type, IDs
      pooled (the Noisy-ArcMix evaluation script, ``protocol="pooled"``).
    - ``n_ids``, ``n_normal``, ``n_anomaly``: counts.

    Args:
        frame: Results frame.
        max_fpr: p of the partial AUC.

    Returns:
        DataFrame indexed by machine_type, in ``TABLE_TYPES`` order.
    """
    per_id = per_id_table(frame, max_fpr)
    rows = []
    for machine_type in type_order(frame["machine_type"]):
        ids = per_id.loc[machine_type]
        # All IDs of the type in one ROC curve.
        clips = frame[frame["machine_type"] == machine_type]
        pooled_auc, pooled_pauc = _auc_pauc_of(clips, f"{machine_type} (pooled)", max_fpr)
        rows.append(
            {
                "machine_type": machine_type,
                "per_id_mean_auc": float(ids["auc"].mean()),
                "per_id_mean_pauc": float(ids["pauc"].mean()),
                "mauc": float(ids["auc"].min()),
                "pooled_auc": pooled_auc,
                "pooled_pauc": pooled_pauc,
                "n_ids": len(ids),
                "n_normal": int(ids["n_normal"].sum()),
                "n_anomaly": int(ids["n_anomaly"].sum()),
            }
        )
    return pd.DataFrame(rows).set_index("machine_type")


def check_protocol(protocol):
    """Raise a ValueError naming the choices unless ``protocol`` is one of ``PROTOCOLS``."""
    if protocol not in PROTOCOL_COLUMNS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


def weighted_auc_pauc(labels, score, weights, max_fpr=0.1):
    """AUC and standardised pAUC of one set of clips under many weightings at once.

    Row ``b`` of ``weights`` gives every clip a weight (a bootstrap replicate gives clip ``i``
    the number of times it was drawn); the result is what :func:`auc_pauc` would give on that
    weighted sample (scikit-learn's ``roc_auc_score(..., sample_weight=w)``, ties included),
    for all rows in one vectorised pass. Used for the bootstrap standard errors of
    :mod:`asdlib.tables`.

    Args:
        labels: 1 for an anomalous clip, 0 for a normal one.
        score: anomaly score of each clip.
        weights: non-negative weights, one row per weighting.
        max_fpr: p of the partial AUC.

    Returns:
        ``(auc, pauc)``, two float64 arrays ``[rows]`` (NaN for a row that gives all normal or
        all anomalous clips weight 0).

    Shapes:
        - labels, score: [clips]; weights: [rows, clips]; outputs: [rows]
    """
    labels = np.asarray(labels)
    score = np.asarray(score, dtype=np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if weights.shape[1] != len(score) or len(labels) != len(score):
        raise ValueError(f"labels ({len(labels)}), score ({len(score)}) and weights "
                         f"({weights.shape[1]} per row) must have one entry per clip")
    # Clips in order of decreasing score; one ROC point per distinct score (ties together)
    order = np.argsort(-score, kind="mergesort")
    sorted_score = score[order]
    positive = labels[order] == 1
    last_of_group = np.r_[np.flatnonzero(np.diff(sorted_score)), len(score) - 1]
    rows = len(weights)

    def counts(of_class):
        """Weight of the clips of one class at or above each ROC point: [rows, points]."""
        running = np.zeros((rows, int(of_class.sum()) + 1))
        np.cumsum(weights[:, order[of_class]], axis=1, out=running[:, 1:])
        return running[:, np.cumsum(of_class)[last_of_group]]

    tps, fps = counts(positive), counts(~positive)
    with np.errstate(invalid="ignore", divide="ignore"):  # a row without one class: NaN
        # The trapezoids under the ROC curve, from (0, 0), in weights; then as fractions
        area = (np.sum(np.diff(fps, axis=1) * (tps[:, 1:] + tps[:, :-1]), axis=1)
                + fps[:, 0] * tps[:, 0])
        auc = area / (2 * tps[:, -1] * fps[:, -1])
        fpr = fps / fps[:, -1:]
    # The partial area: only segments that start below max_fpr add to it
    points = min(int((fpr < max_fpr).sum(axis=1).max()) + 1, fpr.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.concatenate([np.zeros((rows, 1)), tps[:, :points] / tps[:, -1:]], axis=1)
    fpr = np.concatenate([np.zeros((rows, 1)), fpr[:, :points]], axis=1)
    x0, x1, y0, y1 = fpr[:, :-1], fpr[:, 1:], tpr[:, :-1], tpr[:, 1:]
    # Every segment clipped at x = max_fpr, linearly interpolated
    c0, c1 = np.minimum(x0, max_fpr), np.minimum(x1, max_fpr)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(x1 > x0, (y1 - y0) / (x1 - x0), 0.0)
    partial = np.sum((c1 - c0) * (2 * y0 + slope * (c0 - x0 + c1 - x0)) / 2, axis=1)
    # McClish standardisation, as roc_auc_score(max_fpr=...)
    min_area, max_area = 0.5 * max_fpr**2, max_fpr
    pauc = 0.5 * (1 + (partial - min_area) / (max_area - min_area))
    return auc, pauc
