"""The repository's set-up files agree with each other (README, Makefile, CI, conda, pyproject)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_pip_part_matches_pyproject():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_part = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d)
    project = _pyproject()["project"]
    expected = project["dependencies"] + project["optional-dependencies"]["book"]
    requirements = [line for line in pip_part if not line.startswith("-e")]
    assert requirements == expected
    assert "-e ." in pip_part, "environment.yml must install the package itself"
    assert any(str(d).startswith("python=3.11") for d in environment["dependencies"])


def test_package_declares_lower_bounds_only():
    project = _pyproject()["project"]
    every = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    for requirement in every:
        assert "==" not in requirement, f"exact pin in pyproject.toml: {requirement}"


def test_exact_torch_pins_live_in_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.14.1" in makefile and "torchaudio==2.11.0" in makefile


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M), ".ci/run must call 'make test'"
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme


def test_book_config_excludes_non_book_folders():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    patterns = config["exclude_patterns"]
    for folder in ("asdlib/*", "tests/*", "data/*", "README.md"):
        assert folder in patterns
    assert config["only_build_toc_files"] is True
    assert config["execute"]["timeout"] > 0
    assert config["repository"]["branch"] == "main"


def test_bibliography_has_the_papers_the_book_cites():
    bib = (ROOT / "references.bib").read_text()
    for key in ("choi2024noisyarcmix", "liu2022stgram", "deng2019arcface", "zhang2018mixup",
                "koizumi2020dcase", "purohit2019mimii", "koizumi2019toyadmos"):
        assert f"{{{key}," in bib, f"references.bib lacks {key}"
