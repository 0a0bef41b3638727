"""The book builds (smoke profile, warnings as errors) and its notebooks follow the house rules."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_no_glue_call_is_visible_on_a_chapter_page(smoke_book):
    """The numbers in the text come from glue() calls; they are bookkeeping, hidden in the
    rendered pages (cells tagged remove-cell), so no page shows the word."""
    shown = {page.name: page.read_text().count("glue(")
             for page in sorted((Path(smoke_book) / "book").glob("[0-9]*.html"))}
    assert not {name: n for name, n in shown.items() if n}, shown


#: The widest table a chapter page may show: wider ones wrap every cell on a page of text width.
MAX_TABLE_COLUMNS = 12


def _widest_tables(html: str) -> list:
    """The column counts of the tables of an HTML page (cells of its widest row)."""
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self):
            super().__init__()
            self.widths, self.stack = [], []

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.stack.append(0)
            elif tag == "tr" and self.stack:
                self.row = 0
            elif tag in ("td", "th") and self.stack:
                span = int(dict(attrs).get("colspan", 1) or 1)
                self.row += span
                self.stack[-1] = max(self.stack[-1], self.row)

        def handle_endtag(self, tag):
            if tag == "table" and self.stack:
                self.widths.append(self.stack.pop())

    parser = Tables()
    parser.feed(html)
    return parser.widths


def test_no_chapter_table_is_wider_than_the_page(smoke_book):
    too_wide = {}
    for page in sorted((Path(smoke_book) / "book").glob("[0-9]*.html")):
        widths = [w for w in _widest_tables(page.read_text()) if w > MAX_TABLE_COLUMNS]
        if widths:
            too_wide[page.name] = widths
    assert not too_wide, f"tables wider than {MAX_TABLE_COLUMNS} columns: {too_wide}"
