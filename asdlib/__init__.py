"""asdlib: the small library behind the book "Anomalous sound detection with Noisy-ArcMix".

Each module maps to the chapter that explains it:

- ``asdlib.layout``      - DCASE 2020 Task 2 machine types, IDs, file names, class map (ch. 1)
- ``asdlib.synth``       - the synthetic machine-sound dataset in the DCASE layout (ch. 1)
- ``asdlib.dcase``       - the real data: download manifest, download, index, class map (ch. 1, 11)
- ``asdlib.audio``       - reading and writing clips with checks (ch. 1)
- ``asdlib.cache``       - the streamed on-disk clip cache for training at any scale (ch. 8, 11)
- ``asdlib.metrics``     - AUC, pAUC, per-ID / per-type / pooled tables, the paper's layout (ch. 1)
- ``asdlib.baseline``    - the DCASE 2020 autoencoder baseline (ch. 2)
- ``asdlib.features``    - the log-Mel spectrogram, the Sgram (ch. 3)
- ``asdlib.models``      - TgramNet, TAgram, MobileFaceNet, STgram / TASTgram (ch. 3, 8)
- ``asdlib.losses``      - ArcFace, mixup, ArcMix and Noisy-ArcMix (ch. 4-7)
- ``asdlib.toy``         - the 2-D teaching toy of the loss chapters (ch. 4-7)
- ``asdlib.train``       - the training loop (ch. 8)
- ``asdlib.evaluate``    - anomaly scores, DCASE score files, embeddings and angles (ch. 8, 9)
- ``asdlib.experiments`` - train once, read many times: the run cache (ch. 8-11)
- ``asdlib.bench``       - speed figures (ch. 11)
- ``asdlib.plots``       - every figure of the book
- ``asdlib.exercises``   - the checkers of the exercises
- ``asdlib.classroom``   - the student edition: the chapters without their solutions
- ``asdlib.profiles``    - the smoke / book / paper profiles read by every chapter
- ``asdlib.runtime``     - the cache folder, the device, the setup report

Importing asdlib changes no global state (no seeds, no plotting style).
"""

__version__ = "0.1.0"
