"""The published runs of the book (asdlib/published): current, complete, small, read back.

They are the results of `make runs` (chapters 7-11 read them instead of training for hours):
the book profile's runs are the evidence profile's (`Profile.runs_profile`), published at the
learning curve's scale.
When a test here fails, the code or the data changed what those runs would compute: run
`make runs` to train and publish them again.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from asdlib import experiments, profiles, runfolder, runtime, train

MANIFEST = experiments.published_manifest()
REFRESH = "the published runs are out of date: refresh them with `make runs`"
#: One worker in this process, the process's memory settings left alone.
ONE_JOB = experiments.Workers(jobs=1, reuse_freed_memory=False)


#: The profile whose runs the book reads (the evidence profile).
RUNS = profiles.get_profile("book").runs_profile()


def expected_dataset() -> dict:
    return experiments.profile_dataset(RUNS)


def test_the_book_reads_the_runs_at_the_learning_curves_scale_without_their_data():
    book = profiles.get_profile("book")
    assert RUNS.name == "evidence" != book.name and RUNS.runs_profile() is RUNS
    assert RUNS.train_per_id > book.train_per_id  # the build generates only the small data
    assert {c.profile for c in experiments.book_runs("book")} == {"evidence"}
    assert experiments.book_runs("book") == experiments.book_runs("evidence")
    assert experiments.publish_command("evidence") == experiments.publish_command("book") == "make runs"
    assert experiments.publish_command("smoke") == "make runs PROFILE=smoke"
    assert profiles.get_profile("smoke").runs_profile().name == "smoke"


def test_every_book_run_is_published_for_the_current_config_and_data():
    assert MANIFEST is not None, f"asdlib/published/MANIFEST.json is missing: {REFRESH}"
    dataset = expected_dataset()
    published_profile = MANIFEST["profiles"][RUNS.name]
    assert published_profile["dataset"]["hash"] == dataset["hash"], (
        f"published on {published_profile['dataset']['description']} "
        f"({published_profile['dataset']['hash']}), the {RUNS.name} profile now makes "
        f"{dataset['description']} ({dataset['hash']}): {REFRESH}")
    published = {entry["hash"] for entry in MANIFEST["runs"] if entry["profile"] == RUNS.name}
    missing = [f"{runfolder.run_label(c)} seed {c.seed}" for c in experiments.book_runs("book")
               if runfolder.key(c, dataset) not in published]
    assert not missing, f"not published for the current config: {missing}: {REFRESH}"


def test_the_published_files_are_the_manifests_and_small():
    total = 0
    for entry in MANIFEST["runs"]:
        folder = experiments.PUBLISHED_DIR / entry["hash"]
        found = {p.name for p in folder.iterdir()}
        assert found == set(entry["files"]), f"{folder}: files differ from the manifest: {REFRESH}"
        for name, digest in entry["files"].items():
            data = (folder / name).read_bytes()
            total += len(data)
            assert hashlib.sha256(data).hexdigest() == digest, f"{folder / name} changed: {REFRESH}"
        assert not any(name.endswith(".pt") for name in found)  # no checkpoints
    # Issue 16's budget: about 30 MB in all (every Colab reader installs them); the evidence
    # profile's runs take about 24 MB with six seeds and 0.34 MB more per run of a further seed
    # (its scores), so about 28 MB with eight.
    assert total < 30e6, f"published runs take {total / 1e6:.1f} MB (at most 30 MB)"


def test_load_or_train_reads_a_published_run_without_training(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a published run must not be trained")

    monkeypatch.setattr("asdlib.train.train", forbidden)
    monkeypatch.setattr("asdlib.experiments.synthetic_dataset", forbidden)
    config = experiments.book_runs("book")[0]
    run = experiments.load_or_train(config)
    assert run.published and run.config == config
    assert run.metrics["average"]["auc"] == pytest.approx(
        next(e["average_auc"] for e in MANIFEST["runs"] if e["hash"] == run.path.name))
    frame = run.results_frame()
    assert set(frame["label"]) == {0, 1} and len(frame) == len(run.scores)
    assert not frame["path"].str.startswith("/").any()  # relative to the data root
    with pytest.raises(FileNotFoundError, match="published run: it keeps no checkpoint"):
        run.model()
    # the first TASTgram runs keep their embeddings (the figures of chapters 8 and 9)
    tastgram = next(c for c in experiments.book_runs("book") if c.model == "tastgram")
    saved = experiments.load_or_train(tastgram).embeddings
    assert saved["embedding"].dtype.name == "float32" and saved["embedding"].shape[1] == 128


def test_published_runs_are_ignored_on_request_and_for_other_data(monkeypatch, smoke_data):
    class Trains(Exception):
        pass

    def trains(*args, **kwargs):
        raise Trains

    # published=False goes to the data and the training, even for a published config
    with monkeypatch.context() as patch:
        patch.setattr("asdlib.experiments.synthetic_dataset", trains)
        with pytest.raises(Trains):
            experiments.load_or_train(experiments.book_runs("book")[0], published=False)
    # another dataset: another key, so it trains (a smoke run, seconds)
    run = experiments.load_or_train(profiles.TrainConfig.from_profile("smoke"), smoke_data("fan"),
                                    setup=train.Setup(progress=False))
    assert not run.published


def test_publishing_twice_writes_the_same_bytes(monkeypatch, tmp_path):
    # one smoke run stands for the book's runs; the second call reads the run back and exports
    # it again: every published file must come out byte for byte the same (no time stamps, no
    # temporary names), so that a refresh changes only what the runs changed
    monkeypatch.setenv("ASDLIB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(experiments, "BOOK_RUNS", {("stgram", "arcface"): "first"})
    first = experiments.publish_runs("smoke", ONE_JOB, dest=tmp_path / "a", progress=False)
    second = experiments.publish_runs("smoke", ONE_JOB, dest=tmp_path / "b", progress=False)
    assert [e["files"] for e in first["runs"]] == [e["files"] for e in second["runs"]]
    entry, autoencoder = first["runs"]
    assert autoencoder["model"] == "autoencoder" and set(autoencoder["files"]) == {"scores.csv.gz"}
    assert set(entry["files"]) == {"config.json", "history.csv", "metrics.json", "scores.csv.gz"}
    assert first["profiles"]["smoke"]["dataset"]["hash"] == second["profiles"]["smoke"]["dataset"]["hash"]
    machine = first["profiles"]["smoke"]["machine"]
    assert "cores" in machine and runtime.cpu_model() in machine


def test_runs_are_published_one_by_one_and_a_stopped_call_resumes(monkeypatch, tmp_path):
    """Each finished run is published at once; a call stopped part-way keeps them, and the
    next call trains only the rest (what `make runs` does over several sessions)."""
    monkeypatch.setenv("ASDLIB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(experiments, "BOOK_RUNS", {("stgram", "arcface"): "all",
                                                   ("tastgram", "mixup"): "first"})
    dest = tmp_path / "published"
    seen = []

    def stop_after_one(entry):
        seen.append(entry["hash"])
        if entry["model"] != "autoencoder":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        experiments.publish_runs("smoke", ONE_JOB, dest=dest, progress=False,
                                 on_published=stop_after_one)
    manifest = json.loads((dest / "MANIFEST.json").read_text())
    # the autoencoder is published first (before the networks train), then one run
    assert sorted(e["hash"] for e in manifest["runs"]) == sorted(seen) and len(seen) == 2
    assert seen[0].startswith("autoencoder") and sorted(e["model"] for e in manifest["runs"]) == [
        "autoencoder", "stgram"]
    assert all((dest / name).is_dir() for name in seen)
    later = []
    full = experiments.publish_runs("smoke", ONE_JOB, dest=dest, progress=False,
                                    on_published=lambda e: later.append(e["hash"]))
    assert len(full["runs"]) == 4 and not set(seen) & set(later) and len(later) == 2
    assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == sorted(e["hash"] for e in full["runs"])


def test_entries_of_a_profile_that_now_reads_another_profiles_runs_are_dropped(monkeypatch, tmp_path):
    """The book profile once published its own (100-clip) runs; now it reads the evidence
    profile's, so the next `make runs` removes its old entries and folders and keeps those of
    profiles that still publish their own."""
    monkeypatch.setenv("ASDLIB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(experiments, "BOOK_RUNS", {("stgram", "arcface"): "first"})
    dest = tmp_path / "published"
    for name, profile in (("oldbook", "book"), ("paperrun", "paper")):
        (dest / name).mkdir(parents=True)
        (dest / name / "scores.csv.gz").write_bytes(b"x")
    old = {"profiles": {"book": {"dataset": {}}, "paper": {"dataset": {}}},
           "runs": [{"hash": "oldbook", "profile": "book"}, {"hash": "paperrun", "profile": "paper"}]}
    (dest / "MANIFEST.json").write_text(json.dumps(old))
    manifest = experiments.publish_runs("smoke", ONE_JOB, dest=dest, progress=False)
    assert set(manifest["profiles"]) == {"paper", "smoke"}
    assert [e["hash"] for e in manifest["runs"] if e["profile"] != "smoke"] == ["paperrun"]
    assert not (dest / "oldbook").exists() and (dest / "paperrun").is_dir()


def test_the_gpu_route_publishes_what_the_cpu_route_does(monkeypatch, tmp_path):
    """`runs --gpu` (clips held on the device, several runs at a time), run on the CPU at smoke
    size: the same batches as the DataLoader's, so the same published bytes."""
    monkeypatch.setenv("ASDLIB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(experiments, "BOOK_RUNS", {("stgram", "arcface"): "all"})
    plain = experiments.publish_runs("smoke", ONE_JOB, dest=tmp_path / "cpu", progress=False)
    monkeypatch.setenv("ASDLIB_HOME", str(tmp_path / "home2"))
    gpu_route = experiments.Workers(jobs=2, device="cpu", data_on_device=True, synth_workers=2,
                                    reuse_freed_memory=False)
    held = experiments.publish_runs("smoke", gpu_route, dest=tmp_path / "gpu", progress=False)
    networks = [[e for e in m["runs"] if e["model"] != "autoencoder"] for m in (plain, held)]
    for a, b in zip(*networks):  # the same runs; only the timings differ
        assert (a["files"]["scores.csv.gz"], a["average_auc"], a["epochs"]) == (
            b["files"]["scores.csv.gz"], b["average_auc"], b["epochs"])
        columns = ["epoch", "train_loss", "val_loss", "val_accuracy", "lr", "best"]
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cpu" / a["hash"] / "history.csv")[columns],
                                      pd.read_csv(tmp_path / "gpu" / b["hash"] / "history.csv")[columns])
    assert "device cpu" in held["profiles"]["smoke"]["machine"]


def test_every_published_run_of_every_profile_matches_the_current_code():
    """Runs of a profile still being published (a few per session, `make runs PROFILE=...`) may
    be incomplete, but each one published must be the run its profile's code now trains."""
    for name, published in MANIFEST["profiles"].items():
        chosen = profiles.get_profile(name)
        dataset = experiments.profile_dataset(chosen)
        assert published["dataset"]["hash"] == dataset["hash"], f"{name}: {REFRESH}"
        wanted = {runfolder.key(c, dataset) for c in experiments.book_runs(chosen)}
        wanted.add(experiments.autoencoder_name(chosen, dataset))
        stale = [e["hash"] for e in MANIFEST["runs"] if e["profile"] == name and e["hash"] not in wanted]
        assert not stale, f"{name}: published runs the code no longer trains: {stale}: {REFRESH}"


def test_a_profile_name_is_a_label_not_part_of_a_run_key():
    """Renaming a profile trains nothing: the run key and the data fingerprint ignore the name."""
    import dataclasses

    book = profiles.get_profile("book")
    renamed = dataclasses.replace(book, name="book-renamed")
    fingerprint = [experiments.profile_dataset(p) for p in (book, renamed)]
    assert fingerprint[0]["hash"] == fingerprint[1]["hash"]
    a, b = (profiles.TrainConfig.from_profile(p, model="stgram", mode="arcface") for p in (book, renamed))
    assert a.profile != b.profile and runfolder.key(a, fingerprint[0]) == runfolder.key(b, fingerprint[1])
    c = profiles.TrainConfig.from_profile(book, model="stgram", mode="arcface", lr=0.002)
    assert runfolder.key(c, fingerprint[0]) != runfolder.key(a, fingerprint[0])


def test_the_autoencoder_is_published_beside_the_book_runs(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a published autoencoder must not be trained")

    monkeypatch.setattr("asdlib.baseline.load_or_run_baseline", forbidden)
    results = experiments.autoencoder_results("book")  # the evidence profile's, beside its runs
    entry = next(e for e in MANIFEST["runs"] if e["profile"] == RUNS.name and e["model"] == "autoencoder")
    from asdlib import metrics

    assert metrics.per_type_table(results)["per_id_mean_auc"].mean() == pytest.approx(entry["average_auc"])
    assert not results["path"].str.startswith("/").any()
