"""DistributedDataParallel training: torchrun, 2 processes, gloo on the CPU (smoke profile).

Slow on a 2-core machine (two processes, each starting torch): one tiny epoch, generous timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from asdlib.evaluate import evaluate
from asdlib.runfolder import load_checkpoint
from asdlib.profiles import TrainConfig
from asdlib.train import Setup, train


# Train on one torch thread (see conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _keys(value, prefix=""):
    """Every key path of a JSON value (first element of lists), e.g. "per_id[].auc"."""
    if isinstance(value, dict):
        return {k for key, item in value.items() for k in {prefix + key} | _keys(item, prefix + key + ".")}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return _keys(value[0], prefix[:-1] + "[].")
    return set()


def test_torchrun_with_two_processes_gives_the_same_metrics_format(tmp_path, smoke_data):
    root = smoke_data("fan")
    out = tmp_path / "ddp_run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "asdlib", "train", "--data", str(root), "--profile", "smoke", "--out", str(out),
               "--quiet", "--evaluate"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # rank 0 alone printed the report and wrote the files
    assert result.stdout.count("trained tastgram noisy_arcmix") == 1
    assert "profile=smoke" in result.stdout and "synthetic data" in result.stdout
    checkpoint = load_checkpoint(out / "last.pt")
    assert checkpoint["epoch"] == 1 and len(checkpoint["class_map"]) == 4
    assert not any(k.startswith("module.") for k in checkpoint["model"])

    # The same run in one process: metrics.json has exactly the same layout
    single = tmp_path / "single_run"
    train(TrainConfig.from_profile("smoke"), root, single, Setup(progress=False))
    evaluate(single, progress=False)
    ddp_metrics = json.loads((out / "metrics.json").read_text())
    single_metrics = json.loads((single / "metrics.json").read_text())
    assert _keys(ddp_metrics) == _keys(single_metrics)
    assert len(ddp_metrics["per_id"]) == len(single_metrics["per_id"]) == 4
    assert ddp_metrics["config"] == single_metrics["config"]
