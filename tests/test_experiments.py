"""asdlib.experiments: the run cache trains once, resumes half-done runs, tables beside the paper."""

from __future__ import annotations

import csv
import operator
from pathlib import Path

import pandas as pd
import pytest

from asdlib import experiments, runfolder, tables
from asdlib.runfolder import dataset_fingerprint
from asdlib.profiles import TrainConfig
from asdlib.train import Setup, train


# Train on one torch thread (see conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def valve_data(smoke_data):
    return smoke_data("valve")


@pytest.fixture(scope="module")
def arcface_run(valve_data, tmp_path_factory):
    """One smoke run, trained and evaluated through the run cache `runs_dir`."""
    config = TrainConfig.from_profile("smoke", mode="arcface")
    runs_dir = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASDLIB_HOME", str(tmp_path_factory.mktemp("home")))
        run = experiments.load_or_train(config, valve_data, setup=Setup(progress=False), runs_dir=runs_dir)
    return config, runs_dir, run


def test_load_or_train_trains_once_then_reads_the_cache(valve_data, arcface_run, monkeypatch):
    config, runs_dir, run = arcface_run
    assert run.path.parent == runs_dir and run.path.name == runfolder.key(
        config, dataset_fingerprint(valve_data))
    assert run.config == config and run.label == "TASTgram (ArcFace)"
    assert run.history["epoch"].tolist() == [1]
    assert {"path", "machine_type", "machine_id", "label", "score"} <= set(run.scores.columns)
    assert run.embeddings["embedding"].shape[1] == 128
    assert "profile=smoke" in run.summary() and "synthetic data" in run.summary()
    assert not run.model().training

    # Second call: nothing is trained or evaluated, the same metrics come back
    def forbidden(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr("asdlib.train.train", forbidden)
    monkeypatch.setattr("asdlib.evaluate.evaluate", forbidden)
    again = experiments.load_or_train(config, valve_data, setup=Setup(progress=False), runs_dir=runs_dir)
    assert again.path == run.path and again.metrics == run.metrics


def test_a_half_finished_run_resumes(valve_data):
    config = TrainConfig.from_profile("smoke", mode="arcmix", num_epochs=2)
    path = experiments.runtime.home() / "runs" / runfolder.key(
        config, dataset_fingerprint(valve_data))

    def interrupt(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, valve_data, path, Setup(progress=False), on_epoch_end=interrupt)
    first = pd.read_csv(path / "history.csv")
    run = experiments.load_or_train(config, valve_data, setup=Setup(progress=False))
    assert run.path == path and run.history["epoch"].tolist() == [1, 2]
    # epoch 1 was kept (its record, timing included), not trained again
    pd.testing.assert_frame_equal(run.history.iloc[:1], first)
    assert (path / "metrics.json").is_file()


def test_different_configs_and_datasets_get_different_runs(valve_data, tmp_path):
    config = TrainConfig.from_profile("smoke")
    dataset = dataset_fingerprint(valve_data)
    assert runfolder.key(config, dataset) == runfolder.key(
        TrainConfig.from_profile("smoke"), dataset)
    assert runfolder.key(config, dataset) != runfolder.key(
        TrainConfig.from_profile("smoke", seed=1), dataset)
    other = dict(dataset, hash="0" * 16)
    assert runfolder.key(config, dataset) != runfolder.key(config, other)


def test_synthetic_dataset_is_generated_once_under_home():
    root = experiments.synthetic_dataset("smoke", types=["slider"], progress=False)
    assert root.parent == experiments.runtime.home() / "data"
    assert (root / "synth_info.json").is_file() and (root / "slider" / "train").is_dir()
    mtime = (root / "synth_info.json").stat().st_mtime_ns
    assert experiments.synthetic_dataset("smoke", types=["slider"], progress=False) == root
    assert (root / "synth_info.json").stat().st_mtime_ns == mtime


def test_real_data_fingerprint_is_the_list_of_relative_paths_and_sizes(tmp_path, valve_data):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(valve_data, copy)
    (copy / "synth_info.json").unlink()
    moved = tmp_path / "moved"
    shutil.copytree(copy, moved)
    first, second = dataset_fingerprint(copy), dataset_fingerprint(moved)
    assert first["kind"] == "dcase" and first["hash"] == second["hash"]
    # One clip fewer: another dataset
    next((moved / "valve" / "test").glob("*.wav")).unlink()
    assert dataset_fingerprint(moved)["hash"] != first["hash"]


def test_published_results_match_the_packaged_csv():
    ablation = tables.published("ablation")
    assert list(ablation.index) == ["STgram (ArcFace)", "TASTgram (ArcFace)", "STgram (NAMix)",
                                    "TASTgram (NAMix)"]
    assert ablation.loc["TASTgram (NAMix)", ("Average", "AUC")] == pytest.approx(94.65)
    assert ablation.loc["TASTgram (NAMix)", ("ToyConveyor", "pAUC")] == pytest.approx(67.15)
    packaged = Path(experiments.__file__).parent / "resources" / "paper_results.csv"
    with open(packaged) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 * 6 + 4 * 7
    comparison = tables.published("comparison")
    assert "MobileNetV2" in comparison.index
    with pytest.raises(ValueError, match="table: must be one of"):
        tables.published("figure")


def test_paper_table_of_runs_has_the_paper_layout(arcface_run):
    _, _, run = arcface_run
    table = tables.paper_table({"ours": run})
    assert list(table.columns.get_level_values(0).unique()) == ["valve", "Average"]
    average = run.metrics["average"]
    assert table.loc["ours", ("Average", "AUC")] == pytest.approx(100 * average["auc"])
    pooled = tables.paper_table({"ours": run}, protocol="pooled")
    assert pooled.loc["ours", ("Average", "pAUC")] == pytest.approx(100 * average["pooled_pauc"])
    # a list of seeds gives the mean over seeds
    mean = tables.paper_table({"ours": [run, run]})
    assert mean.loc["ours", ("Average", "AUC")] == pytest.approx(100 * average["auc"])


def test_the_one_thread_of_a_worker_is_given_back(monkeypatch, tmp_path):
    """`_train_one` (run in this process when there is one job) and the curve's `_job` train on
    one torch thread and give the caller's thread count back, also when training fails."""
    import torch

    from asdlib import curve, runtime

    seen = []

    class Trained:
        path = tmp_path / "run"

    def fake_train(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return Trained()

    monkeypatch.setattr(experiments, "load_or_train", fake_train)
    monkeypatch.setattr(experiments, "synthetic_dataset", lambda *a, **k: tmp_path)
    monkeypatch.setenv(runtime.HOME_VAR, str(tmp_path))
    config = TrainConfig.from_profile("smoke").to_dict()
    workers = experiments.Workers(jobs=1, device="cpu")
    with runtime.torch_threads(2):
        experiments._train_one((config, str(tmp_path), str(tmp_path), workers))
        curve._job(("network", curve.CurvePoint(6, base="smoke"), str(tmp_path), workers))
        assert torch.get_num_threads() == 2
        def failing_train(*args, **kwargs):
            seen.append(torch.get_num_threads())
            raise RuntimeError("training failed")

        monkeypatch.setattr(experiments, "load_or_train", failing_train)
        with pytest.raises(RuntimeError, match="training failed"):
            experiments._train_one((config, str(tmp_path), str(tmp_path), workers))
        assert torch.get_num_threads() == 2
    assert seen == [1, 1, 1]


def _git(repo, *args):
    import subprocess
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_commit_published_commits_only_the_publishing_folder(tmp_path, monkeypatch):
    for name, value in (("GIT_AUTHOR_NAME", "t"), ("GIT_AUTHOR_EMAIL", "t@example.org"),
                        ("GIT_COMMITTER_NAME", "t"), ("GIT_COMMITTER_EMAIL", "t@example.org")):
        monkeypatch.setenv(name, value)
    repo = tmp_path / "repo"
    dest = repo / "asdlib" / "published"
    dest.mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "elsewhere.txt").write_text("not published\n")
    _git(repo, "add", "elsewhere.txt")  # staged, but not part of the published folder
    (dest / "abc" / "x").parent.mkdir()
    (dest / "abc" / "x").write_text("scores\n")
    entry = {"profile": "evidence", "label": "STgram (ArcFace)", "seed": 2, "epochs": 16,
             "average_auc": 0.67551}
    assert experiments.commit_published(entry, dest)
    assert _git(repo, "log", "-1", "--format=%s") == (
        "Evidence profile: STgram (ArcFace) seed 2 published (make runs; "
        "16 epochs, average AUC 67.55 %)")
    assert _git(repo, "show", "--name-only", "--format=", "HEAD") == "asdlib/published/abc/x"
    assert "A  elsewhere.txt" in _git(repo, "status", "--porcelain")  # left as it was
    assert not experiments.commit_published(entry, dest)  # nothing new: no empty commit


def test_commit_published_refuses_a_folder_outside_git(tmp_path):
    with pytest.raises(ValueError, match="not inside a git checkout"):
        experiments.check_committable(tmp_path / "published")


@pytest.mark.parametrize("jobs", [1, 2])
def test_workers_call_every_job_once_in_spawned_processes_or_here(jobs):
    # one mechanism for the published runs and the learning curve: two processes (spawned, one
    # per job) or one after another here; every result comes back, in the order they finish
    workers = experiments.Workers(jobs=jobs, reuse_freed_memory=False)
    assert sorted(workers.imap(operator.neg, [1, 2, 3])) == [-3, -2, -1]
    assert list(workers.imap(operator.neg, [])) == []
