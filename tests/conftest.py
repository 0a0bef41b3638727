"""Shared fixtures. Tests never touch the user's cache: ASDLIB_HOME points into a temp folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own ASDLIB_HOME unless it sets one itself."""
    monkeypatch.setenv("ASDLIB_HOME", str(tmp_path_factory.mktemp("asdlib_home")))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Train on one torch thread for a module's tests: the 2 test cores are shared, and on a busy
    machine two OpenMP threads that wait for each other make tiny training steps 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory):
    """``smoke_data("fan", ...)``: smoke-profile synthetic data of those machine types.

    Generated once per test session and shared: tests only read it (a test that changes its
    data generates its own).
    """
    from asdlib import synth

    made = {}

    def make(*types: str) -> Path:
        key = tuple(sorted(types))
        if key not in made:
            root = tmp_path_factory.mktemp("smoke_" + "-".join(key))
            synth.generate(root, profile="smoke", types=list(key), progress=False)
            made[key] = root
        return made[key]

    return make


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> Path:
    """Build the whole book once, in the smoke profile, with warnings as errors.

    Returns the folder of the built HTML. The build goes to ``_build/smoke`` (its own
    jupyter-cache, so smoke outputs never leak into the real book build).
    """
    out = ROOT / "_build" / "smoke"
    env = dict(os.environ, ASDLIB_PROFILE="smoke", TQDM_DISABLE="1", ASDLIB_HOME=str(tmp_path_factory.mktemp("book_home")))
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "-W", "--keep-going", "--path-output", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.fail(f"the smoke book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}")
    return out / "_build" / "html"
