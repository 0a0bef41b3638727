"""asdlib: the small library behind the book "Anomalous sound detection with Noisy-ArcMix".

Each module, what it holds, and the chapters that import it (a test checks this map: every
module named exists, and every chapter named imports it). The layout follows the book: the
method first, then the data, then what runs the experiments.

The method:

- ``asdlib.features``    - the log-Mel spectrogram, the Sgram (ch. 1, 3, 5, 8, 11)
- ``asdlib.models``      - TgramNet, TAgram, MobileFaceNet, ``ASDNet`` (STgram / TASTgram) (ch. 2, 3, 8, 11)
- ``asdlib.losses``      - ArcFace, mixup, ArcMix and Noisy-ArcMix, mixing a batch (ch. 4, 5, 6, 7, 8, 11)
- ``asdlib.loop``        - one training step, one epoch, validation, embedding (ch. 8)
- ``asdlib.metrics``     - AUC, pAUC, per-ID / per-type / pooled tables (ch. 1, 2, 8, 9)
- ``asdlib.tables``      - the paper's table layout, standard errors, the published numbers (ch. 1, 2, 7, 8, 9, 10)
- ``asdlib.baseline``    - the DCASE 2020 autoencoder baseline (ch. 2)
- ``asdlib.toy``         - the 2-D teaching toy of the loss chapters (ch. 4, 5, 6, 7)

The data:

- ``asdlib.layout``      - machine types, IDs, file names, seconds to samples (ch. 1, 2, 8, 11)
- ``asdlib.synth``       - the synthetic machine-sound dataset in the DCASE layout (ch. 1, 2, 3, 5)
- ``asdlib.dcase``       - the real data: manifest, download, index, class map, content digest (ch. 1, 2, 11)
- ``asdlib.audio``       - reading and writing clips, with checks (ch. 1, 2, 3)
- ``asdlib.cache``       - the int16 clip cache that training and evaluation read (behind ``asdlib.train``)

Running experiments:

- ``asdlib.profiles``    - every size of every experiment, the seed rule, ``TrainConfig``, the setup report (every chapter)
- ``asdlib.experiments`` - train once, read many times: runs, published runs, synthetic datasets (ch. 1, 2, 3, 7, 8, 9, 10, 11)
- ``asdlib.curve``       - the learning curve of the two reference models, published in ``asdlib/evidence`` (ch. 2)
- ``asdlib.train``       - the orchestration around the loop: data, resume, checkpoints, data-parallel (behind ``asdlib.experiments``)
- ``asdlib.evaluate``    - anomaly scores, thresholds, DCASE score files, embeddings (behind ``asdlib.experiments``)
- ``asdlib.runfolder``   - a run's folder: its key (config + data fingerprint), files and checkpoints, ``Run``, the one ``load_model`` (behind ``asdlib.experiments``)
- ``asdlib.store``       - inputs -> hash -> folder, built once, safe for two processes (behind every cache)
- ``asdlib.bench``       - speed figures (ch. 11)
- ``asdlib.runtime``     - the home folder, the device, file writes, progress bars; imports no other asdlib module (every chapter)
- ``asdlib.plots``       - every figure of the book (every chapter)
- ``asdlib.exercises``   - the checkers of the exercises (every chapter)
- ``asdlib.classroom``   - the student edition: the chapters without their solutions (``make student``)
- ``asdlib.cli``         - the command line, ``python -m asdlib ...``

The folder is flat on purpose: the chapters import modules of every group by one short name
(``from asdlib import synth, dcase, train, experiments``), and sub-packages such as
``asdlib/data/`` or ``asdlib/runs/`` would make those imports longer or give each module a
second name. The layers are in the imports instead: no module imports one that imports it back
(a test checks for cycles), the foundations (``layout``, ``runtime``, ``store``, ``features``,
``losses``, ``metrics``) import no other asdlib module, and reading a published run goes
``experiments.load_or_train`` -> ``synth.expected_info`` (the data's options, found with
``profiles.get_profile``) -> ``runfolder`` (the key, the files, ``Run``) -> ``store.key`` (the
hash).

Importing asdlib changes no global state (no seeds, no plotting style, no allocator setting).
"""

__version__ = "0.1.0"


def _import_tqdm_auto_quietly() -> None:
    """Import `tqdm.auto` once, before any submodule, without its "IProgress not found" warning.

    In a Jupyter kernel without ipywidgets, tqdm.auto falls back to a text bar and warns about
    it on stderr at its first import, and that warning would land in a chapter's output. The
    first import can come from anywhere: pooch (which `asdlib.runtime` and `asdlib.dcase`
    import at the top) and umap-learn import it too. Importing it here, quietly, makes every
    later import a no-op. Only `sys.modules` changes; the warning filters are restored.
    """
    import warnings

    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmWarning)
        import tqdm.auto  # noqa: F401


_import_tqdm_auto_quietly()
