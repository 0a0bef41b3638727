"""asdlib.train: every mode trains, resume equals an uninterrupted run, runfolder, errors."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from asdlib import loop, profiles
from asdlib.runfolder import load_checkpoint, load_model, read_run_info
from asdlib.losses import MODES
from asdlib.profiles import TrainConfig
from asdlib.train import Setup, train, validation_split


# Train on one torch thread (see conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fan_data(smoke_data):
    """Smoke-profile synthetic data of one machine type: 4 IDs x 6 training clips of 1 s."""
    return smoke_data("fan")


def smoke_config(**overrides) -> TrainConfig:
    return TrainConfig.from_profile("smoke", **overrides)


@pytest.mark.parametrize("model, mode", [("tastgram", m) for m in MODES] + [("stgram", "arcface")])
def test_every_mode_trains_one_epoch_with_a_finite_loss(fan_data, tmp_path, model, mode):
    history = train(smoke_config(model=model, mode=mode, num_epochs=1), fan_data, tmp_path / "run",
                    Setup(progress=False))
    assert list(history.columns) == ["epoch", "train_loss", "val_loss", "val_accuracy", "lr",
                                     "seconds", "best"]
    row = history.iloc[0]
    assert math.isfinite(row["train_loss"]) and row["train_loss"] > 0
    assert math.isfinite(row["val_loss"]) and 0.0 <= row["val_accuracy"] <= 1.0
    assert row["lr"] == pytest.approx(smoke_config().lr)
    # The checkpoints carry the config and load back into the same network
    checkpoint = load_checkpoint(tmp_path / "run" / "last.pt")
    assert checkpoint["config"]["mode"] == mode and checkpoint["epoch"] == 1
    net = load_model(tmp_path / "run")
    assert net.config["model"] == model and not net.training
    assert net.arcface.weight.shape[0] == 4  # the four fan IDs of the development set


def test_compiled_training_gives_the_same_numbers_and_checkpoint_names(fan_data, tmp_path,
                                                                      monkeypatch):
    """torch.compile changes speed, not maths: the same step losses up to rounding (the first
    step, from the same weights, to 1e-4; rounding then grows with every update), the same
    state-dict keys. Compiling takes about a minute on the CPU; that is the price of this test.
    """
    steps, original = [], loop.train_step

    def recording(*args, **kwargs):
        loss = original(*args, **kwargs)
        steps.append(float(loss))
        return loss

    monkeypatch.setattr(loop, "train_step", recording)
    config = smoke_config(mode="noisy_arcmix", num_epochs=1)
    train(config, fan_data, tmp_path / "eager", Setup(progress=False))
    eager, steps[:] = list(steps), []
    train(config, fan_data, tmp_path / "compiled", Setup(progress=False, compile_model=True))
    assert len(steps) == len(eager) >= 2
    assert steps[0] == pytest.approx(eager[0], rel=1e-4)
    assert steps == pytest.approx(eager, rel=0.02)
    keys = set(load_checkpoint(tmp_path / "compiled" / "best.pt")["model"])
    assert keys == set(load_checkpoint(tmp_path / "eager" / "best.pt")["model"])
    assert not any("_orig_mod" in key for key in keys)


def test_resume_after_an_interruption_equals_an_uninterrupted_run(fan_data, tmp_path):
    config = smoke_config(mode="noisy_arcmix", num_epochs=2)
    full = train(config, fan_data, tmp_path / "full", Setup(progress=False))
    # CosineAnnealingLR from lr to min_lr_ratio * lr over num_epochs, stepped per epoch
    expected = [config.min_lr_ratio * config.lr + (1 - config.min_lr_ratio) * config.lr
                * (1 + math.cos(math.pi * e / config.num_epochs)) / 2 for e in range(2)]
    assert full["lr"].tolist() == pytest.approx(expected)
    # best.pt holds the epoch of the lowest validation loss; history.csv every epoch
    best = load_checkpoint(tmp_path / "full" / "best.pt")
    assert best["epoch"] == int(full.loc[full["val_loss"].idxmin(), "epoch"])
    assert pd.read_csv(tmp_path / "full" / "history.csv")["epoch"].tolist() == [1, 2]
    # No temporary file is left behind by the atomic writes
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == [
        "best.pt", "config.json", "history.csv", "last.pt"]

    def stop_after_first_epoch(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, fan_data, tmp_path / "cut", Setup(progress=False), on_epoch_end=stop_after_first_epoch)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 1
    resumed = train(config, fan_data, tmp_path / "cut", Setup(progress=False))

    columns = ["epoch", "train_loss", "val_loss", "val_accuracy", "lr", "best"]
    pd.testing.assert_frame_equal(resumed[columns], full[columns], check_exact=False, rtol=1e-5)
    full_state = load_checkpoint(tmp_path / "full" / "last.pt")
    cut_state = load_checkpoint(tmp_path / "cut" / "last.pt")
    for name, tensor in full_state["model"].items():
        torch.testing.assert_close(cut_state["model"][name], tensor, rtol=1e-5, atol=1e-6,
                                   msg=lambda m, name=name: f"{name}: {m}")
    # A finished run returns its history at once
    again = train(config, fan_data, tmp_path / "cut", Setup(progress=False))
    assert again["epoch"].tolist() == [1, 2]


def test_a_run_folder_of_another_config_is_refused(fan_data, tmp_path):
    config = smoke_config(num_epochs=1)
    train(config, fan_data, tmp_path / "run", Setup(progress=False))
    other = smoke_config(num_epochs=1, lr=0.5, mode="arcmix")
    with pytest.raises(ValueError, match=r"different config.*lr: 0\.001 vs 0\.5.*mode"):
        train(other, fan_data, tmp_path / "run", Setup(progress=False))
    with pytest.raises(ValueError, match=r"lr: 0\.001 vs 0\.5"):
        load_checkpoint(tmp_path / "run" / "last.pt", other)
    info = read_run_info(tmp_path / "run")
    assert info["config"] == config.to_dict()
    assert info["dataset"]["kind"] == "synthetic" and "profile smoke" in info["dataset"]["description"]


def test_bad_inputs_give_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"mode: unknown mode 'arcfce'"):
        smoke_config(mode="arcfce")
    with pytest.raises(ValueError, match=r"model: unknown model 'resnet'.*tastgram"):
        smoke_config(model="resnet")
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        smoke_config(epochs=3)
    with pytest.raises(FileNotFoundError, match="data root .*nowhere does not exist"):
        train(smoke_config(), tmp_path / "nowhere", tmp_path / "run", Setup(progress=False))
    with pytest.raises(FileNotFoundError, match="has no checkpoint best.pt"):
        (tmp_path / "empty").mkdir()
        load_model(tmp_path / "empty")


def test_validation_split_is_seeded_and_disjoint():
    train_a, val_a = validation_split(100, 0.05, seed=3)
    train_b, val_b = validation_split(100, 0.05, seed=3)
    _, val_c = validation_split(100, 0.05, seed=4)
    assert val_a.tolist() == val_b.tolist() and val_a.tolist() != val_c.tolist()
    assert len(val_a) == 5 and len(train_a) == 95
    assert set(train_a) | set(val_a) == set(range(100)) and not set(train_a) & set(val_a)


def test_profiles_give_configs_and_the_paper_profile_is_the_recipe():
    paper = TrainConfig.from_profile("paper")
    assert (paper.num_epochs, paper.batch_size, paper.lr, paper.min_lr_ratio, paper.seed) == (
        300, 64, 1e-4, 0.1, 2023)
    # the seed rule: a single run uses the profile's first seed
    assert TrainConfig.from_profile("book").seed == 0 == profiles.get_profile("book").seeds[0]
    assert paper == TrainConfig()  # the defaults are the authors' recipe
    book = TrainConfig.from_profile("book", seed=1)
    assert book.profile == "book" and book.seed == 1 and book.seconds == 2.0
    assert "profile=book" in book.summary()
