"""asdlib: the small library behind the book "Anomalous sound detection with Noisy-ArcMix".

Each module maps to the chapter that explains it:

- ``asdlib.features``  - log-Mel spectrogram (Sgram), chapter 3
- ``asdlib.losses``    - ArcFace, mixup, ArcMix and Noisy-ArcMix, chapters 4-7
- ``asdlib.models``    - TgramNet, TAgram, MobileFaceNet, STgram / TASTgram, chapters 3 and 8
- ``asdlib.metrics``   - AUC, pAUC, per-ID / per-type / pooled tables, chapter 1
- ``asdlib.layout``    - the DCASE 2020 Task 2 machine types, IDs and file names, chapter 1
- ``asdlib.profiles``  - the smoke / book / paper profiles read by every chapter

Importing asdlib changes no global state (no seeds, no plotting style).
"""

__version__ = "0.1.0"
