"""The restructured code computes the same numbers as the code before it, on the CPU.

`tests/data/golden_smoke_run.json` was recorded before asdlib was restructured (see
`golden_run.py`): two fixed-seed smoke runs (every step's loss, the history, every tensor of the
best checkpoint, every test clip's score, the metrics), the chapter-2 autoencoder and the 2-D toy.
The same recipe must give exactly the same values: bit for bit on the machine that recorded
them (the tensor digests are compared there), and within float rounding on any other CPU.
"""

from __future__ import annotations

import json

import pytest
import torch

import golden_run
from asdlib import loop

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GOLDEN = json.loads(golden_run.OUT.read_text())


@pytest.fixture(scope="module")
def recomputed(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASDLIB_HOME", str(tmp_path_factory.mktemp("home")))
        return golden_run.record(tmp_path_factory.mktemp("golden"),
                                 lambda fn: patch.setattr(loop, "train_step", fn))


def close(got, want, what):
    torch.testing.assert_close(torch.tensor(got, dtype=torch.float64),
                               torch.tensor(want, dtype=torch.float64), rtol=1e-5, atol=1e-6,
                               msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("name", sorted(golden_run.RUNS))
def test_training_runs_give_the_recorded_numbers(recomputed, name):
    got, want = recomputed[name], GOLDEN[name]
    assert len(got["step_losses"]) == len(want["step_losses"])
    for key in ("step_losses", "train_loss", "val_loss", "val_accuracy", "scores"):
        close(got[key], want[key], f"{name} {key}")
    assert got["best_epoch"] == want["best_epoch"]
    assert set(got["state_sum"]) == set(want["state_sum"])
    close([got["state_sum"][k] for k in sorted(want["state_sum"])],
          [want["state_sum"][k] for k in sorted(want["state_sum"])], f"{name} checkpoint tensors")
    for key, value in want["average"].items():
        assert got["average"][key] == pytest.approx(value, abs=1e-9), f"{name} average {key}"


def test_the_autoencoder_and_the_toy_give_the_recorded_numbers(recomputed):
    for machine_type, losses in GOLDEN["baseline"]["losses"].items():
        close(recomputed["baseline"]["losses"][machine_type], losses, f"autoencoder {machine_type}")
    close(recomputed["baseline"]["scores"], GOLDEN["baseline"]["scores"], "autoencoder scores")
    close(recomputed["toy"]["history"], GOLDEN["toy"]["history"], "toy losses")
    close(recomputed["toy"]["weight"], GOLDEN["toy"]["weight"], "toy weights")


RECORDED = GOLDEN["recorded_on"]


@pytest.mark.skipif(golden_run.cpu_model() != RECORDED["cpu"]
                    or torch.__version__.split("+")[0] != RECORDED["torch"],
                    reason=f"bit-exact only on the recording's CPU ({RECORDED['cpu']}) and torch "
                           f"{RECORDED['torch']}; other CPUs' float kernels may round otherwise")
def test_every_number_is_bit_for_bit_the_recorded_one_on_the_recording_cpu(recomputed):
    for name in golden_run.RUNS:
        got, want = recomputed[name], GOLDEN[name]
        assert got["step_losses"] == want["step_losses"], name
        assert got["scores"] == want["scores"], name
        different = [k for k in want["state_digest"] if got["state_digest"][k] != want["state_digest"][k]]
        assert not different, f"{name}: tensors not bit-identical: {different[:5]}"
