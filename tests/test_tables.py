"""Tests of asdlib.tables: the paper's layout, seed summaries, the published numbers, printing."""

import numpy as np
import pandas as pd
import pytest

from asdlib.metrics import PROTOCOLS, TABLE_TYPES, per_type_table
from asdlib.tables import mean_pm, paper_table, seed_summary, type_summary
from test_metrics import frame_of, random_frame


# ----------------------------------------------------------------------------------------
# paper_table and seed_summary
# ----------------------------------------------------------------------------------------


def test_paper_table_layout_and_values():
    shuffled = ("ToyConveyor", "valve", "fan", "ToyCar", "slider", "pump")
    ours = random_frame(types=shuffled, seed=0)
    other = random_frame(types=("pump", "fan"), seed=1)
    table = paper_table({"ours": ours, "other": other})
    assert list(table.index) == ["ours", "other"]
    assert table.columns.names == ["machine_type", "metric"]
    assert list(table.columns.get_level_values(0)[::2]) == list(TABLE_TYPES) + ["Average"]
    assert list(table.columns.get_level_values(1)[:2]) == ["AUC", "pAUC"]
    # Values in percent, from the per-ID means.
    per_type = per_type_table(ours)
    assert table.at["ours", ("valve", "AUC")] == pytest.approx(
        100 * per_type.at["valve", "per_id_mean_auc"]
    )
    assert table.at["ours", ("valve", "pAUC")] == pytest.approx(
        100 * per_type.at["valve", "per_id_mean_pauc"]
    )
    assert table.at["ours", ("Average", "AUC")] == pytest.approx(
        100 * per_type["per_id_mean_auc"].mean()
    )
    # A run with fewer types: missing cells are NaN, its Average is over its own types.
    assert np.isnan(table.at["other", ("valve", "AUC")])
    per_type_other = per_type_table(other)
    assert table.at["other", ("Average", "pAUC")] == pytest.approx(
        100 * per_type_other["per_id_mean_pauc"].mean()
    )


def test_paper_table_protocols_differ():
    frame = frame_of({("fan", "id_00"): ([0, 1], [2, 3]), ("fan", "id_02"): ([10, 11], [12, 13])})
    per_id = paper_table({"run": frame}, protocol="per_id_mean")
    pooled = paper_table({"run": frame}, protocol="pooled")
    assert per_id.at["run", ("fan", "AUC")] == pytest.approx(100.0)
    assert pooled.at["run", ("fan", "AUC")] == pytest.approx(75.0)
    assert set(PROTOCOLS) == {"per_id_mean", "pooled"}
    with pytest.raises(ValueError, match="protocol must be one of per_id_mean, pooled"):
        paper_table({"run": frame}, protocol="pooled_auc")


def test_unknown_types_go_after_the_table_types():
    frame = random_frame(types=("gearbox", "fan", "bearing"))
    table = paper_table({"run": frame})
    assert list(table.columns.get_level_values(0)[::2]) == ["fan", "gearbox", "bearing", "Average"]


def test_paper_table_bad_inputs():
    with pytest.raises(ValueError, match="results must be a non-empty dict"):
        paper_table(random_frame(types=("fan",)))
    with pytest.raises(ValueError, match=r"results\['broken'\]: frame is missing columns"):
        paper_table({"broken": pd.DataFrame({"score": [0.1]})})


def test_seed_summary_mean_and_std():
    seeds = [random_frame(types=("fan", "valve"), seed=seed) for seed in range(3)]
    mean, std = seed_summary({"ours": seeds, "single": seeds[:1]})
    per_seed = np.array([paper_table({"s": frame}).loc["s"].to_numpy() for frame in seeds])
    np.testing.assert_allclose(mean.loc["ours"].to_numpy(), per_seed.mean(axis=0))
    np.testing.assert_allclose(std.loc["ours"].to_numpy(), per_seed.std(axis=0, ddof=1))
    assert (std.loc["ours"] > 0).all()
    # Same layout as paper_table; one seed has no spread.
    assert mean.columns.equals(paper_table({"s": seeds[0]}).columns)
    assert std.loc["single"].isna().all()
    np.testing.assert_allclose(mean.loc["single"].to_numpy(), per_seed[0])
    with pytest.raises(ValueError, match=r"results\['ours'\] must be a non-empty list"):
        seed_summary({"ours": []})
    with pytest.raises(ValueError, match=r"results\['ours'\] must be a non-empty list"):
        seed_summary({"ours": seeds[0]})


def test_a_list_of_frames_is_the_mean_over_seeds():
    seeds = [random_frame(types=("fan", "valve"), seed=seed) for seed in range(3)]
    mean, _ = seed_summary({"ours": seeds})
    pd.testing.assert_frame_equal(paper_table({"ours": seeds}), mean)


def test_type_summary_has_both_protocols_and_the_worst_id():
    frame = frame_of({("fan", "id_00"): ([0, 1], [2, 3]), ("fan", "id_02"): ([10, 11], [12, 13]),
                      ("pump", "id_00"): ([0, 3], [1, 2])})
    table = type_summary(frame)
    assert list(table.index) == ["fan", "pump", "Average"]
    assert table.at["fan", "AUC (per-ID mean)"] == pytest.approx(100.0)
    assert table.at["fan", "AUC (pooled)"] == pytest.approx(75.0)
    assert table.at["pump", "worst ID AUC"] == pytest.approx(50.0)
    # the Average row: the mean over types, but the minimum for the worst ID
    assert table.at["Average", "AUC (per-ID mean)"] == pytest.approx(75.0)
    assert table.at["Average", "worst ID AUC"] == pytest.approx(50.0)
    per_type = per_type_table(frame)
    assert table.at["fan", "pAUC (pooled)"] == pytest.approx(100 * per_type.at["fan", "pooled_pauc"])


def test_mean_pm_formats_numbers_series_and_frames():
    assert mean_pm(61.123, 1.049) == "61.12 ± 1.05"
    assert mean_pm(61.1, 1.0, digits=1) == "61.1 ± 1.0"
    series = mean_pm(pd.Series([1.0, 2.5], index=["a", "b"]), pd.Series([0.1, np.nan], index=["a", "b"]))
    assert series.tolist() == ["1.00 ± 0.10", "2.50 ± nan"] and list(series.index) == ["a", "b"]
    frame = mean_pm(pd.DataFrame({"x": [1.0]}, index=["r"]), pd.DataFrame({"x": [0.5]}, index=["r"]))
    assert frame.at["r", "x"] == "1.00 ± 0.50"


def test_stacked_puts_auc_and_pauc_in_blocks_of_rows_with_the_same_values():
    from asdlib import tables

    paper = tables.published("comparison")
    shown = tables.stacked(paper)
    assert list(shown.index.get_level_values(0).unique()) == ["AUC", "pAUC"]
    assert shown.shape == (2 * len(paper), paper.shape[1] // 2)
    for (metric, name), row in shown.iterrows():
        for machine_type, value in row.items():
            assert value == paper.loc[name, (machine_type, metric)]
    with pytest.raises(ValueError, match="paper's columns"):
        tables.stacked(paper.droplevel(1, axis=1))


# ----------------------------------------------------------------------------------------
# bootstrap standard errors
# ----------------------------------------------------------------------------------------


def test_the_bootstrap_se_of_an_auc_agrees_with_hanley_and_mcneil():
    """One machine, 300 + 300 clips: the bootstrap SE of its AUC against the closed form of
    Hanley and McNeil (1982), SE² = (A(1-A) + (n1-1)(Q1-A²) + (n0-1)(Q2-A²)) / (n0 n1) with
    Q1 = A/(2-A), Q2 = 2A²/(1+A) (exact for exponential scores, close otherwise)."""
    from asdlib.tables import standard_errors

    rng = np.random.default_rng(3)
    n = 300
    frame = frame_of({("fan", "id_00"): (rng.normal(size=n), rng.normal(0.8, 1, n))})
    mean, se, _ = standard_errors({"net": frame}, n_boot=4000, seed=0)
    a = mean.loc["net", ("fan", "AUC")] / 100
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    closed = np.sqrt((a * (1 - a) + (n - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (n * n))
    assert se.loc["net", ("fan", "AUC")] / 100 == pytest.approx(closed, rel=0.1)


def test_one_frame_beside_every_seed_is_the_same_as_copies_of_it():
    from asdlib.tables import _bootstrap, bootstrap

    single = random_frame(seed=1)
    seeds = [random_frame(seed=s) for s in (2, 3, 4)]
    shared = bootstrap({"ae": [single] * 3, "net": seeds}, n_boot=300, seed=5)
    # computed again, not read from the store
    copies = _bootstrap({"ae": [single.copy() for _ in range(3)], "net": seeds}, 300, 5,
                        "per_id_mean", 0.1)
    for name in ("ae", "net"):
        pd.testing.assert_frame_equal(shared[name], copies[name])
    # the autoencoder's replicates move only with the clips: every seed draw gives its one row
    assert shared["ae"][("Average", "AUC")].std() > 0
    with pytest.raises(ValueError, match=r"same number of seeds.*'ae': 1, 'net': 3"):
        bootstrap({"ae": single, "net": seeds}, n_boot=10)


def test_the_replicates_are_stored_and_read_back_only_for_the_same_scores(monkeypatch):
    """The second call with the same scores and arguments reads the store; other scores, another
    seed or protocol compute anew; what is read back equals what was computed."""
    from asdlib import runtime, tables

    frames = {"a": [random_frame(seed=1), random_frame(seed=2)],
              "b": [random_frame(seed=3), random_frame(seed=4)]}
    first = tables.bootstrap(frames, n_boot=200, seed=0)
    computed = tables._bootstrap(frames, 200, 0, "per_id_mean", 0.1)
    for name in frames:
        pd.testing.assert_frame_equal(first[name], computed[name])
    assert len(list((runtime.home() / "bootstrap").glob("bootstrap-*"))) == 1

    calls = []
    real = tables._bootstrap
    monkeypatch.setattr(tables, "_bootstrap", lambda *args: calls.append(args) or real(*args))
    again = tables.bootstrap({name: [f.copy() for f in runs] for name, runs in frames.items()},
                             n_boot=200, seed=0)
    assert calls == [] and list(again) == ["a", "b"]
    pd.testing.assert_frame_equal(again["b"], first["b"])

    moved = {name: [f.copy() for f in runs] for name, runs in frames.items()}
    moved["b"][1].loc[0, "score"] += 1e-9
    tables.bootstrap(moved, n_boot=200, seed=0)
    tables.bootstrap(frames, n_boot=200, seed=1)
    tables.bootstrap(frames, n_boot=200, seed=0, protocol="pooled")
    assert len(calls) == 3
