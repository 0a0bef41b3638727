"""Profiles and run configs: the one place that says how big every experiment of the book is.

Every chapter and the command line read the active profile instead of editing code to run
faster (see the preface):

- ``smoke``: seconds per chapter; what the test suite runs.
- ``book`` (the default): what the rendered book runs, on the synthetic data, on a 2-core CPU.
- ``paper``: the authors' recipe exactly (10 s clips, 300 epochs, batch 64, ...), for readers
  with the real DCASE 2020 Task 2 data and a GPU.

The profile is chosen by the ``ASDLIB_PROFILE`` environment variable or by an argument.

A profile gives every size the chapters use: the synthetic dataset (clips per ID), the
training recipe of the networks (a `Recipe`), the epochs of the loss chapters' 2-D toy
(``toy_epochs``) and of the chapter-2 autoencoder (``baseline_epochs``), and the seeds.

**The seed rule.** ``profile.seeds`` are the training seeds of every experiment that is
repeated over seeds; a single run uses the first, ``profile.seeds[0]`` (what
`TrainConfig.from_profile` takes unless told otherwise). The synthetic data is generated with
``profile.data_seed``, the same for every run, so that runs of different seeds and methods see
the same clips.

A `TrainConfig` is one training run: the recipe plus the network, the loss and the seed. It
builds its network and its log-Mel front end (`TrainConfig.build_model`, `build_logmel`), so
that training, evaluation and the benchmark build them the same way.

`describe` is the setup report that the first cell of every chapter prints: the versions, the
active profile, the device and the home folder.
"""

from __future__ import annotations

import dataclasses
import os
import platform

import torch
import torchaudio
from torch import nn

import asdlib
from asdlib import features, layout, losses, models, runtime

__all__ = [
    "AMP_CHOICES",
    "DEFAULT",
    "ENV_VAR",
    "PROFILES",
    "Profile",
    "Recipe",
    "TrainConfig",
    "describe",
    "get_profile",
]

#: The environment variable that selects the profile.
ENV_VAR = "ASDLIB_PROFILE"
#: The profile used when nothing is selected.
DEFAULT = "book"
#: Mixed-precision settings (CUDA only; the CPU always trains in float32).
AMP_CHOICES = ("auto", "bf16", "fp16", "off")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recipe:
    """The clip length, the features and the training hyper-parameters of a run.

    A `Profile` and a `TrainConfig` are both recipes, so these fields and their defaults live
    here once. The defaults are the authors' recipe: S. Choi and J.-W. Choi, "Noisy-ArcMix:
    Additive Noisy Angular Margin Loss Combined With Mixup for Anomalous Sound Detection",
    ICASSP 2024, and their public implementation (https://github.com/soonhyeon/Noisy-ArcMix:
    its `config.yaml` and its feature and training code).
    """

    seconds: float = 10.0  # clip length in seconds
    # --- features (the authors' code: n_fft 2048, hop 512, 128 mels, Tgram window 1024) ---
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    win_length: int = 1024
    # --- training (the paper and the authors' code: AdamW 1e-4, cosine to 0.1 lr,
    # lambda ~ Beta(0.5, 0.5), m 0.7, s 30, 300 epochs, batch 64, 5 % held out) ---
    num_epochs: int = 300
    batch_size: int = 64
    lr: float = 1e-4
    min_lr_ratio: float = 0.1
    alpha: float = 0.5
    margin: float = 0.7
    scale: float = 30.0
    val_fraction: float = 0.05
    # --- the stopping rule (`asdlib.train.should_stop`), the same for every model and mode:
    # stop once the validation loss has not improved for `patience` epochs (None: train all
    # `num_epochs`, as the authors do); the best epoch's checkpoint is kept either way
    patience: int | None = None
    # --- arithmetic (`asdlib.runtime.autocast_dtype`): "auto" is float32 on a CPU and bf16 (or
    # fp16 with a scaler) on a GPU; "bf16" also on a CPU, with float32 islands
    amp: str = "auto"

    @property
    def num_samples(self) -> int:
        """Clip length in samples at 16 kHz (`asdlib.layout.num_samples`)."""
        return layout.num_samples(self.seconds)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Profile(Recipe):
    """A named size of every experiment: the `Recipe` fields plus data, toy and baseline sizes.

    Data fields describe the synthetic dataset that ``python -m asdlib synth`` writes for this
    profile; with the real DCASE data only the clip length (``seconds``) applies.
    """

    name: str
    description: str
    # --- data ---
    ids: str  # "dev" (development IDs) or "all" (all 41 IDs)
    train_per_id: int  # synthetic normal training clips per machine ID
    test_normal_per_id: int  # synthetic normal test clips per machine ID
    test_anomaly_per_id: int  # synthetic anomalous test clips per machine ID
    data_seed: int = 0  # the seed of the synthetic data (the same for every run)
    # how strongly the synthetic machines of a type differ (asdlib.synth.INDIVIDUALITY_LEVELS)
    individuality: str = "kept"
    # --- seeds of the runs (see the seed rule in the module docstring) ---
    seeds: tuple = (2023,)
    # --- the other models of the book ---
    toy_epochs: int  # epochs of the 2-D toy of chapters 4-7 (after its warm-up)
    baseline_epochs: int  # epochs of the chapter-2 autoencoder (the original recipe: 100)
    # --- whose runs the chapters compare (see `runs_profile`) ---
    runs: str | None = None

    def runs_profile(self) -> "Profile":
        """The profile whose runs chapters 7-11 (and chapter 2's comparison) train or read:
        the one named by ``runs``, else this one.

        The book profile generates small data that every chapter can afford to make (100 clips
        per ID) and reads its networks' runs from the ``evidence`` profile, published at the
        scale the learning curve chose (300 clips per ID), whose data the book never generates.
        """
        return get_profile(self.runs) if self.runs else self

    def summary(self) -> str:
        """One line naming the profile and its main sizes, printed beside every result."""
        epochs = (f"{self.num_epochs} epochs" if self.patience is None
                  else f"at most {self.num_epochs} epochs, patience {self.patience}")
        return (
            f"profile={self.name} ({self.seconds:g} s clips, {self.ids} IDs, {epochs}, "
            f"batch {self.batch_size})"
        )


PROFILES = {
    "smoke": Profile(
        name="smoke",
        description="seconds per chapter, for the test suite",
        seconds=1.0,
        ids="dev",
        train_per_id=6,
        test_normal_per_id=3,
        test_anomaly_per_id=3,
        num_epochs=1,
        batch_size=16,
        lr=1e-3,
        seeds=(0, 1),
        toy_epochs=5,  # the toy is cheap; smoke only checks that it runs
        baseline_epochs=2,
    ),
    "book": Profile(
        name="book",
        description="the rendered book: synthetic data on a 2-core CPU, published runs",
        seconds=2.0,
        ids="dev",
        # Data: 100 normal training clips per ID (of which val_fraction are held out for
        # validation), because the clips per ID are the one lever that moves the networks
        # (data/SYNTHETIC.md, "Diagnosis"); 50 + 50 test clips per ID, so that a per-ID AUC has
        # a sampling error of about 0.04 instead of 0.07 (test clips are cheap).
        train_per_id=100,
        test_normal_per_id=50,
        test_anomaly_per_id=50,
        # Training: the same recipe and the same stopping rule for every model and mode (never
        # tuned per method): AdamW at 1e-3 with the cosine schedule over at most 40 epochs, stop
        # once the validation loss has not improved for 5 epochs, evaluate the best epoch.
        # Batch 16 for more optimizer steps in few clips. 64 mels instead of the paper's 128:
        # a training step costs 0.59x (2 s clips, one thread, measured with asdlib.loop), which
        # lets every run train to its plateau on two cores. Three seeds for what the chapters
        # repeat themselves (the 2-D toy of chapters 4-7); the networks' runs are the evidence
        # profile's (``runs`` below).
        n_mels=64,
        num_epochs=40,
        patience=5,
        val_fraction=0.1,
        batch_size=16,
        lr=1e-3,
        seeds=(0, 1, 2),
        toy_epochs=40,
        baseline_epochs=12,
        # The networks of chapters 7-11 and the autoencoder beside them: the runs published at
        # the learning curve's scale (below), read, never trained by the build.
        runs="evidence",
    ),
    "paper": Profile(
        name="paper",
        description="the authors' recipe: real DCASE 2020 Task 2 data and a GPU",
        seconds=10.0,
        ids="all",
        train_per_id=200,
        test_normal_per_id=50,
        test_anomaly_per_id=50,
        seeds=(2023,),  # the authors' seed
        toy_epochs=40,
        baseline_epochs=100,
    ),
}


# The book's runs at the scale the learning curve chose (asdlib.curve, chapter 2): the book
# profile's recipe, more data. The curve has the network behind the autoencoder at every
# measured size, so the runs take the largest size whose whole set (31 runs, two at a time)
# trains in about six hours on the book's 2-core CPU: 300 clips per ID (at 1 000 clips a single
# run takes over an hour; each point's point.json in asdlib/evidence/ has its training time).
# 200 + 200 test clips per ID, and seeds toward chapter 10's target of standard errors of at
# most 0.5 on the paired differences (test clips are only scored: cheap; the seeds' spread is
# most of the SE): six at first, eight since 2026-12-06, added a few at a time.
# bfloat16 with float32 islands (asdlib.models.float32_islands): on a CPU with native bfloat16
# (the book's AMD EPYC: avx512_bf16) a step of these sizes costs 0.69x the CPU time of float32
# (`python -m asdlib bench --levers book --cpu-time`), and a bf16 run tracks its float32 twin
# (README, "The faster step"); other CPUs compute the same arithmetic without the instructions,
# more slowly.
# `make runs` (the book profile's runs are these) trains and publishes what is missing; the
# training time of each published run is in asdlib/published/MANIFEST.json. Add seeds here and
# `make runs` trains only the new ones.
PROFILES["evidence"] = dataclasses.replace(
    PROFILES["book"], name="evidence",
    description="the runs the book profile reads, at the scale the learning curve chose (published)",
    train_per_id=300, test_normal_per_id=200, test_anomaly_per_id=200, seeds=(0, 1, 2, 3, 4, 5, 6, 7),
    amp="bf16", runs=None)


def get_profile(name: "str | Profile | None" = None) -> Profile:
    """The profile called ``name``, else the one named by ``ASDLIB_PROFILE``, else ``book``.

    A `Profile` is returned as it is, so every function can take a name or a profile.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
    """
    if isinstance(name, Profile):
        return name
    chosen = name or os.environ.get(ENV_VAR) or DEFAULT
    if chosen not in PROFILES:
        source = "argument 'profile'" if name else f"environment variable {ENV_VAR}"
        raise ValueError(f"unknown profile {chosen!r} (from {source}); choose one of {sorted(PROFILES)}")
    return PROFILES[chosen]


def describe(profile: "str | Profile | None" = None) -> str:
    """The setup report printed by the first cell of every chapter: a few lines naming the
    versions, the active profile, the device and the home folder, so that every number in the
    book can be traced to the setup that produced it.

    Args:
        profile: the profile to report (None: the active one, see `get_profile`).

    Returns:
        The report, three lines.
    """
    active = get_profile(profile)
    lines = [
        f"asdlib {asdlib.__version__} | torch {torch.__version__} | torchaudio {torchaudio.__version__}"
        f" | Python {platform.python_version()}",
        f"{active.summary()}",
        f"device={runtime.device()} | torch threads={torch.get_num_threads()} | "
        f"{runtime.HOME_VAR}={runtime.home()}",
    ]
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig(Recipe):
    """Everything that decides what a training run computes (not where or how fast).

    Build one from a profile with `TrainConfig.from_profile("book", model="stgram", ...)`.
    The defaults are the authors' recipe (the `paper` profile).

    Args:
        model: "tastgram" or "stgram" (`asdlib.models.MODELS`).
        mode: "arcface", "mixup", "arcmix" or "noisy_arcmix" (`asdlib.losses.MODES`).
        seed: seeds the initial weights, the validation split, the batch order and the mixing
            draws (each through its own generator; the global random state is left alone).
        profile: the name of the profile this config came from (a label for printed results).
        seconds: clip length in seconds (clips are cropped or zero-padded to it).
        num_epochs, batch_size, lr, min_lr_ratio: AdamW with cosine annealing from `lr` down to
            `min_lr_ratio * lr` over `num_epochs`, stepped once per epoch.
        patience: stop early once the validation loss has not improved for this many epochs
            (None: train every epoch); the best epoch is evaluated either way.
        alpha: lambda ~ Beta(alpha, alpha) of the mixing modes.
        margin, scale: m (radians) and s of the ArcFace head.
        val_fraction: share of the training clips held out for validation (random, seeded).
        n_fft, hop_length, n_mels: the log-Mel settings; win_length: the Tgram window.
        sub_centers: sub-centres per class of the ArcFace head.
        amp: "auto" (bf16 where the GPU has it, else fp16 with a gradient scaler), "bf16",
            "fp16" (always with a scaler) or "off". Only used on CUDA.
    """

    model: str = "tastgram"
    mode: str = "noisy_arcmix"
    seed: int = 2023
    profile: str = "paper"
    sub_centers: int = 1

    def __post_init__(self):
        if self.model not in models.MODELS:
            raise ValueError(f"model: unknown model {self.model!r}; choose one of {list(models.MODELS)}")
        if self.mode not in losses.MODES:
            raise ValueError(f"mode: unknown mode {self.mode!r}; choose one of {list(losses.MODES)}")
        if self.amp not in AMP_CHOICES:
            raise ValueError(f"amp: must be one of {list(AMP_CHOICES)}, got {self.amp!r}")
        for name in ("num_epochs", "batch_size", "n_fft", "hop_length", "n_mels", "win_length",
                     "sub_centers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a positive int, got {value!r}")
        if self.patience is not None and (isinstance(self.patience, bool)
                                          or not isinstance(self.patience, int) or self.patience < 1):
            raise ValueError(f"patience: must be None or a positive int, got {self.patience!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: must be a non-negative int, got {self.seed!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size: BatchNorm needs at least 2 clips, got {self.batch_size}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction: must lie in (0, 1), got {self.val_fraction!r}")
        if not (self.lr > 0 and 0.0 < self.min_lr_ratio <= 1.0):
            raise ValueError(f"lr and min_lr_ratio: need lr > 0 and 0 < min_lr_ratio <= 1, got "
                             f"{self.lr!r} and {self.min_lr_ratio!r}")
        try:
            samples = self.num_samples
        except ValueError as err:
            raise ValueError(f"seconds: {err}") from None
        window = max(self.n_fft, self.win_length)
        if samples < window:
            raise ValueError(
                f"seconds: {self.seconds:g} s is {samples} samples, shorter than one analysis "
                f"window ({window} samples = {window / layout.SAMPLE_RATE:g} s: n_fft "
                f"{self.n_fft}, win_length {self.win_length})")

    @classmethod
    def from_profile(cls, profile: "str | Profile | None" = None, **overrides) -> "TrainConfig":
        """The config of a profile (`ASDLIB_PROFILE` or book when None), with `overrides`.

        The seed is the profile's first (`Profile.seeds`) unless `seed=` is given.
        Example: `TrainConfig.from_profile("book", model="stgram", mode="arcface", seed=1)`.
        """
        chosen = get_profile(profile)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; valid: {sorted(fields)}")
        values = {f.name: getattr(chosen, f.name) for f in dataclasses.fields(Recipe)}
        values["profile"] = chosen.name
        values["seed"] = chosen.seeds[0]
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Rebuild a config from `to_dict()` (unknown keys are an error naming them)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown} (written by another "
                             f"asdlib version?)")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def differences(self, other: "TrainConfig | dict") -> list:
        """`["lr: 0.001 vs 0.002", ...]`: the fields where `self` and `other` differ."""
        mine, theirs = self.to_dict(), other if isinstance(other, dict) else other.to_dict()
        keys = sorted(set(mine) | set(theirs))
        return [f"{k}: {mine.get(k)!r} vs {theirs.get(k)!r}" for k in keys
                if mine.get(k) != theirs.get(k)]

    def summary(self) -> str:
        """One line naming the model, mode, seed and profile (printed beside results)."""
        epochs = (f"{self.num_epochs} epochs" if self.patience is None
                  else f"at most {self.num_epochs} epochs, patience {self.patience}")
        return (f"{self.model} {self.mode} seed={self.seed} (profile={self.profile}: "
                f"{self.seconds:g} s clips, {self.n_mels} mels, {epochs}, batch "
                f"{self.batch_size}, lr {self.lr:g})")

    def build_model(self, num_classes: int) -> models.ASDNet:
        """The STgram or TASTgram network of this config for `num_classes` machine IDs.

        The one place a network is built from a config: training, `asdlib.runfolder` and
        the benchmark call it. Its initial weights come from torch's global generator (seed
        it, or build it inside `torch.random.fork_rng`, as `asdlib.train` does).
        """
        return models.ASDNet(num_classes, model=self.model, num_samples=self.num_samples,
                             n_mels=self.n_mels, hop_length=self.hop_length,
                             win_length=self.win_length, margin=self.margin, scale=self.scale,
                             sub_centers=self.sub_centers)

    def build_logmel(self) -> nn.Module:
        """The log-Mel front end of this config (`asdlib.features.LogMel`)."""
        return features.LogMel(sample_rate=layout.SAMPLE_RATE, n_fft=self.n_fft,
                               hop_length=self.hop_length, n_mels=self.n_mels)
