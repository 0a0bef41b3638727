"""Tests of asdlib.baseline: the DCASE 2020 autoencoder baseline (chapter 2)."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from asdlib import baseline, metrics
from asdlib.baseline import (
    DCASEAutoencoder,
    auc_by_anomaly_kind,
    baseline_logmel,
    frame_windows,
    reconstruction_errors,
    run_baseline,
    score_clips,
    train_autoencoder,
    train_step,
)
from asdlib.profiles import get_profile


def random_logmel(batch=3, n_mels=128, frames=20, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return -20 + 7 * torch.randn(batch, n_mels, frames, generator=generator)


# ------------------------------------------------------------------------------------------
# Frame windows
# ------------------------------------------------------------------------------------------


def test_frame_windows_shape_and_layout():
    logmel = random_logmel(batch=2, n_mels=6, frames=9)
    windows = frame_windows(logmel, frames=5)
    # 9 - 5 + 1 = 5 windows of 5 * 6 values
    assert windows.shape == (2, 5, 30)
    for b in range(2):
        for w in range(5):
            for t in range(5):
                for m in range(6):
                    assert windows[b, w, t * 6 + m] == logmel[b, m, w + t]


def test_frame_windows_equals_concatenated_frames():
    logmel = random_logmel(batch=1, n_mels=128, frames=63)[0]
    windows = frame_windows(logmel)
    # one clip: [windows, 640]
    assert windows.shape == (59, 640)
    expected = torch.stack([logmel[:, w:w + 5].t().reshape(-1) for w in range(59)])
    torch.testing.assert_close(windows, expected)


def test_frame_windows_of_a_two_second_clip():
    wav = 0.01 * torch.randn(2, 32000, generator=torch.Generator().manual_seed(0))
    logmel = baseline_logmel()(wav)
    # hop 512: 32000 // 512 + 1 = 63 frames -> 59 windows of 640
    assert logmel.shape == (2, 128, 63)
    assert frame_windows(logmel).shape == (2, 59, 640)


@pytest.mark.parametrize(
    "logmel, frames, match",
    [
        (torch.zeros(640), 5, "logmel must be"),
        (torch.zeros(1, 2, 128, 10), 5, "logmel must be"),
        (torch.zeros(1, 128, 4), 5, "frames=5"),
        (torch.zeros(1, 128, 10), 0, "frames must be"),
        (torch.zeros(1, 128, 10), 2.5, "frames must be"),
    ],
)
def test_frame_windows_bad_input_names_the_argument(logmel, frames, match):
    with pytest.raises(ValueError, match=match):
        frame_windows(logmel, frames)


def test_frame_windows_needs_a_tensor():
    with pytest.raises(TypeError, match="logmel must be a torch.Tensor"):
        frame_windows(np.zeros((1, 128, 10)))


# ------------------------------------------------------------------------------------------
# The autoencoder
# ------------------------------------------------------------------------------------------


def test_autoencoder_layers_follow_the_baseline():
    model = DCASEAutoencoder()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    widths = [(m.in_features, m.out_features) for m in linears]
    assert widths == [(640, 128), (128, 128), (128, 128), (128, 128), (128, 8),
                      (8, 128), (128, 128), (128, 128), (128, 128), (128, 640)]
    # BatchNorm + ReLU after every layer but the last
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.modules()) == 9
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 9
    assert isinstance(model.decoder[-1], nn.Linear)


@pytest.mark.parametrize("shape", [(7, 640), (3, 59, 640), (2, 2, 4, 640)])
def test_autoencoder_keeps_the_shape(shape):
    model = DCASEAutoencoder().eval()
    x = torch.randn(*shape)
    assert model(x).shape == shape
    assert reconstruction_errors(model, x).shape == shape[:-1]


def test_autoencoder_on_windows_equals_autoencoder_on_flat_vectors():
    model = DCASEAutoencoder().eval()
    x = torch.randn(3, 10, 640)
    torch.testing.assert_close(model(x), model(x.reshape(30, 640)).reshape(3, 10, 640))


def test_autoencoder_bad_input_names_the_argument():
    model = DCASEAutoencoder()
    with pytest.raises(ValueError, match=r"x must be \[\.\.\., 640\]"):
        model(torch.randn(4, 128))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        model([1.0] * 640)
    with pytest.raises(ValueError, match="bottleneck_dim must be a positive int"):
        DCASEAutoencoder(bottleneck_dim=0)


def test_a_training_step_lowers_the_loss():
    torch.manual_seed(0)
    model = DCASEAutoencoder()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = torch.randn(64, 640)
    model.train()
    with torch.no_grad():
        before = reconstruction_errors(model, batch).mean().item()
    reported = train_step(model, optimizer, batch)
    with torch.no_grad():
        after = reconstruction_errors(model, batch).mean().item()
    assert reported == pytest.approx(before, rel=1e-5)
    assert after < before


def test_train_autoencoder_learns_and_leaves_global_state_alone(monkeypatch):
    monkeypatch.setattr(baseline, "BATCH_SIZE", 128)
    windows = -20 + 7 * torch.randn(600, 640, generator=torch.Generator().manual_seed(1))
    state = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    model, losses = train_autoencoder(windows, num_epochs=4, seed=3, progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert not model.training
    # The same seed gives the same model
    again, losses_again = train_autoencoder(windows, num_epochs=4, seed=3, progress=False)
    assert losses == losses_again
    torch.testing.assert_close(model(windows[:5]), again(windows[:5]))


def test_train_autoencoder_starts_from_the_mean_window(monkeypatch):
    monkeypatch.setattr(baseline, "BATCH_SIZE", 50)
    monkeypatch.setattr(baseline, "LR", 1e-12)
    windows = -20 + torch.randn(100, 640, generator=torch.Generator().manual_seed(1))
    model, _ = train_autoencoder(windows, num_epochs=1, progress=False)
    torch.testing.assert_close(model.decoder[-1].bias.detach(), windows.mean(dim=0),
                               atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(windows=torch.zeros(3, 59, 640)), "windows must be"),
        (dict(windows=torch.zeros(1, 640)), "windows must be"),
        (dict(num_epochs=0), "num_epochs must be"),
        (dict(num_epochs=1.5), "num_epochs must be"),
    ],
)
def test_train_autoencoder_bad_input_names_the_argument(kwargs, match):
    arguments = dict(windows=torch.zeros(10, 640), num_epochs=1, progress=False)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        train_autoencoder(**arguments)


def test_train_autoencoder_rejects_nan():
    windows = torch.zeros(10, 640)
    windows[3, 7] = float("nan")
    with pytest.raises(ValueError, match="windows contains NaN"):
        train_autoencoder(windows, num_epochs=1, progress=False)


# ------------------------------------------------------------------------------------------
# Scoring
# ------------------------------------------------------------------------------------------


def test_score_of_a_clip_is_its_mean_window_error():
    torch.manual_seed(0)
    model = DCASEAutoencoder()
    # Non-trivial BatchNorm statistics
    model.train()
    with torch.no_grad():
        model(torch.randn(256, 640) * 3)
    windows = torch.randn(4, 11, 640)
    scores = score_clips(model, windows, batch_size=3)
    assert scores.shape == (4,)
    model.eval()
    with torch.no_grad():
        for clip in range(4):
            errors = [((windows[clip, w] - model(windows[clip, w][None])[0]) ** 2).mean()
                      for w in range(11)]
            torch.testing.assert_close(scores[clip], torch.stack(errors).mean())


def test_score_clips_bad_input_names_the_argument():
    model = DCASEAutoencoder()
    with pytest.raises(ValueError, match=r"windows must be \[clips, windows, input_dim\]"):
        score_clips(model, torch.zeros(5, 640))
    with pytest.raises(TypeError, match="windows must be floating point"):
        score_clips(model, torch.zeros(2, 5, 640, dtype=torch.int64))
    with pytest.raises(ValueError, match="batch_size must be"):
        score_clips(model, torch.zeros(2, 5, 640), batch_size=0)


def test_the_sizes_come_from_the_profile_and_the_recipe_is_the_original():
    assert get_profile("paper").baseline_epochs == 100  # the original recipe
    assert get_profile("smoke").baseline_epochs < get_profile("book").baseline_epochs
    assert (baseline.BATCH_SIZE, baseline.LR) == (512, 1e-3)
    with pytest.raises(ValueError, match="unknown profile 'tiny'"):
        run_baseline(pd.DataFrame(), profile="tiny")


# ------------------------------------------------------------------------------------------
# The whole baseline on a small synthetic dataset
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_results(smoke_data):
    from asdlib import dcase

    index = dcase.build_index(smoke_data("fan"))
    return run_baseline(index, profile="smoke", progress=False)


def test_run_baseline_scores_every_test_clip(tiny_results):
    results, models, losses = tiny_results
    assert set(results.columns) >= set(metrics.RESULT_COLUMNS) | {"path"}
    smoke = get_profile("smoke")
    ids = 4  # fan has 4 development IDs
    assert len(results) == ids * (smoke.test_normal_per_id + smoke.test_anomaly_per_id)
    assert set(results["label"]) == {0, 1}
    assert np.isfinite(results["score"]).all()
    assert list(models) == ["fan"] and len(losses["fan"]) == get_profile("smoke").baseline_epochs
    # the tables of asdlib.metrics accept it
    assert metrics.per_id_table(results).shape[0] == ids


def test_auc_by_anomaly_kind(tiny_results):
    from asdlib.synth import ANOMALY_KINDS

    results, _, _ = tiny_results
    table = auc_by_anomaly_kind(results)
    assert set(table.loc["fan"].index) == set(ANOMALY_KINDS["fan"])
    assert table["n_anomaly"].sum() == (results["label"] == 1).sum()
    assert table["auc"].between(0, 1).all()
    with pytest.raises(ValueError, match="results must be a results frame"):
        auc_by_anomaly_kind(results.drop(columns="path"))


def test_load_or_run_baseline_trains_once_and_reads_back_the_same(tmp_path, monkeypatch):
    """The cache under ASDLIB_HOME (a temp folder, see conftest) is keyed by content and seed."""
    import shutil

    from asdlib import baseline, dcase, synth

    root = tmp_path / "data" / "smoke_fan"
    synth.generate(root, profile="smoke", types=["fan"], progress=False)
    first, models, losses = baseline.load_or_run_baseline(root, "smoke", seed=1, progress=False)
    # the same numbers as run_baseline itself
    direct, _, direct_losses = run_baseline(dcase.build_index(root), "smoke", seed=1,
                                            progress=False)
    pd.testing.assert_frame_equal(first, direct)
    assert losses == direct_losses
    # moved data, same content: read back, nothing trained, paths point into the new root
    moved = tmp_path / "moved"
    shutil.move(str(root), moved)
    with monkeypatch.context() as patched:
        patched.setattr(baseline, "run_baseline", lambda *a, **k: pytest.fail("retrained"))
        again, models_again, losses_again = baseline.load_or_run_baseline(
            moved, "smoke", seed=1, progress=False)
    pd.testing.assert_frame_equal(again.drop(columns="path"), first.drop(columns="path"))
    assert all(path.startswith(str(moved.resolve())) for path in again["path"])
    assert losses_again == losses
    window = torch.randn(3, models["fan"].input_dim)
    with torch.no_grad():
        torch.testing.assert_close(models_again["fan"](window), models["fan"].eval()(window))
    # another seed is another result
    other, _, _ = baseline.load_or_run_baseline(moved, "smoke", seed=2, progress=False)
    assert not np.allclose(other["score"], first["score"])


def test_run_baseline_needs_an_index():
    with pytest.raises(ValueError, match="index must be a DataFrame"):
        run_baseline(pd.DataFrame({"path": []}), profile="smoke", progress=False)


# ------------------------------------------------------------------------------------------
# The figures of chapters 1-2 (asdlib.plots)
# ------------------------------------------------------------------------------------------


def test_figures_of_chapters_1_and_2(tiny_results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from asdlib import plots

    results, _, losses = tiny_results
    style = dict(matplotlib.rcParams)
    ax = plots.plot_roc(results["label"], results["score"], max_fpr=0.1)
    auc, pauc = metrics.auc_pauc(results["label"], results["score"])
    assert f"AUC {auc:.3f}" in ax.get_title() and f"{pauc:.3f}" in ax.get_title()
    ax = plots.plot_per_id_auc(metrics.per_id_table(results))
    assert len(ax.patches) == 4
    with pytest.raises(ValueError, match="column must be one of"):
        plots.plot_per_id_auc(metrics.per_id_table(results), column="eer")
    ax = plots.plot_score_histogram(results, "fan", "id_00")
    assert "fan id_00" in ax.get_title()
    with pytest.raises(ValueError, match="no clip of fan id_99"):
        plots.plot_score_histogram(results, "fan", "id_99")
    ax = plots.plot_loss_curves(losses, logy=True)
    assert ax.get_yscale() == "log"
    # drawing changes no global style
    assert dict(matplotlib.rcParams) == style
    plt.close("all")
