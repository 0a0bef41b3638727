"""The DCASE 2020 Task 2 dataset layout: machine types, machine IDs, file names, class indices.

Explained in chapter 1 ("The task and the data"). Facts from the Noisy-ArcMix authors'
implementation (see the book's reference notes):

- six machine types, in the *class-label* order ``fan, pump, slider, ToyCar, ToyConveyor, valve``
  (the paper's tables use another column order; see ``asdlib.metrics``);
- seven IDs per type (six for ToyConveyor) across the development and additional training sets,
  41 classes in all; class index = number of IDs of the types before it + position of the ID;
- file names ``<type>/{train,test}/{normal,anomaly}_id_XX_NNNNNNNN.wav``.
"""

from __future__ import annotations

import math
import re

#: Sample rate of every DCASE 2020 Task 2 clip, in Hz.
SAMPLE_RATE = 16000
#: Clip length of the real data, in seconds (longer files are cut to this).
CLIP_SECONDS = 10.0



def num_samples(seconds) -> int:
    """The length in samples of a clip of ``seconds`` at 16 kHz: ``round(seconds * 16000)``.

    The one conversion from seconds to samples in asdlib (profiles, the generator, the
    baseline, the benchmark and the chapters all call it).

    Raises:
        ValueError: ``seconds`` is not a positive finite number of at most `MAX_SECONDS`.
    """
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise ValueError(f"must be a positive number of seconds, got {seconds!r}") from None
    if isinstance(seconds, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a positive number of seconds, got {seconds!r}")
    if value > MAX_SECONDS:
        raise ValueError(f"must be at most {MAX_SECONDS} s (the DCASE clips are 10 s), got "
                         f"{seconds!r}")
    return int(round(value * SAMPLE_RATE))


#: The longest clip asdlib takes: six times the DCASE 2020 clips (a batch of 64 such clips
#: is already 250 MB of float32 samples before any feature).
MAX_SECONDS = 60


#: Machine types in the authors' class-label order.
MACHINE_TYPES = ("fan", "pump", "slider", "ToyCar", "ToyConveyor", "valve")


def _ids(numbers):
    return tuple(f"id_{n:02d}" for n in numbers)


#: Every machine ID per type (development + additional training data), in class order.
ALL_IDS = {
    "fan": _ids(range(0, 7)),
    "pump": _ids(range(0, 7)),
    "slider": _ids(range(0, 7)),
    "ToyCar": _ids(range(1, 8)),
    "ToyConveyor": _ids(range(1, 7)),
    "valve": _ids(range(0, 7)),
}

#: The IDs of the development set (the others come with the additional training set).
DEV_IDS = {
    "fan": _ids((0, 2, 4, 6)),
    "pump": _ids((0, 2, 4, 6)),
    "slider": _ids((0, 2, 4, 6)),
    "ToyCar": _ids((1, 2, 3, 4)),
    "ToyConveyor": _ids((1, 2, 3)),
    "valve": _ids((0, 2, 4, 6)),
}

#: The IDs of the additional training (and evaluation) set.
ADD_IDS = {t: tuple(i for i in ALL_IDS[t] if i not in DEV_IDS[t]) for t in MACHINE_TYPES}

#: ``normal_id_00_00000012.wav`` -> label "normal", machine_id "id_00", number 12.
#: The file a synthetic data root holds beside its clips (`asdlib.synth` writes it last,
#: `asdlib.runfolder.dataset_fingerprint` reads it).
SYNTH_INFO = "synth_info.json"

FILENAME_PATTERN = re.compile(r"^(normal|anomaly)_(id_\d{2})_(\d{8})\.wav$")


def parse_filename(name: str):
    """Split a DCASE clip file name into ``(label, machine_id, number)``.

    Args:
        name: a file name such as ``anomaly_id_02_00000007.wav`` (no folder).

    Returns:
        ``("anomaly", "id_02", 7)``, or ``None`` when the name does not follow the pattern.
    """
    match = FILENAME_PATTERN.match(name)
    if match is None:
        return None
    label, machine_id, number = match.groups()
    return label, machine_id, int(number)


def clip_filename(label: str, machine_id: str, number: int) -> str:
    """The DCASE file name of a clip: ``clip_filename("normal", "id_00", 12)`` is
    ``normal_id_00_00000012.wav``."""
    if label not in ("normal", "anomaly"):
        raise ValueError(f"label must be 'normal' or 'anomaly', got {label!r}")
    if not re.fullmatch(r"id_\d{2}", machine_id):
        raise ValueError(f"machine_id must look like 'id_00', got {machine_id!r}")
    return f"{label}_{machine_id}_{number:08d}.wav"


def reference_class_map() -> dict:
    """The authors' 41-class map ``{(machine_type, machine_id): class_index}``.

    >>> reference_class_map()[("ToyCar", "id_01")]
    21
    """
    classes = [(t, i) for t in MACHINE_TYPES for i in ALL_IDS[t]]
    return {key: index for index, key in enumerate(classes)}
