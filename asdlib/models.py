r"""
TgramNet, TAgram, MobileFaceNet and the STgram / TASTgram networks

Chapter 3 of the book explains the three input views (Tgram, Sgram, TAgram); chapter 8 explains
the backbone and puts the networks together.

Paper: S. Choi and J.-W. Choi, "Noisy-ArcMix: Additive Noisy Angular Margin Loss Combined With
Mixup for Anomalous Sound Detection", ICASSP 2024, pp. 516-520
(https://arxiv.org/abs/2310.06364). STgram: Y. Liu et al., "Anomalous Sound Detection Using
Spectral-Temporal Information Fusion", ICASSP 2022.

A clip is seen three ways, each a `[mels, frames]` map:

* **Sgram**, the log-Mel spectrogram (`asdlib.features.LogMel`);
* **Tgram**, learned from the raw wave by `TgramNet`: a strided Conv1d that plays the role of
  the STFT, then three [LayerNorm over time, LeakyReLU, Conv1d] blocks;
* **TAgram**, the Sgram X (M mels) re-weighted per frame by a parameter-free temporal
  attention:

  .. math::

      w_t = \sigma\Big(\max_m X[m, t] + \frac{1}{M}\sum_m X[m, t]\Big),
      \qquad \text{TAgram}[m, t] = w_t\, X[m, t].

TASTgram stacks (Tgram, Sgram, TAgram) as 3 channels, STgram stacks (Sgram, Tgram) as 2; a
MobileFaceNet turns the stack into a 128-d embedding and an ArcFace head
(`asdlib.losses.ArcMarginHead`) into class logits.

Module and parameter names follow the authors' state dict (`tgramnet.conv_extrctor`, sic,
`mobilefacenet.blocks.0.conv.3`, `arcface.weight`, ...) so that their released weights load
directly with `from_reference`. Unlike the reference, the frame count of the LayerNorms and the
kernel of the global depthwise convolution (`linear7`) follow from the clip length instead of
being fixed to 10 s clips.
"""

import math
from collections.abc import Mapping

import torch
from torch import nn

from asdlib.features import check_wave_shape
from asdlib.features import num_frames as _num_frames
from asdlib.losses import ArcMarginHead

__all__ = [
    "TgramNet",
    "temporal_attention",
    "temporal_attention_weights",
    "TemporalAttention",
    "ConvBlock",
    "float32_islands",
    "keep_in_float32",
    "speed_up",
    "Bottleneck",
    "MobileFaceNet",
    "global_kernel_size",
    "MODELS",
    "ASDNet",
    "from_reference",
    "count_parameters",
]

# The authors' bottleneck settings: (expansion t, channels c, repeats n, first stride s)
BOTTLENECK_SETTING = ((2, 128, 2, 2), (4, 128, 2, 2), (4, 128, 2, 2))


# ----------------------------------------------------------------------------------------
# Tgram: the learned front end (chapter 3)
# ----------------------------------------------------------------------------------------


class TgramNet(nn.Module):
    """Learned time-frequency map from the raw wave (the Tgram).

    A Conv1d with `n_mels` filters of `win_length` samples, stride `hop_length` and padding
    `win_length // 2` frames the wave like a centred STFT (`samples // hop_length + 1` frames,
    the frame count of `asdlib.features.LogMel`). Three blocks of
    [LayerNorm over the time axis, LeakyReLU(0.2), Conv1d 3-tap] follow.

    The LayerNorm is over the TIME axis (`normalized_shape = num_frames`), as in the reference,
    so a TgramNet only accepts clips of the length it was built for.

    Args:
        n_mels: number of output channels (the "mel" axis of the Tgram).
        num_frames: frame count of the clips (313 for 10 s at hop 512).
        win_length: kernel of the framing convolution in samples (even).
        hop_length: stride of the framing convolution in samples.

    Shapes:
        - wav: `[batch, 1, samples]` or `[batch, samples]`.
        - output: `[batch, n_mels, num_frames]`.
    """

    def __init__(
        self,
        n_mels: int = 128,
        num_frames: int = 313,
        win_length: int = 1024,
        hop_length: int = 512,
    ):
        super().__init__()
        if win_length <= 0 or win_length % 2:
            raise ValueError(f"win_length must be a positive even int, got {win_length!r}")
        self.n_mels = n_mels
        self.num_frames = num_frames
        self.win_length = win_length
        self.hop_length = hop_length
        # Framing convolution: one filter per output channel (name as in the reference, sic)
        self.conv_extrctor = nn.Conv1d(
            1, n_mels, win_length, stride=hop_length, padding=win_length // 2, bias=False
        )
        # Three [LayerNorm over time, LeakyReLU, 3-tap Conv1d] blocks
        self.conv_encoder = nn.Sequential(
            *[
                nn.Sequential(
                    nn.LayerNorm(num_frames),
                    nn.LeakyReLU(0.2),
                    nn.Conv1d(n_mels, n_mels, kernel_size=3, padding=1, bias=False),
                )
                for _ in range(3)
            ]
        )

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Compute the Tgram of a batch of waves (see the class docstring for shapes)."""
        # [batch, 1, samples]
        wav = check_wave_shape(wav, "wav").unsqueeze(1)
        frames = _num_frames(wav.shape[-1], self.hop_length)
        if frames != self.num_frames:
            raise ValueError(
                f"wav has {wav.shape[-1]} samples ({frames} frames) but this TgramNet was built "
                f"for {self.num_frames} frames, i.e. clips of "
                f"{_samples_for(self.num_frames, self.hop_length)} samples at hop "
                f"{self.hop_length}; build a model for this clip length"
            )
        # Framing convolution: [batch, n_mels, frames]
        tgram = self.conv_extrctor(wav)
        # Encoder blocks: [batch, n_mels, frames]
        return self.conv_encoder(tgram)


def _samples_for(num_frames: int, hop_length: int) -> str:
    """The range of clip lengths (in samples) that give `num_frames` frames, as text."""
    low = (num_frames - 1) * hop_length
    high = num_frames * hop_length - 1
    return f"{low}-{high}"


# ----------------------------------------------------------------------------------------
# TAgram: temporal attention (chapter 3)
# ----------------------------------------------------------------------------------------


def temporal_attention_weights(logmel: torch.Tensor) -> torch.Tensor:
    """Per-frame weight of the TAgram: sigmoid(max over mels + mean over mels).

    Args:
        logmel: log-Mel spectrograms (any `[..., mels, frames]` layout).

    Returns:
        One weight in (0, 1) per frame.

    Shapes:
        - logmel: `[..., mels, frames]`, e.g. `[batch, mels, frames]`.
        - output: `[..., frames]`.
    """
    # Max and mean over the mel axis: [..., frames] each
    peak = logmel.amax(dim=-2)
    mean = logmel.mean(dim=-2)
    # [..., frames]
    return torch.sigmoid(peak + mean)


def temporal_attention(logmel: torch.Tensor) -> torch.Tensor:
    """TAgram: every mel bin of frame t multiplied by the frame's attention weight.

    Args:
        logmel: log-Mel spectrograms.

    Returns:
        The temporally attended log-Mel spectrograms (same shape as `logmel`).

    Shapes:
        - logmel: `[..., mels, frames]`.
        - output: `[..., mels, frames]`.
    """
    # Broadcast the weights over mels: [..., 1, frames]
    weight = temporal_attention_weights(logmel).unsqueeze(-2)
    # [..., mels, frames]
    return logmel * weight


class TemporalAttention(nn.Module):
    """`temporal_attention` as a module (no parameters); `weights(logmel)` gives w_t alone.

    Shapes:
        - logmel: `[..., mels, frames]`.
        - output: `[..., mels, frames]`.
    """

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        return temporal_attention(logmel)

    @staticmethod
    def weights(logmel: torch.Tensor) -> torch.Tensor:
        """Per-frame attention weights, `[..., frames]` (for figures)."""
        return temporal_attention_weights(logmel)


# ----------------------------------------------------------------------------------------
# MobileFaceNet backbone (chapter 8)
# ----------------------------------------------------------------------------------------


class ConvBlock(nn.Module):
    """Conv2d (no bias) + BatchNorm2d + PReLU per channel.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel, int or (height, width).
        stride: stride.
        padding: zero padding.
        depthwise: one filter per input channel (`groups = in_channels`).
        linear: no PReLU (a "linear" block).

    Shapes:
        - x: `[batch, in_channels, height, width]`.
        - output: `[batch, out_channels, height', width']`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        depthwise: bool = False,
        linear: bool = False,
    ):
        super().__init__()
        groups = in_channels if depthwise else 1
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)
        # A linear block has no activation (and no `prelu` entry in the state dict)
        self.prelu = None if linear else nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        if self.prelu is not None:
            x = self.prelu(x)
        return x


class Bottleneck(nn.Module):
    """Inverted residual block of MobileFaceNet (MobileNetV2 style).

    1x1 expansion + BN + PReLU, 3x3 depthwise with `stride` + BN + PReLU, 1x1 projection + BN;
    the input is added back when `stride == 1` and `in_channels == out_channels`. The layers
    live in one `nn.Sequential` named `conv` (indices 0..7, as in the reference state dict).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of the depthwise convolution.
        expansion: width factor t of the hidden layer.

    Shapes:
        - x: `[batch, in_channels, height, width]`.
        - output: `[batch, out_channels, ceil(height / stride), ceil(width / stride)]`.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        self.residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            # 0-2: 1x1 expansion
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            # 3-5: 3x3 depthwise
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            # 6-7: 1x1 linear projection
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual:
            return x + self.conv(x)
        return self.conv(x)


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def global_kernel_size(input_size=(128, 313), bottleneck_setting=BOTTLENECK_SETTING):
    """Kernel of MobileFaceNet's global depthwise convolution (`linear7`) for an input size.

    It is the size of the map that reaches `linear7`: conv1 (k3, s2, p1), then one 3x3 (p1)
    convolution with stride s per bottleneck group. (8, 20) for 128 mels x 313 frames.

    Args:
        input_size: (mels, frames) of the input maps.
        bottleneck_setting: the (t, c, n, s) rows of the backbone.

    Returns:
        (height, width) of the kernel.
    """
    height, width = input_size
    if height < 1 or width < 1:
        raise ValueError(f"input_size must be two positive ints (mels, frames), got {input_size!r}")
    # conv1: 3x3, stride 2, padding 1
    height, width = _conv_out(height, 3, 2, 1), _conv_out(width, 3, 2, 1)
    # first block of each group: 3x3 depthwise with stride s, padding 1
    for _, _, _, stride in bottleneck_setting:
        height, width = _conv_out(height, 3, stride, 1), _conv_out(width, 3, stride, 1)
    return (height, width)


class MobileFaceNet(nn.Module):
    """MobileFaceNet variant that maps stacked feature maps to an embedding.

    conv1 (in -> 64, 3x3, stride 2), dw_conv1 (depthwise 3x3), the inverted residual
    bottlenecks, conv2 (128 -> 512, 1x1), linear7 (global depthwise linear convolution whose
    kernel covers the whole remaining map, computed from `input_size`), linear1 (512 ->
    `embedding_dim`, 1x1, linear), flattened. The classifier `fc_out` of the reference is left
    out: the ArcFace head replaces it.

    Args:
        in_channels: number of stacked maps (3 for TASTgram, 2 for STgram).
        embedding_dim: size of the embedding.
        input_size: (mels, frames) of the input maps.
        bottleneck_setting: (expansion t, channels c, repeats n, first stride s) per group.

    Shapes:
        - x: `[batch, in_channels, mels, frames]`.
        - output: `[batch, embedding_dim]`.
    """

    def __init__(
        self,
        in_channels: int = 3,
        embedding_dim: int = 128,
        input_size=(128, 313),
        bottleneck_setting=BOTTLENECK_SETTING,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.input_size = tuple(input_size)
        self.embedding_dim = embedding_dim
        self.conv1 = ConvBlock(in_channels, 64, 3, 2, 1)
        self.dw_conv1 = ConvBlock(64, 64, 3, 1, 1, depthwise=True)
        # Inverted residual groups; only the first block of a group has stride s
        blocks = []
        channels = 64
        for expansion, out_channels, repeats, stride in bottleneck_setting:
            for i in range(repeats):
                block_stride = stride if i == 0 else 1
                blocks.append(Bottleneck(channels, out_channels, block_stride, expansion))
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = ConvBlock(channels, 512, 1)
        # Global depthwise convolution over the whole remaining map: [batch, 512, 1, 1]
        self.global_kernel = global_kernel_size(input_size, bottleneck_setting)
        self.linear7 = ConvBlock(512, 512, self.global_kernel, depthwise=True, linear=True)
        self.linear1 = ConvBlock(512, embedding_dim, 1, linear=True)
        self._init_weights()

    def _init_weights(self):
        """Conv weights ~ N(0, sqrt(2 / (k_h * k_w * out_channels))); BN weight 1, bias 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed a batch of stacked maps (see the class docstring for shapes)."""
        expected = (self.in_channels, *self.input_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"x must be [batch, {expected[0]}, {expected[1]}, {expected[2]}] "
                f"(channels, mels, frames), got {tuple(x.shape)}"
            )
        # [batch, 64, mels/2, frames/2]
        x = self.dw_conv1(self.conv1(x))
        # [batch, 128, *global_kernel]
        x = self.blocks(x)
        # [batch, 512, *global_kernel]
        x = self.conv2(x)
        # [batch, 512, 1, 1]
        x = self.linear7(x)
        # [batch, embedding_dim, 1, 1]
        x = self.linear1(x)
        # [batch, embedding_dim]
        return x.flatten(1)


def float32_islands(model: nn.Module) -> list:
    """The layers of an `ASDNet` that bfloat16 slows down on a CPU: the Tgram's framing
    convolution, MobileFaceNet's first convolution and its stride-2 depthwise convolutions.

    Their bfloat16 backward is 5-10x slower than float32 on the book's CPU (the strided and
    grouped convolutions have no fast bfloat16 kernel there), so under CPU autocast they are
    worth keeping in float32 (`keep_in_float32`).
    """
    islands = [model.tgramnet.conv_extrctor, model.mobilefacenet.conv1.conv]
    for block in model.mobilefacenet.blocks:
        depthwise = block.conv[3]
        if depthwise.stride != (1, 1):
            islands.append(depthwise)
    return islands


def keep_in_float32(modules) -> None:
    """Run each module in float32 even under autocast (its input is cast up; the state dict
    and the maths are unchanged). Applied in place, once."""
    for module in modules:
        if getattr(module, "_float32_island", False):
            continue
        forward = module.forward

        def float32_forward(x, _forward=forward):
            with torch.autocast(x.device.type, enabled=False):
                return _forward(x.float())

        module.forward = float32_forward
        module._float32_island = True


def speed_up(model: nn.Module, channels_last: bool = True, compile_model: bool = False,
             amp_dtype=None, device_type: str = "cpu"):
    """The speed settings of the training loop; they change how fast, not what is computed.

    `channels_last`: the NHWC memory layout (about 1.4x faster on this book's CPU: PReLU and
    convolution backward). `compile_model`: `torch.compile` of the Tgram network and the
    MobileFaceNet, in place, so that the state-dict names stay those of the reference. With
    bfloat16 autocast on a CPU (`amp_dtype`), the layers of `float32_islands`
    stay in float32. `asdlib.bench` times the model exactly as set up here.
    """
    if amp_dtype == torch.bfloat16 and device_type == "cpu":
        keep_in_float32(float32_islands(model))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile_model:
        model.tgramnet.compile()
        model.mobilefacenet.compile()
    return model


# ----------------------------------------------------------------------------------------
# STgram / TASTgram networks (chapter 8)
# ----------------------------------------------------------------------------------------

#: The networks, by name: TASTgram (Tgram, Sgram, TAgram) and STgram (Sgram, Tgram).
MODELS = ("tastgram", "stgram")


class ASDNet(nn.Module):
    """Tgram + Sgram (+ TAgram) -> MobileFaceNet -> ArcFace head.

    `model="tastgram"` stacks (Tgram, Sgram, TAgram), `model="stgram"` stacks (Sgram, Tgram),
    as the reference implementations do; the argument has the name and the values of
    `asdlib.profiles.TrainConfig.model`. The frame count, the LayerNorm size and the `linear7`
    kernel all follow from `num_samples`. The constructor arguments are kept in `.config`, so
    `ASDNet(**net.config)` rebuilds the same network (for checkpoints).

    Args:
        num_classes: number of machine-ID classes (41 for DCASE 2020 Task 2).
        model: which network, "tastgram" or "stgram" (`MODELS`).
        num_samples: clip length in samples (160000: 10 s at 16 kHz).
        n_mels: mel bands of the log-Mel input (and Tgram channels).
        hop_length: hop of the log-Mel and of the Tgram framing, in samples.
        win_length: kernel of the Tgram framing convolution, in samples.
        margin: m of the ArcFace head, in radians.
        scale: s of the ArcFace head.
        sub_centers: sub-centres per class of the ArcFace head.

    Shapes:
        - wav: `[batch, samples]` or `[batch, 1, samples]`.
        - logmel: `[batch, n_mels, frames]` or `[batch, 1, n_mels, frames]`.
        - labels: `[batch]` (int64) or None.
        - embedding: `[batch, 128]`; logits: `[batch, num_classes]`.
    """

    def __init__(
        self,
        num_classes: int,
        model: str = "tastgram",
        num_samples: int = 160000,
        n_mels: int = 128,
        hop_length: int = 512,
        win_length: int = 1024,
        margin: float = 0.7,
        scale: float = 30.0,
        sub_centers: int = 1,
    ):
        super().__init__()
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {model!r}")
        self.config = dict(
            num_classes=num_classes,
            model=model,
            num_samples=num_samples,
            n_mels=n_mels,
            hop_length=hop_length,
            win_length=win_length,
            margin=margin,
            scale=scale,
            sub_centers=sub_centers,
        )
        self.model = model
        self.n_mels = n_mels
        self.num_frames = _num_frames(num_samples, hop_length)
        self.tgramnet = TgramNet(n_mels, self.num_frames, win_length, hop_length)
        self.temporal_attention = TemporalAttention()
        in_channels = 3 if model == "tastgram" else 2
        self.mobilefacenet = MobileFaceNet(in_channels, 128, (n_mels, self.num_frames))
        self.arcface = ArcMarginHead(num_classes, 128, margin, scale, sub_centers)

    def stack(self, wav: torch.Tensor, logmel: torch.Tensor) -> torch.Tensor:
        """The stacked input maps of the backbone.

        Returns:
            (Tgram, Sgram, TAgram) for TASTgram, (Sgram, Tgram) for STgram.

        Shapes:
            - wav: `[batch, samples]` or `[batch, 1, samples]`.
            - logmel: `[batch, n_mels, frames]` or `[batch, 1, n_mels, frames]`.
            - output: `[batch, 3 or 2, n_mels, frames]`.
        """
        wav, logmel = self._check_inputs(wav, logmel)
        # Learned map from the wave: [batch, 1, n_mels, frames]
        tgram = self.tgramnet(wav).unsqueeze(1)
        # [batch, 1, n_mels, frames]
        logmel = logmel.unsqueeze(1)
        if self.model == "stgram":
            # [batch, 2, n_mels, frames]
            return torch.cat((logmel, tgram), dim=1)
        # Temporally attended log-Mel: [batch, 1, n_mels, frames]
        tagram = self.temporal_attention(logmel)
        # [batch, 3, n_mels, frames]
        return torch.cat((tgram, logmel, tagram), dim=1)

    def embed(self, wav: torch.Tensor, logmel: torch.Tensor) -> torch.Tensor:
        """The embedding network alone: `[batch, 128]` embedding of each clip."""
        return self.mobilefacenet(self.stack(wav, logmel))

    def forward(self, wav: torch.Tensor, logmel: torch.Tensor, labels=None):
        """Logits and embedding of a batch of clips.

        Args:
            wav: raw waves.
            logmel: their log-Mel spectrograms (`asdlib.features.LogMel`).
            labels: class of each clip, which gets the angular margin; None for the
                margin-free scaled cosine `scale * cos(theta)`.

        Returns:
            `(logits, embedding)`, as the reference's forward.

        Shapes:
            - wav: `[batch, samples]` or `[batch, 1, samples]`.
            - logmel: `[batch, n_mels, frames]` or `[batch, 1, n_mels, frames]`.
            - labels: `[batch]` or None.
            - logits: `[batch, num_classes]`; embedding: `[batch, 128]`.
        """
        embedding = self.embed(wav, logmel)
        logits = self.arcface(embedding, labels)
        return logits, embedding

    def _check_inputs(self, wav: torch.Tensor, logmel: torch.Tensor):
        """Check `wav` and `logmel`; return them as `[batch, samples]`, `[batch, mels, frames]`."""
        # Waves: [batch, samples]
        wav = check_wave_shape(wav, "wav")
        if not isinstance(logmel, torch.Tensor):
            raise TypeError(f"logmel must be a torch.Tensor, got {type(logmel).__name__}")
        if not logmel.is_floating_point():
            raise TypeError(f"logmel must have a floating-point dtype, got {logmel.dtype}")
        # Log-Mels: [batch, mels, frames]
        if logmel.dim() == 4 and logmel.shape[1] == 1:
            logmel = logmel.squeeze(1)
        if logmel.dim() != 3:
            raise ValueError(
                f"logmel must be [batch, mels, frames] or [batch, 1, mels, frames], "
                f"got {tuple(logmel.shape)}"
            )
        if wav.shape[0] != logmel.shape[0]:
            raise ValueError(
                f"wav and logmel must have the same batch size, got {wav.shape[0]} (wav) "
                f"and {logmel.shape[0]} (logmel)"
            )
        if logmel.shape[1] != self.n_mels:
            raise ValueError(
                f"logmel must have {self.n_mels} mel bands, got {logmel.shape[1]}"
            )
        if logmel.shape[2] != self.num_frames:
            raise ValueError(
                f"logmel must have {self.num_frames} frames (the clip length this model was "
                f"built for: {self.config['num_samples']} samples), got {logmel.shape[2]}"
            )
        hop_length = self.config["hop_length"]
        if _num_frames(wav.shape[1], hop_length) != self.num_frames:
            raise ValueError(
                f"wav must have {self.config['num_samples']} samples (or any length giving "
                f"{self.num_frames} frames: {_samples_for(self.num_frames, hop_length)}), "
                f"got {wav.shape[1]}"
            )
        # No value checks here (they would cost a device sync per step): clips are checked
        # when they are read (asdlib.audio)
        return wav, logmel


# ----------------------------------------------------------------------------------------
# Loading the authors' weights, counting parameters
# ----------------------------------------------------------------------------------------


def _shape(tensor) -> tuple:
    return tuple(tensor.shape)


def from_reference(state_dict: Mapping, strict: bool = True) -> ASDNet:
    """Build the 10 s TASTgram and load a state dict of the authors' implementation.

    Accepted forms: the plain `state_dict()` of their model, the same wrapped as
    `{"model": state_dict}` (a training checkpoint), and keys prefixed with `module.` (a
    model saved through `nn.DataParallel`). The number of classes is read from
    `arcface.weight` (41 for DCASE 2020 Task 2). The reference's unused classifier
    `mobilefacenet.fc_out.{weight,bias}` is checked for shape ([classes, 128], [classes]) and
    dropped. The clip length is 10 s (313 frames, `linear7` kernel (8, 20)), margin 0.7 and
    scale 30, as in the reference.

    Args:
        state_dict: the authors' state dict (tensors by name).
        strict: when False, missing and unexpected names are ignored; wrong shapes always
            raise.

    Returns:
        An `ASDNet(num_classes, model="tastgram")` in eval mode, on the CPU (move it with `.to(device)`), whose
        `forward(wav, logmel, labels)` returns `(logits, embedding)` like the authors' forward.

    Raises:
        ValueError: listing every missing or unexpected tensor name and every shape mismatch
            (expected vs got).
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of tensors, got {type(state_dict).__name__}")
    # Unwrap a training checkpoint {"model": state_dict}
    if "model" in state_dict and isinstance(state_dict["model"], Mapping):
        state_dict = state_dict["model"]
    # Strip the DataParallel prefix
    state_dict = {
        (key[len("module."):] if key.startswith("module.") else key): value
        for key, value in state_dict.items()
    }
    if "arcface.weight" not in state_dict:
        raise ValueError(
            "state_dict has no 'arcface.weight' (expected shape (num_classes, 128)); "
            "cannot infer the number of classes"
        )
    num_classes = state_dict["arcface.weight"].shape[0]
    model = ASDNet(num_classes, model="tastgram")
    expected = {key: _shape(value) for key, value in model.state_dict().items()}
    # The unused classifier of the reference: checked, then dropped
    expected_extra = {
        "mobilefacenet.fc_out.weight": (num_classes, 128),
        "mobilefacenet.fc_out.bias": (num_classes,),
    }
    problems = []
    for key, value in state_dict.items():
        want = expected.get(key, expected_extra.get(key))
        if want is None:
            if strict:
                problems.append(f"unexpected: {key} (got {_shape(value)})")
        elif _shape(value) != want:
            problems.append(f"wrong shape: {key} (expected {want}, got {_shape(value)})")
    if strict:
        for key, want in expected.items():
            if key not in state_dict:
                problems.append(f"missing: {key} (expected {want})")
    if problems:
        raise ValueError(
            f"state_dict does not match the {num_classes}-class 10 s TASTgram:\n  "
            + "\n  ".join(problems)
        )
    # Load everything but fc_out (and, when not strict, names we do not know)
    kept = {key: value for key, value in state_dict.items() if key in expected}
    model.load_state_dict(kept, strict=strict)
    return model.eval()


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of a model (buffers such as BN running statistics excluded).

    The 41-class 10 s TASTgram (`ASDNet(41)`) has 1,156,566 parameters (ArcFace head included); the
    authors' model has 5,289 more, 1,161,855, because it also holds the unused classifier
    `fc_out` (Linear 128 -> 41). Both round to the "about 1.16 M" of the reference.

    Args:
        model: any module.
        trainable_only: count only parameters with `requires_grad`.

    Returns:
        The parameter count.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
