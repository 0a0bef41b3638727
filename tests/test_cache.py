"""asdlib.cache: the streamed clip cache and its Dataset."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from asdlib import audio, cache, dcase, store
from asdlib.audio import ClipError, ClipWarning, read_clip, write_clip

RATE = 16000
NUM_SAMPLES = 1600  # 0.1 s clips keep the tests fast


@pytest.fixture
def root(tmp_path):
    """A small DCASE tree of real wav files: 2 types x 2 IDs x (3 train + 1 test) clips."""
    rng = np.random.default_rng(0)
    for machine_type, ids in {"fan": ("id_00", "id_02"), "valve": ("id_04", "id_06")}.items():
        for machine_id in ids:
            for n in range(3):
                write_clip(tmp_path / "data" / machine_type / "train" /
                           f"normal_{machine_id}_{n:08d}.wav", rng.uniform(-0.8, 0.8, NUM_SAMPLES))
            write_clip(tmp_path / "data" / machine_type / "test" /
                       f"anomaly_{machine_id}_00000000.wav", rng.uniform(-0.8, 0.8, NUM_SAMPLES // 2))
    return tmp_path / "data"


@pytest.fixture
def index(root):
    return dcase.build_index(root)


def test_round_trip_labels_and_length(index, tmp_path):
    with pytest.warns(ClipWarning, match="4 clip.*zero-padded"):  # the short test clips
        path = cache.build_cache(index, tmp_path / "cache", NUM_SAMPLES, progress=False)
    assert path.name.startswith("clips-") and store.is_complete(path)
    dataset = cache.open_cache(path)
    assert len(dataset) == len(index) == 16
    cmap = dcase.class_map(index)
    assert cmap == {("fan", "id_00"): 0, ("fan", "id_02"): 1, ("valve", "id_04"): 2,
                    ("valve", "id_06"): 3}
    for i in range(len(index)):
        wav, label, row = dataset[i]
        assert wav.dtype == torch.float32 and wav.shape == (NUM_SAMPLES,)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClipWarning)  # the short test clips are padded
            expected = read_clip(index["path"][i], NUM_SAMPLES)
        # PCM16 sources come back exactly; the tolerance is the int16 step
        np.testing.assert_allclose(wav.numpy(), expected, atol=1 / 32768)
        assert row == i
        assert label == cmap[(index["machine_type"][i], index["machine_id"][i])]
    assert dataset.index["path"].tolist() == index["path"].tolist()
    assert dataset.wavs.shape == (16, NUM_SAMPLES) and dataset.wavs.dtype == np.int16
    batch = next(iter(DataLoader(dataset, batch_size=5, shuffle=False)))
    assert batch[0].shape == (5, NUM_SAMPLES) and batch[1].tolist() == dataset.labels[:5].tolist()
    with pytest.raises(IndexError):
        dataset[16]


def test_dataloader_workers_read_the_cache(index, tmp_path):
    dataset = cache.cached_dataset(index[index["split"] == "train"], tmp_path / "c", NUM_SAMPLES,
                                   progress=False)
    loader = DataLoader(dataset, batch_size=4, num_workers=2, shuffle=False)
    wavs = torch.cat([batch[0] for batch in loader])
    np.testing.assert_allclose(wavs.numpy(), dataset.wavs / 32768.0)


def test_chunking_across_several_chunks(index, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "CHUNK_CLIPS", 3)  # 12 training clips -> 4 chunks
    train = index[index["split"] == "train"]
    dataset = cache.cached_dataset(train, tmp_path / "c", NUM_SAMPLES, progress=False)
    for i in (0, 2, 3, 11):
        np.testing.assert_allclose(dataset[i][0].numpy(), read_clip(train["path"].iloc[i],
                                   NUM_SAMPLES), atol=1 / 32768)


def test_second_build_is_a_no_op(index, tmp_path, monkeypatch):
    train = index[index["split"] == "train"]
    first = cache.build_cache(train, tmp_path / "c", NUM_SAMPLES, progress=False)
    stamp = (first / "wavs.npy").stat().st_mtime_ns

    def no_read(*args, **kwargs):
        raise AssertionError("a complete cache must not be decoded again")

    monkeypatch.setattr(audio, "_read_one", no_read)
    assert cache.build_cache(train, tmp_path / "c", NUM_SAMPLES, progress=False) == first
    assert (first / "wavs.npy").stat().st_mtime_ns == stamp


def test_changed_inputs_change_the_key(index, root):
    train = index[index["split"] == "train"]
    key = cache.cache_key(train, NUM_SAMPLES)
    assert cache.cache_key(train, NUM_SAMPLES) == key
    assert cache.cache_key(train, NUM_SAMPLES + 1) != key
    assert cache.cache_key(train, cache.Decoding(NUM_SAMPLES)) == key
    assert cache.cache_key(train, cache.Decoding(NUM_SAMPLES, sample_rate=8000)) != key
    assert cache.cache_key(train, cache.Decoding(NUM_SAMPLES, channel=1)) != key
    assert cache.cache_key(train, cache.Decoding(NUM_SAMPLES, on_error="skip")) != key
    assert cache.cache_key(train.iloc[:-1], NUM_SAMPLES) != key
    other_map = {k: 3 - v for k, v in dcase.class_map(train).items()}
    assert cache.cache_key(train, NUM_SAMPLES, class_map=other_map) != key
    # a rewritten file (new size / mtime) gives a new key
    write_clip(train["path"].iloc[0], np.zeros(NUM_SAMPLES + 10))
    assert cache.cache_key(train, NUM_SAMPLES) != key


def test_killed_build_leaves_no_complete_cache(index, tmp_path, monkeypatch):
    train = index[index["split"] == "train"]
    monkeypatch.setattr(cache, "CHUNK_CLIPS", 2)
    real_read, calls = audio._read_one, []

    def dies_midway(*args, **kwargs):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt("killed")
        return real_read(*args, **kwargs)

    monkeypatch.setattr(audio, "_read_one", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        cache.build_cache(train, tmp_path / "c", NUM_SAMPLES, progress=False)
    # no cache folder: only the store's hidden work folder (and its lock file)
    assert [p.name for p in (tmp_path / "c").iterdir() if not p.name.startswith(".")] == []
    monkeypatch.setattr(audio, "_read_one", real_read)
    path = cache.build_cache(train, tmp_path / "c", NUM_SAMPLES, progress=False)
    assert len(cache.open_cache(path)) == 12
    assert [p.name for p in (tmp_path / "c").iterdir() if not p.name.endswith(".lock")] == [path.name]


def test_incomplete_folder_is_refused(tmp_path):
    (tmp_path / "clips-x").mkdir()
    with pytest.raises(FileNotFoundError, match="not a complete asdlib cache"):
        cache.open_cache(tmp_path / "clips-x")


def test_the_key_of_a_cache_is_the_key_it_always_had(index):
    """The key's inputs of the training path, hashed as `asdlib.store.key` hashes them: caches
    built before keep their folder (a changed key would decode every data set again)."""
    import os

    train = index[index["split"] == "train"]
    files = [[str(p), os.stat(p).st_size, os.stat(p).st_mtime_ns] for p in train["path"]]
    labels = cache._labels(cache._as_index(train), None).tolist()
    inputs = {"version": 1, "files": files, "labels": labels, "num_samples": NUM_SAMPLES,
              "sample_rate": RATE, "channel": 0, "logmel": None, "on_error": "raise"}
    assert cache.cache_key(train, NUM_SAMPLES) == store.key(inputs)


def test_skip_unreadable_clips(index, tmp_path):
    train = index[index["split"] == "train"].reset_index(drop=True)
    Path(train["path"][1]).write_bytes(b"broken")
    with pytest.raises(ClipError, match="normal_id_00_00000001.wav"):
        cache.build_cache(train, tmp_path / "c", NUM_SAMPLES, progress=False)
    assert [p.name for p in (tmp_path / "c").iterdir() if not p.name.startswith(".")] == []
    with pytest.warns(ClipWarning, match="1 clip.*skipped"):
        dataset = cache.cached_dataset(train, tmp_path / "c",
                                       cache.Decoding(NUM_SAMPLES, on_error="skip"),
                                       progress=False)
    assert len(dataset) == 11
    assert dataset.index["source_row"].tolist() == [0] + list(range(2, 12))
    np.testing.assert_allclose(dataset[1][0].numpy(), read_clip(train["path"][2], NUM_SAMPLES),
                               atol=1 / 32768)


def test_labels_need_training_clips_or_a_class_map(index, tmp_path):
    test = index[index["split"] == "test"]
    with pytest.raises(ValueError, match="pass class_map"):
        cache.build_cache(test, tmp_path / "c", NUM_SAMPLES, progress=False)
    with pytest.raises(ValueError, match="not in class_map.*valve/id_04"):
        cache.build_cache(test, tmp_path / "c", NUM_SAMPLES, progress=False,
                          class_map={("fan", "id_00"): 0, ("fan", "id_02"): 1})
    # a plain list of paths works, with labels -1
    with pytest.warns(ClipWarning):
        dataset = cache.cached_dataset(list(test["path"]), tmp_path / "c", NUM_SAMPLES,
                                       progress=False)
    assert dataset.labels.tolist() == [-1] * 4
