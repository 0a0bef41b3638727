"""Where things live and what they run on: the home folder, the device, precision, file writes.

The home folder of every generated file (`home`), the device (`device`), the autocast dtype of
a device, atomic file writes that name a full disk (`atomic_path`, `DiskFull`), progress bars,
the torch thread count of a block (`torch_threads`), and the one process-wide setting asdlib
offers (`reuse_freed_memory`), which only an explicit call or a command-line flag applies.

It imports no other asdlib module, so every module can use it without pulling in the networks.
The setup report of every chapter's first cell is `asdlib.profiles.describe`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import platform
import sys
import tempfile
from pathlib import Path

import pooch
import torch
from tqdm.auto import tqdm  # imported quietly by asdlib/__init__.py

#: The environment variable that moves every generated file (data, runs, caches).
HOME_VAR = "ASDLIB_HOME"


def home() -> Path:
    """The one folder for generated data, caches and training runs.

    ``$ASDLIB_HOME`` if set (the Makefile points it at ``_build/asdlib``), else the user's cache
    folder (``~/.cache/asdlib`` on Linux). Paths are never relative to a notebook.
    """
    configured = os.environ.get(HOME_VAR)
    if configured:
        return Path(configured).expanduser().resolve()
    return Path(pooch.os_cache("asdlib")).resolve()


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside `path` to write to; renamed onto `path` when the block succeeds.

    A reader never sees a half-written file, and a failed or killed write leaves the old file
    (or nothing) in place: the temporary file is removed when the block raises. It keeps the
    suffix of `path` (`np.savez` and friends look at it).

        with runtime.atomic_path(out / "embeddings.npz") as tmp:
            np.savez_compressed(tmp, embedding=embedding)
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}",
                                   dir=path.parent)
    except OSError as err:
        raise write_error(err, path) from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise write_error(err, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: The errors of a disk (or a quota) that is full.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(OSError):
    """A write that failed because the disk (or the quota) is full.

    Raised by asdlib's writes (`atomic_path`, `write_text_atomic`, `save_atomic`, the clip
    cache) through `write_error`: its message names the folder, the file and the way out, so
    the command line prints it as it is. `errno` is `ENOSPC` or `EDQUOT`, `filename` the file.
    """


def write_error(err: OSError, path) -> OSError:
    """`err`, raised while writing `path`, as an error that names `path` (not a temporary
    file).

    Returns:
        For a full disk (`DISK_FULL`), a `DiskFull` saying so: "no space left on the disk of
        <folder> while writing <file>: ...". Otherwise an `OSError` with `err`'s message and
        `path` as its file name.
    """
    path = Path(path)
    if err.errno in DISK_FULL:
        return DiskFull(err.errno, f"no space left on the disk of {path.parent} while writing "
                                   f"{path.name}: free some space or choose another folder, then "
                                   "run the same command again (what was finished is kept)",
                        str(path))
    return OSError(err.errno, err.strerror or str(err), str(path))


def write_text_atomic(text: str, path) -> None:
    """Write `text` (UTF-8) to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_atomic(obj, path) -> None:
    """`torch.save` to `path` atomically (see `atomic_path`).

    The object is serialised in memory first and then written with plain file I/O, so a write
    that fails (a full disk) raises an `OSError` naming `path` instead of torch's
    "enforce fail at inline_container.cc".
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def progress_bar(iterable=None, *, show: bool = True, **kwargs):
    """A `tqdm.auto` progress bar: a widget in Jupyter and Colab, text elsewhere.

    Args:
        iterable: what to iterate over (or None with ``total=...`` and ``update()``).
        show: False hides the bar. So does the environment variable ``TQDM_DISABLE`` (the book
            build sets it: progress bars help whoever waits, not the static pages).
        **kwargs: passed to ``tqdm`` (``desc``, ``unit``, ``total``, ``leave``, ...).
    """
    disabled_by_env = os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")
    return tqdm(iterable, disable=not show or disabled_by_env, **kwargs)


@contextlib.contextmanager
def torch_threads(num_threads: int | None):
    """Set torch's CPU thread count for a block, then restore the previous count.

    Small models train faster on one thread than on several that wait for each other, and a
    worker process that shares the CPU with others should use one; the caller's setting comes
    back when the block ends, also when it raises.

        with runtime.torch_threads(1):
            train(...)

    Args:
        num_threads: threads inside the block (None: leave the count alone).
    """
    if num_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def device(name=None) -> torch.device:
    """The torch device to train on: ``name`` if given, else CUDA when available, else the CPU.

    Raises:
        ValueError: ``name`` is not a device name, or names a device this machine does not
            have (a CUDA GPU on a machine without one, a GPU index past the last one); the
            message starts with ``device:`` and says what is available.
    """
    if name is None or name == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(name, torch.device):
        chosen = name
    else:
        try:
            chosen = torch.device(str(name))
        except (RuntimeError, ValueError):
            raise ValueError(f"device: {name!r} is not a device name; expected cpu, cuda, "
                             f"cuda:<index> or mps ({available_devices()})") from None
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device: {name} asked for a CUDA GPU, but this machine has none "
                             f"({available_devices()}); use --device cpu")
        if chosen.index is not None and chosen.index >= count:
            raise ValueError(f"device: {name} asked for GPU {chosen.index}, but this machine "
                             f"has {count} ({available_devices()})")
    elif chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device: {name} asked for Apple's MPS, which this machine lacks "
                         f"({available_devices()})")
    elif chosen.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device: asdlib trains on cpu, cuda or mps, got {name!r} "
                         f"({available_devices()})")
    return chosen


def available_devices() -> str:
    """The devices of this machine in words: "available: cpu, cuda:0, cuda:1"."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return "available: " + ", ".join(names)


def autocast_dtype(amp: str, device: torch.device):
    """The autocast dtype of a mixed-precision setting on a device (None: float32).

    On CUDA, "auto" is bfloat16 where the GPU has it, else float16 (which `asdlib.train` pairs
    with a gradient scaler); "bf16" and "fp16" force one; "off" computes in float32.

    On a CPU, "bf16" is bfloat16 (with the layers of `asdlib.models.float32_islands` kept in
    float32); everything else is float32, "auto" included. bfloat16 pays only on a CPU with
    native bfloat16 instructions (`native_bf16`): on one (AMD EPYC, avx512_bf16), a training
    step of the paper's sizes takes 0.6x the time of float32, one of the book's sizes 0.9x
    (`python -m asdlib bench --levers` measures it on any machine). It is not the CPU default because the published
    results must come out the same on readers' CPUs with and without such instructions.
    """
    if device.type == "cpu":
        return torch.bfloat16 if amp == "bf16" else None
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (the avx512_bf16 or amx_bf16 flags, Linux)."""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def reuse_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back.

    By default glibc serves every large block (the activations of a batch: tens of MB for
    10 s clips) with a fresh `mmap` and returns it on `free`, so each training step
    page-faults all its activations in again. With `mmap` off and a high trim threshold the
    freed blocks stay in the heap and are reused: a CPU training step is about 1.2x faster for
    2 s clips and 1.5x for 10 s clips on the book's machine. The price: the
    process keeps its peak memory until it exits.

    This changes the whole process for good (the same as starting Python with
    `MALLOC_MMAP_MAX_=0`), so asdlib never calls it on its own: call it yourself, or pass
    `--reuse-freed-memory` to `python -m asdlib train / evaluate / bench`.

    Returns:
        True when applied (Linux with glibc), False elsewhere (nothing changes).
    """
    global _FREED_MEMORY_REUSED
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt parameters of glibc's <malloc.h>: M_TRIM_THRESHOLD = -1, M_MMAP_MAX = -4
    applied = libc.mallopt(-4, 0) == 1 and libc.mallopt(-1, 2**31 - 1) == 1
    _FREED_MEMORY_REUSED = _FREED_MEMORY_REUSED or applied
    return applied


_FREED_MEMORY_REUSED = False


def freed_memory_reused() -> bool:
    """Whether `reuse_freed_memory` has been applied in this process."""
    return _FREED_MEMORY_REUSED


def cpu_model() -> str:
    """The CPU's model name (Linux; else `platform.processor()`): it decides how some float
    kernels round, so two CPU models train the same seed to slightly different weights."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor() or "unknown")


def glue(name: str, value, display: bool = True):
    """Put a computed value into the rendered book's text (the MyST role ``glue:text``).

    The book build has ``myst_nb``; elsewhere (Colab, a plain Jupyter) there is nothing to glue
    into, the chapter prints its numbers anyway, and this does nothing.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return None
    # numpy scalars (np.float64, ...) become Python numbers so that `{glue:text}`x:.3f`` formats.
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    return myst_glue(name, value, display=display)
