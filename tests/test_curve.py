"""The learning curve: points trained, published one by one, read back verified, summarised."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from asdlib import curve, experiments, layout, synth

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ONE_JOB = experiments.Workers(jobs=1, reuse_freed_memory=False)

POINTS = [curve.CurvePoint(6, base="smoke"), curve.CurvePoint(12, base="smoke"),
          curve.CurvePoint(6, ids="all", base="smoke"),
          curve.CurvePoint(6, individuality="strong", base="smoke")]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASDLIB_HOME", str(tmp_path_factory.mktemp("home")))
        dest = tmp_path_factory.mktemp("evidence")
        names = []
        assert curve.publish_curve(POINTS, ONE_JOB, progress=False, dest=dest,
                                   on_published=lambda p: names.append(p.name))
        return dest, names


def test_each_point_is_published_with_its_files_in_the_manifest(published):
    dest, names = published
    assert names == [p.name for p in POINTS]  # one at a time, in order (one job)
    manifest = json.loads((dest / "MANIFEST.json").read_text())
    assert sorted(manifest["points"]) == sorted(names)
    files = manifest["points"]["train12"]["files"]
    assert set(files) == {"autoencoder_scores.csv.gz", "point.json", "network/config.json",
                          "network/history.csv", "network/metrics.json", "network/scores.csv.gz"}
    # the 41-ID point has no autoencoder of its own: it is compared with the dev IDs' one
    assert "autoencoder_scores.csv.gz" not in manifest["points"]["train6-41ids"]["files"]
    info = json.loads((dest / "train12" / "point.json").read_text())
    dev_ids = sum(len(ids) for ids in layout.DEV_IDS.values())
    assert info["point"]["train_per_id"] == 12 and info["train_clips"] == 12 * dev_ids


def test_points_differ_only_where_they_should(published):
    dest, _ = published
    six, twelve = (curve.read_point(n, dest) for n in ("train6", "train12"))
    # the same test clips at every size
    assert list(six["network"]["path"]) == list(twelve["network"]["path"])
    strong = curve.read_point("train6-strong", dest)
    assert strong["info"]["dataset"]["hash"] != six["info"]["dataset"]["hash"]
    wide = curve.read_point("train6-41ids", dest)
    # 41 IDs trained, the development IDs' test clips scored as the others' are
    assert set(wide["all_scores"]["machine_id"]) > set(wide["network"]["machine_id"])
    assert len(wide["network"]) == len(six["network"])
    assert wide["autoencoder"].equals(six["autoencoder"])


def test_the_table_and_the_trend(published):
    dest, _ = published
    table = curve.curve_table(dest, n_boot=100)
    assert list(table.index) == ["train6", "train12", "train6-41ids", "train6-strong"]
    row = table.loc["train12"]
    assert row["gap"] == pytest.approx(row["network"] - row["autoencoder"])
    assert 0 < row["gap_se"] < 30 and 0 <= row["normal_named"] <= 100
    fit = curve.trend(table)
    main = table.loc[["train6", "train12"]]
    slope = (main["gap"].iloc[1] - main["gap"].iloc[0]) / np.log10(2)
    assert fit["points"] == 2 and fit["per_decade"] == pytest.approx(slope)
    if slope > 0:
        assert fit["level_at"] == pytest.approx(
            10 ** (np.log10(6) - main["gap"].iloc[0] / slope))


def test_a_changed_point_is_refused_and_a_missing_one_named(published, tmp_path):
    import shutil

    dest, _ = published
    copy = tmp_path / "evidence"
    shutil.copytree(dest, copy)
    scores = copy / "train6" / "autoencoder_scores.csv.gz"
    scores.write_bytes(scores.read_bytes()[:100])
    with pytest.raises(ValueError, match="train6/autoencoder_scores.csv.gz does not match"):
        curve.read_point("train6", copy)
    with pytest.raises(FileNotFoundError, match="not published"):
        curve.read_point("train3000", copy)


def test_the_gpu_route_publishes_the_point_the_cpu_route_does(published, tmp_path, monkeypatch):
    """`curve --gpu` (data from several generator processes, the network's clips held on the
    device, the two models side by side in two processes), run on the CPU at smoke size: the
    same clips, the same batches, so the same published scores; only the times differ."""
    dest, _ = published
    monkeypatch.setenv("ASDLIB_HOME", str(tmp_path / "home"))
    route = experiments.Workers(jobs=2, device="cpu", data_on_device=True, synth_workers=2,
                                reuse_freed_memory=False)
    assert curve.publish_curve([POINTS[0]], route, progress=False, dest=tmp_path / "gpu") == ["train6"]
    cpu, gpu = (json.loads((d / "MANIFEST.json").read_text())["points"]["train6"]["files"]
                for d in (dest, tmp_path / "gpu"))
    for name in ("autoencoder_scores.csv.gz", "network/scores.csv.gz"):
        assert cpu[name] == gpu[name], name
    metrics = [json.loads((d / "train6" / "network" / "metrics.json").read_text())
               for d in (dest, tmp_path / "gpu")]
    for m in metrics:
        m.pop("seconds")  # the time the scoring took
    assert metrics[0] == metrics[1]
    info = json.loads((tmp_path / "gpu" / "train6" / "point.json").read_text())
    assert ", 2 jobs x 1 torch thread" in info["machine"] and info["machine"].endswith("device cpu")
    assert set(info["seconds_this_machine"]) == {"autoencoder", "network"}


def test_the_strong_machines_are_the_kept_ones_scaled():
    kept, strong = (synth.individual("pump", "id_00", level) for level in ("kept", "strong"))
    ratio = synth.INDIVIDUALITY_LEVELS["strong"]["mode_db"] / synth.INDIVIDUALITY["mode_db"]
    np.testing.assert_allclose(strong["modes"][:, 2], ratio * kept["modes"][:, 2])
    np.testing.assert_allclose(strong["modes"][:, :2], kept["modes"][:, :2])  # same draws
    with pytest.raises(ValueError, match="individuality"):
        synth.make_clip("pump", "id_00", individuality="medium")
