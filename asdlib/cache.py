"""A streamed on-disk cache of decoded clips, and the torch ``Dataset`` that reads it.

Explained in chapter 1 ("The task and the data"). Decoding 60 000 wav files every epoch is slow,
and holding them all in RAM as float32 (the authors' loader: 0.64 MB per 10 s clip, about 40 GB
for the development + additional training set) does not fit a laptop or a free Colab. So each
split is decoded ONCE into a cache folder:

- ``wavs.npy``: int16 samples ``[clips, num_samples]`` (half the size of float32), written in
  chunks of :data:`CHUNK_CLIPS` clips, so the RAM used does not grow with the number of clips;
- ``index.csv``: the index rows of the cached clips, with their ``class_label``;
- ``meta.json``: the inputs and the repair counts.

The cache is an `asdlib.store` folder: built in a temporary folder, marked complete and renamed
into place, under a file lock, so a killed build never leaves a cache that looks complete and two
processes that want the same cache build it once. The folder name is a hash of every
input (the files in order with their sizes and modification times, the labels, how the clips
are decoded (:class:`Decoding`) and :data:`FORMAT_VERSION`): change any of them and a new cache is
built; build again with the same inputs and nothing happens.

:class:`ClipDataset` serves ``(wav, label, row)`` by reading one clip from the file per item
(nothing is loaded in full); log-Mels are computed in batches on the training device.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from asdlib import audio, dcase, runtime, store
from asdlib.layout import SAMPLE_RATE

#: Bumped whenever the files of a cache change meaning; part of the cache key.
FORMAT_VERSION = 1
#: Clips decoded, buffered and written at a time (32 x 10 s int16 = 10 MB).
CHUNK_CLIPS = 32


@dataclasses.dataclass(frozen=True)
class Decoding:
    """How the clips of a cache are decoded (see :func:`asdlib.audio.read_clips`).

    Attributes:
        num_samples: length of every clip (longer files are cropped, shorter zero-padded).
        sample_rate: the wanted rate in Hz (other rates are resampled).
        channel: channel kept from multi-channel files.
        on_error: ``"raise"`` or ``"skip"`` unreadable files.
    """

    num_samples: int
    sample_rate: int = SAMPLE_RATE
    channel: int = 0
    on_error: str = "raise"

    def __post_init__(self):
        # Plain ints (a numpy integer would not go into meta.json)
        for name in ("num_samples", "sample_rate", "channel"):
            object.__setattr__(self, name, int(getattr(self, name)))

    @classmethod
    def of(cls, decoding) -> "Decoding":
        """`decoding` itself, or ``Decoding(num_samples=decoding)`` for a number of samples."""
        return decoding if isinstance(decoding, cls) else cls(int(decoding))


def _as_index(index) -> pd.DataFrame:
    """A DataFrame with a ``path`` column, from a DataFrame or a list of paths."""
    if isinstance(index, pd.DataFrame):
        if "path" not in index.columns:
            raise ValueError("index must have a 'path' column (see asdlib.dcase.build_index)")
        return index.reset_index(drop=True)
    return pd.DataFrame({"path": [str(p) for p in index]})


def _labels(index: pd.DataFrame, class_map) -> np.ndarray:
    """Class label of every row (-1 when the index has no machine type/ID columns)."""
    if not {"machine_type", "machine_id"} <= set(index.columns):
        if class_map is not None:
            raise ValueError("class_map given, but the index has no machine_type/machine_id columns")
        return np.full(len(index), -1, dtype=np.int64)
    if class_map is None:
        if "split" not in index.columns or not (index["split"] == "train").any():
            raise ValueError("the index has no training clip to derive the classes from: pass "
                             "class_map=asdlib.dcase.class_map(training_index)")
        class_map = dcase.class_map(index)
    keys = list(zip(index["machine_type"], index["machine_id"]))
    missing = sorted({k for k in keys if k not in class_map})
    if missing:
        named = ", ".join(f"{t}/{i}" for t, i in missing[:6])
        raise ValueError(f"{len(missing)} machine ID(s) of the index are not in class_map "
                         f"({len(class_map)} classes): {named}")
    return np.array([class_map[k] for k in keys], dtype=np.int64)


def cache_key(index, decoding, class_map=None) -> str:
    """The hash that names a cache: the same inputs always give the same key.

    Hashed: :data:`FORMAT_VERSION`, every file in the index's order with its size and
    modification time (the order is the order of the cache's rows), the class labels and the
    fields of `decoding`.

    Args:
        index: as for :func:`build_cache`.
        decoding: a :class:`Decoding`, or the number of samples (the other fields default).
        class_map: as for :func:`build_cache`.

    Returns:
        A 16-character hexadecimal string.
    """
    index, decoding = _as_index(index), Decoding.of(decoding)
    files = []
    for path in index["path"]:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"clip listed in the index does not exist: {path}") from None
        files.append([str(path), stat.st_size, stat.st_mtime_ns])
    inputs = {
        "version": FORMAT_VERSION,
        "files": files,
        "labels": _labels(index, class_map).tolist(),
        "num_samples": int(decoding.num_samples),
        "sample_rate": int(decoding.sample_rate),
        "channel": int(decoding.channel),
        "logmel": None,  # a fixed entry: without it the key of every cache would change
        "on_error": decoding.on_error,
    }
    return store.key(inputs)


def _start_npy(path: Path, shape: tuple, dtype) -> "tuple":
    """Create ``path`` as a .npy file of ``shape`` (sparse zeros), open for writing the rows.

    Returns:
        ``(file, offset)``: the file positioned at the first row, and the header size.
    """
    f = open(path, "wb")
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(int(s) for s in shape)}
    np.lib.format.write_array_header_1_0(f, header)
    offset = f.tell()
    f.truncate(offset + int(np.prod(shape)) * np.dtype(dtype).itemsize)
    return f, offset


def build_cache(index, cache_dir, decoding, class_map=None, progress: bool = True) -> Path:
    """Decode the clips of ``index`` once into a cache folder under ``cache_dir``.

    Args:
        index: a DataFrame from :func:`asdlib.dcase.build_index` (or any frame with a ``path``
            column, or a list of wav paths; the labels are then -1).
        cache_dir: the folder holding caches; the cache is ``<cache_dir>/clips-<key>``.
        decoding: how the clips are decoded (:class:`Decoding`), or the number of samples of
            every clip (at :data:`asdlib.layout.SAMPLE_RATE`, channel 0, unreadable files raise).
        class_map: ``{(machine_type, machine_id): class}``; default
            :func:`asdlib.dcase.class_map` of ``index`` (which needs training clips: for a
            test split, pass the training index's map).
        progress: show a progress bar.

    Returns:
        The cache folder (complete). Building again with the same inputs returns at once.

    Raises:
        asdlib.audio.ClipError: an unreadable clip (with ``on_error="raise"``).
        OSError: the cache cannot be written (a full disk: the message names the folder).

    A build that fails for any reason removes what it wrote.
    """
    index, decoding = _as_index(index), Decoding.of(decoding)
    if len(index) == 0:
        raise ValueError("build_cache: the index is empty")
    labels = _labels(index, class_map)
    key = cache_key(index, decoding, class_map)
    warnings_to_give = []

    def build(work: Path) -> None:
        for leftover in work.iterdir():  # a killed build's files: start again
            leftover.unlink()
        try:
            report = _write_cache(work, index, labels, decoding, progress)
        except OSError as err:
            if err.errno not in runtime.DISK_FULL:
                raise
            raise runtime.write_error(err, Path(cache_dir) / f"clips-{key}") from None
        meta = {"key": key, "format_version": FORMAT_VERSION, "num_clips": len(report.kept),
                **dataclasses.asdict(decoding), "repairs": dict(report.counts)}
        (work / "meta.json").write_text(json.dumps(meta, indent=1))
        warnings_to_give.append(report)

    final = store.folder(cache_dir, f"clips-{key}", build, keep_partial=False,
                         description=f"the clip cache of {len(index)} clips")
    for report in warnings_to_give:
        audio.warn_counts(report.counts, report.files, decoding.num_samples,
                          decoding.sample_rate, decoding.channel, stacklevel=2)
    return final


def _write_cache(folder: Path, index, labels, decoding: Decoding, progress: bool):
    """Stream the clips into ``folder``: chunks of :data:`CHUNK_CLIPS` clips, never all."""
    num_clips = len(index)
    wav_file, _ = _start_npy(folder / "wavs.npy", (num_clips, decoding.num_samples), np.int16)
    report = audio.ReadReport()
    chunk = np.zeros((CHUNK_CLIPS, decoding.num_samples), dtype=np.int16)
    filled = 0
    try:
        clips = audio.iter_clips(index["path"], decoding.num_samples, decoding.sample_rate,
                                 decoding.channel, decoding.on_error, report, progress,
                                 desc="caching clips")
        for _, wav in clips:
            # float32 in [-1, 1] -> int16 (PCM16 sources come back exactly)
            chunk[filled] = np.clip(np.round(wav * 32768.0), -32768, 32767)
            filled += 1
            if filled == CHUNK_CLIPS:
                wav_file.write(chunk.tobytes())
                filled = 0
        wav_file.write(chunk[:filled].tobytes())
    finally:
        wav_file.close()
    if not report.kept:
        raise ValueError(f"build_cache: none of the {num_clips} clips could be read")
    rows = index.iloc[report.kept].copy()
    rows["class_label"] = labels[report.kept]
    rows["source_row"] = report.kept
    rows.to_csv(folder / "index.csv", index=False)
    return report


class ClipDataset(Dataset):
    """The clips of a complete cache, read one at a time from disk.

    ``dataset[i]`` is ``(wav, label, i)``: the float32 clip, its class label (-1 if none) and
    its row in ``dataset.index``.

    Each item is one ``os.pread`` from ``wavs.npy`` (DataLoader workers open their own file),
    so the process holds no clip it is not serving. ``dataset.wavs`` is the whole array as a
    read-only ``numpy.memmap`` for bulk numpy use.

    Shapes:
        - wav: ``[num_samples]`` float32 in [-1, 1].
    """

    def __init__(self, path):
        self.path = Path(path)
        if not store.is_complete(self.path):
            raise FileNotFoundError(f"{self.path} is not a complete asdlib cache (no "
                                    f"{store.MARKER} marker); build it with asdlib.cache.build_cache")
        self.meta = json.loads((self.path / "meta.json").read_text())
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{self.path}: cache format {self.meta.get('format_version')}, this "
                             f"asdlib reads format {FORMAT_VERSION}; build the cache again")
        self.index = pd.read_csv(self.path / "index.csv")
        self.labels = self.index["class_label"].to_numpy(dtype=np.int64)
        self.num_samples = int(self.meta["num_samples"])
        self.sample_rate = int(self.meta["sample_rate"])
        # (offset, row shape, dtype) of wavs.npy, read from its header
        array = np.load(self.path / "wavs.npy", mmap_mode="r")
        self._layout = (array.offset, array.shape[1:], array.dtype)
        self._fd = None
        self._pid = None

    def __len__(self) -> int:
        return len(self.index)

    @property
    def wavs(self) -> np.ndarray:
        """All clips as an int16 ``[clips, num_samples]`` read-only memmap (divide by 32768)."""
        return np.load(self.path / "wavs.npy", mmap_mode="r")[: len(self)]

    def _read(self, i: int) -> np.ndarray:
        """Clip ``i`` as stored: int16 ``[num_samples]``."""
        if self._pid != os.getpid():  # first use in this process (e.g. a DataLoader worker)
            self._fd = os.open(self.path / "wavs.npy", os.O_RDONLY)
            self._pid = os.getpid()
        offset, shape, dtype = self._layout
        size = int(np.prod(shape)) * dtype.itemsize
        data = os.pread(self._fd, size, offset + i * size)
        return np.frombuffer(data, dtype=dtype).reshape(shape)

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a cache of {len(self)} clips")
        i = int(i) % len(self)
        # int16 -> float32 in [-1, 1]
        wav = torch.from_numpy(self._read(i).astype(np.float32) / 32768.0)
        return wav, int(self.labels[i]), i

    def __getstate__(self):  # picklable for spawned DataLoader workers: no open files
        state = dict(self.__dict__)
        state["_fd"], state["_pid"] = None, None
        return state

    def __del__(self):
        if getattr(self, "_pid", None) == os.getpid() and self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass


def open_cache(path) -> ClipDataset:
    """The :class:`ClipDataset` of a complete cache folder (from :func:`build_cache`)."""
    return ClipDataset(path)


def cached_dataset(index, cache_dir, decoding, **options) -> ClipDataset:
    """Build the cache if needed and open it: ``open_cache(build_cache(...))``.

    ``options`` are the keyword arguments of :func:`build_cache` (``class_map``, ``progress``).
    """
    return open_cache(build_cache(index, cache_dir, decoding, **options))


def clip_dataset(index: pd.DataFrame, num_samples: int, class_map: dict, progress: bool = True):
    """The clips of `index` from the clip cache under ``<ASDLIB_HOME>/cache`` (how training and
    scoring read a data root).

    Returns:
        A `ClipDataset`: item ``i`` is ``(wav [samples] float32, label, i)``.
    """
    return cached_dataset(index, runtime.home() / "cache", Decoding(num_samples, SAMPLE_RATE),
                          class_map=class_map, progress=progress)
