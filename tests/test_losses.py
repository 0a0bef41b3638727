"""Tests of asdlib.losses: ArcFace, mixup, ArcMix, Noisy-ArcMix, mix_batch, mix_for_mode and
the head."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from asdlib import losses
from asdlib.losses import (
    MIXING_MODES,
    MODES,
    ArcMarginHead,
    arcface_logits,
    arcface_loss,
    arcmix_loss,
    cos_with_margin,
    cosine_logits,
    loss_for_mode,
    mix_batch,
    mix_for_mode,
    mixup_loss,
    noisy_arcmix_loss,
)


def random_problem(batch=6, classes=5, dim=8, seed=0, dtype=torch.float64):
    """Random embedding, weight and two label vectors (y_b differs from y_a everywhere)."""
    g = torch.Generator().manual_seed(seed)
    embedding = torch.randn(batch, dim, generator=g, dtype=dtype)
    weight = torch.randn(classes, dim, generator=g, dtype=dtype)
    y_a = torch.randint(0, classes, (batch,), generator=g)
    y_b = (y_a + 1 + torch.randint(0, classes - 1, (batch,), generator=g)) % classes
    return embedding, weight, y_a, y_b


# ----------------------------------------------------------------------------------------
# Hand-computed 2-D example
# ----------------------------------------------------------------------------------------
# Embedding at 30 degrees, class 0 weight at 0 degrees, class 1 weight at 90 degrees,
# scale s = 2, margin m = pi/6 (30 degrees).
#   cos = [cos 30, cos 60] = [sqrt(3)/2, 1/2]
#   label 0: phi = cos(30 + 30) = 1/2      -> logits = 2 * [1/2, 1/2] = [1, 1]
#            loss = log 2                                    = 0.693147
#   label 1: phi = cos(60 + 30) = 0        -> logits = [sqrt(3), 0]
#            loss = log(1 + e^sqrt(3))                       = 1.894953
#   no margin: logits = [sqrt(3), 1]
#            CE(., 0) = log(1 + e^(1 - sqrt(3)))             = 0.392665
#            CE(., 1) = log(1 + e^(sqrt(3) - 1))             = 1.124715
#   lam = 0.25, y_a = 1, y_b = 0:
#     mixup        = 0.25 * 1.124715 + 0.75 * 0.392665       = 0.575677
#     noisy_arcmix: logits [sqrt(3), 0] (margin on y_a = 1 only)
#                  = 0.25 * log(1 + e^sqrt(3)) + 0.75 * log(1 + e^-sqrt(3))
#                  = 0.25 * 1.894953 + 0.75 * 0.162902       = 0.595915
#     arcmix       = 0.25 * 1.894953 + 0.75 * log 2          = 0.993599
HAND_EMBEDDING = torch.tensor(
    [[math.cos(math.pi / 6), math.sin(math.pi / 6)]], dtype=torch.float64
)
HAND_WEIGHT = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
HAND = dict(margin=math.pi / 6, scale=2.0)


def test_hand_example_cosines_and_logits():
    cos = cosine_logits(HAND_EMBEDDING, HAND_WEIGHT)
    assert_close(cos, torch.tensor([[math.sqrt(3) / 2, 0.5]], dtype=torch.float64))
    logits_0 = arcface_logits(HAND_EMBEDDING, HAND_WEIGHT, torch.tensor([0]), **HAND)
    assert_close(logits_0, torch.tensor([[1.0, 1.0]], dtype=torch.float64))
    logits_1 = arcface_logits(HAND_EMBEDDING, HAND_WEIGHT, torch.tensor([1]), **HAND)
    assert_close(logits_1, torch.tensor([[math.sqrt(3), 0.0]], dtype=torch.float64))
    logits_none = arcface_logits(HAND_EMBEDDING, HAND_WEIGHT, None, **HAND)
    assert_close(logits_none, torch.tensor([[math.sqrt(3), 1.0]], dtype=torch.float64))


def test_hand_example_losses():
    y_0, y_1 = torch.tensor([0]), torch.tensor([1])
    e, w = HAND_EMBEDDING, HAND_WEIGHT
    assert arcface_loss(e, w, y_0, **HAND).item() == pytest.approx(0.693147, abs=1e-6)
    assert arcface_loss(e, w, y_1, **HAND).item() == pytest.approx(1.894953, abs=1e-6)
    mix = mixup_loss(e, w, y_1, y_0, 0.25, scale=2.0)
    assert mix.item() == pytest.approx(0.575677, abs=1e-6)
    assert noisy_arcmix_loss(e, w, y_1, y_0, 0.25, **HAND).item() == pytest.approx(
        0.595915, abs=1e-6
    )
    assert arcmix_loss(e, w, y_1, y_0, 0.25, **HAND).item() == pytest.approx(0.993599, abs=1e-6)


# ----------------------------------------------------------------------------------------
# ArcFace against pytorch-metric-learning
# ----------------------------------------------------------------------------------------


def test_arcface_matches_pytorch_metric_learning():
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    margin, scale, classes, dim = 0.7, 30.0, 5, 4
    embedding, weight, labels, _ = random_problem(batch=12, classes=classes, dim=dim)
    # Half the batch points away from its class: theta + m > pi, the fallback branch
    # (pytorch-metric-learning has the same one: cos - m sin(m), sin(m) = sin(pi - m)).
    embedding[:6] = -weight[labels[:6]] + 0.05 * embedding[:6]
    cos_target = cosine_logits(embedding, weight).gather(1, labels[:, None])
    assert (cos_target <= math.cos(math.pi - margin)).sum() >= 3
    assert (cos_target > math.cos(math.pi - margin)).sum() >= 3
    # Its margin is in degrees and its W is [embedding_size, num_classes].
    reference = pml_losses.ArcFaceLoss(
        num_classes=classes, embedding_size=dim, margin=math.degrees(margin), scale=scale
    )
    reference.W.data = weight.t().clone()
    embedding_ours = embedding.clone().requires_grad_(True)
    embedding_pml = embedding.clone().requires_grad_(True)
    ours = arcface_loss(embedding_ours, weight, labels, margin=margin, scale=scale)
    expected = reference(embedding_pml, labels)
    assert_close(ours, expected)
    # Gradients agree too (no cosine sits at exactly +-1 here).
    ours.backward()
    expected.backward()
    assert_close(embedding_ours.grad, embedding_pml.grad)


def test_gradcheck_arcface_loss():
    embedding, weight, labels, _ = random_problem(batch=4, classes=3, dim=3)
    embedding.requires_grad_(True)
    weight.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda e, w: arcface_loss(e, w, labels, margin=0.5, scale=4.0), (embedding, weight)
    )


# ----------------------------------------------------------------------------------------
# Reductions between the losses
# ----------------------------------------------------------------------------------------


def test_margin_zero_is_scaled_cosine_softmax():
    embedding, weight, labels, _ = random_problem()
    logits = arcface_logits(embedding, weight, labels, margin=0.0, scale=30.0)
    assert_close(logits, 30.0 * cosine_logits(embedding, weight))
    assert_close(
        arcface_loss(embedding, weight, labels, margin=0.0, scale=30.0),
        F.cross_entropy(30.0 * cosine_logits(embedding, weight), labels),
    )


def test_arcface_logits_put_the_margin_on_the_label_only():
    embedding, weight, labels, _ = random_problem()
    cos = cosine_logits(embedding, weight)
    logits = arcface_logits(embedding, weight, labels, margin=0.7, scale=30.0)
    onehot = F.one_hot(labels, cos.shape[1]).bool()
    # Off-label logits are the scaled cosines.
    assert_close(logits[~onehot], 30.0 * cos[~onehot])
    # Label logits are s * cos(theta + m) (no fallback for these random angles).
    theta = torch.arccos(cos[onehot])
    assert (theta + 0.7 < math.pi).all()
    assert_close(logits[onehot], 30.0 * torch.cos(theta + 0.7))


def test_mix_losses_at_lam_one():
    embedding, weight, y_a, y_b = random_problem()
    arcface = arcface_loss(embedding, weight, y_a)
    assert_close(arcmix_loss(embedding, weight, y_a, y_b, 1.0), arcface)
    assert_close(noisy_arcmix_loss(embedding, weight, y_a, y_b, 1.0), arcface)
    assert_close(
        mixup_loss(embedding, weight, y_a, y_b, 1.0),
        F.cross_entropy(30.0 * cosine_logits(embedding, weight), y_a),
    )
    # And lam = 0 of ArcMix is ArcFace on y_b.
    assert_close(
        arcmix_loss(embedding, weight, y_a, y_b, 0.0), arcface_loss(embedding, weight, y_b)
    )


def test_mixup_is_soft_label_cross_entropy():
    embedding, weight, y_a, y_b = random_problem()
    lam = 0.3
    soft = lam * F.one_hot(y_a, 5) + (1 - lam) * F.one_hot(y_b, 5)
    expected = F.cross_entropy(30.0 * cosine_logits(embedding, weight), soft.double())
    assert_close(mixup_loss(embedding, weight, y_a, y_b, lam), expected)


def test_noisy_arcmix_margin_on_y_a_only():
    embedding, weight, y_a, y_b = random_problem()
    lam, margin, scale = 0.3, 0.7, 30.0
    cos = cosine_logits(embedding, weight)
    logits = arcface_logits(embedding, weight, y_a, margin=margin, scale=scale)
    rows = torch.arange(len(y_a))
    # The y_b logit is margin-free, the y_a logit carries the margin.
    assert_close(logits[rows, y_b], scale * cos[rows, y_b])
    assert_close(logits[rows, y_a], scale * cos_with_margin(cos[rows, y_a], margin))
    assert (logits[rows, y_a] < scale * cos[rows, y_a]).all()
    # Noisy-ArcMix is the soft-label CE of exactly these logits.
    soft = lam * F.one_hot(y_a, 5) + (1 - lam) * F.one_hot(y_b, 5)
    expected = F.cross_entropy(logits, soft.double())
    noisy = noisy_arcmix_loss(embedding, weight, y_a, y_b, lam, margin=margin, scale=scale)
    assert_close(noisy, expected)
    # ... which is not ArcMix (that one puts a margin on y_b as well).
    arcmix = arcmix_loss(embedding, weight, y_a, y_b, lam, margin=margin, scale=scale)
    assert arcmix > noisy


def test_same_labels_make_all_three_equal():
    embedding, weight, y_a, _ = random_problem()
    arcface = arcface_loss(embedding, weight, y_a)
    assert_close(arcmix_loss(embedding, weight, y_a, y_a, 0.37), arcface)
    assert_close(noisy_arcmix_loss(embedding, weight, y_a, y_a, 0.37), arcface)


# ----------------------------------------------------------------------------------------
# The th/mm fallback and the safe square root
# ----------------------------------------------------------------------------------------


def test_fallback_when_theta_plus_margin_passes_pi():
    # theta = 165 degrees, m = 30 degrees: theta + m = 195 degrees > 180.
    # cos 165 = -0.965926 <= cos(150) = -0.866025, so phi = cos - m sin(pi - m)
    #   = -0.965926 - (pi/6) * 0.5 = -0.965926 - 0.261799 = -1.227725,
    # not cos(195 degrees) = -0.965926 (which would equal cos theta again).
    cos = torch.tensor([math.cos(math.radians(165))], dtype=torch.float64)
    phi = cos_with_margin(cos, math.pi / 6)
    assert phi.item() == pytest.approx(-1.227725, abs=1e-6)
    # Just inside the threshold the angle-addition formula is used: theta = 140 degrees.
    cos_inside = torch.tensor([math.cos(math.radians(140))], dtype=torch.float64)
    phi_inside = cos_with_margin(cos_inside, math.pi / 6)
    assert phi_inside.item() == pytest.approx(math.cos(math.radians(170)), abs=1e-12)


def test_target_logit_is_monotonic_in_theta():
    theta = torch.linspace(0, math.pi, 2001, dtype=torch.float64)
    phi = cos_with_margin(torch.cos(theta), 0.7)
    assert (phi[1:] < phi[:-1]).all()


def test_gradients_finite_at_cos_plus_and_minus_one():
    cos = torch.tensor([1.0, -1.0], requires_grad=True)
    cos_with_margin(cos, 0.7).sum().backward()
    assert torch.isfinite(cos.grad).all()
    # At cos = 1: d/dcos of cos*cos(m) (sin = 0 there); at cos = -1: fallback, slope 1.
    assert_close(cos.grad, torch.tensor([math.cos(0.7), 1.0]))
    # Through the whole loss, with the embedding exactly on (and opposite to) class 0.
    embedding = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], requires_grad=True)
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    assert cosine_logits(embedding, weight)[:, 0].tolist() == [1.0, -1.0]
    arcface_loss(embedding, weight, torch.tensor([0, 0])).backward()
    assert torch.isfinite(embedding.grad).all() and torch.isfinite(weight.grad).all()


# ----------------------------------------------------------------------------------------
# Sub-centres, dtypes, autocast, the head
# ----------------------------------------------------------------------------------------


def test_sub_centers_take_the_max_over_centres():
    embedding, _, labels, _ = random_problem()
    weight = torch.randn(5 * 2, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    # Class-major rows: row c * 2 + j is sub-centre j of class c.
    cos_0 = cosine_logits(embedding, weight[0::2])
    cos_1 = cosine_logits(embedding, weight[1::2])
    cos = cosine_logits(embedding, weight, sub_centers=2)
    assert_close(cos, torch.maximum(cos_0, cos_1))
    assert (cos_0 > cos_1).any() and (cos_1 > cos_0).any()
    # The margin is applied to the best sub-centre.
    logits = arcface_logits(embedding, weight, labels, margin=0.7, scale=30.0, sub_centers=2)
    onehot = F.one_hot(labels, 5).double()
    expected = 30.0 * (onehot * cos_with_margin(cos, 0.7) + (1 - onehot) * cos)
    assert_close(logits, expected)


def test_low_precision_inputs_and_autocast_give_float32():
    embedding, weight, labels, _ = random_problem(dtype=torch.float32)
    reference = arcface_logits(embedding, weight, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = arcface_logits(embedding, weight, labels)
    assert logits.dtype == torch.float32
    assert_close(logits, reference)
    half = arcface_logits(embedding.bfloat16(), weight.bfloat16(), labels)
    assert half.dtype == torch.float32
    assert_close(half, reference, atol=0.5, rtol=0.05)


def test_batch_size_one():
    embedding, weight, labels, _ = random_problem(batch=1)
    assert arcface_logits(embedding, weight, labels).shape == (1, 5)
    assert torch.isfinite(noisy_arcmix_loss(embedding, weight, labels, labels, 0.5))


def test_head_parameter_name_shape_and_init():
    head = ArcMarginHead(41, embedding_dim=128)
    assert list(head.state_dict()) == ["weight"]
    assert head.weight.shape == (41, 128)
    # Xavier uniform: U(-b, b), b = sqrt(6 / (fan_in + fan_out)).
    bound = math.sqrt(6 / (41 + 128))
    assert head.weight.abs().max() <= bound
    assert head.weight.abs().max() > 0.9 * bound
    assert ArcMarginHead(41, 128, sub_centers=3).weight.shape == (123, 128)
    # A [41, 128] state dict (the authors' arcface.weight) loads.
    head.load_state_dict({"weight": torch.zeros(41, 128)})


def test_head_forward_matches_functional():
    head = ArcMarginHead(5, embedding_dim=8, margin=0.5, scale=10.0, sub_centers=2)
    embedding, _, labels, _ = random_problem(dtype=torch.float32)
    assert_close(
        head(embedding, labels),
        arcface_logits(embedding, head.weight, labels, margin=0.5, scale=10.0, sub_centers=2),
    )
    assert_close(head(embedding), 10.0 * cosine_logits(embedding, head.weight, sub_centers=2))


# ----------------------------------------------------------------------------------------
# mix_batch
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("wav_shape", [(6, 50), (6, 1, 50)])
@pytest.mark.parametrize("logmel_shape", [(6, 4, 7), (6, 1, 4, 7)])
def test_mix_batch_shapes_and_shared_permutation(wav_shape, logmel_shape):
    # Clip i is the constant i, so a mixed clip reveals its partner.
    index = torch.arange(6, dtype=torch.float64)
    wav = index.view(-1, *[1] * (len(wav_shape) - 1)).expand(wav_shape).clone()
    logmel = index.view(-1, *[1] * (len(logmel_shape) - 1)).expand(logmel_shape).clone()
    labels = torch.arange(6) * 3
    g = torch.Generator().manual_seed(5)
    wav_mix, logmel_mix, y_a, y_b, lam = mix_batch(wav, logmel, labels, generator=g)
    assert wav_mix.shape == wav_shape and logmel_mix.shape == logmel_shape
    assert isinstance(lam, float) and 0.0 < lam < 1.0
    # Recover the partner of each clip from the wave, the log-Mel and y_b.
    partner_wav = (wav_mix.flatten(1)[:, 0] - lam * index) / (1 - lam)
    partner_logmel = (logmel_mix.flatten(1)[:, 0] - lam * index) / (1 - lam)
    assert_close(partner_wav, partner_logmel)
    assert_close(partner_wav, (y_b // 3).double())
    assert sorted(partner_wav.round().long().tolist()) == list(range(6))
    assert torch.equal(y_a, labels)


def test_mix_batch_is_reproducible():
    wav, logmel, labels = torch.randn(16, 30), torch.randn(16, 3, 5), torch.arange(16)
    first = mix_batch(wav, logmel, labels, generator=torch.Generator().manual_seed(7))
    second = mix_batch(wav, logmel, labels, generator=torch.Generator().manual_seed(7))
    other = mix_batch(wav, logmel, labels, generator=torch.Generator().manual_seed(8))
    assert first[4] == second[4] and torch.equal(first[3], second[3])
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert first[4] != other[4]
    # The global RNG is used without a generator.
    torch.manual_seed(3)
    global_1 = mix_batch(wav, logmel, labels)
    torch.manual_seed(3)
    global_2 = mix_batch(wav, logmel, labels)
    assert global_1[4] == global_2[4] and torch.equal(global_1[3], global_2[3])


def test_mix_batch_lambda_follows_beta():
    wav, logmel, labels = torch.zeros(2, 3), torch.zeros(2, 3, 3), torch.arange(2)
    g = torch.Generator().manual_seed(0)
    lams = torch.tensor([mix_batch(wav, logmel, labels, generator=g)[4] for _ in range(2000)])
    assert ((lams >= 0) & (lams <= 1)).all()
    # Beta(0.5, 0.5): mean 1/2, P(lam < 0.1) = (2/pi) asin(sqrt(0.1)) = 0.2048 (U-shaped).
    assert lams.mean().item() == pytest.approx(0.5, abs=0.04)
    assert (lams < 0.1).double().mean().item() == pytest.approx(0.2048, abs=0.03)
    # Large alpha concentrates lambda near 1/2.
    lams_100 = torch.tensor(
        [mix_batch(wav, logmel, labels, alpha=100.0, generator=g)[4] for _ in range(200)]
    )
    assert ((lams_100 > 0.35) & (lams_100 < 0.65)).all()


def test_mix_batch_forced_lambda():
    wav, logmel, labels = torch.randn(4, 10), torch.randn(4, 2, 3), torch.arange(4)
    wav_mix, logmel_mix, _, y_b, lam = mix_batch(wav, logmel, labels, lam=1.0)
    assert lam == 1.0 and torch.equal(wav_mix, wav) and torch.equal(logmel_mix, logmel)
    assert sorted(y_b.tolist()) == [0, 1, 2, 3]


# ----------------------------------------------------------------------------------------
# loss_for_mode
# ----------------------------------------------------------------------------------------


def test_loss_for_mode_uniform_signature():
    embedding, weight, y_a, y_b = random_problem()
    assert set(MIXING_MODES) < set(MODES) and "arcface" not in MIXING_MODES
    expected = {
        "arcface": arcface_loss(embedding, weight, y_a, margin=0.6, scale=20.0),
        "mixup": mixup_loss(embedding, weight, y_a, y_b, 0.4, scale=20.0),
        "arcmix": arcmix_loss(embedding, weight, y_a, y_b, 0.4, margin=0.6, scale=20.0),
        "noisy_arcmix": noisy_arcmix_loss(
            embedding, weight, y_a, y_b, 0.4, margin=0.6, scale=20.0
        ),
    }
    for mode in MODES:
        lam = 1.0 if mode == "arcface" else 0.4
        y_second = y_a if mode == "arcface" else y_b
        loss_fn = loss_for_mode(mode)
        got = loss_fn(embedding, weight, y_a, y_second, lam, margin=0.6, scale=20.0, sub_centers=1)
        assert_close(got, expected[mode])


def test_loss_for_mode_errors():
    with pytest.raises(ValueError, match="unknown mode 'arcmixx'.*noisy_arcmix"):
        loss_for_mode("arcmixx")
    embedding, weight, y_a, y_b = random_problem()
    with pytest.raises(ValueError, match="arcface.*lam must be 1"):
        loss_for_mode("arcface")(embedding, weight, y_a, y_b, 0.5)


# ----------------------------------------------------------------------------------------
# Bad inputs
# ----------------------------------------------------------------------------------------


def test_bad_embedding_and_weight():
    embedding, weight, labels, _ = random_problem()
    with pytest.raises(ValueError, match="embedding must be a 2-D"):
        arcface_logits(embedding[0], weight, labels[:1])
    with pytest.raises(ValueError, match="weight must be a 2-D"):
        arcface_logits(embedding, weight[None], labels)
    with pytest.raises(ValueError, match="weight has dim 7 .* embedding has dim 8"):
        arcface_logits(embedding, weight[:, :7], labels)
    with pytest.raises(ValueError, match="not a multiple of sub_centers=2"):
        arcface_logits(embedding, weight, labels, sub_centers=2)
    # No value check in a loss (it would cost a GPU sync per step): a NaN goes through. Clips
    # with NaN or Inf are refused where they enter, when read (tests/test_audio.py).
    bad = embedding.clone()
    bad[2, 3] = float("nan")
    assert torch.isnan(arcface_loss(bad, weight, labels))


def test_bad_labels():
    embedding, weight, labels, _ = random_problem()
    with pytest.raises(ValueError, match="labels must be a 1-D"):
        arcface_logits(embedding, weight, labels[:, None])
    with pytest.raises(ValueError, match="labels must hold integer.*float"):
        arcface_logits(embedding, weight, labels.float())
    # The label range is not read by asdlib (a GPU sync); torch's one_hot refuses it
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes"):
        arcface_logits(embedding, weight, torch.full_like(labels, 5))
    with pytest.raises(RuntimeError, match="Class values must be non-negative"):
        arcface_loss(embedding, weight, torch.full_like(labels, -1))
    with pytest.raises(ValueError, match="labels has 5 entries but the embedding batch has 6"):
        arcface_loss(embedding, weight, labels[:5])


@pytest.mark.parametrize("loss_fn", [mixup_loss, arcmix_loss, noisy_arcmix_loss])
def test_bad_mix_inputs(loss_fn):
    embedding, weight, y_a, y_b = random_problem()
    with pytest.raises(ValueError, match="y_a has 5 entries"):
        loss_fn(embedding, weight, y_a[:5], y_b, 0.5)
    with pytest.raises(ValueError, match="y_b has 4 entries"):
        loss_fn(embedding, weight, y_a, y_b[:4], 0.5)
    with pytest.raises((IndexError, RuntimeError), match="out of bounds|smaller than num_classes"):
        loss_fn(embedding, weight, y_a, y_b + 10, 0.5)
    with pytest.raises(ValueError, match=r"lam must lie in \[0, 1\]"):
        loss_fn(embedding, weight, y_a, y_b, 1.5)
    with pytest.raises(ValueError, match=r"lam must lie in \[0, 1\]"):
        loss_fn(embedding, weight, y_a, y_b, -0.1)


def test_bad_margin():
    embedding, weight, labels, _ = random_problem()
    with pytest.raises(ValueError, match=r"margin must lie in \[0, pi/2\)"):
        arcface_logits(embedding, weight, labels, margin=math.pi / 2)
    with pytest.raises(ValueError, match=r"margin must lie in \[0, pi/2\)"):
        arcface_loss(embedding, weight, labels, margin=-0.1)
    with pytest.raises(ValueError, match=r"margin must lie in \[0, pi/2\)"):
        ArcMarginHead(5, 8, margin=40.0)  # degrees by mistake


def test_mix_for_mode_arcface_gives_the_inputs_unchanged():
    wav, logmel, labels = torch.randn(4, 10), torch.randn(4, 3, 5), torch.tensor([0, 1, 2, 3])
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    (wav_out, logmel_out), y_a, y_b, lam = mix_for_mode("arcface", (wav, logmel), labels,
                                                        generator=g)
    assert wav_out is wav and logmel_out is logmel and y_a is labels and y_b is labels
    assert lam == 1.0
    assert torch.equal(g.get_state(), state)  # nothing drawn


@pytest.mark.parametrize("mode", MIXING_MODES)
def test_mix_for_mode_mixes_like_mix_batch(mode):
    wav, logmel, labels = torch.randn(6, 10), torch.randn(6, 3, 5), torch.arange(6)
    (wav_mix, logmel_mix), y_a, y_b, lam = mix_for_mode(
        mode, (wav, logmel), labels, alpha=0.5, generator=torch.Generator().manual_seed(4))
    want = mix_batch(wav, logmel, labels, alpha=0.5, generator=torch.Generator().manual_seed(4))
    for got, expected in zip((wav_mix, logmel_mix, y_a, y_b), want[:4]):
        assert torch.equal(got, expected)
    assert lam == want[4]
    # one input (the toy's points): the same draws, the same mix
    (x_mix,), *_, lam_one = mix_for_mode(mode, (wav,), labels, alpha=0.5,
                                         generator=torch.Generator().manual_seed(4))
    assert torch.equal(x_mix, wav_mix) and lam_one == lam


def test_mix_for_mode_draws_lambda_from_beta_alpha_alpha_with_the_generator():
    import numpy as np

    x, labels = torch.randn(4, 2), torch.arange(4)
    g = torch.Generator().manual_seed(11)
    expected = torch.Generator().manual_seed(11)
    for _ in range(5):
        *_, lam = mix_for_mode("noisy_arcmix", (x,), labels, alpha=2.0, generator=g)
        seed = int(torch.randint(0, 2**62, (1,), generator=expected))
        assert lam == float(np.random.default_rng(seed).beta(2.0, 2.0))
        torch.randperm(4, generator=expected)  # the permutation follows lambda's draw
    lams = torch.tensor([mix_for_mode("mixup", (x,), labels, alpha=0.5, generator=g)[3]
                         for _ in range(2000)])
    assert abs(float(lams.mean()) - 0.5) < 0.03  # Beta(0.5, 0.5): mean 1/2, variance 1/8
    assert abs(float(lams.var()) - 0.125) < 0.015


def test_mix_for_mode_bad_inputs():
    x, labels = torch.randn(4, 2), torch.arange(4)
    with pytest.raises(ValueError, match="unknown mode 'cosface'"):
        mix_for_mode("cosface", (x,), labels)
    with pytest.raises(ValueError, match=r"inputs\[1\] has batch size 3"):
        mix_for_mode("mixup", (x, x[:3]), labels)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        mix_for_mode("arcmix", (x,), labels, alpha=0.0)


def test_bad_mix_batch_inputs():
    wav, logmel, labels = torch.randn(4, 10), torch.randn(4, 2, 3), torch.arange(4)
    with pytest.raises(ValueError, match="wav has batch size 3 but labels has 4"):
        mix_batch(wav[:3], logmel, labels)
    with pytest.raises(ValueError, match="logmel has batch size 5"):
        mix_batch(wav, torch.randn(5, 2, 3), labels)
    with pytest.raises(ValueError, match="wav must be a tensor"):
        mix_batch(torch.randn(4), logmel, labels)
    with pytest.raises(ValueError, match="labels must be a 1-D"):
        mix_batch(wav, logmel, labels[:, None])
    with pytest.raises(ValueError, match="alpha must be > 0"):
        mix_batch(wav, logmel, labels, alpha=0.0)
    with pytest.raises(ValueError, match=r"lam must lie in \[0, 1\]"):
        mix_batch(wav, logmel, labels, lam=2.0)


def test_module_exports():
    assert set(losses.__all__) <= set(dir(losses))
