"""The fixed-seed smoke computations that `test_same_numbers.py` compares with recordings.

    .venv/bin/python tests/golden_run.py   # writes tests/data/golden/<this CPU and torch>.json

A recording holds three kinds of numbers, because they travel differently between CPU models:

- ``exact``: what is integer or byte arithmetic, the same on every x86-64 CPU: the bytes of every
  synthetic clip, the validation split, the labels of the first batch, the mixing permutation,
  the learning rate of every epoch, the metrics recomputed from the recorded scores.
- ``first``: what is computed before any optimizer update, equal up to float rounding on every
  CPU: the log-Mels of three clips, and for each of five training set-ups (the four losses on
  TASTgram, ArcFace on STgram), the chapter-2 autoencoder and the 2-D toy, the first step's
  loss, the initial weights, the gradient and the first update, each tensor as a sketch (its
  norm and two projections onto fixed +-1 vectors).
- ``runs``, ``baseline``, ``toy``: whole multi-epoch runs (every step's loss, the checkpoint's
  tensor digests, every score). After the first update, two CPU models drift apart (Adam divides
  each gradient by its own running size, so a near-zero gradient whose last bit differs moves its
  weight by up to the learning rate), so these are compared only on the CPU model and torch that
  recorded them, and there bit for bit.

The first recording (Intel Xeon, commit 1d47771) holds only ``runs``, ``baseline``, ``toy``
and the first step's loss (as ``step_losses[0]``); it stays as it was recorded. Rerun this only
when a change is *meant* to change the numbers, say so in the commit message, and remove the
recordings of other CPUs that no longer hold (their bit-exact test would fail).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import threadpoolctl
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from asdlib import (audio, baseline, dcase, evaluate, losses, loop, metrics, profiles,
                    runfolder, runtime, synth, toy, train)

FOLDER = Path(__file__).with_name("data") / "golden"
RUNS = {  # name -> (model, mode, epochs): whole runs, bit-exact on the recording CPU only
    "tastgram_noisy_arcmix": ("tastgram", "noisy_arcmix", 2),
    "stgram_arcface": ("stgram", "arcface", 1),
}
FIRST_STEPS = {  # name -> (model, mode): the first training step, on any CPU
    "tastgram_arcface": ("tastgram", "arcface"),
    "tastgram_mixup": ("tastgram", "mixup"),
    "tastgram_arcmix": ("tastgram", "arcmix"),
    "tastgram_noisy_arcmix": ("tastgram", "noisy_arcmix"),
    "stgram_arcface": ("stgram", "arcface"),
}
TYPES = ["fan", "ToyCar"]
#: The clips whose log-Mels are recorded (relative to the data root).
FEATURE_CLIPS = ["fan/train/normal_id_00_00000000.wav", "fan/test/anomaly_id_02_00000001.wav",
                 "ToyCar/test/normal_id_03_00000002.wav"]


def recording_path(cpu: str | None = None, torch_version: str | None = None) -> Path:
    """The recording of a CPU model and torch version (default: this machine's)."""
    cpu = runtime.cpu_model() if cpu is None else cpu
    torch_version = torch.__version__.split("+")[0] if torch_version is None else torch_version
    slug = re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-")
    return FOLDER / f"{slug}_torch-{torch_version}.json"


def recordings() -> list:
    """Every recording in `FOLDER`, as dicts."""
    return [json.loads(p.read_text()) for p in sorted(FOLDER.glob("*.json"))]


def tensor_digest(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's bytes (contiguous, CPU): equal digests mean equal bits."""
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


#: OpenBLAS threads of every recording (a 2-core machine's default).
SKETCH_BLAS_THREADS = 2


def sketch(tensor: torch.Tensor, name: str) -> list:
    """`[norm, p1, p2]` of a tensor: its L2 norm and its projections onto two fixed vectors of
    +-1 (drawn from the tensor's name, divided by sqrt(size) so that |p| <= norm). Integer
    draws, so the vectors are the same on every CPU; a change of the tensor in any direction
    moves at least one projection."""
    flat = tensor.detach().cpu().contiguous().reshape(-1).double().numpy()
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    signs = rng.integers(0, 2, size=(2, flat.size)) * 2.0 - 1.0
    # OpenBLAS splits a long dot product over its threads, so the norm's last bits depend on
    # how many it has (OMP_NUM_THREADS=1 or a 4-core machine give others): always the
    # recordings' count.
    with threadpoolctl.threadpool_limits(limits=SKETCH_BLAS_THREADS, user_api="blas"):
        return [float(np.linalg.norm(flat)), *(signs @ flat / np.sqrt(flat.size)).tolist()]


class FirstStepDone(Exception):
    """Raised by the recorder after the first step: training stops there."""


def _record_first_step(config, data, workdir, patch) -> dict:
    """Train `config` on `data` for exactly one step (the trainer's own) and sketch it."""
    seen = {}
    original_step, original_mix = loop.train_step, losses.mix_for_mode

    def mix(mode, inputs, labels, *args, **kwargs):
        mixed = original_mix(mode, inputs, labels, *args, **kwargs)
        _, y_a, y_b, lam = mixed
        if mode in losses.MIXING_MODES:
            seen["mix"] = {"labels_b": y_b.tolist(), "lam": float(lam)}
        return mixed

    def step(context, wav, labels, generator=None):
        model = context.model
        before = {k: p.detach().clone() for k, p in model.named_parameters()}
        loss = original_step(context, wav, labels, generator)
        seen.update(
            loss=float(loss), labels=labels.tolist(),
            init={k: sketch(v, k) for k, v in before.items()},
            grad={k: sketch(p.grad, k) for k, p in model.named_parameters() if p.grad is not None},
            update={k: sketch(p.detach() - before[k], k) for k, p in model.named_parameters()})
        raise FirstStepDone

    patch(loop, "train_step", step)
    patch(losses, "mix_for_mode", mix)
    try:
        train.train(config, data, workdir, train.Setup(progress=False))
    except FirstStepDone:
        pass
    finally:
        patch(loop, "train_step", original_step)
        patch(losses, "mix_for_mode", original_mix)
    return seen


def first_steps(data: Path, workdir: Path, patch) -> dict:
    """The first training step of every set-up of `FIRST_STEPS` on the smoke data `data`, as
    the parts of a recording they fill (``first.steps`` and ``exact.first_batch``)."""
    steps = {}
    for name, (model, mode) in FIRST_STEPS.items():
        config = profiles.TrainConfig.from_profile("smoke", model=model, mode=mode, seed=0)
        steps[name] = _record_first_step(config, data, workdir / f"first_{name}", patch)
    return {"first": {"steps": {k: {f: v[f] for f in ("loss", "init", "grad", "update")}
                                for k, v in steps.items()}},
            "exact": {"first_batch": {k: {"labels": v["labels"], **v.get("mix", {})}
                                      for k, v in steps.items()}}}


def _record_first_autoencoder_step(data, patch) -> dict:
    seen = {}
    original = baseline.train_step

    def step(model, optimizer, batch):
        before = {k: p.detach().clone() for k, p in model.named_parameters()}
        loss = original(model, optimizer, batch)
        seen.update(loss=float(loss), batch=sketch(batch, "batch"),
                    grad={k: sketch(p.grad, k) for k, p in model.named_parameters()},
                    update={k: sketch(p.detach() - before[k], k) for k, p in model.named_parameters()})
        raise FirstStepDone

    patch(baseline, "train_step", step)
    try:
        baseline.run_baseline(dcase.build_index(data), "smoke", seed=0, progress=False,
                              machine_types=TYPES[:1])
    except FirstStepDone:
        pass
    finally:
        patch(baseline, "train_step", original)
    return seen


def _record_first_toy_step() -> dict:
    """The toy's first Adam step, read by optimizer hooks (its loop is inline in `toy._fit`)."""
    seen = {}

    def pre(optimizer, args, kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"]]
        seen["grad"] = {f"param{i}": sketch(p.grad, f"param{i}") for i, p in enumerate(params)}
        seen["_before"] = [p.detach().clone() for p in params]

    def post(optimizer, args, kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"]]
        seen["update"] = {f"param{i}": sketch(p.detach() - b, f"param{i}")
                          for i, (p, b) in enumerate(zip(params, seen.pop("_before")))}
        raise FirstStepDone

    handles = [register_optimizer_step_pre_hook(pre),
               register_optimizer_step_post_hook(post)]
    try:
        toy.train_toy("noisy_arcmix", seed=0, epochs=1)
    except FirstStepDone:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _clip_digests(data: Path) -> dict:
    return {p.relative_to(data).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in sorted(data.glob("*/*/*.wav"))}


def _features(data: Path) -> dict:
    """Per-band and per-frame means of the log-Mel (the smoke recipe's) of `FEATURE_CLIPS`."""
    config = profiles.TrainConfig.from_profile("smoke")
    logmel_fn = config.build_logmel()
    out = {}
    for name in FEATURE_CLIPS:
        wav = torch.from_numpy(audio.read_clip(data / name, config.num_samples))
        logmel = logmel_fn(wav[None])[0].double()  # [n_mels, frames]
        out[name] = {"bands": logmel.mean(dim=1).tolist(), "frames": logmel.mean(dim=0).tolist()}
    return out


def record(workdir: Path, patch) -> dict:
    """Every number of a recording (see the module docstring), computed in `workdir`.

    `patch(module, name, value)` sets a module attribute (the test passes pytest's
    monkeypatch.setattr; `main` uses setattr).
    """
    data = workdir / "data"
    synth.generate(data, profile="smoke", types=TYPES, progress=False)
    out = {"exact": {"clips": _clip_digests(data)}, "first": {"features": _features(data)}}

    # ---- the first step of every set-up
    steps = first_steps(data, workdir, patch)
    out["first"]["steps"] = steps["first"]["steps"]
    out["exact"]["first_batch"] = steps["exact"]["first_batch"]
    out["first"]["autoencoder"] = _record_first_autoencoder_step(data, patch)
    out["first"]["toy"] = _record_first_toy_step()

    # ---- whole runs
    step_losses = []
    original = loop.train_step

    def recording_step(*args, **kwargs):
        loss = original(*args, **kwargs)
        step_losses.append(float(loss))
        return loss

    patch(loop, "train_step", recording_step)
    runs, lr, split = {}, {}, {}
    try:
        for name, (model, mode, epochs) in RUNS.items():
            step_losses.clear()
            config = profiles.TrainConfig.from_profile("smoke", model=model, mode=mode,
                                                       num_epochs=epochs, seed=0)
            run_dir = workdir / name
            history = train.train(config, data, run_dir, train.Setup(progress=False))
            result = evaluate.evaluate(run_dir, progress=False)
            best = runfolder.load_checkpoint(run_dir / runfolder.BEST)
            scores = pd.read_csv(run_dir / "scores.csv")
            runs[name] = {
                "step_losses": list(step_losses),
                "train_loss": history["train_loss"].tolist(),
                "val_loss": history["val_loss"].tolist(),
                "val_accuracy": history["val_accuracy"].tolist(),
                "best_epoch": int(best["epoch"]),
                "state_digest": {k: tensor_digest(v) for k, v in best["model"].items()},
                "state_sum": {k: float(v.double().sum()) for k, v in best["model"].items()},
                "scores": [float(s) for s in scores["score"]],
                "average": result["average"],
            }
            lr[name] = history["lr"].tolist()
            train_index, _ = train.training_data(data)
            split[name] = [p.tolist() for p in train.validation_split(
                len(train_index), config.val_fraction, config.seed)]
    finally:
        patch(loop, "train_step", original)
    out["runs"] = runs
    out["exact"]["lr"] = lr
    out["exact"]["validation_split"] = split
    # The metrics of the recorded scores: pure arithmetic on them (sklearn), no network
    labelled = scores[scores["label"] >= 0]
    out["exact"]["metrics_of_scores"] = metrics.per_type_table(labelled).round(12).reset_index().to_dict(orient="list")
    out["exact"]["scores_for_metrics"] = labelled[["machine_type", "machine_id", "label", "score"]].to_dict(orient="list")
    # The chapter-2 autoencoder and the chapter 4-7 toy, which read their sizes from the profile
    results, _, losses_ = baseline.run_baseline(dcase.build_index(data), "smoke", seed=0,
                                                progress=False)
    out["baseline"] = {"losses": losses_, "scores": results["score"].tolist()}
    result = toy.train_toy("noisy_arcmix", seed=0, epochs=profiles.get_profile("smoke").toy_epochs)
    out["toy"] = {"history": result.history, "weight": result.weight.flatten().tolist()}
    return out


def main() -> int:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ASDLIB_HOME"] = str(Path(tmp) / "home")
        out = record(Path(tmp), setattr)
    out["recorded_on"] = {"cpu": runtime.cpu_model(), "torch": torch.__version__.split("+")[0],
                          "generator_version": synth.GENERATOR_VERSION,
                          "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    path = Path(os.environ.get("GOLDEN_OUT") or recording_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# ----------------------------------------------------------------------------------------
# Comparing a recomputation with a recording
# ----------------------------------------------------------------------------------------

#: Tolerances of the "first" numbers on any CPU, each about ten times the largest difference
#: measured between this machine's kernels and the same machine forced onto other kernels
#: (ATEN_CPU_CAPABILITY=default / avx2, MKL_ENABLE_INSTRUCTIONS=AVX2 / SSE4_2,
#: ONEDNN_MAX_CPU_ISA=AVX2 / SSE41; numpy and glibc without AVX-512 / AVX2 / FMA), and
#: between the Intel Xeon and AMD EPYC recordings. Relative to what is named; a sketch entry
#: is compared relative to the norm of the whole gradient (or update) of the model, because
#: some tensors' gradients are zero in exact arithmetic (a bias before a BatchNorm) and carry
#: only rounding noise.
FIRST_TOLERANCE = {
    "loss": 1e-5,          # measured 9.3e-7 (Intel vs AMD: 3.7e-7)
    "features_db": 1e-3,   # measured 0 dB
    "init": 1e-6,          # of each tensor's norm; measured 1.8e-8
    "grad": 2e-3,          # of the model's gradient norm; measured 2.3e-4 (a depthwise conv)
    "update": 2e-2,        # of the model's update norm; measured 2.7e-3 (Adam's first step
                           # is +-lr where a gradient is pure rounding noise)
    "autoencoder_run": 1e-3,  # every epoch loss and score of the whole smoke autoencoder run:
                              # measured 8.4e-5 (Intel vs AMD: 7.6e-5)
}


def _sketch_differences(got: dict, want: dict, tol: float, what: str, per_tensor=False) -> list:
    if set(got) != set(want):
        return [f"{what}: tensors {sorted(set(got) ^ set(want))[:5]} in only one of the two"]
    total = np.sqrt(sum(v[0] ** 2 for v in want.values()))
    out = []
    for name, value in want.items():
        scale = value[0] if per_tensor else total
        diff = float(np.max(np.abs(np.array(got[name]) - np.array(value))))
        if diff > tol * scale + 1e-12:
            out.append(f"{what} {name}: sketch {got[name]} vs recorded {value} "
                       f"(difference {diff:.3g} > {tol:g} x {scale:.3g})")
    return out


def _relative_differences(got, want, tol: float, what: str) -> list:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return [f"{what}: {got.shape} values vs {want.shape} recorded"]
    bad = np.abs(got - want) > tol * np.abs(want) + 1e-12
    if not bad.any():
        return []
    i = int(np.argmax(bad))
    return [f"{what}: {int(bad.sum())} of {bad.size} values differ by more than {tol:g} "
            f"relative, e.g. [{i}] {got.flat[i]!r} vs recorded {want.flat[i]!r}"]


def differences_on_any_cpu(got: dict, want: dict) -> list:
    """What of recording `want` a recomputation `got` fails to reproduce on any x86-64 CPU.

    Only the parts present in `want` are compared (the first recording has fewer).
    Returns one line per difference (empty: the same numbers).
    """
    out = []
    for key, value in want.get("exact", {}).items():
        if key in ("metrics_of_scores", "scores_for_metrics"):
            continue  # compared by metrics_of_recorded_scores, from the recording alone
        if got["exact"].get(key) != value:
            mine = got["exact"].get(key)
            if isinstance(value, dict) and isinstance(mine, dict):
                keys = [k for k in value if mine.get(k) != value[k]] or sorted(set(mine) ^ set(value))
                out.append(f"exact {key}: differs at {keys[:5]}")
            else:
                out.append(f"exact {key}: {str(mine)[:80]} vs recorded {str(value)[:80]}")
    first = want.get("first", {})
    for clip, value in first.get("features", {}).items():
        for part in ("bands", "frames"):
            diff = np.max(np.abs(np.subtract(got["first"]["features"][clip][part], value[part])))
            if diff > FIRST_TOLERANCE["features_db"]:
                out.append(f"log-Mel {part} of {clip}: {diff:.3g} dB from the recording")
    for name, value in first.get("steps", {}).items():
        mine = got["first"]["steps"][name]
        out += _relative_differences(mine["loss"], value["loss"], FIRST_TOLERANCE["loss"],
                                     f"{name} first-step loss")
        out += _sketch_differences(mine["init"], value["init"], FIRST_TOLERANCE["init"],
                                   f"{name} initial weight", per_tensor=True)
        for part in ("grad", "update"):
            out += _sketch_differences(mine[part], value[part], FIRST_TOLERANCE[part],
                                       f"{name} first-step {part}")
    for name in ("autoencoder", "toy"):
        if name in first:
            mine, value = got["first"][name], first[name]
            if "loss" in value:
                out += _relative_differences(mine["loss"], value["loss"], FIRST_TOLERANCE["loss"],
                                             f"{name} first-step loss")
            for part in ("grad", "update"):
                out += _sketch_differences(mine[part], value[part], FIRST_TOLERANCE[part],
                                           f"{name} first-step {part}")
    for name, value in want.get("runs", {}).items():  # the first step of a whole run
        out += _relative_differences(got["runs"][name]["step_losses"][:1], value["step_losses"][:1],
                                     FIRST_TOLERANCE["loss"], f"{name} first-step loss")
    if "baseline" in want:
        tol = FIRST_TOLERANCE["autoencoder_run"]
        for machine_type, losses_ in want["baseline"]["losses"].items():
            out += _relative_differences(got["baseline"]["losses"][machine_type], losses_, tol,
                                         f"autoencoder {machine_type} epoch losses")
        out += _relative_differences(got["baseline"]["scores"], want["baseline"]["scores"], tol,
                                     "autoencoder scores")
    return out


def metrics_of_recorded_scores(want: dict) -> list:
    """Differences between the metrics of a recording's scores, computed now, and the recorded
    metrics (pure arithmetic on given numbers: the same on every CPU)."""
    exact = want.get("exact", {})
    if "scores_for_metrics" not in exact:
        return []
    scores = pd.DataFrame(exact["scores_for_metrics"]).astype({"machine_id": str})
    table = metrics.per_type_table(scores).round(12).reset_index().to_dict(orient="list")
    return [f"metrics {k}: {table[k]} vs recorded {v}" for k, v in exact["metrics_of_scores"].items()
            if table[k] != v]


def differences_bit_for_bit(got: dict, want: dict) -> list:
    """Every recorded number that a recomputation does not give bit for bit (for the CPU model
    and torch that recorded `want`)."""
    out = []

    def walk(mine, theirs, path):
        if isinstance(theirs, dict):
            if not isinstance(mine, dict):
                out.append(f"{path}: missing")
                return
            for k, v in theirs.items():
                walk(mine.get(k), v, f"{path}.{k}" if path else k)
        elif mine != theirs:
            out.append(f"{path}: {str(mine)[:60]} vs recorded {str(theirs)[:60]}")

    walk({k: v for k, v in got.items() if k != "recorded_on"},
         {k: v for k, v in want.items() if k != "recorded_on"}, "")
    return out
