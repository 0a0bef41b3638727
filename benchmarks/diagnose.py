"""What holds the ID-classifier networks back on a dataset: the diagnosis of issue 11.

For one synthetic dataset and one recipe, it trains the two reference models that calibration may
look at, and nothing else (never a compared variant: no mixup, ArcMix, Noisy-ArcMix or TAgram):

- the DCASE 2020 autoencoder baseline of chapter 2 (`asdlib.baseline`), one model per type;
- STgram + ArcFace, the paper's reference row (`asdlib.train`), with the recipe given;

and prints

- convergence: train / validation loss and validation ID accuracy by epoch;
- average AUC and pAUC of both, per machine type and per anomaly kind, with bootstrap standard
  errors (`asdlib.tables.standard_errors`: seeds and test clips resampled) and the standard error
  of their paired difference;
- ID recognition of STgram + ArcFace (`asdlib.evaluate.id_recognition`): the shares of normal and
  anomalous test clips whose machine ID it names, and its AUC without the misnamed normal clips.

Each factor of the diagnosis is one command (see data/SYNTHETIC.md, "Diagnosis"):

    .venv/bin/python benchmarks/diagnose.py                                  # the book profile
    .venv/bin/python benchmarks/diagnose.py --epochs 30 --patience 5         # converged
    .venv/bin/python benchmarks/diagnose.py --train-per-id 120 --epochs 30 --patience 5
    .venv/bin/python benchmarks/diagnose.py --test-per-id 100                # more test clips
    .venv/bin/python benchmarks/diagnose.py --data-root DIR                  # any DCASE-layout data

Results are kept in ASDLIB_HOME (runs and autoencoders are `asdlib.store` folders), so a second
call with the same options trains nothing. `--json FILE` also writes every number.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asdlib import baseline, evaluate, experiments, profiles, runfolder, runtime, synth, tables
from asdlib.profiles import TrainConfig

REFERENCE = ("stgram", "arcface")  # the only network calibration may look at


def derived_profiles(args) -> tuple:
    """`(profile, data_profile)`: the chosen profile with the overrides, under a name that says
    so, and the part of it that makes the data (recipe overrides do not regenerate the data)."""
    base = profiles.get_profile(args.profile)
    data_changes = {"train_per_id": args.train_per_id, "test_normal_per_id": args.test_per_id,
                    "test_anomaly_per_id": args.test_per_id, "seconds": args.seconds}
    recipe_changes = {"num_epochs": args.epochs, "patience": args.patience, "n_mels": args.n_mels,
                      "val_fraction": args.val_fraction}
    tags = {"train_per_id": "train", "test_normal_per_id": "test", "seconds": "s",
            "num_epochs": "ep", "patience": "pat", "n_mels": "mel", "val_fraction": "val"}

    def apply(profile, changes):
        changes = {k: v for k, v in changes.items() if v is not None and v != getattr(profile, k)}
        name = profile.name + "".join(f"-{tags[k]}{v:g}" for k, v in changes.items() if k in tags)
        return dataclasses.replace(profile, name=name, **changes) if changes else profile

    data = apply(base, data_changes)
    profile = apply(data, recipe_changes)
    if args.baseline_epochs is not None:  # the autoencoder's epochs: not part of the network's name
        profile = dataclasses.replace(profile, baseline_epochs=args.baseline_epochs)
    return profile, data


def kind_table(frame: pd.DataFrame) -> pd.Series:
    """AUC (%) per (type, anomaly kind), IDs pooled (`asdlib.baseline.auc_by_anomaly_kind`)."""
    return 100 * baseline.auc_by_anomaly_kind(frame)["auc"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="book")
    parser.add_argument("--train-per-id", type=int, default=None)
    parser.add_argument("--test-per-id", type=int, default=None,
                        help="normal and anomalous test clips per ID (each)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--patience", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--n-mels", type=int, default=None)
    parser.add_argument("--val-fraction", type=float, default=None)
    parser.add_argument("--baseline-epochs", type=int, default=None,
                        help="epochs of the autoencoder (default: the profile's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="training seeds of the network (default: the profile's first)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--reuse-freed-memory", action="store_true",
                        help="glibc malloc keeps freed memory (faster on a CPU; same numbers)")
    parser.add_argument("--data-root", default=None,
                        help="diagnose this DCASE-layout folder (e.g. the real data, or the synthetic "
                             "data of another generator version) instead of the profile's synthetic "
                             "data; the data options above then do not apply")
    parser.add_argument("--json", default=None, help="also write every number to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.reuse_freed_memory:
        runtime.reuse_freed_memory()
    profile, data = derived_profiles(args)
    seeds = args.seeds or [profile.seeds[0]]
    started = time.perf_counter()
    if args.data_root is not None:
        root = Path(args.data_root).expanduser().resolve()
        if not root.is_dir():
            parser.error(f"--data-root: {root} is not a folder")
    else:
        root = experiments.synthetic_dataset(data)
    dataset = runfolder.dataset_fingerprint(root)
    counts = ("the clips of --data-root" if args.data_root else
              f"{profile.train_per_id} train / {profile.test_normal_per_id} + "
              f"{profile.test_anomaly_per_id} test clips per ID")
    print(f"profile {profile.name}: {counts}, {profile.seconds:g} s, "
          f"{profile.num_epochs} epochs max, patience {profile.patience}, {profile.n_mels} mels")
    print(f"data: {dataset['description']}, {root}")

    ae, _, ae_losses = baseline.load_or_run_baseline(root, profile, seed=seeds[0])
    print(f"autoencoder: {profile.baseline_epochs} epochs; last loss per type "
          + ", ".join(f"{t} {v[-1]:.2f}" for t, v in ae_losses.items()))
    runs = []
    for seed in seeds:
        config = TrainConfig.from_profile(profile, model=REFERENCE[0], mode=REFERENCE[1], seed=seed)
        runs.append(experiments.load_or_train(config, root))
    label = runs[0].label

    print(f"\nconvergence of {label} (seed {seeds[0]}):")
    history = runs[0].history
    print(history[["epoch", "train_loss", "val_loss", "val_accuracy", "lr", "best"]]
          .round(4).to_string(index=False))

    mean, se, replicates = tables.standard_errors(
        {"DCASE 2020 autoencoder": [ae] * len(seeds), label: runs})
    difference = replicates[label] - replicates["DCASE 2020 autoencoder"]
    gap = float(mean.loc[label, ("Average", "AUC")] - mean.loc["DCASE 2020 autoencoder",
                                                                ("Average", "AUC")])
    pd.set_option("display.width", 200)
    print(f"\nAUC / pAUC in % (per-ID mean) ± bootstrap standard error ({len(seeds)} seed(s) "
          f"of the network; test clips resampled):")
    print(tables.mean_pm(mean, se, 1).to_string())
    print(f"\n{label} - autoencoder, average AUC: {gap:+.2f} ± "
          f"{difference[('Average', 'AUC')].std(ddof=1):.2f} points")
    kinds = pd.DataFrame({"autoencoder": kind_table(ae),
                          label: np.mean([kind_table(r.results_frame()) for r in runs], axis=0)})
    kinds["nature"] = [synth.ANOMALY_NATURE[key] for key in kinds.index]
    print("\nAUC (%) per anomaly kind, the IDs of a type pooled:")
    print(kinds.round(1).to_string())
    recognition = pd.concat([evaluate.id_recognition(r.scores, r.config.margin, r.config.scale)
                             for r in runs]).groupby(level=0, sort=False).mean()
    print(f"\nID recognition of {label}: shares of test clips whose own ID gets p > 0.5, and the "
          "AUC without the misnamed normal clips (a diagnosis, not a metric):")
    print((100 * recognition).round(1).to_string())
    print(f"mean over types: normal clips named {100 * recognition['normal_named'].mean():.1f} %, "
          f"AUC {100 * recognition['auc'].mean():.1f} -> "
          f"{100 * recognition['auc_named_normals'].mean():.1f} % without the misnamed ones")
    best = history.loc[history["val_loss"].idxmin()]
    print(f"\nbest epoch {int(best['epoch'])} of {len(history)} run "
          f"(validation ID accuracy {best['val_accuracy']:.3f}); "
          f"{time.perf_counter() - started:.0f} s for this diagnosis")
    if args.json:
        report = {"profile": dataclasses.asdict(profile), "dataset": dataset,
                  "generator_version": synth.GENERATOR_VERSION, "seeds": seeds,
                  "mean": {row: {" ".join(k): v for k, v in mean.loc[row].items()} for row in mean.index},
                  "se": {row: {" ".join(k): v for k, v in se.loc[row].items()} for row in se.index},
                  "gap": gap, "gap_se": float(difference[("Average", "AUC")].std(ddof=1)),
                  "history": history.to_dict(orient="records"),
                  "kinds": kinds.reset_index().to_dict(orient="records"),
                  "id_recognition": recognition.reset_index().to_dict(orient="records"),
                  "seconds": time.perf_counter() - started}
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
