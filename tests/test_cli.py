"""The command line: the fresh-clone example, --help of every command, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from asdlib.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]


# Train on one torch thread (see conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def asdlib(*args, cwd=None):
    """Run `python -m asdlib ARGS` in a subprocess (one torch thread); the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "asdlib", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"),
                          timeout=600)


def test_the_readme_example_synth_train_evaluate_table(tmp_path):
    data, run = tmp_path / "s", tmp_path / "r"
    result = asdlib("synth", "--profile", "smoke", "--out", data, "--quiet")
    assert result.returncode == 0, result.stderr
    result = asdlib("train", "--data", data, "--profile", "smoke", "--out", run, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "profile=smoke" in result.stdout and "val accuracy" in result.stdout
    result = asdlib("evaluate", "--run", run, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Average" in result.stdout and "synthetic data" in result.stdout
    assert (run / "metrics.json").is_file() and (run / "dcase" / "anomaly_score_fan_id_00.csv").is_file()
    result = asdlib("table", run)
    assert result.returncode == 0, result.stderr
    assert "TASTgram (NAMix) seed 0 [ours, 1]" in result.stdout  # the profile's first seed
    assert "TASTgram (NAMix) [paper]" in result.stdout and "real DCASE 2020" in result.stdout
    # The run folder without a data root given: the data moved away is a clear error
    result = asdlib("evaluate", "--run", run, "--data", tmp_path / "gone", "--quiet")
    assert result.returncode != 0 and "--data" in result.stderr and "gone" in result.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: python -m asdlib " + command in capsys.readouterr().out


def run_main(capsys, *args):
    """`python -m asdlib ARGS` in this process: (exit status, stdout, stderr)."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as exit_info:
        code = exit_info.code
        status = code if isinstance(code, int) else 1
        if isinstance(code, str):  # SystemExit("message") prints the message on stderr
            print(code, file=sys.stderr)
    out, err = capsys.readouterr()
    return status, out, err


def test_errors_name_the_argument(tmp_path, capsys):
    # Unknown mode / model: argparse names the option and the choices
    status, _, err = run_main(capsys, "train", "--data", tmp_path, "--out", tmp_path / "r",
                              "--mode", "arcfce")
    assert status == 2 and "--mode" in err and "noisy_arcmix" in err
    status, _, err = run_main(capsys, "train", "--data", tmp_path, "--out", tmp_path / "r",
                              "--model", "resnet")
    assert status == 2 and "--model" in err
    # Missing data root
    status, _, err = run_main(capsys, "train", "--data", tmp_path / "nowhere", "--out", tmp_path / "r")
    assert status != 0 and "--data" in err and "nowhere" in err
    # A data root that is not in the DCASE layout
    (tmp_path / "empty").mkdir()
    status, _, err = run_main(capsys, "train", "--data", tmp_path / "empty", "--out", tmp_path / "r",
                              "--quiet")
    assert status != 0 and "no DCASE wav clip" in err
    # Run folders: missing, and one that is not a run (no config.json, no checkpoint)
    status, _, err = run_main(capsys, "evaluate", "--run", tmp_path / "no_run")
    assert status != 0 and "--run" in err and "does not exist" in err
    (tmp_path / "not_a_run").mkdir()
    status, _, err = run_main(capsys, "evaluate", "--run", tmp_path / "not_a_run")
    assert status != 0 and "config.json" in err
    status, _, err = run_main(capsys, "table", tmp_path / "not_a_run")
    assert status != 0 and "RUN" in err
    status, _, err = run_main(capsys, "download", "--dest", tmp_path / "d", "--subsets", "dev,extra")
    assert status != 0 and "--subsets" in err and "extra" in err


def test_train_refuses_a_run_folder_of_another_config(tmp_path, capsys, smoke_data):
    data = smoke_data("pump")
    run = tmp_path / "run"
    status, out, err = run_main(capsys, "train", "--data", data, "--profile", "smoke", "--out", run,
                                "--quiet")
    assert status == 0, err
    status, _, err = run_main(capsys, "train", "--data", data, "--profile", "smoke", "--out", run,
                              "--lr", "0.5", "--quiet")
    assert status != 0 and "lr: 0.001 vs 0.5" in err
    # A run folder whose checkpoints are gone
    (run / "best.pt").unlink()
    (run / "last.pt").unlink()
    status, _, err = run_main(capsys, "evaluate", "--run", run, "--quiet")
    assert status != 0 and "no checkpoint best.pt" in err


def test_bench_prints_figures_with_their_conditions(capsys):
    status, out, _ = run_main(capsys, "bench", "--seconds", "0.5", "--batch-sizes", "1", "2",
                              "--repeats", "1", "--warmup", "0")
    assert status == 0
    assert "threads=" in out and "load average" in out and "set-up: ours" in out
    lines = [line.split() for line in out.splitlines() if line.strip().startswith("0.5s")]
    assert [line[1] for line in lines] == ["1", "2"]
    assert lines[0][2] == "-" and float(lines[1][2]) > 0  # a batch of one cannot train


def test_a_full_disk_is_recognised_by_its_exception_not_its_message(tmp_path, monkeypatch):
    """asdlib's writes raise `runtime.DiskFull` (its message names the folder and the file);
    the command line prints that message as it is, and words any other ENOSPC itself."""
    import errno

    from asdlib import cli, runtime

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(runtime.DiskFull) as caught:
        runtime.write_text_atomic("x", tmp_path / "metrics.json")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "metrics.json")
    assert not list(tmp_path.iterdir())  # no temporary file left
    parser = build_parser()
    assert cli._message(caught.value, parser) == (
        f"no space left on the disk of {tmp_path} while writing metrics.json: free some space or "
        "choose another folder, then run the same command again (what was finished is kept)")
    # An ENOSPC from elsewhere, whatever its wording, gets the command line's own message
    other = OSError(errno.ENOSPC, "no space left on the moon", str(tmp_path / "x"))
    assert cli._message(other, parser).startswith(f"no space left on the disk ({tmp_path / 'x'}): "
                                                  "free some space")
    # Other write errors are not a full disk
    denied = runtime.write_error(OSError(errno.EACCES, "Permission denied"), tmp_path / "y")
    assert not isinstance(denied, runtime.DiskFull) and denied.filename == str(tmp_path / "y")
