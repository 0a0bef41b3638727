"""asdlib.loop: the step context `Step`, one training step, one epoch."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from asdlib import loop, losses
from asdlib.profiles import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NUM_CLASSES = 4


def _model(config):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return config.build_model(NUM_CLASSES).train()


def _batch(config, clips=4):
    generator = torch.Generator().manual_seed(1)
    wav = 0.1 * torch.randn(clips, config.num_samples, generator=generator)
    return wav, torch.arange(clips) % NUM_CLASSES


def _step(config, model=None):
    model = model if model is not None else _model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    return loop.Step(model, optimizer, config.mode, config.build_logmel(), alpha=config.alpha)


def test_a_step_context_is_frozen_and_knows_its_device():
    config = TrainConfig.from_profile("smoke")
    step = _step(config)
    assert step.device == torch.device("cpu") and step.scaler is None and not step.distributed
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.alpha = 1.0
    # A variant is a new context; the original is unchanged
    other = dataclasses.replace(step, mode="arcface", device="cpu")
    assert other.mode == "arcface" and step.mode == config.mode
    assert other.model is step.model and isinstance(other.device, torch.device)


def test_a_bad_mode_is_refused_when_the_context_is_built():
    config = TrainConfig.from_profile("smoke")
    model = _model(config)
    optimizer = torch.optim.AdamW(model.parameters())
    with pytest.raises(ValueError, match="unknown training mode 'cosface'.*noisy_arcmix"):
        loop.Step(model, optimizer, "cosface", config.build_logmel())


def _hand_written_step(model, optimizer, wav, labels, config, generator):
    """Chapter 8's step, written out: log-Mel, mixing, embedding, the mode's loss, AdamW."""
    with torch.no_grad():
        logmel = config.build_logmel()(wav)
        if config.mode in losses.MIXING_MODES:
            wav, logmel, y_a, y_b, lam = losses.mix_batch(wav, logmel, labels,
                                                          alpha=config.alpha, generator=generator)
        else:
            y_a, y_b, lam = labels, labels, 1.0
    head = model.arcface
    embedding = model.embed(wav, logmel)
    loss = losses.loss_for_mode(config.mode)(embedding, head.weight, y_a, y_b, lam,
                                             margin=head.margin, scale=head.scale,
                                             sub_centers=head.sub_centers)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


@pytest.mark.parametrize("mode", ["arcface", "noisy_arcmix"])
def test_train_step_is_the_hand_written_step(mode):
    config = TrainConfig.from_profile("smoke", mode=mode)
    wav, labels = _batch(config)
    mine = _model(config)
    my_optimizer = torch.optim.AdamW(mine.parameters(), lr=config.lr)
    my_loss = _hand_written_step(mine, my_optimizer, wav, labels, config,
                                 torch.Generator().manual_seed(5))
    step = _step(config)
    loss = loop.train_step(step, wav, labels, torch.Generator().manual_seed(5))
    assert torch.isfinite(loss) and not loss.requires_grad
    assert torch.equal(loss, my_loss)
    for (name, theirs), ours in zip(step.model.named_parameters(), mine.parameters()):
        assert torch.equal(theirs, ours), name


def test_train_one_epoch_sums_the_step_losses_and_skips_a_lone_clip():
    config = TrainConfig.from_profile("smoke", mode="arcmix")
    wav, labels = _batch(config, clips=5)
    batches = [(wav[:4], labels[:4], torch.arange(4)), (wav[4:], labels[4:], torch.arange(4, 5))]
    step = _step(config)
    twin = _step(config)
    total, count = loop.train_one_epoch(step, batches, torch.Generator().manual_seed(3),
                                        progress=False)
    assert count == 4  # the batch of one clip cannot train (BatchNorm)
    expected = loop.train_step(twin, wav[:4], labels[:4], torch.Generator().manual_seed(3))
    assert total == pytest.approx(4 * float(expected), rel=1e-12)
    assert step.model.training  # the epoch puts the model in train mode
