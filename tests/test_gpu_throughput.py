"""benchmarks/gpu_throughput.py (sizing the GPU route): it runs, and its estimate adds up; and
benchmarks/gpu_curve.sh (the GPU route in one sitting) leaves what the next sitting needs."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from asdlib import experiments

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_throughput.py"


@pytest.fixture(scope="module")
def bench():
    # imported by name (not from its path), so that the spawned processes import it too
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        yield importlib.import_module("gpu_throughput")
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_the_evidence_steps_are_the_published_epochs_times_the_steps_per_epoch(bench):
    manifest = json.loads((experiments.PUBLISHED_DIR / "MANIFEST.json").read_text())
    epochs = sum(e["epochs"] for e in manifest["runs"]
                 if e["profile"] == "evidence" and e["model"] != "autoencoder")
    # 300 clips x 23 IDs, a tenth held out for validation, batches of 16
    assert bench.evidence_steps() == epochs * math.ceil(300 * 23 * 0.9 / 16)


def test_two_processes_train_side_by_side_and_each_reports_its_rate(bench):
    rates = bench.measure(2, "stgram", "arcface", 0.5, device="cpu")
    assert len(rates) == 2 and all(rate > 0 for rate in rates)


def test_without_a_gpu_it_says_so_in_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = subprocess.run([sys.executable, str(SCRIPT), "--procs", "1"], capture_output=True,
                            text=True, timeout=120, cwd=REPO)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("gpu_throughput.py: device: cuda asked for a CUDA GPU")


def test_the_one_sitting_script_leaves_the_published_points_and_a_state_to_take_back(tmp_path):
    # benchmarks/gpu_curve.sh on the CPU route, its deadline reached at once: what it leaves for
    # the next sitting is there, and the published points' archive holds the manifest
    out, home = tmp_path / "out", tmp_path / "home"
    env = dict(os.environ, ROUTE="--jobs 1", ASDLIB_HOME=str(home),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_curve.sh"), str(out), "1",
                           "train3000"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "curve: exit 124" in done.stdout  # stopped by its deadline
    assert {p.name for p in out.iterdir()} == {"curve.log", "table.txt", "points.tar", "state.tar"}
    with tarfile.open(out / "points.tar") as points:
        assert "./MANIFEST.json" in points.getnames()
    assert "train100" in (out / "table.txt").read_text()
    # a STATE (an earlier sitting's) that cannot be unpacked is refused in one line
    env["STATE"] = str(tmp_path / "missing.tar")
    refused = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_curve.sh"), str(out), "1"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "STATE: cannot unpack" in refused.stderr
