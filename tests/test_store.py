"""asdlib.store: keyed folders built once, atomically, and safely when two processes want one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from asdlib import store

ROOT = Path(__file__).resolve().parents[1]


def test_key_is_a_hash_of_the_inputs():
    assert store.key({"a": 1, "b": [1, 2]}) == store.key({"b": [1, 2], "a": 1})  # key order
    assert store.key({"a": 1}) != store.key({"a": 2})
    assert len(store.key({"a": 1})) == 16 and len(store.key({"a": 1}, length=12)) == 12
    # sha256 of the sorted JSON, by hand
    import hashlib

    assert store.key({"x": 1}) == hashlib.sha256(b'{"x": 1}').hexdigest()[:16]


def test_a_folder_is_built_once_then_read(tmp_path):
    calls = []

    def build(work):
        calls.append(work)
        (work / "answer.txt").write_text("42")

    first = store.folder(tmp_path, "answer-1", build)
    second = store.folder(tmp_path, "answer-1", build)
    assert first == second == tmp_path / "answer-1" and len(calls) == 1
    assert (first / "answer.txt").read_text() == "42" and store.is_complete(first)
    # the build happened in the hidden work folder, which is gone now
    assert calls[0].name == ".answer-1.partial" and not calls[0].exists()


def test_a_failed_build_leaves_no_folder_and_the_next_build_resumes_its_work(tmp_path):
    def fails(work):
        (work / "half.txt").write_text("done before the failure")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        store.folder(tmp_path, "thing", fails)
    assert not (tmp_path / "thing").exists()
    seen = []

    def resumes(work):
        seen.append((work / "half.txt").read_text())
        (work / "rest.txt").write_text("the rest")

    path = store.folder(tmp_path, "thing", resumes)
    assert seen == ["done before the failure"] and (path / "rest.txt").is_file()


def test_a_folder_without_the_marker_is_built_on(tmp_path):
    """Folders of an older asdlib (another completion marker) are moved in and completed."""
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "kept.txt").write_text("x")
    path = store.folder(tmp_path, "old", lambda work: (work / "new.txt").write_text("y"))
    assert sorted(p.name for p in path.iterdir()) == [store.MARKER, "kept.txt", "new.txt"]


CONCURRENT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from asdlib import store

    parent, log, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    # What this process says while it waits goes to a file the other process can read
    sys.stderr = open(log.parent / f"err-{me}.txt", "w", buffering=1)

    def build(work):
        with open(log, "a") as f:
            f.write("built\\n")
        # The builder holds the lock until the other process has found it taken and said so
        # (however slowly that one starts on a loaded machine)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                "waiting for" in p.read_text() for p in log.parent.glob("err-*.txt")):
            time.sleep(0.05)
        (work / "content.txt").write_text("made once")

    path = store.folder(parent, "shared-key", build)
    print((path / "content.txt").read_text())
""")


def test_two_processes_on_the_same_key_both_succeed_and_it_is_built_once(tmp_path):
    script, log = tmp_path / "build.py", tmp_path / "builds.log"
    script.write_text(CONCURRENT)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "store"), str(log), str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert [out.strip() for out, _ in results] == ["made once", "made once"]
    assert log.read_text().splitlines() == ["built"]
    # the one that waited said so, naming the process that held the lock
    said = [(tmp_path / f"err-{i}.txt").read_text() for i in range(2)]
    waited = [text for text in said if "waiting for" in text]
    assert len(waited) == 1, said
    assert "waiting for process " in waited[0] and "shared-key" in waited[0], said


def test_two_train_commands_on_a_fresh_home_both_succeed(tmp_path, smoke_data):
    """The clip-cache race of the issue: both start on a fresh ASDLIB_HOME and the same data."""
    data = smoke_data("slider")
    env = dict(os.environ, ASDLIB_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    commands = [[sys.executable, "-m", "asdlib", "train", "--data", str(data), "--profile", "smoke",
                 "--out", str(tmp_path / f"run{i}"), "--quiet"] for i in range(2)]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for c in commands]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    caches = [p for p in (tmp_path / "home" / "cache").iterdir() if not p.name.startswith(".")]
    assert len(caches) == 1 and store.is_complete(caches[0])
