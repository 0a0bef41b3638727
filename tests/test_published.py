"""The published runs of the book profile (asdlib/published): current, complete, small, read back.

They are the results of `make runs` (chapters 8-11 read them instead of training for hours).
When a test here fails, the code or the data changed what those runs would compute: run
`make runs` to train and publish them again.
"""

from __future__ import annotations

import hashlib

import pytest

from asdlib import dcase, experiments, profiles, runtime, synth

MANIFEST = experiments.published_manifest()
REFRESH = "the published runs are out of date: refresh them with `make runs`"


def expected_dataset() -> dict:
    book = profiles.get_profile("book")
    return dcase.synthetic_fingerprint(synth.expected_info(book, book.data_seed))


def test_every_book_run_is_published_for_the_current_config_and_data():
    assert MANIFEST is not None, f"asdlib/published/MANIFEST.json is missing: {REFRESH}"
    dataset = expected_dataset()
    assert MANIFEST["dataset"]["hash"] == dataset["hash"], (
        f"published on {MANIFEST['dataset']['description']} ({MANIFEST['dataset']['hash']}), "
        f"the book profile now makes {dataset['description']} ({dataset['hash']}): {REFRESH}")
    published = {entry["hash"] for entry in MANIFEST["runs"]}
    missing = [f"{experiments.run_label(c)} seed {c.seed}" for c in experiments.book_runs("book")
               if experiments.run_hash(c, dataset) not in published]
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
    assert total < 20e6, f"published runs take {total / 1e6:.1f} MB (at most 20 MB)"


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
                                    progress=False)
    assert not run.published


def test_publishing_twice_writes_the_same_bytes(monkeypatch, tmp_path):
    # one smoke run stands for the book's runs; the second call reads the run back and exports
    # it again: every published file must come out byte for byte the same (no time stamps, no
    # temporary names), so that a refresh changes only what the runs changed
    monkeypatch.setenv("ASDLIB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(experiments, "BOOK_RUNS", {("stgram", "arcface"): "first"})
    first = experiments.publish_runs("smoke", jobs=1, dest=tmp_path / "a", progress=False,
                                     reuse_freed_memory=False)
    second = experiments.publish_runs("smoke", jobs=1, dest=tmp_path / "b", progress=False,
                                      reuse_freed_memory=False)
    assert [e["files"] for e in first["runs"]] == [e["files"] for e in second["runs"]]
    (entry,) = first["runs"]
    assert set(entry["files"]) == {"config.json", "history.csv", "metrics.json", "scores.csv.gz"}
    assert first["dataset"]["hash"] == second["dataset"]["hash"]
    assert "cores" in first["machine"] and runtime.cpu_model() in first["machine"]
