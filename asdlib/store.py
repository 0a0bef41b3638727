"""The store: inputs -> hash -> folder, built once, safe when two processes want the same one.

Every result of asdlib that is a pure function of its inputs is kept in a folder named by those
inputs, so that it is computed once and then read: the decoded clips of a dataset
(`asdlib.cache`), the training runs (`asdlib.experiments`), the chapter-2 autoencoders
(`asdlib.baseline`), the synthetic datasets (`asdlib.experiments.synthetic_dataset`) and the
bootstrap replicates of the tables (`asdlib.tables.bootstrap`). They all go through `folder`:

1. If ``<parent>/<name>`` holds the completion marker, it is returned at once (no lock).
2. Otherwise the process takes a file lock (`filelock`) beside it; a second process asking for
   the same folder waits here, and once the first is done it finds the folder complete and
   reads it.
3. The lock holder builds into ``<parent>/.<name>.partial``. A build that was killed leaves
   its work there, and the next build starts from it (training resumes from its last epoch;
   the generator skips the clips it wrote), or clears it.
4. The marker is written last, then the folder is renamed into place in one atomic step: a
   reader never sees a half-built folder.

    >>> from asdlib import store
    >>> def build(work):                                     # doctest: +SKIP
    ...     (work / "answer.txt").write_text("42")
    >>> path = store.folder(cache_dir, "answer-" + store.key({"question": 6 * 7}), build)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import filelock

__all__ = ["MARKER", "folder", "hold", "is_complete", "key", "lock"]

#: The file written last into a complete folder.
MARKER = ".complete"


def key(inputs, length: int = 16) -> str:
    """A hash of JSON-able ``inputs``: the same inputs always give the same key.

    Args:
        inputs: anything `json.dumps` can write (dict keys are sorted; other objects are written
            with `str`).
        length: hexadecimal digits kept.
    """
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def is_complete(path) -> bool:
    """Whether ``path`` is a complete store folder (it holds the marker)."""
    return (Path(path) / MARKER).is_file()


def lock(path) -> filelock.FileLock:
    """The inter-process lock of a folder: the file ``.<name>.lock`` beside it.

    Use it as a context manager; a second process blocks until the first one releases it.
    `hold` is the same with a message while waiting.

    Raises:
        OSError: the lock file cannot be created (a folder that cannot be written, such as
            /proc): refused at once instead of waiting for ever.
    """
    path = Path(path)
    lock_file = path.parent / f".{path.name}.lock"
    try:
        os.close(os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644))
    except OSError as err:
        raise OSError(err.errno, f"{err.strerror} (the lock file of {path.name}); choose a "
                                 f"folder you can write to", str(lock_file)) from None
    return filelock.FileLock(str(lock_file))


def _owner_file(path: Path) -> Path:
    return path.parent / f".{path.name}.owner"


def _owner(path: Path, patience: float = 1.0) -> str:
    """Who holds the lock of ``path``, as its holder wrote it beside the lock. The holder writes
    it just after taking the lock, so a process that found the lock taken a moment earlier (and
    the file missing or still empty) looks again for up to ``patience`` seconds before it says
    "another process"."""
    deadline = time.monotonic() + patience
    while True:
        try:
            owner = _owner_file(path).read_text().strip()
        except OSError:
            owner = ""
        if owner or time.monotonic() > deadline:
            return owner or "another process"
        time.sleep(0.05)


@contextlib.contextmanager
def hold(path, description: str | None = None):
    """Hold the lock of the folder ``path`` (`lock`) while the block runs.

    A process that finds the lock taken says so on stderr, naming what is built and by whom
    (the holder's process ID, host and command line, written beside the lock), then waits.
    """
    path = Path(path)
    guard = lock(path)
    try:
        guard.acquire(timeout=0)
    except filelock.Timeout:
        print(f"waiting for {_owner(path)}, which is building {description or path} ...",
              file=sys.stderr, flush=True)
        guard.acquire()
    try:
        command = " ".join(sys.argv) or "python"
        try:
            _owner_file(path).write_text(f"process {os.getpid()} on {socket.gethostname()} "
                                         f"({command[:120]})\n")
        except OSError:
            pass  # the message of a waiting process is only less precise
        yield
    finally:
        _owner_file(path).unlink(missing_ok=True)
        guard.release()


def folder(parent, name: str, build, *, description: str | None = None,
           keep_partial: bool = True) -> Path:
    """The complete folder ``<parent>/<name>``, built by ``build(work)`` if it is not there yet.

    Args:
        parent: the folder that holds folders of this kind (created if missing).
        name: the folder's name, usually ``f"<kind>-{key(inputs)}"``.
        build: ``build(work)`` fills the folder ``work`` (which exists, and may hold what an
            interrupted earlier build left there). When it returns, the folder is complete.
        description: what is built, for the message printed while waiting for another process.
        keep_partial: keep the work of a build that raised, for the next attempt to resume
            (training runs, generated data); False removes it (a build that starts over anyway,
            such as the clip cache, would only leave gigabytes behind).

    Returns:
        The complete folder ``<parent>/<name>``.

    Raises:
        Whatever ``build`` raises; its work stays in ``<parent>/.<name>.partial`` for the next
        attempt (unless ``keep_partial`` is False).
    """
    parent = Path(parent)
    final = parent / name
    if is_complete(final):
        return final
    parent.mkdir(parents=True, exist_ok=True)
    with hold(final, description):
        if is_complete(final):  # the other process finished it while we waited
            return final
        work = parent / f".{name}.partial"
        if final.exists() and not work.exists():
            # Under the final name but never marked complete, so not finished by this protocol:
            # treat it as partial work (builders resume from what a folder holds)
            os.rename(final, work)
        elif final.exists():
            shutil.rmtree(final)
        work.mkdir(exist_ok=True)
        try:
            build(work)
        except BaseException:
            if not keep_partial:
                shutil.rmtree(work, ignore_errors=True)
            raise
        (work / MARKER).write_text("complete\n")
        os.rename(work, final)
        return final
