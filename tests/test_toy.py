"""Tests of asdlib.toy: the 2-D teaching toy of chapters 4-7."""


import pytest
import torch

from asdlib import losses, toy
from asdlib.profiles import get_profile


@pytest.fixture(scope="module")
def data():
    return toy.make_toy(seed=0)


def test_make_toy_shapes_and_labels(data):
    classes, dim = 3, 6
    assert data.num_classes == classes and data.input_dim == dim
    assert data.x_train.shape == (classes * 200, dim) and data.y_train.shape == (classes * 200,)
    assert data.x_test.shape == (classes * 100, dim)
    assert data.x_anomaly.shape == (classes * 100, dim)
    assert torch.equal(torch.bincount(data.y_train), torch.full((classes,), 200))
    # Half the anomalies of each kind
    assert torch.equal(torch.bincount(data.anomaly_kind), torch.tensor([150, 150]))
    # Class means at distance `separation` from the origin
    torch.testing.assert_close(data.means.norm(dim=1), torch.full((classes,), 4.0))


def test_make_toy_is_deterministic_and_seeded():
    a, b, c = toy.make_toy(seed=3), toy.make_toy(seed=3), toy.make_toy(seed=4)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_anomaly, b.x_anomaly)
    assert not torch.equal(a.x_train, c.x_train)


def test_anomalies_sit_at_the_shift_from_their_class(data):
    # Without the noise, an anomaly is its class mean plus anomaly_shift along a unit direction:
    # its mean distance to the class mean grows with the shift.
    near = toy.make_toy(seed=0, anomaly_shift=0.0)
    far = toy.make_toy(seed=0, anomaly_shift=5.0)
    distance = lambda d: (d.x_anomaly - d.means[d.y_anomaly]).norm(dim=1).mean()  # noqa: E731
    assert distance(far) > distance(near) + 3.0
    # "between" anomalies move towards another class: closer to some other mean than normals are
    between = far.anomaly_kind == 0
    to_means = torch.cdist(far.x_anomaly[between], far.means)  # [points, classes]
    own = to_means.gather(1, far.y_anomaly[between][:, None]).squeeze(1)
    to_means.scatter_(1, far.y_anomaly[between][:, None], float("inf"))
    normal_to_other = torch.cdist(far.x_test, far.means).scatter_(1, far.y_test[:, None], float("inf"))
    assert to_means.min(dim=1).values.mean() < normal_to_other.min(dim=1).values.mean()
    assert own.mean() > 4.0


def test_make_toy_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num_classes"):
        toy.make_toy(num_classes=1)


@pytest.mark.parametrize("mode", losses.MODES)
def test_train_toy_every_mode(mode, data):
    result = toy.train_toy(mode, margin=0.5, scale=30.0, seed=0, epochs=2, data=data)
    assert result.mode == mode and result.num_epochs == 2
    assert len(result.history) == result.warmup_epochs + 2
    assert result.weight.shape == (3, 2)
    for split, n in (("train", 600), ("test", 300), ("anomaly", 300)):
        assert result.embedding[split].shape == (n, 2)
        assert result.labels[split].shape == (n,)
        angles = result.angles(split)
        assert angles.shape == (n,) and bool(((angles >= 0) & (angles <= torch.pi)).all())
    assert all(torch.isfinite(torch.tensor(result.history)))
    auc = toy.toy_auc(result)
    assert 0.0 <= auc <= 1.0
    for kind in toy.ANOMALY_KINDS:
        assert 0.0 <= toy.toy_auc(result, kind) <= 1.0
    assert result.embed(data.x_test[:3]).shape == (3, 2)


def test_train_toy_learns_the_classes(data):
    result = toy.train_toy("arcface", margin=0.0, seed=0, epochs=10, data=data)
    cos = losses.cosine_logits(result.embedding["test"], result.weight)
    accuracy = (cos.argmax(1) == result.labels["test"]).float().mean()
    assert accuracy > 0.8
    assert result.history[-1] < result.history[0]


def test_train_toy_is_reproducible_and_leaves_the_global_rng_alone(data):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = toy.train_toy("noisy_arcmix", seed=1, epochs=2, data=data)
    after = torch.rand(1)
    b = toy.train_toy("noisy_arcmix", seed=1, epochs=2, data=data)
    assert torch.equal(before, after), "train_toy must not consume the global random state"
    assert torch.equal(a.embedding["test"], b.embedding["test"])
    c = toy.train_toy("noisy_arcmix", seed=2, epochs=2, data=data)
    assert not torch.equal(a.embedding["test"], c.embedding["test"])


def test_train_toy_bad_inputs(data):
    with pytest.raises(ValueError, match="unknown mode"):
        toy.train_toy("cosface", data=data, epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        toy.train_toy("arcface", data=data, epochs=-1)
    with pytest.raises(ValueError, match="warmup_epochs"):
        toy.train_toy("arcface", data=data, epochs=1, warmup_epochs=-1)
    with pytest.raises(ValueError, match="kind"):
        toy.toy_auc(toy.train_toy("arcface", data=data, epochs=0, warmup_epochs=0), kind="sideways")


def test_toy_epochs_follow_the_profile(monkeypatch):
    monkeypatch.setenv("ASDLIB_PROFILE", "smoke")
    smoke = get_profile("smoke").toy_epochs
    assert smoke < get_profile("book").toy_epochs
    result = toy.train_toy("arcface", seed=0, data=toy.make_toy(train_per_class=20, test_per_class=5),
                           warmup_epochs=0)
    assert result.num_epochs == smoke and len(result.history) == smoke


def test_mixed_test_points(data):
    x_mix, y_a, y_b, lam = toy.mixed_test_points(data, num_points=200, seed=0)
    assert x_mix.shape[1] == data.input_dim and len(x_mix) == len(y_a) == len(y_b) == len(lam)
    assert len(x_mix) > 100 and bool((y_a != y_b).all())
    assert bool(((lam >= 0) & (lam <= 1)).all())


def test_angles_to_class_by_hand():
    weight = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    embedding = torch.tensor([[3.0, 3.0], [0.0, -1.0]])
    angles = toy.angles_to_class(embedding, weight, torch.tensor([0, 1]))
    torch.testing.assert_close(angles, torch.tensor([torch.pi / 4, torch.pi]))


def test_train_toy_restores_the_thread_count(data):
    threads = torch.get_num_threads()
    toy.train_toy("arcface", seed=0, epochs=1, data=data)
    assert torch.get_num_threads() == threads


def test_summarize_and_accuracy(data):
    runs = {("arcface", 0): toy.train_toy("arcface", seed=0, epochs=1, data=data),
            ("mixup", 0): toy.train_toy("mixup", seed=0, epochs=1, data=data)}
    table = toy.summarize(runs)
    assert list(table.index) == list(runs)
    assert {"accuracy", "normal angle", "anomaly angle", "AUC", "AUC between", "AUC off"} <= set(table.columns)
    assert table.loc[("arcface", 0), "accuracy"] == runs[("arcface", 0)].accuracy("test")
    assert 0.0 <= table["accuracy"].min() and table["accuracy"].max() <= 1.0
    named = toy.summarize({"a": runs[("arcface", 0)]})
    assert list(named.index) == ["a"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_mode_learns_the_classes_after_the_warm_up(seed, data):
    # Without the warm-up a 2-D class can stay lost on the far side of the circle
    for mode in losses.MODES:
        result = toy.train_toy(mode, seed=seed, epochs=get_profile("book").toy_epochs, data=data)
        assert result.accuracy("test") > 0.8, (mode, seed)


def test_warm_up_is_shared_by_the_modes(data):
    # Same seed: the warm-up epochs are identical whatever the mode
    a = toy.train_toy("arcface", seed=0, epochs=0, warmup_epochs=2, data=data)
    b = toy.train_toy("noisy_arcmix", seed=0, epochs=0, warmup_epochs=2, data=data)
    assert torch.equal(a.embedding["test"], b.embedding["test"])


def test_example_batch_of_chapters_6_and_7():
    from asdlib import toy

    embedding, weight, y_a, y_b = toy.example_batch(0)
    assert embedding.shape == (6, 8) and weight.shape == (5, 8)
    assert y_a.shape == y_b.shape == (6,) and bool((y_a != y_b).all())
    assert int(max(y_a.max(), y_b.max())) < weight.shape[0]
    again = toy.example_batch(0)
    assert all(torch.equal(a, b) for a, b in zip((embedding, weight, y_a, y_b), again))
    assert not torch.equal(toy.example_batch(1)[0], embedding)
