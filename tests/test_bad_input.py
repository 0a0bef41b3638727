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

from asdlib import dcase, evaluate, runfolder, synth
from asdlib.cli import main
from asdlib.profiles import TrainConfig
from asdlib.train import Setup, train

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
    assert not (run / runfolder.RUN_INFO).exists()  # config.json only once the data is read
    clip.write_bytes(good)
    status, out, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out", run, "--quiet")
    assert status == 0, err


def test_another_dataset_in_a_run_folder_is_named_with_its_fingerprint(data, tmp_path, smoke_data):
    config = TrainConfig.from_profile("smoke", num_epochs=1)
    train(config, data, tmp_path / "run", Setup(progress=False))
    other = smoke_data("pump", "valve")
    with pytest.raises(ValueError, match=r"dataset: synthetic data .*\(fingerprint \w+\) vs "
                                         r"synthetic data .*\(fingerprint \w+\)"):
        train(config, other, tmp_path / "run", Setup(progress=False))


def test_damaged_checkpoints_are_named_and_a_damaged_last_resumes_from_best(data, tmp_path, capsys):
    config = TrainConfig.from_profile("smoke", num_epochs=2)
    full = train(config, data, tmp_path / "full", Setup(progress=False))

    def stop(record):
        raise KeyboardInterrupt

    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(config, data, cut, Setup(progress=False), on_epoch_end=stop)
    last = cut / runfolder.LAST
    last.write_bytes(last.read_bytes()[:1000])  # truncated
    with pytest.raises(ValueError, match=f"checkpoint {last} is damaged"):
        runfolder.load_checkpoint(last)
    with pytest.warns(UserWarning, match="last.pt is damaged; resuming from .*best.pt"):
        resumed = train(config, data, cut, Setup(progress=False))
    columns = ["epoch", "train_loss", "val_loss", "val_accuracy", "lr"]
    pd.testing.assert_frame_equal(resumed[columns], full[columns], rtol=1e-5)
    # A truncated best.pt: evaluate names it, on one line
    best = cut / runfolder.BEST
    best.write_bytes(best.read_bytes()[:1000])
    status, _, err = cli(capsys, "evaluate", "--run", cut, "--quiet")
    assert status == 2 and str(best) in err and "damaged" in err and "Traceback" not in err


def test_evaluating_on_other_data_labels_it_so_and_keeps_the_runs_own_results(tmp_path, smoke_data):
    own = smoke_data("pump")
    run = tmp_path / "run"
    train(TrainConfig.from_profile("smoke", num_epochs=1), own, run, Setup(progress=False))
    mine = evaluate.evaluate(run, progress=False)
    before = (run / "metrics.json").read_text()
    other = tmp_path / "other"
    synth.generate(other, profile="smoke", seed=7, types=["pump"], progress=False)
    theirs = evaluate.evaluate(run, other, progress=False)
    assert (run / "metrics.json").read_text() == before  # not overwritten
    assert Path(theirs["out_dir"]) == run / f"eval_ce_{runfolder.dataset_fingerprint(other)['hash']}"
    assert theirs["dataset"] == runfolder.dataset_fingerprint(other) != mine["dataset"]
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
    assert not (tmp_path / "run" / runfolder.RUN_INFO).exists()
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
    while not (run / runfolder.HISTORY).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines() == [
        "python -m asdlib train: interrupted; what was finished is kept, run the same command "
        "again to resume"]
    done = len(pd.read_csv(run / runfolder.HISTORY))
    assert 1 <= done < 40
    # The same command resumes from the last finished epoch
    resumed = subprocess.run(command[:-3] + ["--epochs", "40", "--quiet"], capture_output=True,
                             text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    history = pd.read_csv(run / runfolder.HISTORY)
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


# --- the probes of issue 15 ------------------------------------------------------------------


def _tree(folder: Path) -> dict:
    """Every file under `folder` with its bytes: what a probe must leave as it was."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def evaluated_run(data, tmp_path):
    """A one-epoch run on the private `data`, trained and evaluated."""
    run = tmp_path / "run"
    train(TrainConfig.from_profile("smoke", num_epochs=1), data, run, Setup(progress=False))
    evaluate.evaluate(run, progress=False)
    return run


def _one_line(status, err, *expected):
    assert status == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err


def test_a_copied_and_edited_dataset_is_another_dataset(data, evaluated_run, tmp_path, capsys):
    """Probe 1: the fingerprint follows the clips, not synth_info.json."""
    run, before = evaluated_run, _tree(evaluated_run)
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    assert runfolder.dataset_fingerprint(copy) == runfolder.dataset_fingerprint(data)  # a plain copy
    clip = sorted((copy / "pump" / "test").glob("*.wav"))[0]
    wav, rate = sf.read(clip)
    sf.write(clip, wav * 0.5, rate, subtype="PCM_16")  # same name, same size, other samples
    changed = runfolder.dataset_fingerprint(copy)
    assert changed["kind"] == "dcase" and changed["hash"] != runfolder.dataset_fingerprint(data)["hash"]
    assert "does not describe these clips" in changed["description"]
    status, out, err = cli(capsys, "evaluate", "--run", run, "--data", copy, "--quiet")
    assert status == 0, err
    assert f"eval_ce_{changed['hash']}" in out and "DCASE-layout data at" in out
    # A training ID added to the copy: the same --out is refused, on one line, untouched
    shutil.copy(first_train_clip(copy), copy / "pump" / "train" / "normal_id_01_00000000.wav")
    status, _, err = cli(capsys, "train", "--data", copy, "--profile", "smoke", "--out", run,
                         "--epochs", "1", "--quiet")
    _one_line(status, err, "dataset:", "fingerprint")
    after = _tree(run)
    assert {k: v for k, v in after.items() if not k.startswith("eval_")} == before


def test_the_content_digest_sees_an_edit_in_place_and_real_data_too(data, tmp_path):
    (data / synth.INFO_NAME).unlink()  # now "real" data: named by its content only
    first = runfolder.dataset_fingerprint(data)
    clip = first_train_clip(data)
    raw = bytearray(clip.read_bytes())
    raw[-1] ^= 1  # one bit of the last sample, same size
    clip.write_bytes(bytes(raw))
    stat = clip.stat()
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a later write
    assert runfolder.dataset_fingerprint(data)["hash"] != first["hash"]


@pytest.mark.parametrize("device, expected", [
    ("bogus", "'bogus' is not a device name"),
    ("cuda", "asked for a CUDA GPU"),
    ("cuda:7", "asked for"),
    ("meta", "asdlib trains on cpu, cuda or mps"),
])
def test_a_device_this_machine_lacks_is_refused_before_anything(data, tmp_path, capsys, device,
                                                                 expected):
    """Probe 2: --device is checked where it enters."""
    import torch

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that GPU")
    for command in (["train", "--data", data, "--profile", "smoke", "--out", tmp_path / "run"],
                    ["evaluate", "--run", tmp_path], ["bench", "--seconds", "1"]):
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in command] + ["--device", device])
        _, err = capsys.readouterr()
        _one_line(exit_info.value.code, err, "argument --device", expected)
    assert not (tmp_path / "run").exists()


def _disk_full_on(monkeypatch, *names):
    """Writes (of `Path.write_bytes` / `write_text`) into a file whose name contains one of
    `names` fail as on a full disk."""
    import errno

    for method in ("write_bytes", "write_text"):
        original = getattr(Path, method)

        def failing(self, *args, _original=original, **kwargs):
            if any(name in self.name for name in names):
                raise OSError(errno.ENOSPC, "No space left on device")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Path, method, failing)


def test_a_full_disk_names_the_folder_and_keeps_what_was_finished(data, evaluated_run, tmp_path,
                                                                  capsys, monkeypatch):
    """Probe 3: a full disk while saving a checkpoint, evaluating, or building the clip cache."""
    run = tmp_path / "run2"
    with monkeypatch.context() as patch:
        _disk_full_on(patch, ".last.pt.", ".best.pt.")
        status, _, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out", run,
                             "--quiet")
    _one_line(status, err, f"no space left on the disk of {run}", "best.pt")
    assert sorted(p.name for p in run.iterdir()) == [runfolder.RUN_INFO]  # no temporary file
    status, _, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out", run, "--quiet")
    assert status == 0, err  # space again: the same command trains
    # evaluate --out on a full disk: the folder and the file, not a temporary name
    out = tmp_path / "ev"
    with monkeypatch.context() as patch:
        _disk_full_on(patch, ".scores.csv.")
        status, _, err = cli(capsys, "evaluate", "--run", evaluated_run, "--out", out, "--quiet")
    _one_line(status, err, f"no space left on the disk of {out} while writing scores.csv")
    assert not any(".tmp" in p.name for p in out.rglob("*"))
    # ASDLIB_HOME full while the clip cache is built: named, and nothing left behind
    home = tmp_path / "home"
    monkeypatch.setenv("ASDLIB_HOME", str(home))
    from asdlib import cache
    import errno

    def full(folder, *args, **kwargs):
        (folder / "wavs.npy").write_bytes(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache, "_write_cache", full)
    status, _, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out",
                         tmp_path / "run3", "--quiet")
    _one_line(status, err, f"no space left on the disk of {home / 'cache'}")
    assert not list((home / "cache").glob(".clips-*.partial"))  # probe 7 too


def test_a_real_full_disk_if_this_machine_can_mount_one(data, tmp_path, capsys):
    """Probe 3 on a real 20 MB tmpfs (root with mount rights only): the checkpoint does not fit."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        run = disk / "run"
        status, _, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out", run,
                             "--epochs", "2", "--quiet")
        _one_line(status, err, "no space left on the disk", str(run))
        assert not any(".tmp" in p.name for p in run.iterdir())
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_damaged_or_deleted_best_checkpoint_is_rebuilt_by_training_again(data, tmp_path, capsys):
    """Probe 4: the way out of a damaged best.pt keeps the run (and its numbers)."""
    import torch

    run = tmp_path / "run"
    command = ["train", "--data", data, "--profile", "smoke", "--out", run, "--epochs", "3",
               "--lr", "0.01", "--model", "stgram", "--mode", "arcface", "--quiet"]
    status, _, err = cli(capsys, *command)
    assert status == 0, err
    history = pd.read_csv(run / runfolder.HISTORY)
    best_epoch = int(history.loc[history["val_loss"].idxmin(), "epoch"])
    assert best_epoch < 3, "this probe needs a run whose best epoch is not its last"
    original = runfolder.load_checkpoint(run / runfolder.BEST)
    last = (run / runfolder.LAST).read_bytes()
    best = run / runfolder.BEST
    for damage in ("truncate", "delete"):
        if damage == "truncate":
            best.write_bytes(best.read_bytes()[:1000])
        else:
            best.unlink()
        status, _, err = cli(capsys, "evaluate", "--run", run, "--quiet")
        _one_line(status, err, "best.pt", "run the same `python -m asdlib train` command again",
                  "--checkpoint last")
        status, _, err = cli(capsys, *command)
        assert status == 0 and f"training epochs 1-{best_epoch} again" in err, err
        rebuilt = runfolder.load_checkpoint(best)
        assert rebuilt["epoch"] == best_epoch
        assert all(torch.equal(rebuilt["model"][k], original["model"][k]) for k in original["model"])
        assert (run / runfolder.LAST).read_bytes() == last and not (run / ".rebuild-best").exists()
    status, _, err = cli(capsys, "evaluate", "--run", run, "--quiet")
    assert status == 0, err


@pytest.fixture
def published_copy(tmp_path, monkeypatch):
    """The published runs copied into tmp, where a probe may damage them."""
    from asdlib import experiments

    copy = tmp_path / "published"
    shutil.copytree(experiments.PUBLISHED_DIR, copy)
    monkeypatch.setattr(experiments, "PUBLISHED_DIR", copy)
    return copy


@pytest.mark.parametrize("damage", ["rewritten", "truncated", "extra file"])
def test_a_changed_published_run_is_refused_naming_the_file(published_copy, capsys, damage):
    """Probe 5: the manifest's sha256 sums are checked whenever a published run is read."""
    import gzip

    from asdlib import experiments

    config = experiments.book_runs("book")[0]
    entry = next(e for e in experiments.published_manifest()["runs"]
                 if e["label"] == runfolder.run_label(config) and e["seed"] == config.seed
                 and e["profile"] == config.profile)
    folder = published_copy / entry["hash"]
    scores = folder / "scores.csv.gz"
    if damage == "rewritten":  # a perfect detector: AUC 100
        frame = pd.read_csv(scores)
        frame["score"] = frame["label"].astype(float)
        scores.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    elif damage == "truncated":
        scores.write_bytes(scores.read_bytes()[:500])
    else:
        (folder / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="MANIFEST.json"):
        experiments.load_or_train(config)
    status, _, err = cli(capsys, "table", folder)
    _one_line(status, err, str(folder), "MANIFEST.json")


def test_evaluating_the_last_checkpoint_keeps_the_best_results(evaluated_run, tmp_path, capsys):
    """Probe 6: --checkpoint last writes beside the run's results, and table says which."""
    before = _tree(evaluated_run)
    status, out, err = cli(capsys, "evaluate", "--run", evaluated_run, "--checkpoint", "last",
                           "--quiet")
    assert status == 0 and "eval_ce_last" in out, err
    after = _tree(evaluated_run)
    assert {k: v for k, v in after.items() if not k.startswith("eval_ce_last/")} == before
    assert json_of(evaluated_run / "eval_ce_last" / "metrics.json")["checkpoint"] == "last"
    status, out, _ = cli(capsys, "table", evaluated_run, "--paper", "none")
    assert status == 0 and "best checkpoint" in out and "last checkpoint" not in out
    # Written into the run folder on purpose: the table says it is the last checkpoint
    status, _, err = cli(capsys, "evaluate", "--run", evaluated_run, "--checkpoint", "last",
                         "--out", evaluated_run, "--quiet")
    status, out, _ = cli(capsys, "table", evaluated_run, "--paper", "none")
    assert "(last checkpoint, epoch 1)" in out


def json_of(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


def test_a_clip_cache_build_that_fails_leaves_no_partial_folder(data, tmp_path, capsys, monkeypatch):
    """Probe 7: an unreadable clip stops the cache build, which removes what it wrote."""
    home = tmp_path / "home"
    monkeypatch.setenv("ASDLIB_HOME", str(home))
    clip = sorted((data / "pump" / "train").glob("*.wav"))[-1]
    clip.write_bytes(b"RIFF and nothing else")
    status, _, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out",
                         tmp_path / "run", "--quiet")
    _one_line(status, err, clip.name)
    assert not list((home / "cache").glob(".clips-*.partial")), list((home / "cache").iterdir())


def test_a_diverging_run_stops_at_the_first_non_finite_loss(data, tmp_path, capsys):
    """Probe 8: stopped and said, not epochs of NaN and "all NA values"."""
    from asdlib import loop

    config = TrainConfig.from_profile("smoke", lr=1e30, num_epochs=3, model="stgram",
                                      mode="arcface")
    with pytest.raises(loop.Diverged, match=r"training diverged: the loss of epoch 1, step \d+ is "
                                            r"nan .*learning rate 1e\+30.*--lr"):
        train(config, data, tmp_path / "run", Setup(progress=False))
    assert not (tmp_path / "run" / runfolder.LAST).exists()
    # On the command line such a learning rate is out of range before anything starts
    with pytest.raises(SystemExit):
        main(["train", "--data", str(data), "--profile", "smoke", "--out", str(tmp_path / "r2"),
              "--lr", "1e30"])
    _one_line(2, capsys.readouterr()[1], "--lr", "at most 1")


def test_checking_a_run_that_is_not_published_trains_nothing(tmp_path, capsys, monkeypatch):
    """Probe 9: runs --check refuses before generating data or training."""
    home = tmp_path / "home"
    monkeypatch.setenv("ASDLIB_HOME", str(home))
    status, _, err = cli(capsys, "runs", "--check", "STgram (ArcFace)", "--profile", "smoke")
    _one_line(status, err, "not published", "make runs")
    assert not (home / "data").exists() and not (home / "runs").exists()


@pytest.mark.parametrize("content, expected", [
    ('{"config": {"model": "stgram', "not JSON"),
    ("{}", "it lacks config, data_root, dataset, class_map"),
    ("[1, 2]", "a JSON list"),
    ('{"config": {"lr": -1}, "data_root": "x", "dataset": {}, "class_map": []}', "lr"),
])
def test_a_damaged_run_config_is_named(evaluated_run, data, capsys, content, expected):
    """Probe 10: config.json damaged: its path and what is wrong, for every command."""
    info = evaluated_run / runfolder.RUN_INFO
    info.write_text(content)
    for command in (["evaluate", "--run", evaluated_run, "--quiet"],
                    ["table", evaluated_run],
                    ["train", "--data", data, "--profile", "smoke", "--out", evaluated_run, "--quiet"]):
        status, _, err = cli(capsys, *command)
        _one_line(status, err, str(info), expected)


def test_an_out_folder_that_cannot_hold_a_lock_is_refused_at_once(data, tmp_path):
    """Probe 11: no endless wait on a lock file that can never be made."""
    if not Path("/proc").is_dir():
        pytest.skip("no /proc on this system")
    result = subprocess.run([sys.executable, "-m", "asdlib", "train", "--data", str(data),
                             "--profile", "smoke", "--out", "/proc/asdlib-run", "--quiet"],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    _one_line(result.returncode, result.stderr, "/proc/.asdlib-run.lock", "choose a folder")


def test_a_second_train_says_whom_it_waits_for(data, tmp_path):
    """Probe 12: a busy --out: the waiting process names the holder."""
    from asdlib import store

    run = tmp_path / "run"
    command = [sys.executable, "-m", "asdlib", "train", "--data", str(data), "--profile", "smoke",
               "--out", str(run), "--quiet"]
    with store.hold(run, "a test's run"):
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, OMP_NUM_THREADS="1"))
        line = proc.stderr.readline()
        assert f"waiting for process {os.getpid()} on {socket.gethostname()}" in line, line
        assert "the run tastgram noisy_arcmix" in line
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err


def test_a_file_as_data_root_and_clip_warnings_are_one_line(data, tmp_path):
    """Probe 12: --data <file>; a ClipWarning without a source line of asdlib."""
    result = subprocess.run([sys.executable, "-m", "asdlib", "train", "--data",
                             str(data / synth.INFO_NAME), "--profile", "smoke", "--out",
                             str(tmp_path / "run")], capture_output=True, text=True)
    _one_line(result.returncode, result.stderr, "is a file, not a folder")
    clip = first_train_clip(data)
    wav, rate = sf.read(clip)
    sf.write(clip, wav[: len(wav) // 2], rate, subtype="PCM_16")  # a short clip: padded
    result = subprocess.run([sys.executable, "-m", "asdlib", "train", "--data", str(data),
                             "--profile", "smoke", "--out", str(tmp_path / "run"), "--quiet"],
                            capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "zero-padded" in line]
    assert warning and warning[0].startswith("python -m asdlib train: warning: 1 clip(s) were shorter")
    assert "warnings.warn" not in result.stderr and "asdlib/" not in result.stderr.replace(str(data), "")


#: (command, option, value, what the error says): every numeric option at and past its range.
OUT_OF_RANGE = [
    ("train", "--seed", "-1", "from 0 to 4294967295"),
    ("train", "--seed", str(2**32), "from 0 to 4294967295"),
    ("train", "--epochs", "0", "at least 1"),
    ("train", "--batch-size", "1", "at least 2"),
    ("train", "--patience", "0", "at least 1"),
    ("train", "--lr", "0", "must be positive"),
    ("train", "--lr", "nan", "must be positive"),
    ("train", "--lr", "1.5", "at most 1"),
    ("train", "--seconds", "0", "must be positive"),
    ("train", "--seconds", "61", "at most 60"),
    ("train", "--workers", "-1", "from 0 to"),
    ("train", "--workers", "100000", "from 0 to"),
    ("synth", "--seconds", "1e9", "at most 60"),
    ("synth", "--workers", "0", "from 1 to"),
    ("synth", "--seed", "-3", "from 0 to"),
    ("evaluate", "--batch-size", "0", "from 1 to 4096"),
    ("bench", "--threads", "0", "from 1 to"),
    ("runs", "--jobs", "0", "from 1 to"),
]


@pytest.mark.parametrize("command, option, value, expected", OUT_OF_RANGE,
                         ids=[f"{c} {o} {v}" for c, o, v, _ in OUT_OF_RANGE])
def test_numeric_options_out_of_range_are_refused_before_anything(data, tmp_path, capsys, command,
                                                                  option, value, expected):
    required = {"train": ["--data", data, "--profile", "smoke", "--out", tmp_path / "out"],
                "synth": ["--out", tmp_path / "out"], "evaluate": ["--run", tmp_path],
                "bench": [], "runs": []}[command]
    with pytest.raises(SystemExit) as exit_info:
        main([command, *map(str, required), option, value])
    _one_line(exit_info.value.code, capsys.readouterr()[1], f"argument {option}", expected)
    assert not (tmp_path / "out").exists()


def test_the_largest_and_smallest_valid_values_are_taken(data, tmp_path, capsys):
    """The boundaries themselves are valid: a seed of 2**32 - 1, batch 2, 60 s clips."""
    status, _, err = cli(capsys, "train", "--data", data, "--profile", "smoke", "--out",
                         tmp_path / "run", "--seed", str(2**32 - 1), "--batch-size", "2",
                         "--epochs", "1", "--quiet")
    assert status == 0, err
    from asdlib import cli as command_line, layout

    assert layout.num_samples(60) == 60 * 16000 and command_line.seconds_float("60") == 60
    assert command_line.learning_rate("1") == 1.0 and command_line.workers_int("0") == 0


@pytest.mark.parametrize("command", ["runs", "curve"])
def test_the_gpu_route_without_a_gpu_is_refused_in_one_line(command, tmp_path):
    """`make runs-gpu` / `make curve-gpu` on a machine without CUDA: refused before any data."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = subprocess.run([sys.executable, "-m", "asdlib", command, "--gpu", "--quiet"],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, ASDLIB_HOME=str(tmp_path / "home")))
    _one_line(result.returncode, result.stderr, f"python -m asdlib {command}: error: --gpu: ",
              "no CUDA GPU (available: cpu", "leave out --gpu")
    assert not (tmp_path / "home").exists()  # nothing generated
