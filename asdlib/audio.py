"""Reading and writing DCASE clips: one wav file in, one float32 array of fixed length out.

Explained in chapter 1 ("The task and the data"). Every clip of DCASE 2020 Task 2 is a 16 kHz
mono 10 s wav file. Real files are not always that tidy, so :func:`read_clip` checks and repairs:

- a corrupt or truncated file, or a float file holding NaN or infinite samples, raises
  :class:`ClipError`, which names the file;
- a wrong sample rate is resampled to ``sample_rate`` (with a warning);
- a multi-channel file keeps one channel (``channel=0``, the first; DCASE used channel 1);
- a short clip is zero-padded at the end, a long clip is cropped to ``num_samples``.

Reading thousands of clips one warning each would flood the output, so :func:`read_clips` reads
many and emits ONE warning per kind of repair, with counts.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from asdlib import runtime
from asdlib.layout import SAMPLE_RATE


class ClipError(ValueError):
    """A wav file that cannot be read (corrupt, truncated, not audio). Keeps ``path``."""

    def __init__(self, path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read audio clip {self.path}: {reason}")


class ClipWarning(UserWarning):
    """A clip was repaired (resampled, channel dropped, padded, cropped) or skipped."""


def write_clip(path, wav, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write a mono clip as a 16-bit PCM wav file, atomically.

    The samples go to a temporary file in the same folder first, which is then renamed onto
    ``path`` (``asdlib.runtime.atomic_path``), so a killed run never leaves a half-written wav
    behind.

    Args:
        path: the wav file to write; parent folders are created.
        wav: samples in [-1, 1] (values outside are clipped by the PCM16 conversion).
        sample_rate: in Hz.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Shapes:
        wav: ``[num_samples]`` (numpy array or torch tensor).
    """
    path = Path(path)
    wav = np.asarray(wav.detach().cpu() if hasattr(wav, "detach") else wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"write_clip({path}): wav must be 1-D [num_samples], got shape {wav.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with runtime.atomic_path(path) as tmp:
        sf.write(tmp, np.clip(wav, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return path


def _resample(wav: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy), exact for integer rate ratios."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(orig_rate, new_rate)
    return resample_poly(wav, new_rate // g, orig_rate // g).astype(np.float32)


_TRUNCATED = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _read_one(path, num_samples: int, sample_rate: int, channel: int):
    """Read and repair one clip. Returns ``(wav, repairs)``; ``repairs`` is a list of kinds."""
    path = Path(path)
    try:
        with sf.SoundFile(str(path)) as f:
            data, rate = f.read(dtype="float32", always_2d=True), f.samplerate
            header = f.extra_info
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, TypeError, ...
        raise ClipError(path, f"{type(err).__name__}: {err}") from err
    # libsndfile reads a cut-off wav without error but notes "data : 320000 (should be 1234)"
    cut = _TRUNCATED.search(header)
    if cut and 0 < int(cut.group(2)) < int(cut.group(1)) < 0xFFFFFFF0:
        raise ClipError(path, f"truncated: the header announces {cut.group(1)} bytes of samples, "
                              f"the file holds {cut.group(2)}")
    if data.shape[0] == 0:
        raise ClipError(path, "the file holds no samples (empty or truncated)")
    bad = ~np.isfinite(data)
    if bad.any():  # a float wav can hold NaN or Inf; a PCM one cannot
        raise ClipError(path, f"{int(bad.sum())} sample(s) are NaN or infinite (a float wav "
                              "written from a broken computation?); expected finite samples")
    repairs = []
    # [samples, channels] -> [samples]; a mono file has only one channel to give
    if data.shape[1] > 1:
        if not 0 <= channel < data.shape[1]:
            raise ClipError(path, f"channel={channel} asked, but the file has {data.shape[1]} channels")
        repairs.append("multichannel")
    wav = np.ascontiguousarray(data[:, channel if data.shape[1] > 1 else 0])
    if rate != sample_rate:
        wav = _resample(wav, rate, sample_rate)
        repairs.append("resampled")
    if len(wav) < num_samples:
        wav = np.pad(wav, (0, num_samples - len(wav)))
        repairs.append("padded")
    elif len(wav) > num_samples:
        wav = wav[:num_samples]
        repairs.append("cropped")
    return wav.astype(np.float32, copy=False), repairs


_REPAIR_TEXT = {
    "resampled": "had another sample rate and were resampled to {rate} Hz",
    "multichannel": "had several channels; channel {channel} was kept",
    "padded": "were shorter than {seconds:g} s and were zero-padded at the end",
    "cropped": "were longer than {seconds:g} s and were cropped",
    "skipped": "could not be read and were skipped (on_error='skip')",
}


def warn_counts(counts: Counter, examples: dict, num_samples, sample_rate, channel, stacklevel=3):
    """One :class:`ClipWarning` per kind of repair, with its count and a few example files."""
    for kind, text in _REPAIR_TEXT.items():
        if counts.get(kind):
            msg = text.format(rate=sample_rate, channel=channel, seconds=num_samples / sample_rate)
            shown = ", ".join(str(p) for p in examples[kind][:3])
            warnings.warn(f"{counts[kind]} clip(s) {msg} (e.g. {shown})", ClipWarning,
                          stacklevel=stacklevel)


def read_clip(path, num_samples: int, sample_rate: int = SAMPLE_RATE, channel: int = 0) -> np.ndarray:
    """Read one wav file as a float32 clip of exactly ``num_samples`` samples.

    Args:
        path: the wav file.
        num_samples: length of the returned clip (160 000 for 10 s at 16 kHz).
        sample_rate: the wanted rate in Hz; a file at another rate is resampled (with a warning).
        channel: which channel of a multi-channel file to keep (0 = first); mono files
            (all of DCASE 2020 Task 2) ignore it.

    Returns:
        The clip, float32 in [-1, 1].

    Raises:
        ClipError: the file is missing, corrupt or truncated (``err.path`` names it).

    Shapes:
        returns ``[num_samples]``.
    """
    wav, repairs = _read_one(path, num_samples, sample_rate, channel)
    counts = Counter(repairs)
    warn_counts(counts, {kind: [path] for kind in repairs}, num_samples, sample_rate, channel)
    return wav


@dataclass
class ReadReport:
    """What :func:`read_clips` repaired: ``counts[kind]`` and the files of each kind.

    Kinds: ``resampled``, ``multichannel``, ``padded``, ``cropped``, ``skipped``.
    """

    counts: Counter = field(default_factory=Counter)
    files: dict = field(default_factory=dict)
    #: positions (in the input list) of the clips that were read, in order
    kept: list = field(default_factory=list)

    def add(self, kind: str, path) -> None:
        self.counts[kind] += 1
        self.files.setdefault(kind, []).append(Path(path))


def iter_clips(paths, num_samples: int, sample_rate: int = SAMPLE_RATE, channel: int = 0,
               on_error: str = "raise", report: ReadReport | None = None, progress: bool = True,
               desc: str = "reading clips"):
    """Yield ``(position, wav)`` for many clips, counting repairs in ``report`` (no warnings).

    The streaming form of :func:`read_clips`, used by :mod:`asdlib.cache` so memory stays flat.
    ``on_error="skip"`` leaves corrupt files out (their position is not yielded).
    """

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    report = report if report is not None else ReadReport()
    paths = list(paths)
    for position, path in enumerate(runtime.progress_bar(paths, show=progress, desc=desc, unit="clip")):
        try:
            wav, repairs = _read_one(path, num_samples, sample_rate, channel)
        except ClipError:
            if on_error == "raise":
                raise
            report.add("skipped", path)
            continue
        for kind in repairs:
            report.add(kind, path)
        report.kept.append(position)
        yield position, wav


def read_clips(paths, num_samples: int, sample_rate: int = SAMPLE_RATE, channel: int = 0,
               on_error: str = "raise", progress: bool = True):
    """Read many wav files into one array, with ONE warning per kind of repair.

    Args:
        paths: the wav files.
        num_samples: length of every clip.
        sample_rate: the wanted rate in Hz.
        channel: which channel of a multi-channel file to keep.
        on_error: ``"raise"`` stops at the first unreadable file (:class:`ClipError`);
            ``"skip"`` leaves unreadable files out and counts them in a warning.
        progress: show a tqdm progress bar.

    Returns:
        ``(wavs, report)``: ``wavs`` is float32 ``[num_clips, num_samples]`` holding the clips
        that were read (``report.kept`` gives their positions in ``paths``), and ``report`` is a
        :class:`ReadReport`.

    Note:
        This holds every clip in RAM (0.64 MB per 10 s clip). For a whole DCASE split use
        :func:`asdlib.cache.build_cache`, which streams to disk.
    """
    paths = list(paths)
    report = ReadReport()
    wavs = np.zeros((len(paths), num_samples), dtype=np.float32)
    count = 0
    for _, wav in iter_clips(paths, num_samples, sample_rate, channel, on_error, report, progress):
        wavs[count] = wav
        count += 1
    warn_counts(report.counts, report.files, num_samples, sample_rate, channel)
    return wavs[:count], report
