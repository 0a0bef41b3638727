"""The stopping rule: the same for every model and mode, checked on made-up loss curves."""

from __future__ import annotations

import pytest

from asdlib.profiles import TrainConfig
from asdlib.train import Setup, should_stop, train


@pytest.mark.parametrize("losses, patience, stop", [
    ([3.0, 2.0, 2.5, 2.4], 2, True),     # best two epochs back
    ([3.0, 2.0, 2.5], 2, False),         # one epoch back: not yet
    ([3.0, 2.0, 2.0, 2.0], 2, True),     # no strict improvement after the first 2.0
    ([3.0, 2.9, 2.8, 2.7, 2.6], 1, False),  # still improving
    ([1.0, 2.0, 3.0], None, False),      # no patience: never early
    ([], 3, False),
])
def test_should_stop_on_made_up_curves(losses, patience, stop):
    assert should_stop(losses, patience) is stop


def test_a_plateau_curve_stops_after_patience_epochs():
    """A curve that falls, then wobbles on a plateau: the rule stops patience epochs after the
    lowest point, whatever happens later."""
    curve = [5.0, 3.0, 2.0, 1.5, 1.4, 1.45, 1.42, 1.41, 1.43, 1.39, 1.44]
    stops = [epoch for epoch in range(1, len(curve) + 1) if should_stop(curve[:epoch], 3)]
    assert stops[0] == 8  # best 1.4 at epoch 5, three epochs without improvement: 6, 7, 8


def test_training_stops_by_the_rule_and_a_rerun_keeps_it(smoke_data, tmp_path, monkeypatch):
    config = TrainConfig.from_profile("smoke", num_epochs=6, patience=1, lr=0.5)
    history = train(config, smoke_data("fan"), tmp_path / "run", Setup(progress=False))
    losses = history["val_loss"].tolist()
    assert should_stop(losses, 1) or len(losses) == 6
    assert not any(should_stop(losses[:k], 1) for k in range(1, len(losses)))
    again = train(config, smoke_data("fan"), tmp_path / "run", Setup(progress=False))
    assert again["epoch"].tolist() == history["epoch"].tolist()


def test_patience_must_be_a_positive_int():
    with pytest.raises(ValueError, match="patience: must be None or a positive int"):
        TrainConfig.from_profile("smoke", patience=0)
