"""asdlib.audio: reading clips with checks, counted warnings, atomic writes."""

import warnings

import numpy as np
import pytest
import soundfile as sf

from asdlib.audio import ClipError, ClipWarning, read_clip, read_clips, write_clip

RATE = 16000


def noise(n, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, n).astype(np.float32)


def test_write_then_read_round_trip(tmp_path):
    wav = noise(RATE)
    path = write_clip(tmp_path / "a" / "clip.wav", wav)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (RATE, 1, "PCM_16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to repair: no warning
        back = read_clip(path, RATE)
    assert back.dtype == np.float32 and back.shape == (RATE,)
    np.testing.assert_allclose(back, wav, atol=1 / 32768)
    assert [p.name for p in path.parent.iterdir()] == ["clip.wav"]  # no temporary left


def test_write_clip_is_atomic(tmp_path, monkeypatch):
    path = write_clip(tmp_path / "clip.wav", noise(100))
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sf, "write", broken)
    with pytest.raises(RuntimeError):
        write_clip(path, noise(200, seed=1))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["clip.wav"]


def test_write_clip_rejects_2d(tmp_path):
    with pytest.raises(ValueError, match="1-D"):
        write_clip(tmp_path / "x.wav", np.zeros((2, 10)))


def test_pad_and_crop(tmp_path):
    path = write_clip(tmp_path / "c.wav", noise(1000))
    with pytest.warns(ClipWarning, match="zero-padded"):
        padded = read_clip(path, 1500)
    assert padded.shape == (1500,) and np.all(padded[1000:] == 0)
    with pytest.warns(ClipWarning, match="cropped"):
        cropped = read_clip(path, 600)
    np.testing.assert_array_equal(cropped, padded[:600])


def test_resample_with_warning(tmp_path):
    t = np.arange(32000) / 32000
    path = tmp_path / "32k.wav"
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * 440 * t), 32000, subtype="PCM_16")
    with pytest.warns(ClipWarning, match="resampled to 16000 Hz"):
        wav = read_clip(path, RATE)
    expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)
    np.testing.assert_allclose(wav[100:-100], expected[100:-100], atol=0.01)


def test_stereo_keeps_the_asked_channel(tmp_path):
    left, right = noise(800), noise(800, seed=1)
    path = tmp_path / "st.wav"
    sf.write(str(path), np.stack([left, right], axis=1), RATE, subtype="FLOAT")
    with pytest.warns(ClipWarning, match="channel 0 was kept"):
        np.testing.assert_array_equal(read_clip(path, 800), left)
    with pytest.warns(ClipWarning, match="channel 1 was kept"):
        np.testing.assert_array_equal(read_clip(path, 800, channel=1), right)
    with pytest.raises(ClipError, match="channel=2"):
        read_clip(path, 800, channel=2)


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00", b"not audio at all" * 10])
def test_corrupt_file_names_the_file(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(ClipError) as info:
        read_clip(path, 100)
    assert info.value.path == path and "bad.wav" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_truncated_file_names_the_file(tmp_path):
    path = write_clip(tmp_path / "t.wav", noise(1000))
    path.write_bytes(path.read_bytes()[:44])  # header only: the data chunk is gone
    with pytest.raises(ClipError, match="t.wav"):
        read_clip(path, 1000)


def test_cut_off_samples_name_the_file(tmp_path):
    path = write_clip(tmp_path / "cut.wav", noise(1000))
    path.write_bytes(path.read_bytes()[: 44 + 1001])  # half of the samples are gone
    with pytest.raises(ClipError, match=r"cut.wav: truncated.*2000 bytes.*1001"):
        read_clip(path, 1000)


def test_missing_file(tmp_path):
    with pytest.raises(ClipError, match="nope.wav"):
        read_clip(tmp_path / "nope.wav", 10)


def test_read_clips_counts_warnings_once_per_kind(tmp_path):
    paths = [write_clip(tmp_path / f"s{i}.wav", noise(500, i)) for i in range(3)]
    paths += [write_clip(tmp_path / f"l{i}.wav", noise(1500, i)) for i in range(2)]
    paths += [write_clip(tmp_path / "ok.wav", noise(1000))]
    with pytest.warns(ClipWarning) as record:
        wavs, report = read_clips(paths, 1000, progress=False)
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2
    assert messages[0].startswith("2 clip(s) were longer than 0.0625 s and were cropped")
    assert messages[1].startswith("3 clip(s) were shorter")
    assert wavs.shape == (6, 1000) and wavs.dtype == np.float32
    assert report.counts == {"padded": 3, "cropped": 2}
    assert report.kept == list(range(6))


def test_read_clips_on_error(tmp_path):
    good = [write_clip(tmp_path / f"g{i}.wav", noise(100, i)) for i in range(2)]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"junk")
    paths = [good[0], bad, good[1]]
    with pytest.raises(ClipError, match="bad.wav"):
        read_clips(paths, 100, progress=False)
    with pytest.warns(ClipWarning, match=r"1 clip\(s\) could not be read and were skipped"):
        wavs, report = read_clips(paths, 100, on_error="skip", progress=False)
    assert wavs.shape == (2, 100) and report.kept == [0, 2]
    assert report.files["skipped"] == [bad]
    with pytest.raises(ValueError, match="on_error"):
        read_clips(paths, 100, on_error="ignore")
