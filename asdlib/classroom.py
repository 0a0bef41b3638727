"""
The student edition of the book

A teacher hands out the chapters without their solutions (see the page "For teachers"). In the
book's notebooks every exercise has three parts:

* a code cell tagged `exercise`: a stub that raises `NotImplementedError`, for the student;
* cells tagged `solution`: the worked solution (in the rendered book, a dropdown);
* an untagged checker cell, `asdlib.exercises.check_...(my_function)`, that says what is wrong.

`student_edition` copies the notebooks with the `solution` cells removed by nbconvert's
`TagRemovePreprocessor` and every output cleared, so that the stubs and the checkers stay:

    python -m asdlib student --book book --out _build/student     # or: make student
"""

from __future__ import annotations

from pathlib import Path

from asdlib import runtime

__all__ = ["EXERCISE_TAG", "SOLUTION_TAG", "student_edition"]

#: The tag of the stub cells that students fill in.
EXERCISE_TAG = "exercise"
#: The tag of every cell that belongs to a solution (removed from the student edition).
SOLUTION_TAG = "solution"
# Text that only a solution cell may contain: a solution left untagged would leak into the
# student edition, so it is an error.
_SOLUTION_MARKERS = ("{solution}", "{solution-start}", "{solution-end}")

_README = """# Exercises of "Anomalous sound detection with Noisy-ArcMix" (student edition)

These are the chapters of the book without the solutions. Every exercise has a cell that
raises `NotImplementedError`: replace its body with your code, run it, then run the checker
cell below it, which says what is right or wrong.

Run the chapters in Google Colab (upload a notebook: its first cell installs asdlib) or in a
Jupyter with asdlib installed. Every chapter runs top to bottom on a CPU in the default
profile; an unsolved exercise makes its checker print a reminder and nothing else.
"""


def _tags(cell) -> set:
    return set(cell.get("metadata", {}).get("tags", []))


def _check_tagging(nb, path: Path) -> None:
    """Raise if a solution would leak into the student edition or an exercise lost its stub."""
    for index, cell in enumerate(nb.cells):
        tags = _tags(cell)
        if SOLUTION_TAG in tags:
            continue
        if any(marker in cell.source for marker in _SOLUTION_MARKERS):
            raise ValueError(f"{path}: cell {index} holds a solution directive but is not "
                             f"tagged {SOLUTION_TAG!r} (it would leak into the student edition)")
        if EXERCISE_TAG in tags and (cell.cell_type != "code"
                                     or "NotImplementedError" not in cell.source):
            raise ValueError(f"{path}: cell {index} is tagged {EXERCISE_TAG!r} but is not a "
                             "code stub that raises NotImplementedError")


def student_edition(book_dir, out_dir) -> list:
    """Write the student edition of the notebooks in `book_dir` into `out_dir`.

    Every `*.ipynb` of `book_dir` is copied with the cells tagged `solution` removed (nbconvert's
    `TagRemovePreprocessor`) and all outputs cleared; a `README.md` for students goes beside
    them. The source notebooks are checked first, so nothing is written when one is mistagged.

    Args:
        book_dir: the folder of the chapters (`book/` of the repository).
        out_dir: where to write; created if missing, existing notebooks are replaced.

    Returns:
        The paths of the written notebooks, in name order.

    Raises:
        FileNotFoundError: `book_dir` does not exist or holds no notebook.
        ValueError: a notebook has a solution cell without the `solution` tag, or an
            `exercise`-tagged cell that is not a stub raising `NotImplementedError`.
    """
    import nbformat
    from nbconvert import NotebookExporter
    from nbconvert.preprocessors import ClearOutputPreprocessor, TagRemovePreprocessor

    book_dir, out_dir = Path(book_dir), Path(out_dir)
    sources = sorted(book_dir.glob("*.ipynb")) if book_dir.is_dir() else []
    if not sources:
        raise FileNotFoundError(f"book_dir {book_dir} holds no .ipynb chapter (expected the "
                                "book/ folder of the repository)")
    notebooks = []
    for path in sources:
        nb = nbformat.read(path, as_version=4)
        _check_tagging(nb, path)
        notebooks.append((path, nb))

    exporter = NotebookExporter()
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={SOLUTION_TAG},
                                                         enabled=True), enabled=True)
    exporter.register_preprocessor(ClearOutputPreprocessor(enabled=True), enabled=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path, nb in notebooks:
        body, _ = exporter.from_notebook_node(nb)
        target = out_dir / path.name
        runtime.write_text_atomic(body, target)
        written.append(target)
    runtime.write_text_atomic(_README, out_dir / "README.md")
    return written
