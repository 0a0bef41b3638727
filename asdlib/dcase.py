"""The real DCASE 2020 Task 2 data: download manifest, download, index of clips, class map.

Explained in chapter 1 ("The task and the data"). Three Zenodo records hold the data, one zip
file per machine type each:

======  ========  ==============================  ==========================================
subset  record    zip files                       what it holds
======  ========  ==============================  ==========================================
dev     3678171   ``dev_data_<type>.zip``         development set: train (normal) + test
                                                  (normal and anomaly) of the dev IDs
add     3727685   ``eval_data_train_<type>.zip``  additional training set: train (normal) of
                                                  the other IDs
eval    3841772   ``eval_data_test_<type>.zip``   evaluation test set of the other IDs, named
                                                  ``id_XX_NNNNNNNN.wav`` (no label in the name)
======  ========  ==============================  ==========================================

The manifest (URL and published MD5 of every zip) ships inside the package as
``asdlib/resources/dcase2020_task2.csv``; ``data/dcase2020_task2.csv`` in the repository is a
byte-identical copy for readers (a test checks it).

:func:`download` fetches, verifies and unzips them into the DCASE layout
``<dest>/<type>/{train,test}/*.wav``; :func:`build_index` lists the clips of such a folder as a
DataFrame; :func:`class_map` turns the training IDs into class indices (the authors' 41 classes
when every ID is there); :func:`content_digest` hashes every clip of a data root (what
`asdlib.runfolder.dataset_fingerprint` names real data by).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
import zipfile
from importlib import resources
from pathlib import Path, PurePosixPath

import pandas as pd
import pooch
import requests

from asdlib import runtime, store
from asdlib.layout import ALL_IDS, DEV_IDS, MACHINE_TYPES, parse_filename, reference_class_map

#: Short names of the three parts of the data, in download order.
SUBSETS = ("dev", "add", "eval")
#: Environment variable that replaces the Zenodo host (see :func:`zip_url`).
URL_ENV_VAR = "ASDLIB_DCASE_URL"
#: Folder (inside ``dest``) that holds the downloaded zips and the extraction markers.
STATE_DIR = ".asdlib_download"

#: Bytes per read while downloading (a broken connection loses at most the chunk being read).
DOWNLOAD_CHUNK = 1 << 16

#: Evaluation test clips carry no label: ``id_01_00000012.wav``.
EVAL_FILENAME_PATTERN = re.compile(r"^(id_\d{2})_(\d{8})\.wav$")

#: Shown in every "wrong layout" error, so the reader sees what is expected.
EXPECTED_LAYOUT = """\
expected the DCASE 2020 Task 2 layout (one folder per machine type):

    <root>/
    ├── fan/
    │   ├── train/normal_id_00_00000000.wav ...
    │   └── test/{normal,anomaly}_id_00_00000000.wav ...  (evaluation set: id_01_00000000.wav)
    ├── pump/ ...
    └── valve/ ...

or the same type folders under <root>/dev_data/ and <root>/eval_data/
(asdlib.dcase.download(root) writes the first form)."""


# --------------------------------------------------------------------------------------------
# Manifest and download
# --------------------------------------------------------------------------------------------


def manifest_path() -> Path:
    """Path of the manifest CSV inside the installed package."""
    return Path(str(resources.files("asdlib") / "resources" / "dcase2020_task2.csv"))


def load_manifest() -> pd.DataFrame:
    """The download manifest: one row per zip file.

    Returns:
        DataFrame with columns ``subset, machine_type, record, filename, url, md5``.
    """
    return pd.read_csv(manifest_path(), dtype={"record": str})


def zip_url(row, base_url: str | None = None) -> str:
    """The URL of one zip file of the manifest.

    The rule: with no ``base_url`` and no ``ASDLIB_DCASE_URL`` environment variable, the
    manifest's Zenodo URL ``https://zenodo.org/records/<record>/files/<filename>?download=1``;
    otherwise ``<base_url>/<record>/files/<filename>`` (a trailing slash of ``base_url`` is
    dropped; the argument wins over the variable). A mirror or a test server only has to copy
    Zenodo's paths.

    Args:
        row: a manifest row (mapping with ``record``, ``filename`` and ``url``).
        base_url: replaces ``https://zenodo.org/records``.
    """
    base_url = base_url or os.environ.get(URL_ENV_VAR)
    if not base_url:
        return str(row["url"])
    return f"{base_url.rstrip('/')}/{row['record']}/files/{row['filename']}"


def _check_names(values, allowed, argument):
    """Tuple of ``values`` (a name or a list), each of which must be in ``allowed``."""
    values = (values,) if isinstance(values, str) else tuple(values)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"{argument}: unknown {unknown}; expected some of {list(allowed)}")
    return values


def _http_download(url: str, output_file: str, partial: Path, progress: bool, desc: str):
    """Download ``url`` into ``output_file``, resuming ``partial`` with an HTTP Range request.

    A pooch downloader (pooch calls it with its own temporary ``output_file`` and checks the
    MD5 afterwards). The bytes go to ``partial`` first; a broken connection leaves them there
    and the next call asks only for the rest. When the whole file is there it is moved onto
    ``output_file``, so a failed MD5 check (pooch then deletes its temporary file) leaves nothing.
    """
    done = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={done}-"} if done else {}
    with requests.get(url, headers=headers, stream=True, timeout=60) as response:
        if done and response.status_code == 416:  # the partial file is already complete
            total = done
        else:
            response.raise_for_status()
            if done and response.status_code != 206:  # the server ignored the Range header
                done = 0
            length = int(response.headers.get("content-length", 0))
            total = done + length if length else None
            with open(partial, "ab" if done else "wb") as f, runtime.progress_bar(
                show=progress, total=total, initial=done, unit="B", unit_scale=True, desc=desc,
                leave=False,
            ) as bar:
                for chunk in response.iter_content(chunk_size=DOWNLOAD_CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
    size = partial.stat().st_size
    if total is not None and size != total:
        raise OSError(f"download of {url} stopped at {size} of {total} bytes; run again to resume")
    shutil.move(str(partial), output_file)


def _marker_path(dest: Path, filename: str) -> Path:
    return dest / STATE_DIR / f"{filename}.done.json"


def _is_extracted(dest: Path, row) -> bool:
    """True when the marker of this zip exists, has its MD5, and all its files are still there."""
    marker = _marker_path(dest, row["filename"])
    if not marker.exists():
        return False
    try:
        info = json.loads(marker.read_text())
    except ValueError:
        return False
    return info.get("md5") == row["md5"] and all((dest / f).exists() for f in info.get("files", []))


def _extract(zip_path: Path, dest: Path, machine_type: str, progress: bool = False) -> list:
    """Unzip the wav files of one DCASE zip into ``<dest>/<machine_type>/{train,test}/``.

    Robust to any leading folders in the zip (``fan/train/x.wav``, ``dev_data/fan/train/x.wav``
    and ``train/x.wav`` all land in ``<dest>/fan/train/x.wav``): a member's place is given by the
    last ``train`` or ``test`` folder in its path. Each file is written to a temporary name and
    renamed, so no half-written wav is ever visible.

    Returns:
        The extracted files, relative to ``dest`` (POSIX strings).
    """

    written, ignored = [], []
    with zipfile.ZipFile(zip_path) as archive:
        members = archive.infolist()
        for member in runtime.progress_bar(members, show=progress, desc=f"unzipping {zip_path.name}",
                                           unit="file", leave=False):
            parts = PurePosixPath(member.filename).parts
            if member.is_dir() or "__MACOSX" in parts or not parts[-1].lower().endswith(".wav"):
                continue
            splits = [i for i, p in enumerate(parts[:-1]) if p in ("train", "test")]
            if not splits:
                ignored.append(member.filename)
                continue
            relative = Path(machine_type, parts[splits[-1]], parts[-1])
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with runtime.atomic_path(target) as tmp, archive.open(member) as src, \
                    open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, length=1 << 20)
            written.append(relative.as_posix())
    if ignored:
        warnings.warn(f"{zip_path.name}: {len(ignored)} wav file(s) outside a train/ or test/ "
                      f"folder were not extracted (e.g. {ignored[:3]})", stacklevel=3)
    if not written:
        raise ValueError(f"{zip_path.name} holds no wav files under a train/ or test/ folder")
    return written


def download(dest, types=None, subsets=("dev",), base_url: str | None = None,
             progress: bool = True, manifest: pd.DataFrame | None = None,
             keep_zips: bool = False) -> Path:
    """Download, verify and unzip DCASE 2020 Task 2 into ``<dest>/<type>/{train,test}/``.

    For each zip of the chosen types and subsets:

    1. **Skip** it when ``<dest>/.asdlib_download/<zip>.done.json`` exists with the manifest's
       MD5 and every file it lists is still there (no request is made).
    2. **Download** it with ``pooch.retrieve(..., known_hash="md5:...")``. Pooch streams into a
       temporary file next to the target and moves it into place only after the MD5 matched;
       on a mismatch it deletes the temporary file and raises ``ValueError``. The downloader
       given to pooch keeps the bytes in ``<zip>.part`` and resumes it with an HTTP Range
       request when a connection broke, so a 1 GB zip need not start over. Neither a
       ``.part`` file nor pooch's temporary file ever looks like a complete zip.
    3. **Unzip** the wav files (each renamed into place when complete), then write the marker
       atomically, last. A killed run re-extracts on the next call.

    Args:
        dest: the data root to fill (created).
        types: machine types (default: all six), e.g. ``["fan", "ToyCar"]``.
        subsets: some of ``"dev"``, ``"add"`` (additional training) and ``"eval"``
            (evaluation test). The authors train on ``("dev", "add")``.
        base_url: replaces the Zenodo host, see :func:`zip_url` (also the ``ASDLIB_DCASE_URL``
            environment variable).
        progress: show progress bars.
        manifest: rows to use instead of the packaged manifest (tests, mirrors).
        keep_zips: keep the verified zips in ``<dest>/.asdlib_download/`` (they are deleted
            after extraction by default; together they are about as large as the wav files).

    Returns:
        ``dest`` as a :class:`~pathlib.Path`, ready for :func:`build_index`.

    Raises:
        ValueError: unknown type or subset, or an MD5 mismatch (the message names the zip).
        OSError: the download broke (no network, a server error, a cut connection); the
            message says what is kept and how to resume (the same call or command again).
    """
    dest = Path(dest)
    types = _check_names(MACHINE_TYPES if types is None else types, MACHINE_TYPES, "types")
    subsets = _check_names(subsets, SUBSETS, "subsets")
    rows = load_manifest() if manifest is None else pd.DataFrame(manifest)
    rows = rows[rows["subset"].isin(subsets) & rows["machine_type"].isin(types)]
    if rows.empty:
        raise ValueError(f"the manifest has no zip for types={list(types)}, subsets={list(subsets)}")
    state = dest / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    for _, row in rows.iterrows():
        name = row["filename"]
        if _is_extracted(dest, row):
            continue
        url = zip_url(row, base_url)
        partial = state / f"{name}.part"

        def downloader(url, output_file, _pooch, partial=partial, name=name):
            _http_download(url, output_file, partial, progress, desc=name)

        try:
            zip_path = pooch.retrieve(url, known_hash=f"md5:{row['md5']}", fname=name, path=state,
                                      downloader=downloader, progressbar=progress)
        except ValueError as err:  # pooch's hash mismatch: name the zip and the URL
            raise ValueError(f"MD5 check failed for {name} (downloaded from {url}); nothing was "
                             f"kept. Expected md5 {row['md5']}. Details: {err}") from err
        except OSError as err:  # requests' errors are OSErrors too
            kept = partial.stat().st_size if partial.exists() else 0
            what = (f"{kept} bytes are kept in {partial} and the next attempt resumes from there"
                    if kept else "nothing was downloaded")
            raise OSError(f"download of {name} from {url} failed ({err}); {what}. Check the "
                          f"network (or --base-url / {URL_ENV_VAR}), then run the same "
                          f"download again") from err
        files = _extract(Path(zip_path), dest, row["machine_type"], progress)
        runtime.write_text_atomic(
            json.dumps({"md5": row["md5"], "url": url, "files": files}), _marker_path(dest, name))
        if not keep_zips:
            Path(zip_path).unlink()
    return dest


# --------------------------------------------------------------------------------------------
# Index of a data root
# --------------------------------------------------------------------------------------------

INDEX_COLUMNS = ["path", "machine_type", "machine_id", "split", "label", "is_anomaly", "number",
                 "subset"]


def _type_folders(root: Path) -> list:
    """``(machine_type, folder)`` for every folder holding ``train/`` or ``test/``."""
    found = []
    for base in (root, root / "dev_data", root / "eval_data"):
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            if (folder / "train").is_dir() or (folder / "test").is_dir():
                found.append((folder.name, folder))
    return found


def _parse_any(name: str):
    """``(label, machine_id, number)`` of a labelled or an evaluation-test file name, or None."""
    parsed = parse_filename(name)
    if parsed is not None:
        return parsed
    match = EVAL_FILENAME_PATTERN.match(name)
    if match is None:
        return None
    return "unknown", match.group(1), int(match.group(2))


def _subset_of(machine_type: str, machine_id: str, split: str) -> str:
    """``dev`` for a development ID, else ``add`` (train) or ``eval`` (test)."""
    if machine_id in DEV_IDS.get(machine_type, ()):
        return "dev"
    return "add" if split == "train" else "eval"


def _type_rank(machine_type: str):
    """Authors' type order first, unknown types after them by name."""
    if machine_type in MACHINE_TYPES:
        return (0, MACHINE_TYPES.index(machine_type), "")
    return (1, 0, machine_type)


def _id_rank(machine_type: str, machine_id: str):
    ids = ALL_IDS.get(machine_type, ())
    return (0, ids.index(machine_id), "") if machine_id in ids else (1, 0, machine_id)


def build_index(root, subsets=None) -> pd.DataFrame:
    """List every clip of a DCASE 2020 Task 2 data root.

    Accepted layouts (see ``EXPECTED_LAYOUT``): the type folders directly under ``root``
    (``<root>/<type>/{train,test}/``, what :func:`download` writes, with the development,
    additional training and evaluation sets merged), or under ``<root>/dev_data/`` and
    ``<root>/eval_data/`` (the DCASE baseline's layout), or both.

    File names: ``{normal,anomaly}_id_XX_NNNNNNNN.wav``, and ``id_XX_NNNNNNNN.wav`` for the
    evaluation test set, whose labels are not in the names: those rows get label ``"unknown"``
    and ``is_anomaly == -1`` and cannot be scored without the separately published ground truth.
    Other wav names are skipped with ONE warning that counts them.

    Args:
        root: the data root.
        subsets: keep only these subsets (``"dev"``, ``"add"``, ``"eval"``); default all. A clip's
            subset follows from its ID: development IDs are ``dev``, the others ``add`` in
            ``train/`` and ``eval`` in ``test/``.

    Returns:
        DataFrame with columns ``path`` (str), ``machine_type``, ``machine_id``, ``split``
        (``"train"``/``"test"``), ``label`` (``"normal"``/``"anomaly"``/``"unknown"``),
        ``is_anomaly`` (1/0/-1), ``number`` and ``subset``; sorted by type (authors' order),
        split (train first), ID, label and number.

    Raises:
        FileNotFoundError: ``root`` is missing or holds no clip; the message shows the layout.
        ValueError: a ``train/`` folder holds a clip that is not named ``normal_...``.
    """
    root = Path(root).absolute()  # absolute paths: the cache key must not depend on the cwd
    subsets = SUBSETS if subsets is None else _check_names(subsets, SUBSETS, "subsets")
    if not root.is_dir():
        raise FileNotFoundError(f"DCASE data root {root} does not exist.\n{EXPECTED_LAYOUT}")
    rows, bad, seen, not_normal = [], [], {}, []
    duplicates = 0
    for machine_type, folder in _type_folders(root):
        for split in ("train", "test"):
            for path in sorted((folder / split).glob("*.wav")):
                parsed = _parse_any(path.name)
                if parsed is None:
                    bad.append(path)
                    continue
                label, machine_id, number = parsed
                if split == "train" and label != "normal":
                    not_normal.append(path)
                    continue
                key = (machine_type, split, path.name)
                if key in seen:  # same clip in two layouts (e.g. root/fan and root/dev_data/fan)
                    duplicates += 1
                    continue
                seen[key] = path
                subset = _subset_of(machine_type, machine_id, split)
                is_anomaly = {"normal": 0, "anomaly": 1, "unknown": -1}[label]
                rows.append((str(path), machine_type, machine_id, split, label, is_anomaly,
                             number, subset))
    if not_normal:
        examples = ", ".join(str(p) for p in not_normal[:3])
        raise ValueError(f"{len(not_normal)} clip(s) in a train/ folder under {root} are not "
                         f"named normal_id_XX_NNNNNNNN.wav, e.g. {examples}: the training data of "
                         "this task is normal clips only (an anomalous clip there would be "
                         "learned as normal). Move them to test/ or delete them.")
    if bad:
        examples = ", ".join(str(p) for p in bad[:3])
        warnings.warn(f"{len(bad)} wav file(s) under {root} do not follow the DCASE naming "
                      f"({{normal,anomaly}}_id_XX_NNNNNNNN.wav or id_XX_NNNNNNNN.wav) and were "
                      f"skipped, e.g. {examples}", stacklevel=2)
    if duplicates:
        warnings.warn(f"{duplicates} clip(s) appear twice under {root} (same type, split and "
                      f"file name in two layouts); the first copy was kept", stacklevel=2)
    if not rows:
        raise FileNotFoundError(f"no DCASE wav clip found under {root}.\n{EXPECTED_LAYOUT}")
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    index = index[index["subset"].isin(subsets)]
    if index.empty:
        raise FileNotFoundError(f"no clip of subsets {list(subsets)} found under {root} "
                                f"(found: {sorted(set(r[-1] for r in rows))}).\n{EXPECTED_LAYOUT}")
    order = sorted(
        range(len(index)),
        key=lambda i: (_type_rank(index["machine_type"].iat[i]),
                       index["split"].iat[i] != "train",
                       _id_rank(index["machine_type"].iat[i], index["machine_id"].iat[i]),
                       index["label"].iat[i], index["number"].iat[i], index["path"].iat[i]),
    )
    return index.iloc[order].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Class map
# --------------------------------------------------------------------------------------------


def class_map(index: pd.DataFrame) -> dict:
    """Class index of every machine ID, as the classifier of the method sees it.

    The classes are the ``(machine_type, machine_id)`` pairs with training clips. When all 41
    IDs are there this is exactly the authors' map (:func:`asdlib.layout.reference_class_map`);
    otherwise the present IDs are numbered 0, 1, 2, ... in the authors' order (development set
    only: 23 classes).

    Args:
        index: a DataFrame from :func:`build_index`.

    Returns:
        ``{(machine_type, machine_id): class_index}``.

    Raises:
        ValueError: the index has no training clip, or holds test clips of an ID without
            training clips (the message names the ID and the number of classes found).
    """
    for column in ("machine_type", "machine_id", "split"):
        if column not in index.columns:
            raise ValueError(f"class_map: index has no column {column!r}; use build_index()")
    train = index[index["split"] == "train"]
    if train.empty:
        raise ValueError("class_map: the index has no training clip (split == 'train'); the "
                         "classes are the machine IDs of the training data")
    present = set(zip(train["machine_type"], train["machine_id"]))
    reference = reference_class_map()
    if present == set(reference):
        return reference
    keys = sorted(present, key=lambda k: (_type_rank(k[0]), _id_rank(*k)))
    cmap = {key: i for i, key in enumerate(keys)}
    test = index[index["split"] != "train"]
    orphans = sorted(set(zip(test["machine_type"], test["machine_id"])) - present,
                     key=lambda k: (_type_rank(k[0]), _id_rank(*k)))
    if orphans:
        named = ", ".join(f"{t}/{i}" for t, i in orphans[:6])
        raise ValueError(
            f"class_map: test clips of {len(orphans)} machine ID(s) have no training clips "
            f"({named}); the training data gives {len(cmap)} classes (the authors' model has "
            f"{len(reference)}). The evaluation-set IDs are trained on the additional training "
            f"set: download subsets=('dev', 'add', 'eval'), or drop those test clips.")
    return cmap


# --------------------------------------------------------------------------------------------
# Fingerprint of a data root
# --------------------------------------------------------------------------------------------


#: Bumped when `content_digest` hashes something else (part of its cache entries' names).
DIGEST_VERSION = 1


def _listing(root: Path, paths) -> list:
    """``[relative path, size, mtime_ns]`` of every clip, sorted: what the digest cache keys on."""
    out = []
    for path in paths:
        stat = os.stat(path)
        out.append([Path(os.path.relpath(path, root)).as_posix(), stat.st_size, stat.st_mtime_ns])
    return sorted(out)


def content_digest(root, index: pd.DataFrame | None = None, progress: bool = False) -> str:
    """The sha256 of every clip of a data root: its relative path, size and bytes, in path order.

    Reading every byte of the real data (about 10 GB per subset) takes a minute, so the digest
    is kept under ``<ASDLIB_HOME>/fingerprints/`` with the (path, size, modification time) of
    every clip it read, and reused while none of them changed. A copy (another folder) or an
    edited, added or removed clip is read again; only an edit that restores the modification
    time and keeps the size on purpose would go unnoticed.

    Args:
        root: a DCASE-layout data root.
        index: its `build_index` (computed if None).
        progress: show a progress bar while reading the clips.

    Returns:
        64 hexadecimal digits.
    """
    root = Path(root).absolute()
    index = build_index(root) if index is None else index
    listing = _listing(root, index["path"])
    name = store.key([DIGEST_VERSION, str(root)])
    cache = runtime.home() / "fingerprints" / f"{name}.json"
    try:
        kept = json.loads(cache.read_text())
        if kept.get("listing") == listing:
            return kept["digest"]
    except (OSError, ValueError, AttributeError):
        pass  # no cache entry yet, or a damaged one: read the clips
    total = hashlib.sha256()
    for relative, size, _ in runtime.progress_bar(listing, show=progress, unit="clip",
                                                  desc="fingerprinting the clips", leave=False):
        total.update(f"{relative}\0{size}\0".encode())
        total.update(hashlib.sha256((root / relative).read_bytes()).digest())
    digest = total.hexdigest()
    try:  # a cache that cannot be written only costs reading the clips again next time
        cache.parent.mkdir(parents=True, exist_ok=True)
        runtime.write_text_atomic(json.dumps({"root": str(root), "digest": digest,
                                              "listing": listing}), cache)
    except OSError:
        pass
    return digest

