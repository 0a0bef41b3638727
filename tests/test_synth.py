"""Tests of asdlib.synth: the DCASE layout, determinism, the physics of the anomalies, errors.

The dataset tests use the smoke profile (1 s clips, 12 clips per ID) or shorter clips.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import find_peaks, hilbert

from asdlib import layout, profiles, synth
from asdlib.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory):
    """The whole smoke-profile dataset (23 development IDs, 12 clips of 1 s each)."""
    root = tmp_path_factory.mktemp("synth") / "smoke"
    synth.generate(root, profile="smoke", seed=0, progress=False)
    return root


def _files(root, machine_type=None):
    pattern = f"{machine_type}/*/*.wav" if machine_type else "*/*/*.wav"
    return sorted(p.relative_to(root) for p in Path(root).glob(pattern))


# --- layout, format, counts ------------------------------------------------------------------


def test_layout_names_format_and_counts(smoke_root):
    smoke = profiles.get_profile("smoke")
    info = json.loads((smoke_root / synth.INFO_NAME).read_text())
    assert info["profile"] == "smoke" and info["seed"] == 0 and info["seconds"] == smoke.seconds
    assert not (smoke_root / synth.PARTIAL_NAME).exists()
    total = 0
    for machine_type in layout.MACHINE_TYPES:
        found = {}
        for split in ("train", "test"):
            for path in (smoke_root / machine_type / split).iterdir():
                parsed = layout.parse_filename(path.name)
                assert parsed is not None, path
                label, machine_id, _ = parsed
                assert machine_id in layout.DEV_IDS[machine_type]
                assert not (split == "train" and label == "anomaly")
                found[(split, label, machine_id)] = found.get((split, label, machine_id), 0) + 1
        for machine_id in layout.DEV_IDS[machine_type]:
            assert found[("train", "normal", machine_id)] == smoke.train_per_id
            assert found[("test", "normal", machine_id)] == smoke.test_normal_per_id
            assert found[("test", "anomaly", machine_id)] == smoke.test_anomaly_per_id
        assert len(found) == 3 * len(layout.DEV_IDS[machine_type])
        total += sum(found.values())
    assert total == info["total_clips"] == 23 * 12
    # 16 kHz mono PCM16 of the profile's length
    for relative in _files(smoke_root)[::25]:
        meta = sf.info(str(smoke_root / relative))
        assert (meta.samplerate, meta.channels, meta.subtype) == (16000, 1, "PCM_16")
        assert meta.frames == round(smoke.seconds * 16000)


def test_all_ids(tmp_path):
    info = synth.generate(tmp_path, profile="smoke", seconds=0.05, ids="all", progress=False)
    found = {(p.parts[0], layout.parse_filename(p.name)[1]) for p in _files(tmp_path)}
    assert found == set(layout.reference_class_map())
    assert len(found) == 41
    assert info["total_clips"] == 41 * 12


# --- determinism, re-runs ------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    # "b" is written by two worker processes: the clips do not depend on who writes them
    options = dict(profile="smoke", seconds=0.25, types=["pump", "valve"], progress=False)
    for name, seed, workers in (("a", 3, 1), ("b", 3, 2), ("c", 4, 1)):
        synth.generate(tmp_path / name, seed=seed, workers=workers, **options)
    files = _files(tmp_path / "a")
    assert files == _files(tmp_path / "b") == _files(tmp_path / "c")
    for relative in files:
        same = (tmp_path / "a" / relative).read_bytes()
        assert same == (tmp_path / "b" / relative).read_bytes(), relative
        assert same != (tmp_path / "c" / relative).read_bytes(), relative


def test_subset_of_types_gives_the_same_clips(smoke_root, tmp_path):
    synth.generate(tmp_path, profile="smoke", types=["fan"], progress=False)
    files = _files(tmp_path)
    assert files == _files(smoke_root, "fan") and len(files) == 4 * 12
    for relative in files:
        assert (tmp_path / relative).read_bytes() == (smoke_root / relative).read_bytes()


def test_rerun_is_a_no_op_and_other_options_are_refused(tmp_path):
    options = dict(profile="smoke", seconds=0.1, types=["slider"], progress=False)
    first = synth.generate(tmp_path, **options)
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert synth.generate(tmp_path, **options) == first
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == stamps
    with pytest.raises(ValueError, match=r"out: .*seed"):
        synth.generate(tmp_path, seed=1, **options)
    info = synth.generate(tmp_path, seed=1, overwrite=True, **options)
    assert info["seed"] == 1 and len(_files(tmp_path)) == 4 * 12


def test_interrupted_run_resumes_and_foreign_clips_are_refused(tmp_path):
    options = dict(profile="smoke", seconds=0.1, types=["valve"], progress=False)
    synth.generate(tmp_path / "done", **options)
    # an interrupted run: the marker is there, the info file and some clips are not
    partial = tmp_path / "partial"
    synth.generate(partial, **options)
    marker = json.loads((partial / synth.INFO_NAME).read_text())
    (partial / synth.INFO_NAME).unlink()
    (partial / synth.PARTIAL_NAME).write_text(json.dumps(
        {k: v for k, v in marker.items()
         if k not in ("clips", "total_clips", "anomaly_kinds", "content")}))
    for path in _files(partial)[::3]:
        (partial / path).unlink()
    synth.generate(partial, **options)
    assert (partial / synth.INFO_NAME).exists() and not (partial / synth.PARTIAL_NAME).exists()
    for relative in _files(tmp_path / "done"):
        assert (partial / relative).read_bytes() == (tmp_path / "done" / relative).read_bytes()
    # clips this generator did not start (real DCASE data, say) are never overwritten silently
    foreign = tmp_path / "foreign"
    (foreign / "valve" / "train").mkdir(parents=True)
    (foreign / "valve" / "train" / "normal_id_00_00000000.wav").write_bytes(b"real data")
    with pytest.raises(ValueError, match="out: .*did not start"):
        synth.generate(foreign, **options)


# --- physics: anomalies change what they should --------------------------------------------


def _envelope_spectrum(wav):
    """Magnitude spectrum of the amplitude envelope, normalised by its mean; and frequencies."""
    envelope = np.abs(hilbert(wav.astype(np.float64)))
    spectrum = np.abs(np.fft.rfft(envelope - envelope.mean())) / (envelope.mean() * len(wav))
    return spectrum, np.fft.rfftfreq(len(wav), 1 / layout.SAMPLE_RATE)


def test_fan_unbalance_raises_modulation_at_the_rotation_rate():
    rotation = synth.id_parameters("fan", "id_02")["rotation_hz"]

    def modulation(label, anomaly, number):
        wav = synth.make_clip("fan", "id_02", label, number, seconds=2.0, anomaly=anomaly,
                              background=False)
        spectrum, freqs = _envelope_spectrum(wav)
        return spectrum[np.abs(freqs - rotation) < 1.0].max()

    normal = np.mean([modulation("normal", None, n) for n in range(4)])
    unbalance = np.mean([modulation("anomaly", "unbalance", n) for n in range(4)])
    assert unbalance > 3 * normal


def _click_times(wav, low_hz, high_hz=8000.0, min_gap_s=0.03):
    """Times (s) of the clicks or impacts: peaks of the envelope between ``low_hz``, ``high_hz``."""
    spectrum = np.fft.rfft(wav.astype(np.float64))
    freqs = np.fft.rfftfreq(len(wav), 1 / layout.SAMPLE_RATE)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0
    envelope = np.abs(hilbert(np.fft.irfft(spectrum, len(wav))))
    peaks, _ = find_peaks(envelope, height=0.25 * envelope.max(),
                          distance=int(min_gap_s * layout.SAMPLE_RATE))
    return peaks / layout.SAMPLE_RATE


def test_valve_contamination_changes_click_timing():
    params = synth.id_parameters("valve", "id_04")
    cycle, open_s = params["cycle_s"], params["open_fraction"] * params["cycle_s"]

    def timing_error(label, anomaly, number):
        wav = synth.make_clip("valve", "id_04", label, number, seconds=4.0, anomaly=anomaly,
                              background=False)
        gaps = np.diff(_click_times(wav, low_hz=1800.0))
        # a normal valve alternates between open and closed gaps of fixed length
        return np.mean(np.minimum(np.abs(gaps - open_s), np.abs(gaps - (cycle - open_s))))

    normal = [timing_error("normal", None, n) for n in range(3)]
    sticking = [timing_error("anomaly", "contamination_timing", n) for n in range(3)]
    shape = [timing_error("anomaly", "contamination_shape", n) for n in range(3)]
    assert max(normal) < 0.015 and max(shape) < 0.015  # a few ms of jitter
    assert min(sticking) > 2 * max(normal)


def test_pump_leakage_adds_a_hiss_band():
    def high_band_share(label, anomaly, number):
        wav = synth.make_clip("pump", "id_00", label, number, anomaly=anomaly, background=False)
        power = np.abs(np.fft.rfft(wav.astype(np.float64))) ** 2
        freqs = np.fft.rfftfreq(len(wav), 1 / layout.SAMPLE_RATE)
        return power[(freqs > 2800) & (freqs < 5200)].sum() / power.sum()

    normal = np.mean([high_band_share("normal", None, n) for n in range(3)])
    leakage = np.mean([high_band_share("anomaly", "leakage", n) for n in range(3)])
    assert leakage > 5 * normal


def test_slider_loose_belt_makes_strokes_irregular():
    impact_hz = synth.id_parameters("slider", "id_00")["impact_hz"]

    def impact_gap_spread(label, anomaly, number):
        wav = synth.make_clip("slider", "id_00", label, number, seconds=4.0, anomaly=anomaly,
                              background=False)
        # the end-stop impacts ring at impact_hz, at least 0.1 s apart
        impacts = _click_times(wav, impact_hz - 150, impact_hz + 150, min_gap_s=0.1)
        gaps = np.diff(impacts)
        return np.std(gaps) / np.mean(gaps)

    normal = max(impact_gap_spread("normal", None, n) for n in range(3))
    loose = min(impact_gap_spread("anomaly", "loose_belt", n) for n in range(3))
    assert normal < 0.04 and loose > 2 * normal


def test_no_clipping_and_finite_for_every_type_and_anomaly_kind():
    for machine_type in layout.MACHINE_TYPES:
        # ID numbers 0..2 cover the three SNRs (6, 0, -6 dB)
        for machine_id in layout.ALL_IDS[machine_type][:3]:
            kinds = [("normal", None)] + [("anomaly", k) for k in synth.ANOMALY_KINDS[machine_type]]
            for number, (label, kind) in enumerate(kinds):
                wav = synth.make_clip(machine_type, machine_id, label, number, seconds=1.0,
                                      anomaly=kind)
                assert wav.dtype == np.float32 and wav.shape == (16000,)
                assert np.isfinite(wav).all()
                assert 0 < np.abs(wav).max() <= synth.PEAK_LIMIT < 1


def test_ids_differ_in_parameters_and_snr():
    snrs = {synth.id_parameters("fan", i)["snr_db"] for i in layout.ALL_IDS["fan"]}
    assert snrs == {-6.0, 0.0, 6.0}
    rates = [synth.id_parameters("fan", i)["rotation_hz"] for i in layout.ALL_IDS["fan"]]
    assert np.all(np.diff(rates) > 0)
    assert [synth.anomaly_kind("fan", n) for n in range(4)] == [
        "unbalance", "clogging", "voltage_change", "unbalance"]


def test_every_id_is_an_individual_machine_the_same_in_every_dataset():
    """Version 3: each (type, ID) has its own structure and harmonic profile, drawn from the
    two names only (so the data seed does not change the machines)."""
    a, b = synth.individual("pump", "id_00"), synth.individual("pump", "id_02")
    assert not np.allclose(a["modes"], b["modes"]) and not np.allclose(a["harmonic_gain"], b["harmonic_gain"])
    assert a["modes"].shape == (synth.NUM_MODES, 3)
    low, high = synth.MODE_BAND_HZ
    assert ((a["modes"][:, 0] >= low) & (a["modes"][:, 0] <= high)).all()
    assert (np.diff(a["modes"][:, 0]) >= 0).all()  # sorted by frequency
    assert (a["modes"][:, 2] <= synth.INDIVIDUALITY["mode_db"]).all()
    # the transfer function peaks at the modes (no drift without a generator)
    freqs = a["modes"][:, 0]
    gain = synth.transfer_db("pump", "id_00", freqs)
    off = synth.transfer_db("pump", "id_00", freqs * 1.3)
    assert (gain > off - 1e-9).sum() >= synth.NUM_MODES - 1  # close modes may overlap
    # drawn per clip: a drift of the resonances
    rng = np.random.default_rng(0)
    assert not np.allclose(synth.transfer_db("pump", "id_00", freqs, rng), gain)
    # the same machine whatever the data seed: a clip of seed 0 and of seed 1 differ, the
    # machine does not
    assert synth.individual("pump", "id_00") is synth.individual("pump", "id_00")
    with pytest.raises(ValueError, match="machine_id"):
        synth.individual("pump", "id_01x")


def test_expected_info_is_what_generate_writes(smoke_root):
    from asdlib import dcase, runfolder

    info = json.loads((smoke_root / synth.INFO_NAME).read_text())
    expected = synth.expected_info("smoke", seed=info["seed"], types=info["types"])
    # the info file adds the digest of the clips it describes, which only the clips can give
    assert expected == {k: v for k, v in info.items() if k != "content"}
    assert info["content"] == dcase.content_digest(smoke_root)
    assert runfolder.synthetic_fingerprint(expected) == runfolder.dataset_fingerprint(smoke_root)


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(types=["drill"]), "types"),
        (dict(types=[]), "types"),
        (dict(profile="huge"), "profile"),
        (dict(seconds=0), "seconds"),
        (dict(seconds=-1.0), "seconds"),
        (dict(seconds=float("nan")), "seconds"),
        (dict(ids="some"), "ids"),
        (dict(seed=-1), "seed"),
        (dict(workers=0), "workers"),
    ],
)
def test_bad_arguments_name_the_argument(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        synth.generate(tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


def test_make_clip_bad_arguments():
    with pytest.raises(ValueError, match="machine_type"):
        synth.make_clip("drill", "id_00")
    with pytest.raises(ValueError, match="machine_id"):
        synth.make_clip("ToyCar", "id_00")
    with pytest.raises(ValueError, match="anomaly"):
        synth.make_clip("fan", "id_00", "anomaly", anomaly="leakage")


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["synth", "--out", str(out), "--profile", "smoke", "--types", "valve",
                 "--seconds", "0.1", "--seed", "2", "--quiet"]) == 0
    info = json.loads((out / synth.INFO_NAME).read_text())
    assert (info["types"], info["seed"], info["seconds"]) == (["valve"], 2, 0.1)
    for argv, name in ((["--seconds", "0"], "--seconds"), (["--types", "drill"], "--types"),
                       (["--profile", "huge"], "--profile")):
        with pytest.raises(SystemExit):
            main(["synth", "--out", str(tmp_path / "bad")] + argv)
        assert name in capsys.readouterr().err
    # other options on a complete folder: one line naming --out, exit status 2
    assert main(["synth", "--out", str(out), "--profile", "smoke", "--types", "valve", "--quiet"]) == 2
    assert "--out: refusing to write" in capsys.readouterr().err


# --- the headroom benchmark and the figure run -----------------------------------------------


def test_headroom_function_runs(smoke_root):
    spec = importlib.util.spec_from_file_location(
        "synth_headroom", REPO / "benchmarks" / "synth_headroom.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    per_id = module.headroom(smoke_root, types=["valve"])
    overall = per_id[per_id.kind == "all"]
    assert list(overall.machine_id) == list(layout.DEV_IDS["valve"])
    assert overall.auc.between(0, 1).all() and (overall.normal == 3).all()
    assert list(module.type_table(per_id).index) == ["valve"]
    kinds = module.kind_table(per_id)
    assert set(kinds.index) == {("valve", k) for k in synth.ANOMALY_KINDS["valve"]}
    # the ID probe on the same features (computed once)
    features = module.type_features(smoke_root, types=["valve"])
    probe = module.id_probe(smoke_root, types=["valve"], features=features)
    assert list(probe.index) == ["valve"] and probe.loc["valve", "IDs"] == 4
    assert probe.loc["valve", "test"] == 4 * 3 and 0 <= probe.loc["valve", "accuracy"] <= 1
    assert module.headroom(smoke_root, features=features).equals(per_id)


def test_plot_machine_spectrograms(smoke_root):
    from matplotlib.figure import Figure

    from asdlib.plots import plot_machine_spectrograms

    fig = Figure()
    assert plot_machine_spectrograms(smoke_root, fig=fig) is fig
    axes = fig.get_axes()
    assert len(axes) == 12
    titles = [ax.get_title() for ax in axes]
    assert titles[0].startswith("fan id_00 normal") and titles[1].startswith("fan id_00 anomaly")
    assert titles[-1].startswith("valve id_00 anomaly") and "(contamination" in titles[-1]
    # a chosen ID and clip, and a subset of types
    fig = plot_machine_spectrograms(smoke_root, types=["ToyCar"], machine_ids={"ToyCar": "id_03"},
                                    number=2, fig=Figure())
    assert [ax.get_title().split(" #")[0] for ax in fig.get_axes()] == [
        "ToyCar id_03 normal", "ToyCar id_03 anomaly"]
