"""bfloat16 on a CPU (`--amp bf16`): it tracks float32, and the float32 islands stay float32."""

from __future__ import annotations

import pytest
import torch

from asdlib import loop, models, runtime
from asdlib.profiles import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: bfloat16 keeps 8 bits of mantissa (float32: 24): a relative rounding of 2**-9 = 0.2 % per
#: operation. Measured on the smoke step (AMD EPYC, avx512_bf16): the loss 0.17-0.21 % from
#: float32's, the gradient's cosine with float32's 0.984; the tolerances leave room for CPUs
#: whose bfloat16 kernels (AMX, or emulated) round otherwise.
LOSS_RTOL = 0.02
GRADIENT_COSINE = 0.95


def _one_step(config, amp_dtype, wav, labels):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = config.build_model(4)
    model = models.speed_up(model, amp_dtype=amp_dtype, device_type="cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    step = loop.Step(model, optimizer, config.mode, config.build_logmel(), alpha=config.alpha,
                     amp_dtype=amp_dtype)
    loss = loop.train_step(step, wav, labels, torch.Generator().manual_seed(0))
    gradient = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return float(loss), gradient


@pytest.mark.parametrize("model, mode", [("tastgram", "noisy_arcmix"), ("stgram", "arcface")])
def test_a_bf16_step_tracks_its_float32_twin(model, mode):
    config = TrainConfig.from_profile("smoke", model=model, mode=mode)
    generator = torch.Generator().manual_seed(1)
    wav = 0.1 * torch.randn(8, config.num_samples, generator=generator)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    loss32, grad32 = _one_step(config, None, wav, labels)
    loss16, grad16 = _one_step(config, torch.bfloat16, wav, labels)
    assert loss16 == pytest.approx(loss32, rel=LOSS_RTOL)
    cosine = float(torch.nn.functional.cosine_similarity(grad32, grad16, dim=0))
    assert cosine > GRADIENT_COSINE, cosine


def test_the_float32_islands_compute_in_float32_under_autocast():
    config = TrainConfig.from_profile("smoke")
    model = config.build_model(4)
    islands = models.float32_islands(model)
    # the Tgram framing, MobileFaceNet's first convolution, and one stride-2 depthwise
    # convolution per bottleneck group whose first stride is 2
    strided = sum(1 for *_, stride in models.BOTTLENECK_SETTING if stride == 2)
    assert len(islands) == 2 + strided
    models.keep_in_float32(islands)
    models.keep_in_float32(islands)  # twice: still one wrapper
    seen = {}

    def record(module, inputs, output):
        seen[id(module)] = output.dtype

    for module in islands:
        module.register_forward_hook(record)
    wav = 0.1 * torch.randn(2, config.num_samples)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.embed(wav, config.build_logmel()(wav))
    assert set(seen.values()) == {torch.float32} and len(seen) == len(islands)
    # the state dict is the network's own
    assert set(model.state_dict()) == set(config.build_model(4).state_dict())


def test_cpu_autocast_is_float32_unless_bf16_is_asked():
    cpu = torch.device("cpu")
    assert [runtime.autocast_dtype(a, cpu) for a in ("auto", "off", "fp16", "bf16")] == [
        None, None, None, torch.bfloat16]
    assert isinstance(runtime.native_bf16(), bool)
