"""Tests of asdlib.models: shapes, gradients, TAgram, the reference state dict, input errors."""

import math
from importlib import resources
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from asdlib.features import LogMel, num_frames
from asdlib.models import (
    ASDNet,
    MobileFaceNet,
    TemporalAttention,
    TgramNet,
    count_parameters,
    from_reference,
    global_kernel_size,
    temporal_attention,
    temporal_attention_weights,
)

REFERENCE_KEYS = Path(str(resources.files("asdlib") / "resources" / "tastgram_mfn_state_dict.txt"))
SR = 16000
FC_OUT = ("mobilefacenet.fc_out.weight", "mobilefacenet.fc_out.bias")


def clips(batch, seconds, n_mels=128, seed=0):
    """Random waves and their log-Mels: ([batch, samples], [batch, n_mels, frames])."""
    generator = torch.Generator().manual_seed(seed)
    wav = 0.1 * torch.randn(batch, int(SR * seconds), generator=generator)
    return wav, LogMel(n_mels=n_mels)(wav)


def reference_shapes():
    """{name: (shape, dtype)} parsed from the authors' state-dict listing."""
    shapes = {}
    for line in REFERENCE_KEYS.read_text().splitlines():
        name, shape, dtype = line.split("\t")
        dims = tuple(int(d) for d in shape.strip("()").split(",") if d.strip())
        shapes[name] = (dims, getattr(torch, dtype))
    return shapes


def random_reference_state_dict(seed=0):
    """Random tensors with exactly the names, shapes and dtypes of the reference listing."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, (shape, dtype) in reference_shapes().items():
        if dtype == torch.int64:
            state[name] = torch.randint(0, 1000, shape, generator=generator)
        elif name.endswith("running_var"):
            # variances must be positive for a finite forward
            state[name] = 0.5 + torch.rand(shape, generator=generator)
        else:
            state[name] = 0.1 * torch.randn(shape, generator=generator)
    return state


# ----------------------------------------------------------------------------------------
# Shapes and gradients
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tastgram", "stgram"])
@pytest.mark.parametrize("seconds, n_mels", [(2, 128), (4, 64)])
def test_train_step_shapes_and_finite_gradients(name, seconds, n_mels):
    torch.manual_seed(0)
    model = ASDNet(5, model=name, num_samples=SR * seconds, n_mels=n_mels).train()
    wav, logmel = clips(2, seconds, n_mels)
    labels = torch.tensor([0, 3])
    logits, embedding = model(wav, logmel, labels)
    assert logits.shape == (2, 5) and embedding.shape == (2, 128)
    F.cross_entropy(logits, labels).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    # the head and the front end both learn
    assert model.arcface.weight.grad.abs().sum() > 0
    assert model.tgramnet.conv_extrctor.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name, channels", [("tastgram", 3), ("stgram", 2)])
def test_ten_second_forward_batch_one_eval(name, channels):
    model = ASDNet(41, model=name).eval()
    wav, logmel = clips(1, 10)
    assert logmel.shape == (1, 128, 313)
    with torch.no_grad():
        stacked = model.stack(wav, logmel)
        logits, embedding = model(wav.unsqueeze(1), logmel.unsqueeze(1), torch.tensor([7]))
    assert stacked.shape == (1, channels, 128, 313)
    assert model.mobilefacenet.global_kernel == (8, 20)
    assert logits.shape == (1, 41) and embedding.shape == (1, 128)
    assert torch.isfinite(logits).all()


def test_eval_embedding_does_not_depend_on_the_batch():
    torch.manual_seed(0)
    model = ASDNet(4, num_samples=SR * 2).eval()
    wav, logmel = clips(3, 2)
    with torch.no_grad():
        together = model.embed(wav, logmel)
        alone = model.embed(wav[1:2], logmel[1:2])
    torch.testing.assert_close(alone[0], together[1], rtol=1e-4, atol=1e-5)


def test_logits_without_labels_are_scaled_cosines():
    torch.manual_seed(0)
    model = ASDNet(6, num_samples=SR * 2, scale=30.0).eval()
    wav, logmel = clips(2, 2)
    with torch.no_grad():
        logits, embedding = model(wav, logmel)
    weight = model.arcface.weight.detach()
    cos = F.normalize(embedding, dim=1) @ F.normalize(weight, dim=1).T
    torch.testing.assert_close(logits, 30.0 * cos, rtol=1e-5, atol=1e-5)


def test_stack_channel_order():
    torch.manual_seed(0)
    wav, logmel = clips(2, 2)
    tast = ASDNet(3, model="tastgram", num_samples=SR * 2)
    st = ASDNet(3, model="stgram", num_samples=SR * 2)
    with torch.no_grad():
        x = tast.stack(wav, logmel)
        y = st.stack(wav, logmel)
        torch.testing.assert_close(x[:, 0], tast.tgramnet(wav))
        torch.testing.assert_close(y[:, 1], st.tgramnet(wav))
    # Tgram, Sgram, TAgram for TASTgram; Sgram, Tgram for STgram
    torch.testing.assert_close(x[:, 1], logmel)
    torch.testing.assert_close(x[:, 2], temporal_attention(logmel))
    torch.testing.assert_close(y[:, 0], logmel)


def test_config_rebuilds_the_model():
    model = ASDNet(7, num_samples=SR * 2, n_mels=64, margin=0.5)
    assert model.config["model"] == "tastgram" and model.config["num_samples"] == SR * 2
    clone = ASDNet(**model.config)
    clone.load_state_dict(model.state_dict())
    assert isinstance(clone.mobilefacenet, MobileFaceNet)
    assert clone.arcface.margin == 0.5 and clone.num_frames == 63


# ----------------------------------------------------------------------------------------
# TAgram, TgramNet, MobileFaceNet pieces
# ----------------------------------------------------------------------------------------


def test_temporal_attention_by_hand():
    # 2 mels x 3 frames
    logmel = torch.tensor([[[1.0, 0.0, -2.0], [3.0, 2.0, 0.0]]])
    # per frame: max + mean = 3 + 2, 2 + 1, 0 - 1
    weights = [1 / (1 + math.exp(-5.0)), 1 / (1 + math.exp(-3.0)), 1 / (1 + math.exp(1.0))]
    expected = torch.tensor([[[1.0 * weights[0], 0.0, -2.0 * weights[2]],
                              [3.0 * weights[0], 2.0 * weights[1], 0.0]]])
    torch.testing.assert_close(temporal_attention_weights(logmel), torch.tensor([weights]))
    torch.testing.assert_close(temporal_attention(logmel), expected)
    torch.testing.assert_close(TemporalAttention()(logmel), expected)
    torch.testing.assert_close(TemporalAttention.weights(logmel), torch.tensor([weights]))
    assert list(TemporalAttention().parameters()) == []


@pytest.mark.parametrize("samples", [16000, 16001, 16511, 32000, 48000, 64000, 160000])
def test_tgramnet_frame_count_equals_logmel(samples):
    frames = LogMel()(torch.zeros(1, samples)).shape[-1]
    assert frames == num_frames(samples)
    tgram = TgramNet(n_mels=32, num_frames=frames)(torch.zeros(1, 1, samples))
    assert tgram.shape == (1, 32, frames)


def test_tgramnet_layernorm_is_over_time():
    net = TgramNet(n_mels=16, num_frames=63)
    assert [block[0].normalized_shape for block in net.conv_encoder] == [(63,)] * 3
    assert net.conv_extrctor.weight.shape == (16, 1, 1024) and net.conv_extrctor.bias is None


def test_tgramnet_wrong_length_names_the_clip_length():
    net = TgramNet(num_frames=313)
    with pytest.raises(ValueError, match=r"wav has 32000 samples .*313 frames.*159744-160255"):
        net(torch.zeros(1, 32000))


@pytest.mark.parametrize(
    "input_size, kernel",
    [((128, 313), (8, 20)), ((128, 63), (8, 4)), ((64, 126), (4, 8)), ((40, 101), (3, 7))],
)
def test_linear7_kernel_follows_the_input_size(input_size, kernel):
    assert global_kernel_size(input_size) == kernel
    net = MobileFaceNet(2, input_size=input_size).eval()
    assert net.linear7.conv.weight.shape == (512, 1, *kernel)
    # the map that reaches linear7 is exactly the kernel's size
    seen = []
    net.conv2.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    with torch.no_grad():
        embedding = net(torch.randn(1, 2, *input_size))
    assert seen == [(1, 512, *kernel)] and embedding.shape == (1, 128)


def test_mobilefacenet_layers_and_init():
    torch.manual_seed(0)
    net = MobileFaceNet()
    assert not hasattr(net, "fc_out")
    assert net.linear7.prelu is None and net.linear1.prelu is None
    assert net.conv1.prelu is not None and net.dw_conv1.conv.groups == 64
    # residual only when stride 1 and in == out: the second block of each group
    assert [block.residual for block in net.blocks] == [False, True] * 3
    # N(0, sqrt(2 / (kh * kw * out))): 1x1 conv with 512 outputs -> std 0.0625
    weight = net.blocks[2].conv[0].weight
    assert abs(weight.std().item() - math.sqrt(2 / 512)) < 0.002
    weight = net.conv1.conv.weight
    assert abs(weight.std().item() - math.sqrt(2 / (9 * 64))) < 0.006
    for name, module in net.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert (module.weight == 1).all() and (module.bias == 0).all(), name


# ----------------------------------------------------------------------------------------
# The authors' state dict
# ----------------------------------------------------------------------------------------


def test_our_keys_are_the_reference_keys():
    ours = {name: tuple(t.shape) for name, t in ASDNet(41).state_dict().items()}
    ref = {name: shape for name, (shape, _) in reference_shapes().items()}
    for name in FC_OUT:
        ours[name] = ref[name]
    assert ours == ref


def test_parameter_count():
    model = ASDNet(41)
    n = count_parameters(model)
    # the reference's parameters: every float tensor but the BN running statistics
    ref = sum(
        math.prod(shape)
        for name, (shape, dtype) in reference_shapes().items()
        if dtype == torch.float32 and "running_" not in name
    )
    fc_out = 41 * 128 + 41
    assert n + fc_out == ref
    # "about 1.16 M parameters": 1.157 M without fc_out, 1.162 M with it
    assert 1.15e6 < n < 1.16e6 < n + fc_out < 1.165e6
    assert count_parameters(model, trainable_only=True) == n


def test_from_reference_loads_random_weights_and_runs():
    state = random_reference_state_dict()
    model = from_reference(state)
    assert isinstance(model, ASDNet) and model.model == "tastgram" and not model.training
    loaded = model.state_dict()
    assert set(loaded) == set(state) - set(FC_OUT)
    for name, tensor in loaded.items():
        assert tensor.dtype == state[name].dtype, name
        assert torch.equal(tensor, state[name]), name
    wav, logmel = clips(1, 10)
    with torch.no_grad():
        logits, embedding = model(wav.unsqueeze(1), logmel.unsqueeze(1), torch.tensor([3]))
    assert logits.shape == (1, 41) and embedding.shape == (1, 128)
    assert torch.isfinite(logits).all()


def test_from_reference_accepts_wrapped_and_dataparallel_dicts():
    state = random_reference_state_dict(seed=1)
    wrapped = {"model": {"module." + name: t for name, t in state.items()}, "epoch": 3}
    model = from_reference(wrapped)
    torch.testing.assert_close(model.arcface.weight.detach(), state["arcface.weight"])
    # the number of classes comes from arcface.weight
    state = {n: t for n, t in random_reference_state_dict().items() if n not in FC_OUT}
    state["arcface.weight"] = torch.randn(10, 128)
    assert from_reference(state).arcface.weight.shape == (10, 128)


def test_from_reference_lists_missing_unexpected_and_wrong_shapes():
    state = random_reference_state_dict()
    del state["mobilefacenet.conv2.bn.bias"]
    state["mobilefacenet.extra.weight"] = torch.zeros(3)
    state["tgramnet.conv_encoder.1.0.weight"] = torch.zeros(300)
    state["mobilefacenet.linear7.conv.weight"] = torch.zeros(512, 1, 4, 10)
    with pytest.raises(ValueError) as info:
        from_reference(state)
    message = str(info.value)
    assert "missing: mobilefacenet.conv2.bn.bias (expected (512,))" in message
    assert "unexpected: mobilefacenet.extra.weight (got (3,))" in message
    assert "tgramnet.conv_encoder.1.0.weight (expected (313,), got (300,))" in message
    assert (
        "mobilefacenet.linear7.conv.weight (expected (512, 1, 8, 20), got (512, 1, 4, 10))"
        in message
    )


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda s: s.pop("arcface.weight"), "arcface.weight"),
        (lambda s: s.update({"mobilefacenet.fc_out.bias": torch.zeros(40)}),
         r"mobilefacenet.fc_out.bias \(expected \(41,\), got \(40,\)\)"),
        (lambda s: s.pop("tgramnet.conv_extrctor.weight"),
         "missing: tgramnet.conv_extrctor.weight"),
    ],
)
def test_from_reference_single_errors(edit, pattern):
    state = random_reference_state_dict()
    edit(state)
    with pytest.raises(ValueError, match=pattern):
        from_reference(state)


def test_from_reference_not_strict_skips_names_but_not_shapes():
    state = random_reference_state_dict()
    del state["mobilefacenet.conv2.bn.bias"]
    state["something.else"] = torch.zeros(2)
    model = from_reference(state, strict=False)
    torch.testing.assert_close(model.arcface.weight.detach(), state["arcface.weight"])
    state["mobilefacenet.conv1.conv.weight"] = torch.zeros(64, 2, 3, 3)
    with pytest.raises(ValueError, match="mobilefacenet.conv1.conv.weight"):
        from_reference(state, strict=False)


# ----------------------------------------------------------------------------------------
# Bad inputs
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model():
    return ASDNet(3, num_samples=SR * 2).eval()


@pytest.mark.parametrize(
    "wav_shape, logmel_shape, pattern",
    [
        ((1, 1, 1, 32000), (1, 128, 63), "wav must be"),
        ((32000,), (1, 128, 63), "wav must be"),
        ((1, 2, 32000), (1, 128, 63), "wav must be"),
        ((1, 32000), (128, 63), "logmel must be"),
        ((1, 32000), (1, 2, 128, 63), "logmel must be"),
        ((2, 32000), (1, 128, 63), r"same batch size, got 2 \(wav\) and 1 \(logmel\)"),
        ((1, 32000), (1, 64, 63), "logmel must have 128 mel bands, got 64"),
        ((1, 32000), (1, 128, 313), "logmel must have 63 frames .*32000 samples.*got 313"),
        ((1, 16000), (1, 128, 63), "wav must have 32000 samples .*got 16000"),
    ],
)
def test_bad_shapes_name_the_argument(small_model, wav_shape, logmel_shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        small_model(torch.zeros(wav_shape), torch.zeros(logmel_shape))


def test_bad_dtypes_and_values_name_the_argument(small_model):
    wav, logmel = torch.zeros(1, 32000), torch.zeros(1, 128, 63)
    with pytest.raises(TypeError, match="wav must have a floating-point dtype"):
        small_model(wav.long(), logmel)
    with pytest.raises(TypeError, match="logmel must have a floating-point dtype"):
        small_model.embed(wav, logmel.int())
    with pytest.raises(TypeError, match="logmel must be a torch.Tensor"):
        small_model(wav, logmel.numpy())
    # No value check in forward (a GPU sync per step): clips are checked when read
    bad = logmel.clone()
    bad[0, 1, 2] = float("nan")
    assert torch.isnan(small_model.eval()(wav, bad)[1]).any()


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="model must be one of"):
        ASDNet(3, model="sgram")
    with pytest.raises(ValueError, match="win_length must be a positive even int"):
        TgramNet(win_length=1023)
    with pytest.raises(ValueError, match="input_size must be two positive ints"):
        MobileFaceNet(input_size=(0, 313))
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        from_reference([("arcface.weight", torch.zeros(41, 128))])
