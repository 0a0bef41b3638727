r"""
The log-Mel spectrogram (Sgram)

Chapter 3 of the book (the three input views) explains this module.

S. Choi and J.-W. Choi, "Noisy-ArcMix: Additive Noisy Angular Margin Loss Combined With Mixup
for Anomalous Sound Detection", ICASSP 2024, pp. 516-520, feed their TASTgram network with three
views of a clip. This module computes the hand-crafted one, the log-Mel spectrogram or *Sgram*:

.. math::

    \text{Sgram}[m, t] = 10 \log_{10}\Big(\sum_f F[m, f]\, \lvert X[f, t]\rvert^2 + \epsilon\Big)

where X is the short-time Fourier transform of the wave (Hann window of `n_fft` samples,
centred frames, zero padding), F the Slaney-normalised Slaney-scale Mel filter bank and
epsilon the float64 machine epsilon, exactly as in the authors' implementation. With the
default settings a 10 s clip at 16 kHz (160 000 samples) gives 128 mels x 313 frames.

The other two views (the learned Tgram and the temporally attended TAgram) are in
`asdlib.models`.
"""

import torch
import torchaudio
from torch import nn

__all__ = ["LogMel", "check_wave_shape", "num_frames"]

# float64 machine epsilon, added before the logarithm by the authors' code
EPS = 2.220446049250313e-16


def num_frames(num_samples: int, hop_length: int = 512) -> int:
    """Number of frames of a centred STFT (and of `TgramNet`) for a clip.

    Centred framing pads the wave by half a window on each side, so every hop starts a frame:
    `num_samples // hop_length + 1`. A 10 s clip at 16 kHz gives 313 frames.

    Args:
        num_samples: length of the wave in samples (>= 0).
        hop_length: hop between frames in samples (> 0).

    Returns:
        The frame count.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"num_samples must be a non-negative int, got {num_samples!r}")
    if isinstance(hop_length, bool) or not isinstance(hop_length, int) or hop_length <= 0:
        raise ValueError(f"hop_length must be a positive int, got {hop_length!r}")
    return num_samples // hop_length + 1


class LogMel(nn.Module):
    """Log-Mel spectrogram in decibels (the Sgram), with the authors' settings by default.

    A torchaudio `MelSpectrogram` (Hann window of `n_fft` samples, centred frames, zero padding,
    Slaney filter bank on the Slaney Mel scale) followed by `10 * log10(mel + eps)`.
    `LogMel()` with no arguments reproduces the authors' features exactly.

    Args:
        sample_rate: sampling rate of the wave in Hz.
        n_fft: FFT size, also the window length, in samples.
        hop_length: hop between frames in samples.
        n_mels: number of Mel bands.
        power: exponent of the magnitude (2.0: power spectrogram).
        eps: added to the Mel energies before the logarithm.

    Shapes:
        - wav: `[batch, samples]` or `[batch, 1, samples]`, floating point.
        - output: `[batch, n_mels, frames]` with `frames = samples // hop_length + 1`.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 2048,
        hop_length: int = 512,
        n_mels: int = 128,
        power: float = 2.0,
        eps: float = EPS,
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.eps = eps
        # Power Mel spectrogram; the window and the filter bank are buffers, so `.to(device)`
        # moves them with the module
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            n_mels=n_mels,
            power=power,
            pad_mode="constant",
            norm="slaney",
            mel_scale="slaney",
        )

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Compute the log-Mel spectrogram of a batch of waves.

        Args:
            wav: the waves.

        Returns:
            The log-Mel spectrogram in dB.

        Shapes:
            - wav: `[batch, samples]` or `[batch, 1, samples]`.
            - output: `[batch, n_mels, samples // hop_length + 1]`.
        """
        wav = check_wave_shape(wav)
        # Mel energies
        mel = self.mel(wav)
        # [batch, n_mels, frames]
        return 10.0 * torch.log10(mel + self.eps)

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, "
            f"hop_length={self.hop_length}, n_mels={self.n_mels}"
        )


def check_wave_shape(wav: torch.Tensor, name: str = "wav") -> torch.Tensor:
    """Check a batch of float waves and return it as `[batch, samples]`.

    The one check of a batch of waves: `LogMel`, `asdlib.models.TgramNet` and
    `asdlib.models.ASDNet` all call it, so a wrong input gets the same message everywhere.

    Args:
        wav: the waves.
        name: the argument's name, for the error messages.

    Returns:
        `wav` as `[batch, samples]` (a mono channel axis of size 1 squeezed away).

    Raises:
        TypeError: `wav` is not a floating-point torch tensor.
        ValueError: `wav` is not `[batch, samples]` or `[batch, 1, samples]`, or holds no
            sample; the message names the argument, the expected shape and the shape it got.

    Shapes:
        - wav: `[batch, samples]` or `[batch, 1, samples]`.
        - output: `[batch, samples]`.
    """
    if not isinstance(wav, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(wav).__name__}")
    if not wav.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {wav.dtype}")
    if not (wav.dim() == 2 or (wav.dim() == 3 and wav.shape[1] == 1)):
        raise ValueError(f"{name} must be [batch, samples] or [batch, 1, samples] (one mono "
                         f"wave per clip), got shape {tuple(wav.shape)}")
    if wav.dim() == 3:
        # [batch, samples]
        wav = wav.squeeze(1)
    if wav.shape[-1] == 0:
        raise ValueError(f"{name} must hold at least one sample, got 0 samples")
    return wav
