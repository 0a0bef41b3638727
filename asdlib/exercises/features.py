"""Checkers of chapter 3 (the input features): the Slaney Mel scale, frequency attention."""

from __future__ import annotations

import math

import torch

from asdlib.exercises import Mistake, expect_close, expect_shape, run_check

__all__ = ["check_frequency_attention_weights", "check_hz_to_mel", "slaney_hz_to_mel"]


def slaney_hz_to_mel(freq: torch.Tensor) -> torch.Tensor:
    """The Slaney Mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.

    Shapes:
        - freq: [*] in Hz
        - output: [*] in mels
    """
    freq = torch.as_tensor(freq, dtype=torch.float64)
    # Linear part: 200/3 Hz per mel
    mel = freq / (200.0 / 3.0)
    # Log part above 1 kHz: 27 mels per factor 6.4 in frequency, starting at mel 15
    log_step = math.log(6.4) / 27.0
    log_part = 15.0 + torch.log(freq.clamp(min=1000.0) / 1000.0) / log_step
    return torch.where(freq >= 1000.0, log_part, mel)


def check_hz_to_mel(fn):
    """Check a Slaney ``hz_to_mel(freq) -> mel`` (exercise of chapter 3) and print a verdict."""

    def check(fn):
        freq = torch.tensor([0.0, 100.0, 500.0, 999.0, 1000.0, 2000.0, 4000.0, 8000.0],
                            dtype=torch.float64)
        got = fn(freq.clone())
        if not torch.is_tensor(got):
            got = torch.as_tensor(got, dtype=torch.float64)
        expected = slaney_hz_to_mel(freq)
        htk = 2595.0 * torch.log10(1.0 + freq / 700.0)
        log_step = math.log(6.4) / 27.0
        log10_branch = torch.where(
            freq >= 1000.0, 15.0 + torch.log10(freq.clamp(min=1000.0) / 1000.0) / log_step,
            freq / (200.0 / 3.0),
        )
        mistakes = {
            "htk": (htk, "that is the HTK formula 2595 log10(1 + f / 700); the Slaney scale is "
                         "linear below 1 kHz (f / (200/3)) and logarithmic above"),
            "linear": (freq / (200.0 / 3.0), "the scale is linear everywhere: above 1 kHz it "
                                             "must turn logarithmic (15 + ln(f / 1000) / step)"),
            "log10": (log10_branch, "the linear part is right but the log part is not: use the "
                                    "natural logarithm, step = ln(6.4) / 27"),
        }
        expect_close(got, expected, "the Mel value", mistakes, rtol=1e-5, atol=1e-3)
        return "your Slaney Mel scale matches at 0 Hz to 8 kHz, on both sides of 1 kHz."

    return run_check("hz_to_mel", check, fn)


def check_frequency_attention_weights(fn):
    """Check ``fn(logmel) -> [batch, mels]``: sigmoid(max + mean over FRAMES); print a verdict.

    The frequency-axis twin of the TAgram weights of chapter 3: one weight per mel band.
    """

    def check(fn):
        gen = torch.Generator().manual_seed(0)
        batch, mels, frames = 2, 6, 9
        # Small values, so that the sigmoid is not saturated and mistakes show
        logmel = 0.5 * torch.randn(batch, mels, frames, generator=gen, dtype=torch.float64)
        got = fn(logmel.clone())
        if torch.is_tensor(got) and tuple(got.shape) == (batch, frames):
            raise Mistake(
                f"expected one weight per mel band, shape {(batch, mels)}, got one per frame "
                f"{tuple(got.shape)}: did you reduce over the mel axis (dim=-2, that gives the "
                "TAgram's frame weights) instead of over time (dim=-1)?"
            )
        if torch.is_tensor(got) and tuple(got.shape) == (batch, mels, frames):
            raise Mistake(
                "you returned a full [batch, mels, frames] map (the attended log-Mel?); the "
                f"exercise asks for the weights alone, shape {(batch, mels)}"
            )
        expect_shape(got, (batch, mels), "the band weights")
        peak, mean = logmel.amax(dim=-1), logmel.mean(dim=-1)
        mistakes = {
            "no sigmoid": (peak + mean, "weights must lie in (0, 1): did you forget the sigmoid?"),
            "max only": (torch.sigmoid(peak), "did you leave out the mean over frames (max + mean)?"),
            "mean only": (torch.sigmoid(mean), "did you leave out the max over frames (max + mean)?"),
            "softmax": (torch.softmax(peak + mean, dim=-1),
                        "a softmax over bands makes the bands compete; use a sigmoid per band, as "
                        "the TAgram does per frame"),
            "min": (torch.sigmoid(logmel.amin(dim=-1) + mean), "max, not min, over the frames"),
        }
        expected = torch.sigmoid(peak + mean)
        expect_close(got, expected, "the band weight", mistakes)
        return "one weight per mel band, sigmoid(max + mean over the frames)."

    return run_check("frequency attention weights", check, fn)
