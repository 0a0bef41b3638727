"""The fixed-seed smoke runs that `test_same_numbers.py` compares with a recording.

    .venv/bin/python tests/golden_run.py   # rewrites tests/data/golden_smoke_run.json

The first recording was made with the code as it stood before the restructuring of issue 10
(commit 583a4ec, where the steps were read from `train._LossModel.forward`), on one torch
thread, and the restructured code reproduced it bit for bit (commit 30ee190). Issue 11 then
changed the smoke data on purpose (generator version 3), so the recording was made again with
the unchanged training code on the new data (`recorded_on` says where and at which generator
version). Rerun this only when a change is *meant* to change the numbers, and say so in the
commit message.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from asdlib import baseline, checkpoints, dcase, evaluate, loop, profiles, runtime, synth, toy, train

OUT = Path(__file__).with_name("data") / "golden_smoke_run.json"
RUNS = {  # name -> (model, mode, epochs)
    "tastgram_noisy_arcmix": ("tastgram", "noisy_arcmix", 2),
    "stgram_arcface": ("stgram", "arcface", 1),
}
TYPES = ["fan", "ToyCar"]


def tensor_digest(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's bytes (contiguous, CPU): equal digests mean equal bits."""
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def record(workdir: Path, monkeypatch_step) -> dict:
    """Train and evaluate every run of RUNS, the autoencoder and the toy on smoke data.

    `monkeypatch_step(fn)` replaces `asdlib.loop.train_step` by `fn` for the runs (the test
    passes pytest's monkeypatch.setattr; `main` assigns it).
    """
    step_losses = []
    original = loop.train_step

    def recording_step(*args, **kwargs):
        loss = original(*args, **kwargs)
        step_losses.append(float(loss))
        return loss

    monkeypatch_step(recording_step)
    data = workdir / "data"
    synth.generate(data, profile="smoke", types=TYPES, progress=False)
    out = {}
    for name, (model, mode, epochs) in RUNS.items():
        step_losses.clear()
        config = profiles.TrainConfig.from_profile("smoke", model=model, mode=mode,
                                                   num_epochs=epochs, seed=0)
        run_dir = workdir / name
        history = train.train(config, data, run_dir, progress=False)
        result = evaluate.evaluate(run_dir, progress=False)
        best = checkpoints.load_checkpoint(run_dir / checkpoints.BEST)
        out[name] = {
            "step_losses": list(step_losses),
            "train_loss": history["train_loss"].tolist(),
            "val_loss": history["val_loss"].tolist(),
            "val_accuracy": history["val_accuracy"].tolist(),
            "best_epoch": int(best["epoch"]),
            "state_digest": {k: tensor_digest(v) for k, v in best["model"].items()},
            "state_sum": {k: float(v.double().sum()) for k, v in best["model"].items()},
            "scores": [float(s) for s in pd.read_csv(run_dir / "scores.csv")["score"]],
            "average": result["average"],
        }
    # The chapter-2 autoencoder and the chapter 4-7 toy, which read their sizes from the profile
    results, _, losses = baseline.run_baseline(dcase.build_index(data), "smoke", seed=0,
                                               progress=False)
    out["baseline"] = {"losses": losses, "scores": results["score"].tolist()}
    result = toy.train_toy("noisy_arcmix", seed=0, epochs=profiles.get_profile("smoke").toy_epochs)
    out["toy"] = {"history": result.history, "weight": result.weight.flatten().tolist()}
    return out


def main() -> int:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ASDLIB_HOME"] = str(Path(tmp) / "home")
        out = record(Path(tmp), lambda fn: setattr(loop, "train_step", fn))
    out["recorded_on"] = {"cpu": runtime.cpu_model(), "torch": torch.__version__.split("+")[0],
                          "generator_version": synth.GENERATOR_VERSION}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}: {sorted(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
