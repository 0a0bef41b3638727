"""The book builds (smoke profile, warnings as errors) and its notebooks follow the house rules."""

from __future__ import annotations

import json

from book_helpers import ROOT, toc_files


def test_book_builds_every_toc_page(smoke_book):
    for name in toc_files():
        assert (smoke_book / f"{name}.html").is_file(), f"{name}.html was not built"


def test_preface_executed_the_setup_cell(smoke_book):
    html = (smoke_book / "book" / "00_preface.html").read_text()
    # The setup cell prints the profile it ran under.
    assert "profile=smoke" in html


def test_pages_carry_no_warnings_or_progress_bars(smoke_book):
    """The build hides progress bars (TQDM_DISABLE) and no library warning reaches a page."""
    for name in toc_files():
        html = (smoke_book / f"{name}.html").read_text()
        for residue in ("TqdmWarning", "IProgress", "it/s]", "clip/s]", "batch/s]", "Warning:"):
            assert residue not in html, f"{name}.html shows {residue!r}"


def test_notebooks_are_committed_without_outputs():
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"], f"{path.name} has outputs"
                assert cell["execution_count"] is None, f"{path.name} has execution counts"


def test_every_notebook_is_in_the_toc():
    in_toc = set(toc_files())
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        assert f"book/{path.stem}" in in_toc, f"{path.name} is not listed in _toc.yml"
