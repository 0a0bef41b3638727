"""Figures of the book, one function per figure: ``plot_<thing>(..., ax=None or fig=None)``.

Each function draws into the Axes or Figure it is given (or a new one) and returns it; nothing
here calls ``plt.show()`` or changes matplotlib's global style on import.

- :func:`plot_machine_spectrograms` - a normal and an anomalous clip of every machine type,
  chapter 1 ("The task and the data").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_machine_spectrograms"]


def _first_clip(folder: Path, label: str, machine_id: str | None, number: int | None):
    """The test clip of ``label`` with the lowest ID (or ``machine_id``) and number."""
    from asdlib.layout import parse_filename

    found = []
    for path in folder.glob(f"{label}_id_*.wav"):
        parsed = parse_filename(path.name)
        if parsed and machine_id in (None, parsed[1]) and number in (None, parsed[2]):
            found.append((parsed[1], parsed[2], path))
    if not found:
        wanted = f"{label} clip" + (f" of {machine_id}" if machine_id else "")
        raise FileNotFoundError(f"no {wanted}" + (f" number {number}" if number is not None else "")
                                + f" in {folder}")
    return min(found)


def plot_machine_spectrograms(root, types=None, machine_ids=None, number=None, fig=None):
    """Log-Mel spectrograms of one normal and one anomalous test clip per machine type.

    A grid of ``len(types)`` rows by 2 columns (normal left, anomalous right). The two clips of
    a row share one colour scale, so their levels can be compared. On the synthetic data the
    anomaly kind is named in the title.

    Args:
        root: a dataset folder in the DCASE layout (``<root>/<type>/test/*.wav``).
        types: machine types to show (default: every type found under ``root``, in
            ``asdlib.layout.MACHINE_TYPES`` order).
        machine_ids: ``{machine_type: machine_id}`` to choose the ID shown (default: the lowest
            ID with a normal test clip).
        number: the clip number to show (default: the lowest available).
        fig: a matplotlib Figure to draw into (default: a new one).

    Returns:
        The Figure.
    """
    import matplotlib.pyplot as plt
    import soundfile as sf
    import torch

    from asdlib import layout
    from asdlib.features import LogMel

    root = Path(root)
    if types is None:
        types = [t for t in layout.MACHINE_TYPES if (root / t / "test").is_dir()]
    if not types:
        raise FileNotFoundError(f"root: no <type>/test folders in {root}")
    machine_ids = machine_ids or {}
    synthetic = (root / "synth_info.json").exists()
    if fig is None:
        fig = plt.figure(figsize=(10, 2.0 * len(types)), layout="constrained")
    axes = np.asarray(fig.subplots(len(types), 2, squeeze=False))
    logmel = LogMel()
    for row, machine_type in enumerate(types):
        folder = root / machine_type / "test"
        normal = _first_clip(folder, "normal", machine_ids.get(machine_type), number)
        # the anomalous clip of the same ID as the normal one
        anomaly = _first_clip(folder, "anomaly", normal[0], number)
        images = []
        for machine_id, clip_number, path in (normal, anomaly):
            wav, rate = sf.read(str(path), dtype="float32")
            with torch.no_grad():
                # [1, samples] -> [mels, frames]
                images.append((logmel(torch.from_numpy(wav)[None])[0].numpy(), len(wav) / rate))
        low = min(np.percentile(image, 1) for image, _ in images)
        high = max(image.max() for image, _ in images)
        for col, ((image, seconds), (machine_id, clip_number, path)) in enumerate(
                zip(images, (normal, anomaly))):
            ax = axes[row, col]
            ax.imshow(image, origin="lower", aspect="auto", cmap="magma", vmin=low, vmax=high,
                      extent=(0, seconds, 0, image.shape[0]))
            label = path.name.split("_")[0]
            title = f"{machine_type} {machine_id} {label} #{clip_number}"
            if synthetic and label == "anomaly":
                from asdlib.synth import anomaly_kind

                title += f" ({anomaly_kind(machine_type, clip_number).replace('_', ' ')})"
            ax.set_title(title, fontsize=9)
            ax.set_ylabel("Mel band" if col == 0 else "")
            ax.set_xlabel("time (s)" if row == len(types) - 1 else "")
    return fig
