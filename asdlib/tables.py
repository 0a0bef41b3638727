"""Every table of the book: the paper's layout, means and spreads over seeds, the published numbers.

Chapters 1, 2 and 8-11 print their results with these; `asdlib.metrics` holds the AUC / pAUC
maths they are built from. The layout is that of the tables of S. Choi and J.-W. Choi,
"Noisy-ArcMix", ICASSP 2024: one row per method, the columns (machine type, AUC / pAUC) in the
order fan, pump, slider, valve, ToyCar, ToyConveyor, then ``Average``, values in percent.

- `paper_table`: runs (or results frames) in that layout, one row each, or the mean over the
  seeds of a list of runs;
- `seed_summary`: mean and sample standard deviation over seeds, in that layout;
- `published`: the paper's own numbers (real DCASE 2020 data), in that layout;
- `type_summary`: one run per machine type under both protocols, with the worst ID;
- `bootstrap` and `standard_errors`: the standard error of every entry of those tables, from a
  bootstrap over the seeds and the test clips; `standard_error` of a plain mean;
- `mean_pm`: "mean ± spread" strings for printing.

**Standard errors.** A table entry computed from runs varies for two reasons: another training
seed gives another network, and another draw of test clips would give other AUCs. `bootstrap`
repeats the computation on resampled data: each replicate draws the seeds with replacement and,
for every machine ID, its normal and its anomalous test clips with replacement (the same clips
for every variant and seed, since all runs score the same clips), and recomputes the entry. The
standard deviation of the replicates is the entry's standard error; the replicates of two
variants, drawn together, give the standard error of their paired difference. The replicates
are a pure function of the scores and the arguments, so they are kept in the store
(`asdlib.store`, under ``$ASDLIB_HOME/bootstrap``) and read back when a chapter runs again.

Wherever a function takes results, a results frame (``machine_type, machine_id, label, score``),
an `asdlib.runfolder.Run` (its scores are used) or, for several seeds, a list of either will do.
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources

import numpy as np
import pandas as pd

from asdlib import metrics, runtime, store

__all__ = [
    "bootstrap",
    "mean_pm",
    "paper_table",
    "published",
    "seed_summary",
    "stacked",
    "standard_error",
    "standard_errors",
    "type_summary",
]


def _frame(result) -> pd.DataFrame:
    """The results frame of a results frame or of a run (anything with `results_frame()`)."""
    return result.results_frame() if hasattr(result, "results_frame") else result


def _paper_row(frame, protocol, max_fpr):
    """One row of the paper's table: {(machine_type, "AUC" / "pAUC"): value in %}."""
    per_type = metrics.per_type_table(frame, max_fpr)
    auc_column, pauc_column = metrics.PROTOCOL_COLUMNS[protocol]
    row = {}
    for machine_type in per_type.index:
        row[(machine_type, "AUC")] = 100.0 * per_type.at[machine_type, auc_column]
        row[(machine_type, "pAUC")] = 100.0 * per_type.at[machine_type, pauc_column]
    # Average over the types present in this run.
    row[("Average", "AUC")] = 100.0 * per_type[auc_column].mean()
    row[("Average", "pAUC")] = 100.0 * per_type[pauc_column].mean()
    return row


def _layout(rows):
    """DataFrame of {name: {(machine_type, metric): value}} in the paper's column layout."""
    types = metrics.type_order(key[0] for row in rows.values() for key in row if key[0] != "Average")
    columns = pd.MultiIndex.from_product(
        [types + ["Average"], ["AUC", "pAUC"]], names=["machine_type", "metric"]
    )
    values = [[row.get(column, math.nan) for column in columns] for row in rows.values()]
    return pd.DataFrame(values, index=pd.Index(list(rows), name="run"), columns=columns)


def _per_seed(results, protocol, max_fpr) -> pd.DataFrame:
    """One row per seed (per element of the list `results`)."""
    return _layout({i: _paper_row(_frame(r), protocol, max_fpr) for i, r in enumerate(results)})


def paper_table(results, protocol: str = "per_id_mean", max_fpr: float = 0.1) -> pd.DataFrame:
    """Results of several runs in the layout of the paper's tables (values in %).

    Rows are runs (methods); columns are a MultiIndex (machine_type, metric) with the types
    in the order fan, pump, slider, valve, ToyCar, ToyConveyor (those present), then
    ``Average`` (mean over the types present in the row), each with ``AUC`` and ``pAUC``.

    Args:
        results: dict name -> results frame or run, or name -> list of them (the row is then
            the mean over the list, i.e. over seeds); or a list of runs (named by their label
            and seed).
        protocol: ``"per_id_mean"`` (DCASE 2020: mean over IDs) or ``"pooled"`` (all clips
            of a type together, as the Noisy-ArcMix evaluation script).
        max_fpr: p of the partial AUC.

    Returns:
        DataFrame, index ``run``, values in percent.
    """
    metrics.check_protocol(protocol)
    if isinstance(results, (list, tuple)):
        results = {f"{run.label} seed {run.config.seed}": run for run in results}
    if not isinstance(results, dict) or not results:
        raise ValueError("results must be a non-empty dict run name -> results frame (or run, "
                         "or list of them)")
    rows = {}
    for name, value in results.items():
        try:
            if isinstance(value, (list, tuple)):
                rows[name] = _per_seed(value, protocol, max_fpr).mean(axis=0).to_dict()
            else:
                rows[name] = _paper_row(_frame(value), protocol, max_fpr)
        except ValueError as error:
            raise ValueError(f"results[{name!r}]: {error}") from None
    return _layout(rows)


def seed_summary(results, protocol: str = "per_id_mean", max_fpr: float = 0.1):
    """Mean and standard deviation over seeds, in the layout of :func:`paper_table`.

    Args:
        results: dict run name -> list of results frames or runs (one per seed).
        protocol: ``"per_id_mean"`` or ``"pooled"``.
        max_fpr: p of the partial AUC.

    Returns:
        ``(mean, std)``: two DataFrames in percent, rows = runs. ``std`` is the sample
        standard deviation over seeds (ddof = 1; NaN for a single seed). The ``Average``
        column is the mean (std) over seeds of each seed's average.
    """
    metrics.check_protocol(protocol)
    if not isinstance(results, dict) or not results:
        raise ValueError("results must be a non-empty dict run name -> list of results frames")
    means, stds = {}, {}
    for name, frames in results.items():
        if isinstance(frames, pd.DataFrame) or len(frames) == 0:
            raise ValueError(f"results[{name!r}] must be a non-empty list of results frames")
        try:
            per_seed = _per_seed(frames, protocol, max_fpr)  # [seeds, columns]
        except ValueError as error:
            raise ValueError(f"results[{name!r}]: {error}") from None
        means[name] = per_seed.mean(axis=0).to_dict()
        stds[name] = per_seed.std(axis=0, ddof=1).to_dict()
    return _layout(means), _layout(stds)


def published(table: str = "ablation") -> pd.DataFrame:
    """The paper's published numbers (AUC / pAUC in %) in the layout of :func:`paper_table`.

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


#: The columns of `type_summary`: per_type_table column -> printed name.
TYPE_SUMMARY_COLUMNS = {
    "per_id_mean_auc": "AUC (per-ID mean)",
    "per_id_mean_pauc": "pAUC (per-ID mean)",
    "mauc": "worst ID AUC",
    "pooled_auc": "AUC (pooled)",
    "pooled_pauc": "pAUC (pooled)",
}


def type_summary(result, max_fpr: float = 0.1) -> pd.DataFrame:
    """One run per machine type, in %: AUC and pAUC under both protocols and the worst ID.

    Rows: the machine types in the paper's order, then ``Average`` (the mean over the types;
    for the worst ID, the minimum). Columns: see `TYPE_SUMMARY_COLUMNS`.

    Args:
        result: a results frame or a run.
        max_fpr: p of the partial AUC.
    """
    per_type = metrics.per_type_table(_frame(result), max_fpr)
    table = (100 * per_type[list(TYPE_SUMMARY_COLUMNS)]).rename(columns=TYPE_SUMMARY_COLUMNS)
    average = table.mean()
    average["worst ID AUC"] = table["worst ID AUC"].min()
    table.loc["Average"] = average
    return table


def mean_pm(mean, spread, digits: int = 2):
    """``"61.12 ± 1.05"`` strings of a mean and a spread (DataFrames or Series of one shape,
    or two numbers)."""
    def text(m, s):
        return f"{m:.{digits}f} ± {s:.{digits}f}"

    if isinstance(mean, (pd.DataFrame, pd.Series)):
        values = np.vectorize(text, otypes=[object])(mean.to_numpy(), spread.to_numpy())
        return (pd.DataFrame(values, index=mean.index, columns=mean.columns)
                if isinstance(mean, pd.DataFrame) else pd.Series(values, index=mean.index))
    return text(mean, spread)


def stacked(table: pd.DataFrame) -> pd.DataFrame:
    """A table in the paper's layout (columns: machine type x AUC / pAUC) for a page of text:
    AUC and pAUC stacked as two blocks of rows, so that the columns are the machine types and
    the average (8 columns instead of 15 that would wrap every cell).

    Returns:
        The same values, rows ``(metric, *table.index)``, columns the machine types.
    """
    if not isinstance(table.columns, pd.MultiIndex) or table.columns.nlevels != 2:
        raise ValueError("table must have the paper's columns (machine type, AUC / pAUC), as "
                         "paper_table, standard_errors or mean_pm give them")
    metrics_ = list(dict.fromkeys(table.columns.get_level_values(1)))
    return pd.concat({metric: table.xs(metric, axis=1, level=1) for metric in metrics_},
                     names=["metric"])


def standard_error(values) -> float:
    """The standard error of the mean of some values: the sample std (ddof 1) / sqrt(n).

    NaN for fewer than two values.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return float("nan")
    return float(values.std(ddof=1) / np.sqrt(values.size))


def _by_id(frame: pd.DataFrame) -> dict:
    """{(type, id): (labels, scores)} of a results frame, clips ordered by path (or position)."""
    frame = frame.sort_values("path", kind="mergesort") if "path" in frame.columns else frame
    return {key: (group["label"].to_numpy(), group["score"].to_numpy(dtype=np.float64))
            for key, group in frame.groupby(["machine_type", "machine_id"], sort=False)}


#: Part of the key of the stored replicates: raise it when `bootstrap` computes other numbers.
BOOTSTRAP_VERSION = 1


def _digest(frame: pd.DataFrame) -> str:
    """A hash of what the bootstrap reads from a results frame (its clips' IDs, labels, scores)."""
    frame = frame.sort_values("path", kind="mergesort") if "path" in frame.columns else frame
    columns = [column for column in metrics.RESULT_COLUMNS if column in frame.columns]
    rows = pd.util.hash_pandas_object(frame[columns], index=False)
    return hashlib.sha256(rows.to_numpy().tobytes()).hexdigest()[:16]


def bootstrap(results, n_boot: int = 2000, seed: int = 0, protocol: str = "per_id_mean",
              max_fpr: float = 0.1) -> dict:
    """Bootstrap replicates of the `paper_table` rows of some variants (see the module docstring).

    Args:
        results: dict name -> results frame or run, or name -> list of them (one per seed;
            every variant with the same number of seeds, paired by position: element s of
            every list was trained with the same seed). One frame may stand at every position
            (a model trained once, such as the autoencoder beside a network's seeds): it is
            computed once, and only the clips' resampling moves it.
        n_boot: replicates.
        seed: the seed of the resampling (a `numpy.random.default_rng`).
        protocol: ``"per_id_mean"`` or ``"pooled"``.
        max_fpr: p of the partial AUC.

    Returns:
        dict name -> DataFrame ``[n_boot, columns]`` in the column layout of `paper_table`
        (values in %): row b is the variant's row (mean over its seeds) on replicate b. Computed
        once for the same scores and arguments, then read from the store.
    """
    metrics.check_protocol(protocol)
    groups = {name: [_frame(r) for r in (value if isinstance(value, (list, tuple)) else [value])]
              for name, value in results.items()}
    sizes = {len(runs) for runs in groups.values()}
    if len(sizes) != 1:
        raise ValueError(f"results: every variant needs the same number of seeds, got "
                         f"{ {name: len(runs) for name, runs in groups.items()} }")
    inputs = {"version": BOOTSTRAP_VERSION, "n_boot": int(n_boot), "seed": int(seed),
              "protocol": protocol, "max_fpr": float(max_fpr),
              "runs": [[name, [_digest(frame) for frame in runs]] for name, runs in groups.items()]}

    def build(work):
        replicates = _bootstrap(groups, n_boot, seed, protocol, max_fpr)
        columns = next(iter(replicates.values())).columns
        np.save(work / "replicates.npy", np.stack([r.to_numpy() for r in replicates.values()]))
        (work / "layout.json").write_text(json.dumps({"names": list(replicates),
                                                      "columns": list(columns)}))

    path = store.folder(runtime.home() / "bootstrap", "bootstrap-" + store.key(inputs), build,
                        description="bootstrap replicates", keep_partial=False)
    layout = json.loads((path / "layout.json").read_text())
    columns = pd.MultiIndex.from_tuples([tuple(c) for c in layout["columns"]],
                                        names=["machine_type", "metric"])
    values = np.load(path / "replicates.npy")
    return {name: pd.DataFrame(values[i], columns=columns) for i, name in enumerate(layout["names"])}


def _bootstrap(groups: dict, n_boot: int, seed: int, protocol: str, max_fpr: float) -> dict:
    """`bootstrap` computed: groups is name -> list of results frames (as many for every name)."""
    num_seeds = len(next(iter(groups.values())))
    rng = np.random.default_rng(seed)
    seed_draws = rng.integers(0, num_seeds, size=(n_boot, num_seeds))  # [replicates, seeds]
    first = _by_id(next(iter(groups.values()))[0])
    # One weighting of the clips per replicate and machine ID: normal and anomalous apart
    weights = {}
    for key, (labels, _) in first.items():
        w = np.zeros((n_boot, len(labels)))
        for value in (0, 1):
            where = np.flatnonzero(labels == value)
            w[:, where] = rng.multinomial(len(where), np.full(len(where), 1 / len(where)), n_boot)
        weights[key] = w
    types = metrics.type_order(key[0] for key in first)
    columns = pd.MultiIndex.from_product([types + ["Average"], ["AUC", "pAUC"]],
                                         names=["machine_type", "metric"])
    out = {}
    seen = {}  # id(frame) -> its rows: a run that stands beside several seeds is computed once
    for name, runs in groups.items():
        per_seed = np.empty((num_seeds, n_boot, len(columns)))
        for s, frame in enumerate(runs):
            if id(frame) in seen:
                per_seed[s] = seen[id(frame)]
                continue
            clips = _by_id(frame)
            if set(clips) != set(first):
                raise ValueError(f"results[{name!r}]: other machine IDs than the first run's")
            values = []
            for machine_type in types:
                keys = [k for k in first if k[0] == machine_type]
                if protocol == "per_id_mean":
                    auc, pauc = zip(*[metrics.weighted_auc_pauc(*clips[k], weights[k], max_fpr)
                                      for k in keys])
                    values += [np.mean(auc, axis=0), np.mean(pauc, axis=0)]
                else:
                    labels = np.concatenate([clips[k][0] for k in keys])
                    scores = np.concatenate([clips[k][1] for k in keys])
                    both = np.concatenate([weights[k] for k in keys], axis=1)
                    values += list(metrics.weighted_auc_pauc(labels, scores, both, max_fpr))
            table = 100 * np.stack(values, axis=1)  # [replicates, 2 * types]
            per_seed[s] = seen[id(frame)] = np.concatenate(
                [table, table[:, 0::2].mean(axis=1, keepdims=True),
                 table[:, 1::2].mean(axis=1, keepdims=True)], axis=1)
        # Replicate b averages the seeds it drew: [replicates, columns]
        drawn = per_seed[seed_draws.T, np.arange(n_boot)[None, :]]  # [seeds, replicates, columns]
        out[name] = pd.DataFrame(drawn.mean(axis=0), columns=columns)
    return out


def standard_errors(results, n_boot: int = 2000, seed: int = 0, protocol: str = "per_id_mean",
                    max_fpr: float = 0.1) -> tuple:
    """`paper_table` of some variants (mean over seeds) and the bootstrap standard error of
    every entry.

    Returns:
        ``(mean, se, replicates)``: two DataFrames in the layout of `paper_table` and the
        replicates of `bootstrap` (for standard errors of differences: the std of
        ``replicates[a] - replicates[b]``).
    """
    replicates = bootstrap(results, n_boot, seed, protocol, max_fpr)
    mean = paper_table(results, protocol, max_fpr)
    se = pd.DataFrame([replicates[name].std(axis=0, ddof=1) for name in mean.index],
                      index=mean.index)[mean.columns]
    return mean, se, replicates
