"""The code computes the numbers it computed when they were recorded: exactly where that can
hold on any CPU, bit for bit on the CPU that recorded them.

`tests/data/golden/` holds one recording per CPU model and torch version (`golden_run.py`
writes them; its docstring says what each part is). Three guarantees, from strongest to
widest:

1. **Bit for bit, on a CPU model and torch version that has a recording** (today an AMD EPYC
   and an Intel Xeon, torch 2.14.1): every recorded number, whole multi-epoch runs included.
2. **Exactly, on any x86-64 CPU**: the bytes of every synthetic clip, the validation split, the
   first batch's labels and mixing permutation, the learning rate of every epoch, and the
   metrics of given scores: integer and byte arithmetic, the same on every CPU.
3. **Up to float rounding, on any x86-64 CPU**: what is computed before the first optimizer
   update (log-Mels, the first step's loss, initial weights, gradient and first update of five
   training set-ups, the autoencoder and the toy) and the short autoencoder run, within
   tolerances about ten times the largest difference measured between CPU kernels
   (`golden_run.FIRST_TOLERANCE` says what was measured).

Not compared across CPUs: the later steps of the networks' runs. After the first update, Adam
divides every gradient by its own running size, so a near-zero gradient whose last bit differs
moves its weight by up to the learning rate: between an Intel Xeon and an AMD EPYC, the same
code and data gave step losses up to 1.4 % apart and scores up to 6 % apart after two smoke
epochs, a drift that says nothing about the code.

`test_a_changed_training_step_is_caught_on_any_cpu` shows that guarantee 3 still catches a
change of behaviour: one line of `asdlib.loop.train_step` changed (the margin, the scale, the
mixing, the optimizer step) and the comparison fails on every CPU.
"""

from __future__ import annotations

import inspect
import textwrap

import pytest
import torch

import golden_run
from asdlib import loop, runtime, synth

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECORDINGS = golden_run.recordings()
THIS_MACHINE = golden_run.recording_path()
NAMES = [f"{r['recorded_on']['cpu']}, torch {r['recorded_on']['torch']}" for r in RECORDINGS]


@pytest.fixture(scope="module")
def recomputed(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASDLIB_HOME", str(tmp_path_factory.mktemp("home")))
        return golden_run.record(tmp_path_factory.mktemp("golden"), patch.setattr)


def test_there_is_a_recording_with_every_part():
    assert RECORDINGS, f"no recording in {golden_run.FOLDER}: run tests/golden_run.py"
    full = [r for r in RECORDINGS if {"exact", "first"} <= set(r)]
    assert full, "no recording has the exact and first-step parts: run tests/golden_run.py"
    assert all(r["recorded_on"]["generator_version"] == synth.GENERATOR_VERSION for r in full), (
        "a recording was made with another synthetic-data generator: record again")


@pytest.mark.parametrize("recording", RECORDINGS, ids=NAMES)
def test_what_does_not_depend_on_the_cpu_is_reproduced_on_any_cpu(recomputed, recording):
    different = golden_run.differences_on_any_cpu(recomputed, recording)
    assert not different, "\n".join(different)


@pytest.mark.parametrize("recording", RECORDINGS, ids=NAMES)
def test_metrics_of_the_recorded_scores_are_the_recorded_metrics(recording):
    different = golden_run.metrics_of_recorded_scores(recording)
    assert not different, "\n".join(different)


@pytest.mark.skipif(not THIS_MACHINE.is_file(),
                    reason=f"no recording for this CPU ({runtime.cpu_model()}) and torch "
                           f"{torch.__version__}: only guarantees 2 and 3 apply here "
                           "(tests/golden_run.py records one)")
def test_every_number_is_bit_for_bit_the_recorded_one_on_the_recording_cpu(recomputed):
    recording = next(r for r, p in zip(RECORDINGS, sorted(golden_run.FOLDER.glob("*.json")))
                     if p == THIS_MACHINE)
    different = golden_run.differences_bit_for_bit(recomputed, recording)
    assert not different, f"{len(different)} numbers differ:\n" + "\n".join(different[:20])


#: One line of `loop.train_step` changed: (what, the line's text, its replacement).
MUTANTS = [
    ("the margin", "margin=head.margin,", "margin=head.margin * 0.98,"),
    ("the scale", "scale=head.scale,", "scale=head.scale * 0.98,"),
    ("the mixing draws", "alpha=step.alpha,", "alpha=step.alpha * 2,"),
    ("no optimizer step", "        optimizer.step()\n    else:", "        pass\n    else:"),
]


def _mutant(old: str, new: str):
    source = textwrap.dedent(inspect.getsource(loop.train_step))
    assert source.count(old) == 1, f"loop.train_step no longer holds {old!r}: update MUTANTS"
    namespace = dict(vars(loop))
    exec(compile(source.replace(old, new), loop.__file__, "exec"), namespace)
    return namespace["train_step"]


@pytest.fixture(scope="module")
def step_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("mutants") / "data"
    synth.generate(data, profile="smoke", types=golden_run.TYPES, progress=False)
    return data


@pytest.mark.parametrize("what, old, new", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_a_changed_training_step_is_caught_on_any_cpu(step_data, tmp_path, monkeypatch,
                                                      what, old, new):
    reference = next(r for r in RECORDINGS if "first" in r)
    want = {"first": {"steps": reference["first"]["steps"]},
            "exact": {"first_batch": reference["exact"]["first_batch"]}}
    monkeypatch.setattr(loop, "train_step", _mutant(old, new))
    got = golden_run.first_steps(step_data, tmp_path, monkeypatch.setattr)
    different = golden_run.differences_on_any_cpu(got, want)
    caught = {name for name in golden_run.FIRST_STEPS if any(line.startswith(name) for line in different)}
    if what == "the margin":  # every loss but plain mixup has a margin: each must notice
        assert caught == set(golden_run.FIRST_STEPS) - {"tastgram_mixup"}, different
    else:
        assert caught, f"changing {what} in loop.train_step went unnoticed"
