"""Bad input, tried as a hostile user would: each probe of the review that once failed.

Every case must end in one clear line naming the file or option and what was expected (exit
status 2 on the command line), and lose nothing that was computed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from asdlib import checkpoints, dcase, evaluate, synth
from asdlib.cli import main
from asdlib.profiles import TrainConfig
from asdlib.train import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parents[1]


def cli(capsys, *args):
    """`python -m asdlib ARGS` in this process: (exit status, stdout, stderr)."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def data(tmp_path, smoke_data):
    """A private copy of smoke data (two machine types) that a test may damage."""
    root = tmp_path / "data"
    shutil.copytree(smoke_data("pump"), root)
    return root


def first_train_clip(root: Path) -> Path:
    return sorted((root / "pump" / "train").glob("*.wav"))[0]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_float_wav_with_nan_or_inf_is_refused_naming_the_file(data, tmp_path, capsys, bad):
    clip = first_train_clip(data)
    wav, rate = sf.read(clip, dtype="float32")
    wav[100] = bad
    sf.write(clip, wav, rate, subtype="FLOAT")
    status, _, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out",
                         tmp_path / "run", "--quiet")
    assert status == 2 and clip.name in err and "NaN or infinite" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_anomalous_clip_in_train_is_refused(data, tmp_path, capsys):
    stray = data / "pump" / "train" / "anomaly_id_00_00000099.wav"
    shutil.copy(first_train_clip(data), stray)
    status, _, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out",
                         tmp_path / "run", "--quiet")
    assert status == 2 and stray.name in err and "normal clips only" in err
    with pytest.raises(ValueError, match="anomaly_id_00_00000099.wav"):
        dcase.build_index(data)


def test_a_start_that_failed_leaves_nothing_and_the_fixed_data_trains(data, tmp_path, capsys):
    clip = first_train_clip(data)
    good = clip.read_bytes()
    clip.write_bytes(b"not a wav file")
    run = tmp_path / "run"
    status, _, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out", run, "--quiet")
    assert status == 2 and clip.name in err
    assert not (run / checkpoints.RUN_INFO).exists()  # config.json only once the data is read
    clip.write_bytes(good)
    status, out, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out", run, "--quiet")
    assert status == 0, err


def test_another_dataset_in_a_run_folder_is_named_with_its_fingerprint(data, tmp_path, smoke_data):
    config = TrainConfig.from_profile("smoke", num_epochs=1)
    train(config, data, tmp_path / "run", progress=False)
    other = smoke_data("pump", "valve")
    with pytest.raises(ValueError, match=r"dataset: synthetic data .*\(fingerprint \w+\) vs "
                                         r"synthetic data .*\(fingerprint \w+\)"):
        train(config, other, tmp_path / "run", progress=False)


def test_damaged_checkpoints_are_named_and_a_damaged_last_resumes_from_best(data, tmp_path, capsys):
    config = TrainConfig.from_profile("smoke", num_epochs=2)
    full = train(config, data, tmp_path / "full", progress=False)

    def stop(record):
        raise KeyboardInterrupt

    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(config, data, cut, progress=False, on_epoch_end=stop)
    last = cut / checkpoints.LAST
    last.write_bytes(last.read_bytes()[:1000])  # truncated
    with pytest.raises(ValueError, match=f"checkpoint {last} is damaged"):
        checkpoints.load_checkpoint(last)
    with pytest.warns(UserWarning, match="last.pt is damaged; resuming from .*best.pt"):
        resumed = train(config, data, cut, progress=False)
    columns = ["epoch", "train_loss", "val_loss", "val_accuracy", "lr"]
    pd.testing.assert_frame_equal(resumed[columns], full[columns], rtol=1e-5)
    # A truncated best.pt: evaluate names it, on one line
    best = cut / checkpoints.BEST
    best.write_bytes(best.read_bytes()[:1000])
    status, _, err = cli(capsys, "evaluate", "--run", cut, "--quiet")
    assert status == 2 and str(best) in err and "damaged" in err and "Traceback" not in err


def test_evaluating_on_other_data_labels_it_so_and_keeps_the_runs_own_results(tmp_path, smoke_data):
    own = smoke_data("pump")
    run = tmp_path / "run"
    train(TrainConfig.from_profile("smoke", num_epochs=1), own, run, progress=False)
    mine = evaluate.evaluate(run, progress=False)
    before = (run / "metrics.json").read_text()
    other = tmp_path / "other"
    synth.generate(other, profile="smoke", seed=7, types=["pump"], progress=False)
    theirs = evaluate.evaluate(run, other, progress=False)
    assert (run / "metrics.json").read_text() == before  # not overwritten
    assert Path(theirs["out_dir"]) == run / f"eval_ce_{dcase.dataset_fingerprint(other)['hash']}"
    assert theirs["dataset"] == dcase.dataset_fingerprint(other) != mine["dataset"]
    assert theirs["own_data"] is False and mine["own_data"] is True


def test_a_folder_that_cannot_be_written_is_one_line(data, tmp_path, capsys, monkeypatch):
    """As root, permissions do not stop a write, so the folders lie under a regular file."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    status, _, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out",
                         blocker / "run", "--quiet")
    assert status == 2 and "cannot use" in err and "a_file" in err and "Traceback" not in err
    monkeypatch.setenv("ASDLIB_HOME", str(blocker / "home"))
    status, _, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out",
                         tmp_path / "run", "--quiet")
    assert status == 2 and "cannot use" in err and "a_file" in err
    assert not (tmp_path / "run" / checkpoints.RUN_INFO).exists()
    if os.geteuid() != 0:  # a real read-only folder where permissions apply
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        monkeypatch.delenv("ASDLIB_HOME")
        status, _, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out",
                             locked / "run", "--quiet")
        assert status == 2 and "Permission denied" in err


def test_clips_shorter_than_the_analysis_window_are_refused(data, tmp_path, capsys):
    status, _, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out",
                         tmp_path / "run", "--seconds", "0.01", "--quiet")
    assert status == 2 and err.count("\n") == 1
    assert "--seconds: 0.01 s is 160 samples, shorter than one analysis window (2048 samples" in err


def test_ctrl_c_prints_one_line_exits_130_and_the_same_command_resumes(tmp_path, smoke_data):
    data = smoke_data("pump")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "asdlib", "train", "--data", str(data), "--profile", "smoke",
               "--out", str(run), "--epochs", "40", "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # A suite started in the background (`make test &`) inherits an ignored SIGINT, and Python
    # then never raises KeyboardInterrupt: give the trainer the default disposition, as a terminal would.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not (run / checkpoints.HISTORY).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines() == [
        "python -m asdlib train: interrupted; what was finished is kept, run the same command "
        "again to resume"]
    done = len(pd.read_csv(run / checkpoints.HISTORY))
    assert 1 <= done < 40
    # The same command resumes from the last finished epoch
    resumed = subprocess.run(command[:-3] + ["--epochs", "40", "--quiet"], capture_output=True,
                             text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    history = pd.read_csv(run / checkpoints.HISTORY)
    assert history["epoch"].tolist() == list(range(1, 41))


def test_download_without_a_network_says_what_to_do(tmp_path, capsys):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status, _, err = cli(capsys, "download", "--dest", tmp_path / "d", "--types", "fan",
                         "--base-url", f"http://127.0.0.1:{port}", "--quiet")
    assert status == 2 and err.count("\n") == 1
    assert "nothing was downloaded" in err and "run the same download again" in err
    assert "bytes are kept" not in err and "download()" not in err
