"""Profiles, the runtime report, the layout constants and the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from asdlib import layout, profiles, runtime


def test_default_profile_is_book(monkeypatch):
    monkeypatch.delenv("ASDLIB_PROFILE", raising=False)
    assert profiles.get_profile().name == "book"


def test_environment_variable_selects_the_profile(monkeypatch):
    monkeypatch.setenv("ASDLIB_PROFILE", "smoke")
    assert profiles.get_profile().name == "smoke"
    # An explicit argument wins over the environment.
    assert profiles.get_profile("paper").name == "paper"


def test_unknown_profile_names_the_source_and_the_choices(monkeypatch):
    monkeypatch.setenv("ASDLIB_PROFILE", "fast")
    with pytest.raises(ValueError, match=r"'fast'.*ASDLIB_PROFILE.*\['book', 'evidence', 'paper', 'smoke'\]"):
        profiles.get_profile()
    with pytest.raises(ValueError, match="argument 'profile'"):
        profiles.get_profile("huge")


def test_paper_profile_is_the_authors_recipe():
    paper = profiles.get_profile("paper")
    assert (paper.seconds, paper.n_fft, paper.hop_length, paper.n_mels) == (10.0, 2048, 512, 128)
    assert (paper.num_epochs, paper.batch_size, paper.lr, paper.min_lr_ratio) == (300, 64, 1e-4, 0.1)
    assert (paper.alpha, paper.margin, paper.scale, paper.val_fraction) == (0.5, 0.7, 30.0, 0.05)
    assert paper.seeds == (2023,) and paper.ids == "all"


def test_setup_report_names_profile_and_home(monkeypatch, tmp_path):
    monkeypatch.setenv("ASDLIB_HOME", str(tmp_path))
    text = profiles.describe("smoke")
    assert "profile=smoke" in text and str(tmp_path) in text and "device=" in text
    assert runtime.home() == tmp_path.resolve()


def test_runtime_imports_no_network():
    """`asdlib.runtime` is used everywhere (home folder, device, file writes): importing it
    must not pull in the networks (asdlib.models) or any other asdlib module."""
    code = ("import sys, asdlib.runtime; "
            "print(*sorted(m for m in sys.modules if m.startswith('asdlib.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    loaded = result.stdout.split()
    assert "asdlib.models" not in loaded and loaded == ["asdlib.runtime"], loaded


def test_progress_bar_shows_unless_hidden_or_tqdm_disable(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not runtime.progress_bar(range(3)).disable
    assert runtime.progress_bar(range(3), show=False).disable
    for value, hidden in (("1", True), ("True", True), ("0", False), ("", False)):
        monkeypatch.setenv("TQDM_DISABLE", value)
        bar = runtime.progress_bar(range(3), desc="x")
        assert bar.disable is hidden, value
        assert list(bar) == [0, 1, 2]


def test_progress_bar_without_ipywidgets_warns_nothing():
    """tqdm.auto's "IProgress not found" warning must not reach a chapter's output."""
    code = ("import sys, warnings; sys.modules['ipywidgets'] = None; "
            "warnings.simplefilter('error'); "
            "from asdlib import runtime; list(runtime.progress_bar(range(2), show=False)); "
            "import tqdm.auto")  # as umap-learn does, after the setup cell imported asdlib
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_layout_has_41_classes_in_the_authors_order():
    classes = layout.reference_class_map()
    assert len(classes) == 41
    assert classes[("fan", "id_00")] == 0
    assert classes[("ToyCar", "id_01")] == 21  # 3 types x 7 IDs before it
    assert classes[("valve", "id_06")] == 40
    assert sum(len(v) for v in layout.DEV_IDS.values()) == 23


def test_file_names_round_trip():
    name = layout.clip_filename("anomaly", "id_02", 7)
    assert name == "anomaly_id_02_00000007.wav"
    assert layout.parse_filename(name) == ("anomaly", "id_02", 7)
    assert layout.parse_filename("id_02_00000007.wav") is None
    with pytest.raises(ValueError, match="label"):
        layout.clip_filename("broken", "id_02", 7)


def test_cli_help_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "asdlib", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "synth" in result.stdout


def test_torch_threads_sets_the_count_for_a_block_and_restores_it():
    import torch

    before = torch.get_num_threads()
    with runtime.torch_threads(1):
        assert torch.get_num_threads() == 1
        with pytest.raises(RuntimeError):
            with runtime.torch_threads(2):
                assert torch.get_num_threads() == 2
                raise RuntimeError("a failed run")
        assert torch.get_num_threads() == 1
        with runtime.torch_threads(None):
            assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
