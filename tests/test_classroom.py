"""The student edition (make student): solutions removed, stubs and checkers kept and working."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from asdlib import classroom

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """The student edition, written by the same command as `make student`."""
    out = tmp_path_factory.mktemp("student")
    result = subprocess.run([sys.executable, "-m", "asdlib", "student", "--book", str(BOOK),
                             "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "without solutions" in result.stdout
    return out


def test_make_student_runs_the_tested_command():
    dry = subprocess.run(["make", "-n", "student", "STUDENT_DIR=/tmp/x"], capture_output=True,
                         text=True, cwd=ROOT, check=True).stdout
    assert "-m asdlib student --book book --out /tmp/x" in dry


def test_every_chapter_without_solutions_with_stubs_and_checkers(student):
    sources = sorted(BOOK.glob("*.ipynb"))
    assert sorted(p.name for p in student.glob("*.ipynb")) == [p.name for p in sources]
    assert (student / "README.md").exists()
    total_exercises = 0
    for source in sources:
        original = nbformat.read(source, as_version=4)
        handed_out = nbformat.read(student / source.name, as_version=4)
        kept = [c for c in original.cells if "solution" not in c.metadata.get("tags", [])]
        assert [c.source for c in handed_out.cells] == [c.source for c in kept], source.name
        text = "\n".join(c.source for c in handed_out.cells)
        assert "{solution" not in text, source.name
        stubs = [c for c in handed_out.cells if "exercise" in c.metadata.get("tags", [])]
        assert all("raise NotImplementedError" in c.source for c in stubs), source.name
        assert all(not c.get("outputs") for c in handed_out.cells if c.cell_type == "code")
        # the checkers stay: as many check_ calls as in the book
        assert text.count("asdlib.exercises.check_") == "\n".join(
            c.source for c in original.cells).count("asdlib.exercises.check_"), source.name
        total_exercises += text.count("{exercise}")
    assert total_exercises >= 3 * (len(sources) - 1)  # the preface has none


def test_a_stub_runs_and_its_checker_says_what_to_do(student):
    """Execute chapter 4's setup and import cells, its first exercise stub and its checker."""
    from nbclient import NotebookClient

    nb = nbformat.read(student / "04_arcface.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    first_stub = next(i for i, c in enumerate(code) if "exercise" in c.metadata.get("tags", []))
    checker = code[first_stub + 1]
    assert "asdlib.exercises.check_" in checker.source
    assert "import asdlib.exercises" in code[1].source
    nb.cells = [code[0], code[1], code[first_stub], checker]
    env_profile = os.environ.get("ASDLIB_PROFILE")
    os.environ["ASDLIB_PROFILE"] = "smoke"
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(student)}}).execute()
    finally:
        if env_profile is None:
            del os.environ["ASDLIB_PROFILE"]
        else:
            os.environ["ASDLIB_PROFILE"] = env_profile
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    assert "not implemented yet" in printed
    assert "my_cosface_logits" in printed
    assert not any(o.output_type == "error" for c in nb.cells for o in c.outputs)


def test_an_untagged_solution_is_refused_before_anything_is_written(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("```{solution-start} ex-1\n```")]
    nbformat.write(nb, book / "01_x.ipynb")
    with pytest.raises(ValueError, match=r"01_x.ipynb: cell 0 .*not tagged 'solution'"):
        classroom.student_edition(book, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_exercise_cell_must_be_a_stub(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def f():\n    return 1", metadata={"tags": ["exercise"]})]
    nbformat.write(nb, book / "02_y.ipynb")
    with pytest.raises(ValueError, match=r"02_y.ipynb: cell 0 .*NotImplementedError"):
        classroom.student_edition(book, tmp_path / "out")


def test_a_missing_book_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        classroom.student_edition(tmp_path / "nowhere", tmp_path / "out")
    result = subprocess.run([sys.executable, "-m", "asdlib", "student", "--book",
                             str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert result.returncode != 0 and "nowhere" in result.stderr
