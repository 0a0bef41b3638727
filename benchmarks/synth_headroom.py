"""Headroom and ID difficulty checks of the synthetic dataset (data/SYNTHETIC.md).

Documented in ``data/SYNTHETIC.md`` (chapter 1 of the book describes the data). Both checks
use the same clip-mean log-Mel features, computed once per machine type.

Headroom: a simple baseline must not saturate the data. The baseline is deliberately plain:
per machine ID, a Gaussian on clip-mean log-Mel features (mean and a Ledoit-Wolf shrunk
covariance fitted on the ID's normal training clips); the anomaly score of a test clip is its
Mahalanobis distance. AUC is computed per ID and averaged per machine type. If this baseline
already scored ~1.0, the data would leave nothing for the networks of the book to show; if it
scored 0.5, the anomalies would be inaudible. The window aimed at is an AUC per type between
about 0.55 and 0.90 in the book profile.

ID difficulty: the networks learn to name the machine ID of normal clips, which must be
learnable but not trivial. A linear probe (standardized features, sklearn LogisticRegression)
is trained per type on the normal training clips labelled with their ID and tested on the
normal test clips. The window aimed at is an ID accuracy per type between about 0.60 and 0.95
in the book profile.

    .venv/bin/python benchmarks/synth_headroom.py            # book profile, all six types
    .venv/bin/python benchmarks/synth_headroom.py --profile smoke --types fan valve
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from asdlib import layout, synth

REPO = Path(__file__).resolve().parents[1]


def _logmel():
    """The book's log-Mel (asdlib.features.LogMel), or the same settings spelled out."""
    try:
        from asdlib.features import LogMel

        return LogMel()
    except ImportError:  # the same thing by hand: torchaudio MelSpectrogram + 10 log10
        import torchaudio

        mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=layout.SAMPLE_RATE, n_fft=2048, hop_length=512, n_mels=128,
            power=2.0, pad_mode="constant", norm="slaney", mel_scale="slaney")
        return lambda wav: 10 * torch.log10(mel(wav) + 1e-16)


def clip_features(paths, logmel=None, batch_size: int = 64) -> np.ndarray:
    """Clip-mean log-Mel features of wav files.

    Shapes:
        returns ``[num_clips, 128]``.
    """
    logmel = logmel or _logmel()
    features = []
    for start in range(0, len(paths), batch_size):
        wavs = np.stack([sf.read(str(p), dtype="float32")[0] for p in paths[start:start + batch_size]])
        with torch.no_grad():
            # [batch, mels, frames] -> [batch, mels]
            features.append(logmel(torch.from_numpy(wavs)).mean(dim=-1).numpy())
    return np.concatenate(features).astype(np.float64)


def type_features(root, types=None) -> dict:
    """Clip-mean log-Mel features of every clip of each machine type, computed once.

    Args:
        root: a dataset folder written by ``asdlib.synth.generate``.
        types: machine types (None: those found under ``root``).

    Returns:
        ``{machine_type: (clips, features)}``: ``clips`` a sorted list of
        ``(split, label, machine_id, number, path)``, ``features`` ``[len(clips), 128]``.
    """
    root = Path(root)
    types = [t for t in layout.MACHINE_TYPES if (root / t).is_dir()] if types is None else types
    logmel = _logmel()
    result = {}
    for machine_type in types:
        clips = sorted((split, *layout.parse_filename(p.name), p)
                       for split in ("train", "test")
                       for p in (root / machine_type / split).glob("*.wav"))
        result[machine_type] = (clips, clip_features([c[-1] for c in clips], logmel))
    return result


def headroom(root, types=None, features=None) -> pd.DataFrame:
    """Per-ID AUC of the Gaussian baseline, overall and per anomaly kind.

    Args:
        root: a dataset folder written by ``asdlib.synth.generate``.
        types: machine types to check (None: those found under ``root``).
        features: ``type_features(root, types)`` if already computed.

    Returns:
        One row per (machine_type, machine_id, kind) with columns ``auc``, ``normal``,
        ``anomaly`` (clip counts); ``kind`` is ``"all"`` for every anomalous clip together.
    """
    from sklearn.covariance import LedoitWolf
    from sklearn.metrics import roc_auc_score

    features = type_features(root, types) if features is None else features
    rows = []
    for machine_type, (clips, x) in features.items():
        for machine_id in layout.ALL_IDS[machine_type]:
            def select(split, label):
                return [i for i, c in enumerate(clips) if c[:3] == (split, label, machine_id)]

            train, normal, anomaly = (select("train", "normal"), select("test", "normal"),
                                      select("test", "anomaly"))
            if not (train and normal and anomaly):
                continue
            gauss = LedoitWolf().fit(x[train])
            score_normal = gauss.mahalanobis(x[normal])
            score_anomaly = gauss.mahalanobis(x[anomaly])
            kinds = np.array([synth.anomaly_kind(machine_type, clips[i][3]) for i in anomaly])
            for kind in ("all",) + synth.ANOMALY_KINDS[machine_type]:
                chosen = score_anomaly if kind == "all" else score_anomaly[kinds == kind]
                if len(chosen) == 0:
                    continue
                labels = np.r_[np.zeros(len(score_normal)), np.ones(len(chosen))]
                auc = roc_auc_score(labels, np.r_[score_normal, chosen])
                rows.append(dict(machine_type=machine_type, machine_id=machine_id, kind=kind,
                                 auc=auc, normal=len(score_normal), anomaly=len(chosen)))
    return pd.DataFrame(rows)


def id_probe(root, types=None, features=None) -> pd.DataFrame:
    """ID accuracy of a linear probe on normal clips, per machine type.

    Per type, ``make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))`` is fitted
    on the normal training clips of every ID (label: the ID) and names the ID of each normal
    test clip.

    Args:
        root: a dataset folder written by ``asdlib.synth.generate``.
        types: machine types to check (None: those found under ``root``).
        features: ``type_features(root, types)`` if already computed.

    Returns:
        One row per machine type with columns ``accuracy`` (all normal test clips),
        ``worst ID`` and ``best ID`` (per-ID recall), ``IDs``, ``chance`` (1 / IDs), ``test``
        (normal test clips) and ``in window 0.60-0.95``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = type_features(root, types) if features is None else features
    rows = []
    for machine_type, (clips, x) in features.items():
        train = [i for i, c in enumerate(clips) if c[:2] == ("train", "normal")]
        test = [i for i, c in enumerate(clips) if c[:2] == ("test", "normal")]
        if not (train and test):
            continue
        y = np.array([c[2] for c in clips])
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        probe.fit(x[train], y[train])
        correct = probe.predict(x[test]) == y[test]
        recall = pd.Series(correct).groupby(y[test]).mean()
        ids = len(np.unique(y[train]))
        rows.append({"machine_type": machine_type, "accuracy": correct.mean(),
                     "worst ID": recall.min(), "best ID": recall.max(), "IDs": ids,
                     "chance": 1 / ids, "test": len(test)})
    table = pd.DataFrame(rows).set_index("machine_type")
    table["in window 0.60-0.95"] = table.accuracy.between(0.60, 0.95)
    return table


def type_table(per_id: pd.DataFrame) -> pd.DataFrame:
    """Mean AUC per machine type (IDs averaged, the DCASE 2020 way), all kinds together."""
    overall = per_id[per_id.kind == "all"]
    table = overall.groupby("machine_type", sort=False).auc.agg(["mean", "min", "max", "count"])
    table.columns = ["AUC (mean of IDs)", "worst ID", "best ID", "IDs"]
    table["in window 0.55-0.90"] = table["AUC (mean of IDs)"].between(0.55, 0.90)
    return table


def kind_table(per_id: pd.DataFrame) -> pd.DataFrame:
    """Mean AUC per (machine type, anomaly kind), with the kind's nature from asdlib.synth."""
    per_kind = per_id[per_id.kind != "all"]
    table = per_kind.groupby(["machine_type", "kind"], sort=False).auc.mean().to_frame("AUC")
    table["nature"] = [synth.ANOMALY_NATURE[key] for key in table.index]
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None,
                        help="dataset folder (default: data/generated/synth_<profile>_seed<seed>); "
                             "a complete synthetic dataset there, of any generator version, is "
                             "measured as it is")
    parser.add_argument("--profile", default="book")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--types", nargs="+", default=None, choices=layout.MACHINE_TYPES)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    # the generator version is part of the default folder: an older dataset is never reused
    root = Path(args.root or REPO / "data" / "generated"
                / f"synth_{args.profile}_seed{args.seed}_v{synth.GENERATOR_VERSION}")

    start = time.perf_counter()
    if args.root and (root / synth.INFO_NAME).is_file():
        # an existing complete dataset (of any generator version) is measured as it is
        info = json.loads((root / synth.INFO_NAME).read_text())
    else:
        info = synth.generate(root, profile=args.profile, seed=args.seed, types=args.types,
                              workers=args.workers)
    print(f"dataset: {root} ({info['total_clips']} clips of {info['seconds']:g} s, profile "
          f"{info['profile']}, seed {info['seed']}, generator v{info['version']}; "
          f"ready in {time.perf_counter() - start:.1f} s)")
    features = type_features(root, args.types)
    per_id = headroom(root, args.types, features)
    pd.set_option("display.width", 120)
    print("\nGaussian baseline (clip-mean log-Mel, Ledoit-Wolf, Mahalanobis), AUC per type:")
    print(type_table(per_id).round(3).to_string())
    print("\nAUC per anomaly kind (IDs averaged):")
    print(kind_table(per_id).round(3).to_string())
    print("\nID probe (standardized clip-mean log-Mel, LogisticRegression; train normal -> test "
          "normal), ID accuracy per type:")
    print(id_probe(root, args.types, features).round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
