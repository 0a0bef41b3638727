"""Tests of asdlib.features: the log-Mel spectrogram against torch primitives, shapes, errors."""

import re

import pytest
import torch
import torchaudio

from asdlib import models
from asdlib.features import LogMel, check_wave_shape, num_frames


def logmel_by_hand(wav, sample_rate=16000, n_fft=2048, hop_length=512, n_mels=128):
    """Independent log-Mel: torch.stft (Hann, centred, zero padded) + Slaney filter bank."""
    window = torch.hann_window(n_fft, dtype=wav.dtype)
    spec = torch.stft(
        wav, n_fft, hop_length, window=window, center=True, pad_mode="constant",
        return_complex=True,
    )
    # [batch, freqs, frames]
    power = spec.abs() ** 2
    fbank = torchaudio.functional.melscale_fbanks(
        n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate, norm="slaney", mel_scale="slaney"
    ).to(wav.dtype)
    # [batch, mels, frames]
    mel = torch.einsum("fm,bft->bmt", fbank, power)
    return 10 * torch.log10(mel + 2.220446049250313e-16)


def test_logmel_matches_hand_computation():
    torch.manual_seed(0)
    wav = 0.1 * torch.randn(2, 16000, dtype=torch.float64)
    expected = logmel_by_hand(wav)
    got = LogMel().double()(wav)
    # torchaudio builds its window and filter bank in float32: agreement to ~1e-6 dB
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-5)


def test_logmel_matches_hand_computation_other_settings():
    torch.manual_seed(1)
    wav = 0.1 * torch.randn(1, 8000, dtype=torch.float64)
    expected = logmel_by_hand(wav, n_fft=1024, hop_length=256, n_mels=64)
    got = LogMel(n_fft=1024, hop_length=256, n_mels=64).double()(wav)
    # torchaudio builds its window and filter bank in float32: agreement to ~1e-6 dB
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-5)


def test_default_settings_are_the_authors():
    logmel = LogMel()
    mel = logmel.mel
    assert (mel.sample_rate, mel.n_fft, mel.hop_length, mel.n_mels) == (16000, 2048, 512, 128)
    assert mel.win_length == 2048
    assert mel.spectrogram.center and mel.spectrogram.pad_mode == "constant"
    assert mel.mel_scale.norm == "slaney" and mel.mel_scale.mel_scale == "slaney"
    assert logmel.eps == 2.220446049250313e-16


def test_silence_gives_log_of_eps():
    out = LogMel()(torch.zeros(1, 1600))
    # 10 * log10(2.22e-16) = -156.5 dB everywhere
    torch.testing.assert_close(out, torch.full_like(out, -156.53559774527022))


@pytest.mark.parametrize("seconds, frames", [(1, 32), (2, 63), (4, 126), (10, 313)])
def test_shapes_for_clip_lengths(seconds, frames):
    samples = 16000 * seconds
    assert num_frames(samples) == frames
    out = LogMel()(torch.randn(1, samples))
    assert out.shape == (1, 128, frames)


def test_channel_axis_is_accepted():
    torch.manual_seed(2)
    wav = torch.randn(3, 16000)
    torch.testing.assert_close(LogMel()(wav.unsqueeze(1)), LogMel()(wav))


def test_num_frames_formula_and_errors():
    assert num_frames(160000) == 313
    assert num_frames(0) == 1
    assert num_frames(1023, hop_length=256) == 4
    with pytest.raises(ValueError, match="num_samples"):
        num_frames(-1)
    with pytest.raises(ValueError, match="hop_length"):
        num_frames(100, hop_length=0)


@pytest.mark.parametrize("shape", [(16000,), (2, 2, 16000), (1, 1, 1, 16000)])
def test_bad_rank_names_wav(shape):
    with pytest.raises(ValueError, match="wav must be"):
        LogMel()(torch.zeros(shape))


@pytest.mark.parametrize("shape", [(16000,), (2, 2, 16000), (1, 1, 1, 16000)])
def test_the_wave_check_names_the_argument_and_the_expected_shape(shape):
    """One check of a batch of waves (`check_wave_shape`), used by LogMel, TgramNet and ASDNet:
    the same message, naming the argument, the expected shapes and the shape it got."""
    expected = (r"clips must be \[batch, samples\] or \[batch, 1, samples\] .*got shape "
                + re.escape(str(shape)))
    with pytest.raises(ValueError, match=expected):
        check_wave_shape(torch.zeros(shape), "clips")
    bad = torch.zeros(shape)
    message = r"^wav must be \[batch, samples\] or \[batch, 1, samples\] .*got shape "
    for use in (LogMel(), models.TgramNet(num_frames=32),
                lambda w: models.ASDNet(2, num_samples=16000).stack(w, torch.zeros(1, 128, 32))):
        with pytest.raises(ValueError, match=message):
            use(bad)
    with pytest.raises(TypeError, match="clips must be a torch.Tensor"):
        check_wave_shape(bad.numpy(), "clips")
    with pytest.raises(ValueError, match="clips must hold at least one sample"):
        check_wave_shape(torch.zeros(2, 0), "clips")


def test_the_wave_check_gives_batch_by_samples():
    wav = torch.randn(3, 1, 100)
    assert check_wave_shape(wav).shape == (3, 100)
    assert torch.equal(check_wave_shape(wav), wav[:, 0])
    assert torch.equal(check_wave_shape(wav[:, 0]), wav[:, 0])


def test_integer_wav_is_rejected():
    with pytest.raises(TypeError, match="wav .*floating"):
        LogMel()(torch.zeros(1, 16000, dtype=torch.int16))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_forward_reads_no_values(bad):
    """No finiteness check in forward (a GPU sync per step): a NaN or Inf goes through. Such
    clips are refused where they enter, when read (tests/test_audio.py)."""
    wav = torch.zeros(1, 16000)
    wav[0, 5] = bad
    assert not torch.isfinite(LogMel()(wav)).all()
