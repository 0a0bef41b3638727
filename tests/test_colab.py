"""Every chapter starts with the same setup cell, and on Colab that cell installs asdlib correctly."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


def _first_code_cell(path: Path) -> str:
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            return "".join(cell["source"])
    raise AssertionError(f"{path.name} has no code cell")


def _repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def test_every_chapter_has_the_same_setup_cell():
    assert CHAPTERS, "no chapters found"
    reference = _first_code_cell(CHAPTERS[0])
    for path in CHAPTERS[1:]:
        assert _first_code_cell(path) == reference, f"{path.name}: the first cell differs from {CHAPTERS[0].name}"


def test_setup_cell_points_at_the_configured_repository():
    cell = _first_code_cell(CHAPTERS[0])
    assert f'REPOSITORY = "{_repository_url()}"' in cell


def _run_setup_cell(monkeypatch, on_colab: bool) -> list:
    """Execute the setup cell as IPython would, with a stand-in shell that records magics."""
    calls = []
    namespace: dict = {}

    class FakeShell:
        def run_line_magic(self, name, line, _stack_depth=1):
            # IPython expands {variables} in a magic's line from the user's namespace.
            calls.append((name, line.format(**namespace)))

    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    code = TransformerManager().transform_cell(_first_code_cell(CHAPTERS[0]))
    namespace["get_ipython"] = lambda: FakeShell()
    exec(compile(code, "setup-cell", "exec"), namespace)
    return calls


def test_on_colab_the_cell_installs_asdlib_from_the_repository_and_keeps_torch(monkeypatch, capsys):
    calls = _run_setup_cell(monkeypatch, on_colab=True)
    assert calls == [("pip", f'install --quiet "asdlib @ git+{_repository_url()}@main"')]
    # Colab brings its own torch: the command must not name or upgrade it.
    assert "torch" not in calls[0][1] and "--upgrade" not in calls[0][1]
    assert "profile=" in capsys.readouterr().out


def test_elsewhere_the_cell_installs_nothing(monkeypatch, capsys):
    assert _run_setup_cell(monkeypatch, on_colab=False) == []
    assert "device=" in capsys.readouterr().out


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapters_use_no_paths_relative_to_the_notebook(path):
    source = path.read_text()
    for bad in ('"../', "'../", '"./data', "'./data"):
        assert bad not in source, f"{path.name} uses a path relative to the notebook ({bad})"
