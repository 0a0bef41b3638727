r"""
The DCASE 2020 Task 2 autoencoder baseline

Chapter 2 of the book ("A baseline for contrast") explains this module.

The organisers of DCASE 2020 Task 2 shipped a simple reference system (Y. Koizumi et al.,
"Description and Discussion on DCASE2020 Challenge Task2: Unsupervised Anomalous Sound
Detection for Machine Condition Monitoring", DCASE 2020 Workshop,
https://arxiv.org/abs/2006.05822). It learns what *normal* sounds like by compressing it:

1. **Input.** The log-Mel spectrogram of a clip (FFT of 1024 samples, hop 512) is cut into
   overlapping windows of `frames` = 5 consecutive frames; the 5 frames of a window are
   concatenated (frame after frame) into one vector of `frames * n_mels` values (640 for
   128 mels). Window $w$ of a clip with log-Mel $X$ is

   $$\mathbf{v}_w = \big(X[:, w], X[:, w+1], \dots, X[:, w+4]\big) \in \mathbb{R}^{5M}.$$

2. **Model.** A dense autoencoder $g = \text{dec} \circ \text{enc}$:
   640 - 128 - 128 - 128 - 128 - 8 - 128 - 128 - 128 - 128 - 640, every hidden layer a
   Linear followed by BatchNorm and ReLU, the last layer a plain Linear. The 8-unit
   bottleneck forces it to keep only what is typical of the training windows.
3. **Training.** Mean squared reconstruction error on the windows of the normal training
   clips, one model per machine type (Adam).
4. **Score.** The anomaly score of a clip is its mean window error:

   $$A(x) = \frac{1}{W} \sum_{w=1}^{W} \frac{1}{D} \lVert \mathbf{v}_w - g(\mathbf{v}_w)
   \rVert_2^2, \qquad D = 5M.$$

Everything here is written for this book (PyTorch, not the original Keras code).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from asdlib import audio, dcase, layout, metrics, profiles, runfolder, runtime, synth
from asdlib.features import LogMel

__all__ = [
    "FRAMES",
    "N_FFT",
    "HOP_LENGTH",
    "N_MELS",
    "BATCH_SIZE",
    "LR",
    "baseline_logmel",
    "frame_windows",
    "DCASEAutoencoder",
    "reconstruction_errors",
    "score_clips",
    "train_step",
    "train_autoencoder",
    "clip_windows",
    "run_baseline",
    "cache_inputs",
    "load_or_run_baseline",
    "auc_by_anomaly_kind",
]

#: Consecutive log-Mel frames per input vector.
FRAMES = 5
#: FFT size (and window length) of the baseline's log-Mel, in samples.
N_FFT = 1024
#: Hop between log-Mel frames, in samples.
HOP_LENGTH = 512
#: Mel bands (the same 128 as the rest of the book).
N_MELS = 128


#: Windows per Adam step, and Adam's learning rate: the original recipe. Its epochs (100 in the
#: original) are a size, so they live in the profile: ``Profile.baseline_epochs``.
BATCH_SIZE = 512
LR = 1e-3


def baseline_logmel(n_mels: int = N_MELS, sample_rate: int = 16000) -> LogMel:
    """The baseline's log-Mel front end: FFT 1024, hop 512, power spectrum, 10 log10(. + eps).

    (The Noisy-ArcMix chapters use an FFT of 2048; the rest is the same ``LogMel``.)
    """
    return LogMel(sample_rate=sample_rate, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=n_mels)


def frame_windows(logmel: torch.Tensor, frames: int = FRAMES) -> torch.Tensor:
    """Cut log-Mel spectrograms into overlapping windows of ``frames`` concatenated frames.

    Window ``w`` holds frames ``w, w+1, ..., w+frames-1``, frame after frame:
    ``window[w, t * n_mels + m] == logmel[m, w + t]``.

    Args:
        logmel: log-Mel spectrograms.
        frames: consecutive frames per window (5 in the baseline).

    Returns:
        The windows.

    Shapes:
        - logmel: ``[batch, n_mels, num_frames]`` (or ``[n_mels, num_frames]`` for one clip)
        - output: ``[batch, num_frames - frames + 1, frames * n_mels]``
          (``[windows, frames * n_mels]`` for one clip)
    """
    if not isinstance(logmel, torch.Tensor):
        raise TypeError(f"logmel must be a torch.Tensor, got {type(logmel).__name__}")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be a positive int, got {frames!r}")
    if logmel.dim() not in (2, 3):
        raise ValueError(
            f"logmel must be [batch, n_mels, num_frames] or [n_mels, num_frames], got shape "
            f"{tuple(logmel.shape)}"
        )
    if logmel.shape[-1] < frames:
        raise ValueError(
            f"logmel has {logmel.shape[-1]} frames, fewer than frames={frames}: the clip is too "
            f"short for one window"
        )
    single = logmel.dim() == 2
    if single:
        # [1, n_mels, num_frames]
        logmel = logmel.unsqueeze(0)
    batch, n_mels, _ = logmel.shape
    # Sliding windows along time: [batch, n_mels, windows, frames]
    windows = logmel.unfold(-1, frames, 1)
    # Frame after frame: [batch, windows, frames, n_mels]
    windows = windows.permute(0, 2, 3, 1)
    # [batch, windows, frames * n_mels]
    windows = windows.reshape(batch, windows.shape[1], frames * n_mels)
    return windows[0] if single else windows


def _dense(in_features: int, out_features: int) -> nn.Sequential:
    """Linear + BatchNorm + ReLU, the hidden layer of the baseline."""
    return nn.Sequential(
        nn.Linear(in_features, out_features),
        nn.BatchNorm1d(out_features),
        nn.ReLU(),
    )


class DCASEAutoencoder(nn.Module):
    """The dense autoencoder of the DCASE 2020 Task 2 baseline.

    ``encoder``: ``num_layers`` hidden layers of ``hidden_dim`` units, then the
    ``bottleneck_dim`` code; ``decoder``: ``num_layers`` hidden layers, then a plain Linear
    back to ``input_dim``. Every hidden layer (the code included) is Linear + BatchNorm1d +
    ReLU. With the defaults: 640-128-128-128-128-8-128-128-128-128-640.

    Args:
        input_dim: length of a window vector (``frames * n_mels`` = 640).
        hidden_dim: width of the hidden layers.
        bottleneck_dim: width of the code.
        num_layers: hidden layers on each side of the code.

    Shapes:
        - input: ``[..., input_dim]`` (any leading axes, e.g. ``[batch, windows, 640]``)
        - output: same as the input
    """

    def __init__(self, input_dim: int = FRAMES * N_MELS, hidden_dim: int = 128,
                 bottleneck_dim: int = 8, num_layers: int = 4):
        super().__init__()
        for name, value in (("input_dim", input_dim), ("hidden_dim", hidden_dim),
                            ("bottleneck_dim", bottleneck_dim), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.input_dim = input_dim
        # input_dim -> hidden_dim -> ... -> bottleneck_dim
        widths = [input_dim] + [hidden_dim] * num_layers + [bottleneck_dim]
        self.encoder = nn.Sequential(*[_dense(a, b) for a, b in zip(widths[:-1], widths[1:])])
        # bottleneck_dim -> hidden_dim -> ... -> hidden_dim, then a plain Linear to input_dim
        widths = [bottleneck_dim] + [hidden_dim] * num_layers
        self.decoder = nn.Sequential(
            *[_dense(a, b) for a, b in zip(widths[:-1], widths[1:])],
            nn.Linear(hidden_dim, input_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct window vectors.

        Shapes:
            - x: ``[..., input_dim]``
            - output: ``[..., input_dim]``
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.input_dim:
            raise ValueError(
                f"x must be [..., {self.input_dim}] (window vectors of input_dim="
                f"{self.input_dim} values), got shape {tuple(x.shape)}"
            )
        leading = x.shape[:-1]
        # BatchNorm1d wants [vectors, features]: [N, input_dim]
        flat = x.reshape(-1, self.input_dim)
        # [N, input_dim]
        out = self.decoder(self.encoder(flat))
        # [..., input_dim]
        return out.reshape(*leading, self.input_dim)


def reconstruction_errors(model: nn.Module, windows: torch.Tensor) -> torch.Tensor:
    """Mean squared reconstruction error of every window (differentiable).

    Shapes:
        - windows: ``[..., input_dim]``
        - output: ``[...]`` (one error per window)
    """
    # [..., input_dim]
    recon = model(windows)
    # [...]
    return (windows - recon).pow(2).mean(dim=-1)


def _check_windows(windows, name="windows"):
    if not isinstance(windows, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(windows).__name__}")
    if not windows.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {windows.dtype}")
    if not torch.isfinite(windows).all():
        raise ValueError(f"{name} contains NaN or infinite values")


@torch.no_grad()
def score_clips(model: nn.Module, windows: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Anomaly score of each clip: the mean reconstruction error over its windows, on one CPU
    thread (as :func:`train_autoencoder` trains).

    The model is put in evaluation mode (BatchNorm uses its running statistics) and left so.

    Args:
        model: a trained autoencoder.
        windows: the windows of each clip (from :func:`frame_windows`).
        batch_size: clips per forward pass.

    Returns:
        One score per clip (larger = more anomalous), float32 on the CPU.

    Shapes:
        - windows: ``[clips, windows, input_dim]``
        - output: ``[clips]``
    """
    _check_windows(windows)
    if windows.dim() != 3:
        raise ValueError(
            f"windows must be [clips, windows, input_dim] (use frame_windows on a batch of "
            f"log-Mels), got shape {tuple(windows.shape)}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    model.eval()
    device = next(model.parameters()).device
    scores = []
    with runtime.torch_threads(1):
        for start in range(0, len(windows), batch_size):
            # [b, windows, input_dim]
            chunk = windows[start:start + batch_size].to(device)
            # [b, windows] -> mean over windows: [b]
            scores.append(reconstruction_errors(model, chunk).mean(dim=1).float().cpu())
    return torch.cat(scores) if scores else torch.zeros(0)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor) -> float:
    """One gradient step on a batch of window vectors; returns the batch's MSE before the step.

    Shapes:
        batch: ``[batch, input_dim]``
    """
    model.train()
    # Mean over the batch of the per-window mean squared error
    loss = reconstruction_errors(model, batch).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def train_autoencoder(windows: torch.Tensor, num_epochs: int, *, seed: int = 0,
                      model: nn.Module | None = None, device=None, progress: bool = True):
    """Train a :class:`DCASEAutoencoder` on normal window vectors (MSE, Adam).

    A plain loop: each epoch shuffles the windows (a generator seeded with ``seed``), cuts them
    into batches of :data:`BATCH_SIZE` and takes one Adam step (learning rate :data:`LR`) per
    batch, on one CPU thread (a model this small gains nothing from more, and on a shared CPU
    extra threads mostly wait on each other; the caller's count is restored). The weights are initialised under the same
    seed (inside ``torch.random.fork_rng``, so the global random state is untouched), and the
    bias of the output layer starts at the mean training window: the original recipe has
    thousands of steps to learn that offset (log-Mel values sit around -20 dB, not 0), a short
    run would spend most of its steps on it. A last batch of a single window is dropped
    (BatchNorm needs two).

    Args:
        windows: the training windows of one machine type, all clips together.
        num_epochs: passes over the windows.
        seed: seeds the initial weights and the shuffling.
        model: a model to train further (default: a new ``DCASEAutoencoder``).
        device: where to train (default ``asdlib.runtime.device()``).
        progress: show a tqdm bar over the epochs.

    Returns:
        ``(model, losses)``: the trained model (in evaluation mode) and the mean training loss
        of every epoch (a list of floats).

    Shapes:
        windows: ``[num_windows, input_dim]``
    """
    _check_windows(windows)
    if windows.dim() != 2 or len(windows) < 2:
        raise ValueError(
            f"windows must be [num_windows >= 2, input_dim] (flatten the clips first: "
            f"windows.reshape(-1, input_dim)), got shape {tuple(windows.shape)}"
        )
    if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive int, got {num_epochs!r}")
    device = runtime.device(device) if not isinstance(device, torch.device) else device
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DCASEAutoencoder(input_dim=windows.shape[1])
        with torch.no_grad():
            # Start the reconstruction at the mean training window
            model.decoder[-1].bias.copy_(windows.mean(dim=0))
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    with runtime.torch_threads(1):
        for _ in runtime.progress_bar(range(num_epochs), show=progress, desc="epochs", leave=False):
            # A new order of the windows every epoch
            order = torch.randperm(len(windows), generator=generator)
            total, count = 0.0, 0
            for start in range(0, len(order), BATCH_SIZE):
                index = order[start:start + BATCH_SIZE]
                if len(index) < 2:
                    continue
                # [batch, input_dim]
                batch = windows[index].to(device)
                total += train_step(model, optimizer, batch) * len(index)
                count += len(index)
            losses.append(total / count)
    return model.eval(), losses


def clip_windows(paths, num_samples: int, logmel: nn.Module | None = None,
                 frames: int = FRAMES, batch_size: int = 32, progress: bool = False) -> torch.Tensor:
    """Read wav files and turn each into its window vectors.

    Args:
        paths: the wav files (all read to ``num_samples`` samples, see
            :func:`asdlib.audio.read_clips`).
        num_samples: clip length in samples.
        logmel: the front end (default :func:`baseline_logmel`).
        frames: frames per window.
        batch_size: clips per log-Mel pass.
        progress: show a bar while reading.

    Returns:
        The windows of every clip.

    Shapes:
        output: ``[clips, windows, frames * n_mels]``
    """
    logmel = baseline_logmel() if logmel is None else logmel
    wavs, _ = audio.read_clips(list(paths), num_samples, progress=progress)
    # [clips, samples]
    wavs = torch.from_numpy(wavs)
    out = []
    with torch.no_grad():
        for start in range(0, len(wavs), batch_size):
            # [b, n_mels, num_frames] -> [b, windows, frames * n_mels]
            out.append(frame_windows(logmel(wavs[start:start + batch_size]), frames))
    return torch.cat(out)


def run_baseline(index: pd.DataFrame, profile=None, seed: int = 0, progress: bool = True,
                 machine_types=None):
    """Train one autoencoder per machine type and score every test clip.

    Args:
        index: clips of a DCASE data root (:func:`asdlib.dcase.build_index`); the ``train``
            split of a type trains its model, its ``test`` split (normal and anomaly) is scored.
        profile: a ``Profile`` or its name (default: the active one); it sets the clip length
            and the epochs (``Profile.baseline_epochs``; batch ``BATCH_SIZE``, Adam ``LR``).
        seed: seeds every model's initial weights and shuffling.
        progress: show progress bars.
        machine_types: the types to run (default: all in the index).

    Returns:
        ``(results, models, losses)``: a results frame (one row per test clip with ``path,
        machine_type, machine_id, label`` (1 = anomaly), ``score``) ready for
        ``asdlib.metrics``; a dict machine type -> trained model; a dict machine type ->
        list of epoch losses.
    """
    profile = profiles.get_profile(profile)
    required = {"path", "machine_type", "machine_id", "split", "is_anomaly"}
    if not isinstance(index, pd.DataFrame) or not required <= set(index.columns):
        raise ValueError(f"index must be a DataFrame from asdlib.dcase.build_index with columns "
                         f"{sorted(required)}")
    types = list(dict.fromkeys(index["machine_type"])) if machine_types is None else list(machine_types)
    num_samples = layout.num_samples(profile.seconds)
    logmel = baseline_logmel()
    frames, models, losses = [], {}, {}
    for machine_type in runtime.progress_bar(types, show=progress, desc="machine types"):
        of_type = index[index["machine_type"] == machine_type]
        train = of_type[of_type["split"] == "train"]
        test = of_type[(of_type["split"] == "test") & (of_type["is_anomaly"] >= 0)]
        if train.empty or test.empty:
            raise ValueError(f"index: machine type {machine_type!r} needs train and labelled "
                             f"test clips, found {len(train)} and {len(test)}")
        # [clips, windows, 640] -> all windows of the type: [N, 640]
        train_windows = clip_windows(train["path"], num_samples, logmel)
        train_windows = train_windows.reshape(-1, train_windows.shape[-1])
        model, history = train_autoencoder(train_windows, profile.baseline_epochs, seed=seed,
                                           progress=progress)
        # [test clips]
        score = score_clips(model, clip_windows(test["path"], num_samples, logmel))
        frames.append(pd.DataFrame({
            "path": test["path"].to_numpy(),
            "machine_type": machine_type,
            "machine_id": test["machine_id"].to_numpy(),
            "label": test["is_anomaly"].to_numpy().astype(np.int64),
            "score": score.numpy().astype(np.float64),
        }))
        models[machine_type], losses[machine_type] = model, history
    return pd.concat(frames, ignore_index=True), models, losses


#: Bump when `run_baseline` computes something else, so that old cached results are not reused.
CACHE_VERSION = 1


def cache_inputs(profile, dataset_hash: str, seed: int) -> dict:
    """What the autoencoders of `load_or_run_baseline` are a function of: the recipe, the clip
    length, the seed and the data. `asdlib.runfolder.build_once` names their folder by it (and their
    published results, `asdlib.experiments.autoencoder_results`)."""
    profile = profiles.get_profile(profile)
    return {"version": CACHE_VERSION, "settings": {"num_epochs": profile.baseline_epochs,
                                                   "batch_size": BATCH_SIZE, "lr": LR},
            "seconds": profile.seconds, "seed": seed, "dataset": dataset_hash}


def load_or_run_baseline(data_root, profile=None, seed: int = 0, progress: bool = True):
    """:func:`run_baseline` on the clips of ``data_root``, computed once and then read back.

    Like the training runs of ``asdlib.experiments``, the result is a pure function of its
    inputs, so it is kept in the `asdlib.store` folder ``<ASDLIB_HOME>/baseline/<hash>/``, where
    ``<hash>`` hashes the epochs, batch size and learning rate, the clip length, the seed and
    the dataset fingerprint (``asdlib.runfolder.dataset_fingerprint``: content, not location). A
    rebuilt book trains the autoencoders only once, and two processes that want the same
    ones train them once.

    Args:
        data_root: a folder in the DCASE layout (synthetic or real).
        profile: a ``Profile`` or its name (default: the active one).
        seed: the training seed.
        progress: show progress bars while training.

    Returns:
        ``(results, models, losses)`` as :func:`run_baseline` returns them; the ``path``
        column points into ``data_root``.
    """
    profile = profiles.get_profile(profile)
    root = Path(data_root).expanduser().resolve()
    key = cache_inputs(profile, runfolder.dataset_fingerprint(root)["hash"], seed)

    def build(work: Path) -> None:
        results, models, losses = run_baseline(dcase.build_index(root), profile, seed=seed,
                                               progress=progress)
        relative = results.assign(path=[str(Path(path).resolve().relative_to(root))
                                        for path in results["path"]])
        runtime.write_text_atomic(relative.to_csv(index=False), work / "results.csv")
        runtime.write_text_atomic(json.dumps(losses), work / "losses.json")
        runtime.write_text_atomic(json.dumps(key, indent=1) + "\n", work / "key.json")
        runtime.save_atomic({machine_type: {"input_dim": model.input_dim, "state": model.state_dict()}
                             for machine_type, model in models.items()}, work / "models.pt")

    folder = runfolder.build_once("baseline", key, build, "the chapter-2 autoencoders")
    results = pd.read_csv(folder / "results.csv", dtype={"machine_id": str})
    results["path"] = [str(root / path) for path in results["path"]]
    losses = json.loads((folder / "losses.json").read_text())
    models = {}
    # map_location: autoencoders trained on a GPU are read on any machine
    for machine_type, saved in torch.load(folder / "models.pt", map_location="cpu").items():
        model = DCASEAutoencoder(input_dim=saved["input_dim"])
        model.load_state_dict(saved["state"])
        models[machine_type] = model.eval()
    return results, models, losses


def auc_by_anomaly_kind(results: pd.DataFrame, max_fpr: float = 0.1) -> pd.DataFrame:
    """AUC and pAUC of each anomaly kind of the synthetic data: which anomalies a method misses.

    On the synthetic dataset (``asdlib.synth``) the kind of anomalous clip number ``n`` follows
    from its number (:func:`asdlib.synth.anomaly_kind`). For every machine type and kind, the
    anomalous clips of that kind are ranked against *all* normal test clips of the type (IDs
    pooled). Not defined for the real DCASE data, whose file names do not tell the kind.

    Args:
        results: a results frame with a ``path`` column (as :func:`run_baseline` returns).
        max_fpr: p of the partial AUC.

    Returns:
        DataFrame indexed by (machine_type, kind), types in the paper's order, with columns
        ``nature`` (``asdlib.synth.ANOMALY_NATURE``: spectral, temporal, modulation),
        ``auc``, ``pauc`` and ``n_anomaly``.
    """
    if not isinstance(results, pd.DataFrame) or not {"path", "machine_type", "label", "score"} <= set(results.columns):
        raise ValueError("results must be a results frame with columns path, machine_type, "
                         "label and score (as run_baseline returns)")
    rows = []
    types = [t for t in metrics.TABLE_TYPES if t in set(results["machine_type"])]
    for machine_type in types:
        of_type = results[results["machine_type"] == machine_type]
        normal = of_type[of_type["label"] == 0]
        anomalous = of_type[of_type["label"] == 1]
        # The clip number NNNNNNNN of each anomalous file name gives its kind
        numbers = [layout.parse_filename(Path(path).name)[2] for path in anomalous["path"]]
        kinds = np.array([synth.anomaly_kind(machine_type, number) for number in numbers])
        for kind in sorted(set(kinds.tolist())):
            chosen = anomalous[kinds == kind]
            labels = np.r_[np.zeros(len(normal)), np.ones(len(chosen))]
            score = np.r_[normal["score"].to_numpy(), chosen["score"].to_numpy()]
            auc, pauc = metrics.auc_pauc(labels, score, max_fpr)
            rows.append({"machine_type": machine_type, "kind": kind,
                         "nature": synth.ANOMALY_NATURE[(machine_type, kind)],
                         "auc": auc, "pauc": pauc, "n_anomaly": len(chosen)})
    return pd.DataFrame(rows).set_index(["machine_type", "kind"])
