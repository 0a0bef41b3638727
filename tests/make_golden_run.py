"""Record the fixed-seed smoke run that `tests/test_same_numbers.py` compares against.

    .venv/bin/python tests/make_golden_run.py   # rewrites tests/data/golden_smoke_run.json

Recorded once with the code as it stood before the restructuring (commit 583a4ec), on one
torch thread; rerun it only when a change is *meant* to change the numbers, and say so in the
commit message.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

OUT = Path(__file__).with_name("data") / "golden_smoke_run.json"
RUNS = {  # name -> (model, mode, epochs)
    "tastgram_noisy_arcmix": ("tastgram", "noisy_arcmix", 2),
    "stgram_arcface": ("stgram", "arcface", 1),
}
TYPES = ["fan", "ToyCar"]


def tensor_digest(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's bytes (contiguous, CPU): equal digests mean equal bits."""
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def record(step_losses: list, workdir: Path) -> dict:
    """Train and evaluate every run of RUNS on smoke data; return what the test compares."""
    from asdlib import synth
    from asdlib.train import TrainConfig, load_checkpoint

    try:  # after the restructuring
        from asdlib.evaluate import evaluate
        from asdlib.train import train
    except ImportError:  # pragma: no cover
        raise
    data = workdir / "data"
    synth.generate(data, profile="smoke", types=TYPES, progress=False)
    out = {}
    for name, (model, mode, epochs) in RUNS.items():
        step_losses.clear()
        config = TrainConfig.from_profile("smoke", model=model, mode=mode, num_epochs=epochs, seed=0)
        run_dir = workdir / name
        history = train(config, data, run_dir, progress=False)
        result = evaluate(run_dir, progress=False)
        state = load_checkpoint(run_dir / "best.pt")["model"]
        scores = [float(s) for s in __import__("pandas").read_csv(run_dir / "scores.csv")["score"]]
        out[name] = {
            "step_losses": list(step_losses),
            "train_loss": history["train_loss"].tolist(),
            "val_loss": history["val_loss"].tolist(),
            "val_accuracy": history["val_accuracy"].tolist(),
            "best_epoch": int(load_checkpoint(run_dir / "best.pt")["epoch"]),
            "state_digest": {k: tensor_digest(v) for k, v in state.items()},
            "state_sum": {k: float(v.double().sum()) for k, v in state.items()},
            "scores": scores,
            "average": result["average"],
        }
    # The chapter-2 autoencoder and the chapter 4-7 toy, which read their sizes from the profile
    from asdlib import baseline, dcase, toy

    results, _, losses = baseline.run_baseline(dcase.build_index(data), "smoke", seed=0,
                                               progress=False)
    out["baseline"] = {"losses": losses, "scores": results["score"].tolist()}
    result = toy.train_toy("noisy_arcmix", seed=0, epochs=toy_epochs_smoke())
    out["toy"] = {"history": result.history, "weight": result.weight.flatten().tolist()}
    return out


def toy_epochs_smoke() -> int:
    """The smoke profile's toy epochs (where that number lives changed with the restructuring)."""
    from asdlib import profiles

    smoke = profiles.get_profile("smoke")
    if hasattr(smoke, "toy_epochs"):
        return smoke.toy_epochs
    from asdlib import toy

    return toy.toy_epochs("smoke")


def main() -> int:
    torch.set_num_threads(1)
    step_losses = []
    import asdlib.train as train_module

    forward = train_module._LossModel.forward

    def recording_forward(self, *args):
        loss = forward(self, *args)
        step_losses.append(float(loss.detach()))
        return loss

    train_module._LossModel.forward = recording_forward
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ASDLIB_HOME"] = str(Path(tmp) / "home")
        out = record(step_losses, Path(tmp))
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}: {sorted(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
