"""The synthetic machine-sound dataset: the default data of the book, in the DCASE 2020 layout.

Explained in chapter 1 ("The task and the data"); the physical parameters, the per-ID table,
the headroom check and the ID difficulty check are documented in ``data/SYNTHETIC.md``.

The real DCASE 2020 Task 2 data (the MIMII and ToyADMOS recordings) cannot be downloaded
everywhere, so the book, the tests and CI run on this stand-in. Every clip is built from a small
physical model of its machine type (rotating parts, pulsations, impacts, clicks), whose
parameters differ slightly from machine ID to machine ID and are jittered from clip to clip
(operating condition: load, speed, flow, ...) by about as much, so that telling IDs apart is
learnable but not trivial. Anomalous clips change one physical parameter (an unbalance, a leak,
a loose belt, ...). A generated factory background (pink and brown noise, distant machine hums,
occasional bangs) is mixed in at a per-ID signal-to-noise ratio of 6, 0 or -6 dB, as in MIMII,
with a background level that varies by +-5 dB from clip to clip.

Everything is deterministic: every clip has its own random generator, seeded from
(seed, machine type, machine ID, split, label, clip number), so the same options always write
byte-identical files and a subset (``types=["fan"]``) holds exactly the clips of the full set.

    >>> from asdlib import synth
    >>> synth.generate("data/generated/synth_book", profile="book")   # doctest: +SKIP

or, from the shell, ``python -m asdlib synth --out data/generated/synth_book --profile book``
(`asdlib.cli`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from asdlib import audio, dcase, layout, profiles, runtime

__all__ = [
    "ANOMALY_KINDS",
    "ANOMALY_NATURE",
    "GENERATOR_VERSION",
    "anomaly_kind",
    "clip_rng",
    "expected_info",
    "factory_background",
    "generate",
    "id_parameters",
    "individual",
    "make_clip",
    "transfer_db",
]

#: Bumped whenever a change to this module changes the samples it writes.
GENERATOR_VERSION = "3"
#: Name of the file written last, once every clip is on disk.
INFO_NAME = layout.SYNTH_INFO
#: Name of the marker written first; it says which options a half-written folder was started with.
PARTIAL_NAME = ".synth_partial.json"

SR = layout.SAMPLE_RATE
#: RMS of a clip before the per-clip level jitter (about -30 dBFS): leaves room for the peaks.
OUTPUT_RMS = 0.03
#: The highest absolute sample value a clip may reach before PCM16 quantisation.
PEAK_LIMIT = 0.95

# --------------------------------------------------------------------------------------------
# Machine IDs: physical parameters and SNR
# --------------------------------------------------------------------------------------------

#: ID rules: ``parameter: (value of ID number 0, change per ID number)``; see data/SYNTHETIC.md.
#: IDs are individual machines of one model: they share the design (step 0) and differ a little
#: in rates and noise bands, by steps that are comparable to the clip-to-clip operating
#: condition (``_CONDITION``), so that ID classification is learnable but not trivial.
_ID_RULES = {
    "fan": {
        "rotation_hz": (20.0, 0.3),  # shaft rotation rate
        "blades": (7, 0),  # blade count: blade-pass frequency = blades * rotation
        "tilt_db": (5.0, 0.0),  # level drop per blade-pass harmonic
        "air_hz": (1000.0, 40.0),  # centre of the aerodynamic broadband noise
        "air_db": (-4.0, 0.25),  # its level relative to the tonal part
    },
    "pump": {
        "shaft_hz": (24.0, 0.3),  # motor shaft rate
        "vanes": (5, 0),  # pulsation rate = vanes * shaft rate
        "tilt_db": (4.0, 0.0),  # level drop per pulsation harmonic
        "flow_hz": (600.0, 25.0),  # centre of the flow noise
        "flow_db": (-3.0, 0.25),  # its level relative to the pulsation
    },
    "slider": {
        "stroke_s": (0.50, 0.01),  # one back-and-forth cycle (two strokes)
        "whine_hz": (400.0, 6.0),  # servo-motor whine at full stroke speed
        "impact_hz": (1800.0, 0.0),  # resonance of the end-stop impact
        "rolling_hz": (2500.0, 30.0),  # centre of the rolling (bearing) noise
        "rolling_db": (-8.0, 0.25),  # its level relative to the whine
    },
    "valve": {
        "cycle_s": (0.50, 0.02),  # one open-close cycle
        "open_fraction": (0.35, 0.01),  # share of the cycle the valve is open
        "click_hz": (2600.0, 0.0),  # resonance of the open click
        "click_ms": (4.0, 0.0),  # its decay time
        "flow_hz": (1200.0, 40.0),  # centre of the flow hiss while open
    },
    "ToyCar": {
        "motor_hz": (80.0, 2.0),  # motor rotation rate at full speed
        "teeth": (12, 0),  # pinion teeth: gear-mesh frequency = teeth * motor rate
        "gear_ratio": (4.0, 0.0),  # motor turns per turn of the intermediate gear
        "wheel_ratio": (15.0, 0.5),  # motor turns per wheel turn
        "rolling_hz": (1500.0, 40.0),  # centre of the wheel rolling noise
    },
    "ToyConveyor": {
        "motor_hz": (50.0, 0.5),  # motor rotation rate
        "roller_ratio": (3.0, 0.0),  # motor turns per drive-roller turn
        "belt_rev_hz": (0.8, 0.05),  # belt revolutions per second
        "belt_hz": (800.0, 15.0),  # centre of the belt noise
        "belt_db": (-2.0, 0.25),  # its level relative to the motor
    },
}

#: SNR (dB) of the machine against the factory background, chosen by ``ID number % 3``.
SNR_BY_ID_MOD3 = (6.0, 0.0, -6.0)
#: Per-clip change of the background level (dB, uniform +-): other machines come and go.
BACKGROUND_DB_JITTER = 5.0

#: Operating condition: how much each clip of one ID varies, drawn per clip; see data/SYNTHETIC.md.
#: ``speed``/``cycle`` are Gaussian relative spreads (0.02 = N(0, 2 %)), ``*_hz`` uniform relative
#: spreads (0.1 = x (1 + U(-10 %, +10 %))), ``*_db`` uniform spreads in dB (2 = U(-2, +2) dB).
_CONDITION = {
    "fan": {"speed": 0.02, "air_db": 2.0, "air_hz": 0.10},
    "pump": {"speed": 0.02, "flow_db": 2.0, "flow_hz": 0.10},
    "slider": {"speed": 0.03, "rolling_db": 2.0, "impact_hz": 0.02},
    "valve": {"cycle": 0.01, "flow_db": 2.0, "flow_hz": 0.10, "click_hz": 0.02},
    "ToyCar": {"speed": 0.02, "rolling_db": 2.0, "rolling_hz": 0.10},
    "ToyConveyor": {"speed": 0.02, "belt_db": 1.5, "belt_hz": 0.05},
}

#: The anomaly kinds of every machine type; anomalous clip ``n`` has kind ``n % len(kinds)``.
ANOMALY_KINDS = {
    "fan": ("unbalance", "clogging", "voltage_change"),
    "pump": ("leakage", "contamination", "clogging"),
    "slider": ("rail_damage", "no_grease", "loose_belt"),
    "valve": ("contamination_timing", "contamination_shape"),
    "ToyCar": ("bent_shaft", "damaged_gear", "tire_ribbon", "voltage_change"),
    "ToyConveyor": ("attached_object", "tension"),
}

#: Whether each anomaly changes the long-term spectrum, only the timing, or both.
ANOMALY_NATURE = {
    ("fan", "unbalance"): "modulation (weak sidebands)",
    ("fan", "clogging"): "spectral",
    ("fan", "voltage_change"): "spectral",
    ("pump", "leakage"): "spectral",
    ("pump", "contamination"): "temporal (intermittent)",
    ("pump", "clogging"): "spectral",
    ("slider", "rail_damage"): "temporal (intermittent)",
    ("slider", "no_grease"): "spectral",
    ("slider", "loose_belt"): "temporal (timing)",
    ("valve", "contamination_timing"): "temporal (timing)",
    ("valve", "contamination_shape"): "spectral (click shape)",
    ("ToyCar", "bent_shaft"): "modulation (weak sidebands)",
    ("ToyCar", "damaged_gear"): "temporal + spectral",
    ("ToyCar", "tire_ribbon"): "temporal (intermittent)",
    ("ToyCar", "voltage_change"): "spectral",
    ("ToyConveyor", "attached_object"): "temporal (intermittent)",
    ("ToyConveyor", "tension"): "spectral",
}


def _check_type(machine_type) -> str:
    if machine_type not in layout.MACHINE_TYPES:
        raise ValueError(
            f"machine_type: unknown machine type {machine_type!r}; "
            f"choose one of {list(layout.MACHINE_TYPES)}"
        )
    return machine_type


def _check_id(machine_type: str, machine_id) -> int:
    if machine_id not in layout.ALL_IDS[machine_type]:
        raise ValueError(
            f"machine_id: {machine_id!r} is not an ID of {machine_type}; "
            f"choose one of {list(layout.ALL_IDS[machine_type])}"
        )
    return int(machine_id[3:])


def id_parameters(machine_type: str, machine_id: str) -> dict:
    """The physical parameters of one machine ID, and its SNR against the factory background.

    Args:
        machine_type: one of ``asdlib.layout.MACHINE_TYPES``.
        machine_id: one of that type's IDs, e.g. ``"id_02"``.

    Returns:
        ``{parameter: value}``: the rules of ``data/SYNTHETIC.md`` evaluated at the ID number k
        (``value = base + k * step``), plus ``"snr_db"`` (6, 0 or -6 dB by ``k % 3``).
    """
    _check_type(machine_type)
    k = _check_id(machine_type, machine_id)
    params = {name: base + k * step for name, (base, step) in _ID_RULES[machine_type].items()}
    params["snr_db"] = SNR_BY_ID_MOD3[k % 3]
    return params


# --------------------------------------------------------------------------------------------
# Individual machines: every ID is a machine of its own; see data/SYNTHETIC.md
# --------------------------------------------------------------------------------------------

#: The scales of what makes every machine an individual (calibrated: see data/SYNTHETIC.md).
#: ``mode_db``: peak gain of the housing resonances; ``mount_db``: of the mounting resonance;
#: ``harmonic_db``: std of the machine's own offset of each harmonic; ``tilt_db``: +- dB per
#: octave of the transfer path; ``width``: noise bands' width factor exp(U(-w, w)).
INDIVIDUALITY = {"mode_db": 0.72, "mount_db": 0.72, "harmonic_db": 0.36, "tilt_db": 0.18,
                 "width": 0.036}
#: The named strengths of individuality a dataset can be generated with (`generate`'s
#: ``individuality``): ``"kept"``, the calibrated scales above (the book's data); ``"strong"``,
#: 1 / 0.12 times the kept ones (where the calibration of data/SYNTHETIC.md starts), whose
#: machines a linear probe on the clip-mean spectrum tells apart almost always. The learning
#: curve (`asdlib.curve`) compares the two.
INDIVIDUALITY_LEVELS = {
    "kept": INDIVIDUALITY,
    "strong": {"mode_db": 6.0, "mount_db": 6.0, "harmonic_db": 3.0, "tilt_db": 1.5, "width": 0.3},
}
#: Housing resonances per machine, spread log-uniformly over this band (Hz).
NUM_MODES = 6
MODE_BAND_HZ = (250.0, 6000.0)
#: Per clip, each resonance frequency drifts by N(0, this) (temperature, load) and its gain
#: by U(-1, 1) dB: the operating condition of the structure.
MODE_DRIFT = 0.01


def _check_level(level: str) -> str:
    if level not in INDIVIDUALITY_LEVELS:
        raise ValueError(f"individuality must be one of {list(INDIVIDUALITY_LEVELS)}, got {level!r}")
    return level


@functools.lru_cache(maxsize=512)
def individual(machine_type: str, machine_id: str, level: str = "kept") -> dict:
    """What makes one machine ID an individual machine: its structure and its harmonic profile.

    Drawn once per (type, ID) from a generator seeded by the two names only (not by the data
    seed): the same machine in every dataset, as a factory's machines stay the same from one
    recording session to the next. ``level`` names the scales (`INDIVIDUALITY_LEVELS`): the
    same draws, scaled more or less.

    Returns:
        ``modes`` (``[NUM_MODES, 3]``: frequency Hz, Q, gain dB of the housing resonances),
        ``mount`` (frequency, Q, gain of the mounting resonance), ``tilt_db`` (dB per octave of
        the transfer path re 1 kHz), ``harmonic_gain`` (``[16]``, linear gain of each harmonic
        of the machine's tonal series) and ``width`` (factor on its noise bands' widths).
    """
    _check_id(_check_type(machine_type), machine_id)
    scale = INDIVIDUALITY_LEVELS[_check_level(level)]
    rng = np.random.default_rng(np.random.SeedSequence(
        [_stable_hash("individual machine"), _stable_hash(machine_type), _stable_hash(machine_id)]))
    low, high = np.log(MODE_BAND_HZ[0]), np.log(MODE_BAND_HZ[1])
    modes = np.stack([np.sort(np.exp(rng.uniform(low, high, NUM_MODES))),
                      rng.uniform(3, 10, NUM_MODES),
                      scale["mode_db"] * rng.uniform(0.5, 1.0, NUM_MODES)], axis=1)
    mount = np.array([rng.uniform(60, 200), rng.uniform(1.5, 4), scale["mount_db"] * rng.uniform(0.5, 1.0)])
    return {"modes": modes, "mount": mount,
            "tilt_db": scale["tilt_db"] * rng.uniform(-1, 1),
            "harmonic_gain": _db(scale["harmonic_db"] * rng.standard_normal(16)),
            "width": float(np.exp(scale["width"] * rng.uniform(-1, 1)))}


def _profile(p: dict, count: int, start: int = 0) -> np.ndarray:
    """The machine's own gains of harmonics ``start .. start + count - 1`` of a tonal series."""
    return p["individual"]["harmonic_gain"][start:start + count]


def _width(p: dict) -> float:
    return p["individual"]["width"]


def _resonance_db(freqs: np.ndarray, centre: float, q: float, gain_db: float) -> np.ndarray:
    """A resonance of the structure as a gain in dB: ``gain`` at ``centre``, bandwidth centre/Q."""
    ratio = np.maximum(freqs, 1.0) / centre
    return gain_db / (1 + (q * (ratio - 1 / ratio)) ** 2)


def transfer_db(machine_type: str, machine_id: str, freqs, rng=None,
                level: str = "kept") -> np.ndarray:
    """The gain (dB) of a machine's structure and transfer path at ``freqs`` (Hz).

    The housing resonances, the mounting resonance and the tilt of the path to the microphone.
    With ``rng``, one clip's drift of the resonances (`MODE_DRIFT`) is drawn from it.
    ``level``: the individuality's scales (`INDIVIDUALITY_LEVELS`).
    """
    ind = individual(machine_type, machine_id, level)
    freqs = np.asarray(freqs, dtype=np.float64)
    gain = ind["tilt_db"] * np.log2(np.maximum(freqs, 20.0) / 1000.0)
    gain += _resonance_db(freqs, *ind["mount"])
    for centre, q, mode_db in ind["modes"]:
        if rng is not None:
            centre *= 1 + rng.normal(0, MODE_DRIFT)
            mode_db += rng.uniform(-1, 1)
        gain += _resonance_db(freqs, centre, q, mode_db)
    return gain


def _machine(rng, machine_type: str, machine_id: str, n: int, anomaly, level: str) -> np.ndarray:
    """The sound of one machine at its housing: the type's generator through its structure."""
    params = {**id_parameters(machine_type, machine_id),
              "individual": individual(machine_type, machine_id, level)}
    x = _GENERATORS[machine_type](rng, n, params, anomaly)
    gain = transfer_db(machine_type, machine_id, np.fft.rfftfreq(n, 1.0 / SR), rng, level)
    return np.fft.irfft(np.fft.rfft(x) * _db(gain), n)


def anomaly_kind(machine_type: str, number: int) -> str:
    """The anomaly kind of anomalous clip ``number`` of a machine type (kinds are cycled)."""
    kinds = ANOMALY_KINDS[_check_type(machine_type)]
    return kinds[number % len(kinds)]


# --------------------------------------------------------------------------------------------
# Seeding: one generator per clip
# --------------------------------------------------------------------------------------------


def _stable_hash(text: str) -> int:
    """A 64-bit hash of a string that is the same in every process (unlike Python's hash())."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def clip_rng(seed: int, machine_type: str, machine_id: str, split: str, label: str,
             number: int) -> np.random.Generator:
    """The random generator of one clip, independent of every other clip.

    Seeded by ``numpy.random.SeedSequence`` from the global seed, stable hashes of the machine
    type, ID, split and label, and the clip number, so a clip never depends on which other
    clips are generated or in which order.
    """
    entropy = [int(seed), _stable_hash(machine_type), _stable_hash(machine_id),
               _stable_hash(split), _stable_hash(label), int(number)]
    return np.random.default_rng(np.random.SeedSequence(entropy))


# --------------------------------------------------------------------------------------------
# Signal building blocks (vectorised numpy, float64)
# --------------------------------------------------------------------------------------------


def _time(n: int) -> np.ndarray:
    return np.arange(n) / SR


def _shaped_noise(rng, n: int, gain) -> np.ndarray:
    """Unit-RMS Gaussian noise whose amplitude spectrum is ``gain(freqs_hz)``."""
    freqs = np.fft.rfftfreq(n, 1.0 / SR)
    noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * gain(freqs), n)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def _band_noise(rng, n: int, centre_hz: float, octaves: float) -> np.ndarray:
    """Unit-RMS noise in a log-Gaussian band around ``centre_hz`` (std ``octaves``)."""
    return _shaped_noise(
        rng, n, lambda f: np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / centre_hz) / octaves) ** 2)
    )


def _coloured_noise(rng, n: int, exponent: float) -> np.ndarray:
    """Unit-RMS 1/f^exponent noise: pink for 1, brown for 2 (flat below 20 Hz)."""
    return _shaped_noise(rng, n, lambda f: np.maximum(f, 20.0) ** (-exponent / 2))


def _phase(freq_hz, n: int) -> np.ndarray:
    """Running phase (radians) of an oscillator whose frequency may change every sample."""
    return 2 * np.pi * np.cumsum(np.broadcast_to(freq_hz, (n,))) / SR


def _harmonics(rng, phase: np.ndarray, amplitudes, top_hz: float) -> np.ndarray:
    """Sum of harmonics ``a_h sin(h * phase + random offset)``; those above 7.5 kHz are dropped.

    ``top_hz`` is the highest fundamental frequency reached, used to avoid aliasing.
    """
    amplitudes = np.asarray(amplitudes, dtype=float)
    orders = np.arange(1, len(amplitudes) + 1)
    offsets = rng.uniform(0, 2 * np.pi, len(amplitudes))
    # sin(h * phase + offset) = Im(exp(i offset) * z**h) with z = exp(i phase): one complex
    # multiplication per harmonic instead of one sine (several times faster)
    z = np.exp(1j * phase)
    z_power = np.ones_like(z)
    total = np.zeros(len(phase))
    for order, offset, amplitude in zip(orders, offsets, amplitudes):
        z_power *= z
        if order * top_hz < 7500.0:
            total += amplitude * (np.sin(offset) * z_power.real + np.cos(offset) * z_power.imag)
    return total


def _tilted(count: int, tilt_db: float) -> np.ndarray:
    """Harmonic amplitudes falling by ``tilt_db`` per harmonic."""
    return 10.0 ** (-tilt_db * np.arange(count) / 20)


def _ring(freq_hz: float, decay_s: float, length_s: float | None = None) -> np.ndarray:
    """A damped resonance (peak about 1): what an impact or click excites.

    It lasts ``length_s`` (default: six decay times), so that two rings can be added.
    """
    t = np.arange(int((length_s or 6 * decay_s) * SR) + 1) / SR
    return np.exp(-t / decay_s) * np.sin(2 * np.pi * freq_hz * t)


def _add_events(x: np.ndarray, times_s, amplitudes, kernels) -> None:
    """Add ``amplitude * kernel`` starting at each time (seconds; may lie before the clip)."""
    n = len(x)
    for time, amplitude, kernel in zip(times_s, amplitudes, kernels):
        start = int(round(time * SR))
        if start >= n or start + len(kernel) <= 0:
            continue
        lo = max(0, -start)
        hi = min(len(kernel), n - start)
        x[start + lo:start + hi] += amplitude * kernel[lo:hi]


def _crossing_times(phase: np.ndarray, period: float = 2 * np.pi) -> np.ndarray:
    """Times (s) at which a rising phase crosses a multiple of ``period``: once per turn."""
    turns = np.arange(np.ceil(phase[0] / period), np.floor(phase[-1] / period) + 1) * period
    return np.interp(turns, phase, _time(len(phase)))


def _wander(rng, n: int, depth: float = 0.003) -> np.ndarray:
    """A slow relative speed wander (a fraction of a percent): no real motor is perfectly still."""
    return 1.0 + depth * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * _time(n) + rng.uniform(0, 6.3))


def _db(value_db: float) -> float:
    return 10.0 ** (value_db / 20)


# --------------------------------------------------------------------------------------------
# One generator per machine type: (rng, samples, ID parameters, anomaly kind or None) -> wave
# --------------------------------------------------------------------------------------------


def _fan(rng, n, p, anomaly):
    """Fan: blade-pass harmonics plus aerodynamic broadband noise modulated by the blades."""
    c = _CONDITION["fan"]  # operating condition: load and supply, damper setting
    speed = p["rotation_hz"] * (1 + rng.normal(0, c["speed"]))
    air_db = p["air_db"] + rng.uniform(-c["air_db"], c["air_db"])
    air_hz = p["air_hz"] * (1 + rng.uniform(-c["air_hz"], c["air_hz"]))
    if anomaly == "clogging":  # less airflow: less broadband noise, the unloaded fan speeds up
        speed *= 1 + rng.uniform(0.02, 0.05)
        air_db -= rng.uniform(2, 5)
    elif anomaly == "voltage_change":  # another supply voltage: another speed
        speed *= 1 + rng.choice([-1, 1]) * rng.uniform(0.04, 0.08)
    phase = _phase(speed * _wander(rng, n), n)
    blade_phase = p["blades"] * phase
    tonal = _harmonics(rng, blade_phase, _tilted(10, p["tilt_db"]) * _profile(p, 10),
                       speed * p["blades"] * 1.01)
    # the residual unbalance of every real rotor: a weak tone at the rotation rate
    tonal += 0.05 * np.sin(phase + rng.uniform(0, 2 * np.pi))
    air = _band_noise(rng, n, air_hz, 1.0 * _width(p)) * (1 + 0.25 * np.sin(blade_phase))
    x = tonal + _db(air_db) * air
    if anomaly == "unbalance":  # a heavy spot: amplitude modulation and a tone at 1x rotation
        once = np.sin(phase + rng.uniform(0, 2 * np.pi))
        x = x * (1 + rng.uniform(0.15, 0.35) * once) + rng.uniform(0.1, 0.3) * once
    return x


def _pump(rng, n, p, anomaly):
    """Pump: pressure pulsation at the vane rate plus flow noise pulsing with it."""
    c = _CONDITION["pump"]  # operating condition: load (pressure), flow rate
    shaft = p["shaft_hz"] * (1 + rng.normal(0, c["speed"]))
    pulse_db, flow_db = 0.0, p["flow_db"] + rng.uniform(-c["flow_db"], c["flow_db"])
    flow_hz = p["flow_hz"] * (1 + rng.uniform(-c["flow_hz"], c["flow_hz"]))
    if anomaly == "clogging":  # more pressure, less flow, the motor slows down
        shaft *= 1 - rng.uniform(0.02, 0.05)
        pulse_db += rng.uniform(3, 6)
        flow_db -= rng.uniform(2, 5)
    phase = _phase(shaft * _wander(rng, n), n)
    pulse_phase = p["vanes"] * phase
    x = _db(pulse_db) * _harmonics(rng, pulse_phase, _tilted(12, p["tilt_db"]) * _profile(p, 12),
                                   shaft * p["vanes"] * 1.01)
    x += 0.2 * np.sin(phase + rng.uniform(0, 2 * np.pi))  # motor shaft
    flow = _band_noise(rng, n, flow_hz, 1.2 * _width(p)) * (1 + 0.3 * np.sin(pulse_phase))
    x += _db(flow_db) * flow
    if anomaly == "leakage":  # a narrow hiss band from the leak
        x += _db(rng.uniform(-14, -6)) * _band_noise(rng, n, rng.uniform(3000, 5000), 0.25)
    elif anomaly == "contamination":  # particles: irregular knocks
        count = rng.poisson(rng.uniform(2, 6) * n / SR)
        kernels = [_ring(rng.uniform(1500, 3500), rng.uniform(0.002, 0.006)) for _ in range(count)]
        _add_events(x, rng.uniform(0, n / SR, count), rng.uniform(1.0, 3.0, count), kernels)
    return x


def _slider(rng, n, p, anomaly):
    """Slider: strokes driven by a servo motor, with an impact at each end stop."""
    c = _CONDITION["slider"]  # operating condition: programmed stroke speed, carriage load
    speed = 1 + rng.normal(0, c["speed"])
    half = p["stroke_s"] / 2 / speed
    jitter = rng.uniform(0.08, 0.2) if anomaly == "loose_belt" else 0.01  # loose belt: timing
    count = int(n / SR / half) + 3
    durations = half * np.clip(1 + jitter * rng.standard_normal(count), 0.4, 1.6)
    # stroke boundaries (the end-stop impacts), the first one before the clip starts
    ends = np.concatenate([[0.0], np.cumsum(durations)]) - rng.uniform(0, half)
    t = _time(n)
    stroke = np.searchsorted(ends, t, side="right") - 1
    progress = (t - ends[stroke]) / durations[stroke]
    velocity = np.sin(np.pi * progress)  # slow at both ends, fastest mid-stroke
    whine_hz = p["whine_hz"] * speed * (0.3 + 0.7 * velocity)  # the motor turns with the stroke
    x = velocity * _harmonics(rng, _phase(whine_hz, n), np.array([1.0, 0.5, 0.25]) * _profile(p, 3),
                              p["whine_hz"] * speed)
    rolling_db = p["rolling_db"] + rng.uniform(-c["rolling_db"], c["rolling_db"])
    if anomaly == "no_grease":  # friction: more rolling noise and a squeal while moving
        rolling_db += rng.uniform(2, 4)
        squeal_hz = rng.uniform(2000, 4000) * (1 + 0.01 * np.sin(2 * np.pi * 6 * t))
        x += _db(rng.uniform(-16, -8)) * velocity**2 * np.sin(_phase(squeal_hz, n))
    x += _db(rolling_db) * velocity * _band_noise(rng, n, p["rolling_hz"] * speed, 0.8 * _width(p))
    impact_hz = p["impact_hz"] * (1 + rng.uniform(-c["impact_hz"], c["impact_hz"]))
    impacts = [_ring(impact_hz * rng.uniform(0.97, 1.03), 0.008) for _ in ends]
    _add_events(x, ends, 3.0 * rng.uniform(0.8, 1.2, len(ends)), impacts)
    if anomaly == "rail_damage":  # a dent in the rail: an extra impulse at the same place
        where = rng.uniform(0.3, 0.7)
        # the slider passes the dent at `where` going out and `1 - where` coming back
        fraction = np.where(np.arange(count) % 2 == 0, where, 1 - where)
        times = ends[:-1] + fraction * durations
        kernels = [_ring(rng.uniform(3000, 4000), 0.003) for _ in times]
        _add_events(x, times, 3.0 * rng.uniform(0.3, 0.6) * np.ones(len(times)), kernels)
    return x


def _valve(rng, n, p, anomaly):
    """Valve: a click when it opens and when it closes, flow hiss in between, a pump hum."""
    c = _CONDITION["valve"]  # operating condition: controller timing, supply pressure
    cycle = p["cycle_s"] * (1 + rng.normal(0, c["cycle"]))
    flow_level = 0.05 * _db(rng.uniform(-c["flow_db"], c["flow_db"]))
    flow_hz = p["flow_hz"] * (1 + rng.uniform(-c["flow_hz"], c["flow_hz"]))
    count = int(n / SR / cycle) + 3
    opens = cycle * np.arange(count) - rng.uniform(0, cycle) + rng.normal(0, 0.004, count)
    closes = opens + p["open_fraction"] * cycle + rng.normal(0, 0.004, count)
    click_hz = p["click_hz"] * (1 + rng.uniform(-c["click_hz"], c["click_hz"]))
    click_s = p["click_ms"] / 1000
    bounce = 0.0
    if anomaly == "contamination_timing":  # debris makes the valve stick: late, irregular moves
        lateness = rng.uniform(0.1, 0.25) * cycle
        opens = opens + rng.uniform(0, lateness, count)
        closes = closes + rng.uniform(0, lateness, count)
    elif anomaly == "contamination_shape":  # debris on the seat: a duller click that bounces
        click_hz *= 1 - rng.uniform(0.1, 0.25)
        click_s *= rng.uniform(1.5, 2.5)
        bounce = rng.uniform(0.3, 0.6)
    x = np.zeros(n)
    # two modes of the valve body; the close click rings a little lower
    length = 6 * click_s
    open_click = _ring(click_hz, click_s, length) + 0.5 * _ring(2.3 * click_hz, click_s / 2, length)
    close_click = (_ring(0.85 * click_hz, click_s, length)
                   + 0.5 * _ring(2.1 * click_hz, click_s / 2, length))
    times = np.concatenate([opens, closes])
    kernels = [open_click] * count + [close_click] * count
    amplitudes = np.concatenate([np.ones(count), 0.7 * np.ones(count)]) * rng.uniform(0.9, 1.1)
    _add_events(x, times, amplitudes, kernels)
    if bounce:
        delay = rng.uniform(0.004, 0.012)
        _add_events(x, times + delay, bounce * amplitudes, kernels)
    # flow hiss while open (soft 5 ms edges) and the hum of the pump feeding the valve
    t = _time(n)
    is_open = np.zeros(n)
    for start, stop in zip(opens, closes):
        is_open += np.clip((t - start) / 0.005, 0, 1) * np.clip((stop - t) / 0.005, 0, 1)
    x += flow_level * is_open * _band_noise(rng, n, flow_hz, 0.5 * _width(p))
    x += 0.02 * _harmonics(rng, _phase(100.0, n), np.array([1.0, 0.5, 0.3]) * _profile(p, 3), 100.0)
    return x


def _toycar(rng, n, p, anomaly):
    """ToyCar: a motor running up, cruising and slowing down; whine, gear mesh, wheel noise."""
    c = _CONDITION["ToyCar"]  # operating condition: battery voltage, floor surface
    top = p["motor_hz"] * (1 + rng.normal(0, c["speed"]))
    rolling = 0.4 * _db(rng.uniform(-c["rolling_db"], c["rolling_db"]))
    rolling_hz = p["rolling_hz"] * (1 + rng.uniform(-c["rolling_hz"], c["rolling_hz"]))
    if anomaly == "voltage_change":
        top *= 1 + rng.choice([-1, 1]) * rng.uniform(0.06, 0.12)
    t = _time(n)
    seconds = n / SR
    # start-to-stop speed profile: cosine ramps over the first and last quarter of the run
    low = rng.uniform(0.4, 0.55)
    ramp = np.clip(np.minimum(t, seconds - t) / (0.25 * seconds), 0, 1)
    motor_hz = top * (low + (1 - low) * 0.5 * (1 - np.cos(np.pi * ramp)))
    wheel_phase = _phase(motor_hz, n) / p["wheel_ratio"]
    am = 1 + 0.03 * np.sin(wheel_phase)
    if anomaly == "bent_shaft":  # a wobbling wheel shaft: speed and level change every turn
        motor_hz = motor_hz * (1 + rng.uniform(0.02, 0.05) * np.sin(wheel_phase))
        am = 1 + rng.uniform(0.15, 0.3) * np.sin(wheel_phase)
    phase = _phase(motor_hz, n)
    speed = motor_hz / top
    x = _harmonics(rng, 2 * phase, _tilted(8, 5.0) * _profile(p, 8), 2 * top * 1.06)  # commutator whine
    mesh = _harmonics(rng, p["teeth"] * phase, np.array([1.0, 0.4, 0.15]) * _profile(p, 3, 8),
                      p["teeth"] * top * 1.06)
    x += 0.5 * mesh
    x += rolling * speed**2 * _band_noise(rng, n, rolling_hz, 1.0 * _width(p))
    x *= am
    if anomaly == "damaged_gear":  # a broken tooth: an impulse once per turn of the gear
        times = _crossing_times(phase / p["gear_ratio"] + rng.uniform(0, 2 * np.pi))
        kernel = _ring(rng.uniform(2000, 3000), 0.0015)
        _add_events(x, times, rng.uniform(0.8, 1.6) * np.ones(len(times)), [kernel] * len(times))
    elif anomaly == "tire_ribbon":  # a ribbon on the tyre: a tick once per wheel turn
        times = _crossing_times(wheel_phase + rng.uniform(0, 2 * np.pi))
        kernel = _ring(rng.uniform(4000, 6000), 0.0007)
        _add_events(x, times, rng.uniform(1.5, 3.0) * np.ones(len(times)), [kernel] * len(times))
    return x


def _toyconveyor(rng, n, p, anomaly):
    """ToyConveyor: motor and gear whine, roller rumble, belt noise with a seam tick."""
    c = _CONDITION["ToyConveyor"]  # operating condition: supply, load on the belt
    motor = p["motor_hz"] * (1 + rng.normal(0, c["speed"]))
    belt_db = p["belt_db"] + rng.uniform(-c["belt_db"], c["belt_db"])
    belt_hz = p["belt_hz"] * (1 + rng.uniform(-c["belt_hz"], c["belt_hz"]))
    if anomaly == "tension":  # an over-tight belt loads the motor and rubs harder
        motor *= 1 - rng.uniform(0.04, 0.08)
        belt_db += rng.uniform(1.5, 3.5)
        belt_hz *= 1 + rng.uniform(0.05, 0.15)
    phase = _phase(motor * _wander(rng, n), n)
    x = 0.5 * _harmonics(rng, 2 * phase, _tilted(6, 6.0) * _profile(p, 6), 2 * motor * 1.01)
    x += 0.4 * _harmonics(rng, phase / p["roller_ratio"],
                          np.array([1.0, 0.6, 0.4, 0.3]) * _profile(p, 4, 6), motor)
    belt_rev_hz = p["belt_rev_hz"] * motor / p["motor_hz"]
    belt_phase = 2 * np.pi * belt_rev_hz * _time(n) + rng.uniform(0, 2 * np.pi)
    x += _db(belt_db) * (1 + 0.1 * np.sin(belt_phase)) * _band_noise(rng, n, belt_hz, 1.0 * _width(p))
    # the belt seam passes the drive roller once per revolution: a faint tick
    seams = _crossing_times(belt_phase)
    _add_events(x, seams, 0.5 * np.ones(len(seams)), [_ring(1500.0, 0.002)] * len(seams))
    if anomaly == "attached_object":  # an object on the belt bumps over each of 3 rollers
        bumps = _crossing_times(3 * belt_phase + rng.uniform(0, 2 * np.pi))
        kernel = _ring(rng.uniform(150, 400), 0.015) + 0.3 * _ring(2500.0, 0.001, 0.09)
        _add_events(x, bumps, rng.uniform(0.6, 1.5) * np.ones(len(bumps)), [kernel] * len(bumps))
    return x


_GENERATORS = {
    "fan": _fan,
    "pump": _pump,
    "slider": _slider,
    "valve": _valve,
    "ToyCar": _toycar,
    "ToyConveyor": _toyconveyor,
}


def factory_background(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    """Generated factory noise: pink + brown noise, 2-4 distant machine hums, occasional bangs.

    Args:
        rng: the clip's random generator.
        num_samples: length in samples.

    Returns:
        The background, float64, RMS 1.

    Shapes:
        returns ``[num_samples]``.
    """
    n = num_samples
    t = _time(n)
    x = _coloured_noise(rng, n, 1.0) + rng.uniform(0.5, 1.5) * _coloured_noise(rng, n, 2.0)
    for _ in range(rng.integers(2, 5)):  # distant machines: a hum with a few harmonics
        f0 = rng.uniform(45, 300)
        swell = 1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t + rng.uniform(0, 6.3))
        x += rng.uniform(0.2, 0.6) * swell * _harmonics(rng, _phase(f0, n), _tilted(4, 4.0), f0)
    count = rng.poisson(0.3 * n / SR)  # transient bangs, muffled by distance
    for _ in range(count):
        length = int(rng.uniform(0.02, 0.08) * SR)
        decay = np.exp(-np.arange(4 * length) / length)
        burst = np.convolve(rng.standard_normal(4 * length) * decay, np.ones(4) / 4, mode="same")
        _add_events(x, [rng.uniform(0, n / SR)], [rng.uniform(2, 6)], [burst])
    return x / np.sqrt(np.mean(x**2))


@functools.lru_cache(maxsize=512)
def _reference_rms(machine_type: str, machine_id: str, num_samples: int, level: str) -> float:
    """RMS of one fixed normal clip of the machine alone: the level the SNR refers to.

    A per-ID reference (not each clip's own RMS) keeps the level changes of anomalies.
    """
    rng = clip_rng(0, machine_type, machine_id, "reference", "normal", 0)
    x = _machine(rng, machine_type, machine_id, num_samples, None, level)
    return max(float(np.sqrt(np.mean(x**2))), 1e-12)


def _num_samples(seconds) -> int:
    """`asdlib.layout.num_samples`, with the generator's own lower bound of 64 samples."""
    try:
        n = layout.num_samples(seconds)
    except ValueError as err:
        raise ValueError(f"seconds {err}") from None
    if n < 64:
        raise ValueError(f"seconds must be at least 64 samples ({64 / SR:g} s), got {seconds!r}")
    return n


def make_clip(machine_type: str, machine_id: str, label: str = "normal", number: int = 0,
              split: str = "test", seed: int = 0, seconds: float = 2.0,
              anomaly: str | None = None, background: bool = True,
              individuality: str = "kept") -> np.ndarray:
    """Generate one clip in memory, exactly as :func:`generate` writes it (before PCM16).

    Args:
        machine_type: one of ``asdlib.layout.MACHINE_TYPES``.
        machine_id: one of that type's IDs, e.g. ``"id_00"``.
        label: ``"normal"`` or ``"anomaly"``.
        number: the clip number (the ``NNNNNNNN`` of the file name).
        split: ``"train"`` or ``"test"`` (part of the clip's seed).
        seed: the global seed.
        seconds: clip length.
        anomaly: for ``label="anomaly"``, force this kind (one of ``ANOMALY_KINDS[type]``)
            instead of ``anomaly_kind(machine_type, number)``.
        background: mix in the factory background (``False``: the machine alone, at the same
            level, for looking at the physics).
        individuality: how strongly machines differ (`INDIVIDUALITY_LEVELS`).

    Returns:
        The clip, float32, peak below ``PEAK_LIMIT``.

    Shapes:
        returns ``[round(seconds * 16000)]``.
    """
    _check_type(machine_type)
    params = id_parameters(machine_type, machine_id)
    if label not in ("normal", "anomaly"):
        raise ValueError(f"label must be 'normal' or 'anomaly', got {label!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or number < 0:
        raise ValueError(f"number must be a non-negative int, got {number!r}")
    if label == "normal" and anomaly is not None:
        raise ValueError(f"anomaly={anomaly!r} needs label='anomaly'")
    if label == "anomaly":
        anomaly = anomaly_kind(machine_type, number) if anomaly is None else anomaly
        if anomaly not in ANOMALY_KINDS[machine_type]:
            raise ValueError(f"anomaly must be one of {ANOMALY_KINDS[machine_type]} for "
                             f"{machine_type}, got {anomaly!r}")
    n = _num_samples(seconds)
    rng = clip_rng(_check_seed(seed), machine_type, machine_id, split, label, number)
    level = _check_level(individuality)
    x = (_machine(rng, machine_type, machine_id, n, anomaly, level)
         / _reference_rms(machine_type, machine_id, n, level))
    # the background level changes from clip to clip around the ID's SNR
    noise = _db(-params["snr_db"] + rng.uniform(-BACKGROUND_DB_JITTER, BACKGROUND_DB_JITTER))
    if background:
        x = x + noise * factory_background(rng, n)
    # nominal level, then a per-clip recording-level jitter of +-1.5 dB
    x *= OUTPUT_RMS / math.sqrt(1 + noise**2) * _db(rng.uniform(-1.5, 1.5))
    peak = np.max(np.abs(x))
    if peak > PEAK_LIMIT:  # a rare loud bang: turn the clip down rather than clip it
        x *= PEAK_LIMIT / peak
    return x.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Writing the dataset
# --------------------------------------------------------------------------------------------


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _check_types(types) -> list:
    if types is None:
        return list(layout.MACHINE_TYPES)
    if isinstance(types, str):
        types = [types]
    types = list(types)
    if not types:
        raise ValueError("types must name at least one machine type, got an empty list")
    for machine_type in types:
        if machine_type not in layout.MACHINE_TYPES:
            raise ValueError(f"types: unknown machine type {machine_type!r}; "
                             f"choose from {list(layout.MACHINE_TYPES)}")
    # keep the class-label order whatever order was asked for
    return [t for t in layout.MACHINE_TYPES if t in types]


def _jobs(options: dict) -> list:
    """Every clip to write: (machine_type, machine_id, split, label, number, relative path)."""
    table = layout.ALL_IDS if options["ids"] == "all" else layout.DEV_IDS
    counts = options["counts"]
    jobs = []
    for machine_type in options["types"]:
        for machine_id in table[machine_type]:
            for split, label, count in (("train", "normal", counts["train_normal_per_id"]),
                                        ("test", "normal", counts["test_normal_per_id"]),
                                        ("test", "anomaly", counts["test_anomaly_per_id"])):
                for number in range(count):
                    name = layout.clip_filename(label, machine_id, number)
                    jobs.append((machine_type, machine_id, split, label, number,
                                 f"{machine_type}/{split}/{name}"))
    return jobs


def _write_one(job, out: str, seed: int, seconds: float, skip_existing: bool, level: str) -> None:
    machine_type, machine_id, split, label, number, relative = job
    path = Path(out) / relative
    if skip_existing and path.exists():  # write_clip is atomic: an existing file is complete
        return
    wav = make_clip(machine_type, machine_id, label, number, split, seed, seconds,
                    individuality=level)
    audio.write_clip(path, wav, SR)


def _write_chunk(chunk, out, seed, seconds, skip_existing, level) -> int:
    for job in chunk:
        _write_one(job, out, seed, seconds, skip_existing, level)
    return len(chunk)


def _write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (`asdlib.runtime.write_text_atomic`)."""
    runtime.write_text_atomic(json.dumps(data, indent=2) + "\n", path)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _existing_clips(out: Path) -> list:
    """The DCASE-named wav files under ``out/<type>/{train,test}``."""
    found = []
    for machine_type in layout.MACHINE_TYPES:
        for split in ("train", "test"):
            folder = out / machine_type / split
            if folder.is_dir():
                found += [p for p in folder.iterdir() if layout.FILENAME_PATTERN.match(p.name)]
    return found


def _covers(info: dict, options: dict) -> bool:
    """Whether a complete folder already holds what ``options`` asks for (same or more types)."""
    same = all(info.get(k) == v for k, v in options.items() if k != "types")
    return same and set(options["types"]) <= set(info.get("types") or [])


def _differences(old: dict, new: dict) -> str:
    keys = [k for k in new if old.get(k) != new[k]]
    return ", ".join(f"{k}: {old.get(k)!r} on disk, {new[k]!r} asked" for k in keys)


def _options(profile, seed, seconds, types, ids) -> dict:
    """Every option that decides the clips, checked (what a dataset's info file starts with)."""
    chosen = profiles.get_profile(profile)
    seed = _check_seed(seed)
    seconds = chosen.seconds if seconds is None else seconds
    _num_samples(seconds)
    ids = chosen.ids if ids is None else ids
    if ids not in ("dev", "all"):
        raise ValueError(f"ids must be 'dev' or 'all', got {ids!r}")
    return {
        "generator": "asdlib.synth",
        "version": GENERATOR_VERSION,
        "profile": chosen.name,
        "seed": seed,
        "seconds": float(seconds),
        "sample_rate": SR,
        "ids": ids,
        "individuality": dict(INDIVIDUALITY_LEVELS[_check_level(chosen.individuality)]),
        "types": _check_types(types),
        "counts": {
            "train_normal_per_id": chosen.train_per_id,
            "test_normal_per_id": chosen.test_normal_per_id,
            "test_anomaly_per_id": chosen.test_anomaly_per_id,
        },
    }


def _info(options: dict, jobs: list) -> dict:
    """The content of ``synth_info.json``: the options, the counts and the anomaly kinds."""
    info = dict(options)
    info["clips"] = {
        t: {s: sum(1 for j in jobs if j[0] == t and f"{j[2]}_{j[3]}" == s)
            for s in ("train_normal", "test_normal", "test_anomaly")}
        for t in options["types"]
    }
    info["total_clips"] = len(jobs)
    info["anomaly_kinds"] = {t: list(ANOMALY_KINDS[t]) for t in options["types"]}
    return info


def expected_info(profile=None, seed: int = 0, seconds: float | None = None, types=None,
                  ids: str | None = None) -> dict:
    """The ``synth_info.json`` that :func:`generate` writes for these options, without writing
    anything: so the fingerprint of a synthetic dataset is known before it is generated
    (`asdlib.runfolder.dataset_fingerprint` hashes this content)."""
    options = _options(profile, seed, seconds, types, ids)
    return json.loads(json.dumps(_info(options, _jobs(options))))


def generate(out, profile: str | None = None, seed: int = 0, seconds: float | None = None,
             types=None, ids: str | None = None, progress: bool = True, overwrite: bool = False,
             workers: int = 1) -> dict:
    """Write the synthetic dataset in the DCASE 2020 Task 2 layout.

    Writes ``<out>/<type>/train/normal_id_XX_NNNNNNNN.wav`` and
    ``<out>/<type>/test/{normal,anomaly}_id_XX_NNNNNNNN.wav`` (16 kHz mono PCM16), then, last
    and atomically, ``<out>/synth_info.json``. A folder without that file is incomplete.

    Running again with the same options on a complete folder does nothing. An interrupted run
    is resumed (clips already written are kept: every clip file is written atomically). A
    folder that holds clips written with other options, or clips of unknown origin (e.g. the
    real DCASE data), is refused unless ``overwrite=True``, which first deletes every
    DCASE-named wav file under ``<out>/<type>/{train,test}`` and the info file.

    Args:
        out: the dataset folder (created if missing).
        profile: ``"smoke"``, ``"book"`` or ``"paper"`` (None: ``$ASDLIB_PROFILE`` or book);
            sets the clip counts per ID, the clip length and the IDs.
        seed: the global seed (non-negative int).
        seconds: clip length in seconds; None takes the profile's.
        types: machine types to write (None: all six); the clips do not depend on this.
        ids: ``"dev"`` (development IDs) or ``"all"`` (all 41); None takes the profile's.
        progress: show a tqdm progress bar.
        overwrite: replace clips written with other options (see above).
        workers: processes writing clips (1: this process only).

    Returns:
        The contents of ``synth_info.json``.

    Raises:
        ValueError: a bad argument (the message names it) or a folder written with other
            options.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    options = _options(profile, seed, seconds, types, ids)
    chosen = profiles.get_profile(profile)
    seed, seconds = options["seed"], options["seconds"]
    level = chosen.individuality
    out = Path(out)
    info_path, partial_path = out / INFO_NAME, out / PARTIAL_NAME
    jobs = _jobs(options)

    # 1. a complete folder: nothing to do, or a clear refusal
    info = _read_json(info_path) if info_path.exists() else None
    started = _read_json(partial_path) if partial_path.exists() else None
    if info is not None and _covers(info, options):
        return info
    conflict = None
    if info is not None:
        conflict = f"it holds a complete synthetic dataset with other options ({_differences(info, options)})"
    elif started is not None and started != options:
        conflict = f"an unfinished run with other options left it ({_differences(started, options)})"
    elif started is None and out.exists() and _existing_clips(out):
        conflict = "it holds DCASE-named clips that this generator did not start (real data?)"
    if conflict is not None:
        if not overwrite:
            raise ValueError(f"out: refusing to write into {out}: {conflict}; choose another "
                             f"folder or pass overwrite=True (--overwrite) to replace its clips")
        for path in _existing_clips(out):
            path.unlink()
        info_path.unlink(missing_ok=True)

    # 2. say what is being written, then write every clip (resuming an interrupted run)
    out.mkdir(parents=True, exist_ok=True)
    resume = started == options
    _write_json(partial_path, options)

    bar = runtime.progress_bar(show=progress, total=len(jobs), desc=f"synth {chosen.name}", unit="clip")
    if workers == 1:
        for job in jobs:
            _write_one(job, str(out), seed, float(seconds), resume, level)
            bar.update(1)
    else:
        chunks = [jobs[i:i + 24] for i in range(0, len(jobs), 24)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_write_chunk, c, str(out), seed, float(seconds), resume, level)
                       for c in chunks]
            for future in futures:
                bar.update(future.result())
    bar.close()

    # 3. the info file last: its presence means the folder is complete; it records the digest
    # of the clips, so that a copy edited afterwards is not taken for this dataset
    info = _info(options, jobs)
    info["content"] = dcase.content_digest(out)
    _write_json(info_path, info)
    partial_path.unlink(missing_ok=True)
    return info
