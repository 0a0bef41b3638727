"""asdlib.dcase.download against a local HTTP server on 127.0.0.1 serving tiny DCASE zips."""

import hashlib
import http.server
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from asdlib import dcase
from asdlib.audio import write_clip

RECORD = "3678171"


class ZipServer:
    """Serves ``files`` (name -> bytes) at ``/<record>/files/<name>``, with HTTP Range support.

    ``cut_next`` > 0 makes the next responses announce the full Content-Length but send only
    half of the bytes before closing the connection. Handles at most ``max_requests`` requests
    and stops by itself after ``lifetime`` seconds.
    """

    def __init__(self, files, max_requests=20, lifetime=30.0):
        self.files = files
        self.requests = []  # (path, Range header) of every request
        self.cut_next = 0
        self.honour_range = True
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 5

            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                rng = rng if server.honour_range else None
                name = self.path.split("?")[0].rsplit("/", 1)[-1]
                if not self.path.startswith(f"/{RECORD}/files/") or name not in server.files:
                    self.send_error(404)
                    return
                data = server.files[name]
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                body = data[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if server.cut_next > 0:
                    server.cut_next -= 1
                    body = body[: len(body) // 2]
                    self.close_connection = True
                self.wfile.write(body)

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 0.1
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._stop = threading.Event()
        deadline = time.monotonic() + lifetime

        def serve():
            while not self._stop.is_set() and time.monotonic() < deadline \
                    and len(self.requests) < max_requests:
                self.httpd.handle_request()
            self.httpd.server_close()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=5)


def make_dev_zip(folder: Path, machine_type="fan", leading="") -> bytes:
    """A tiny dev zip laid out like DCASE's: ``<type>/train/...`` and ``<type>/test/...``."""
    rng = np.random.default_rng(0)
    names = ["train/normal_id_00_00000000.wav", "train/normal_id_00_00000001.wav",
             "test/normal_id_00_00000000.wav", "test/anomaly_id_00_00000000.wav"]
    zip_path = folder / f"dev_data_{machine_type}.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name in names:
            wav_path = write_clip(folder / "src" / name, rng.uniform(-0.5, 0.5, 1600))
            archive.write(wav_path, f"{leading}{machine_type}/{name}")
    return zip_path.read_bytes()


def manifest_for(files, md5=None):
    rows = [{"subset": "dev", "machine_type": name.split("_")[-1][:-4], "record": RECORD,
             "filename": name, "url": f"https://zenodo.org/records/{RECORD}/files/{name}?download=1",
             "md5": md5 or hashlib.md5(data).hexdigest()} for name, data in files.items()]
    return pd.DataFrame(rows)


@pytest.fixture
def served(tmp_path):
    files = {"dev_data_fan.zip": make_dev_zip(tmp_path)}
    server = ZipServer(files)
    yield server, files
    server.stop()


def wavs_under(root: Path):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))


EXPECTED = ["fan/test/anomaly_id_00_00000000.wav", "fan/test/normal_id_00_00000000.wav",
            "fan/train/normal_id_00_00000000.wav", "fan/train/normal_id_00_00000001.wav"]


def test_download_extracts_layout_and_second_run_skips(served, tmp_path):
    server, files = served
    dest = tmp_path / "data"
    out = dcase.download(dest, types=["fan"], base_url=server.url, progress=False,
                         manifest=manifest_for(files))
    assert out == dest
    assert wavs_under(dest) == EXPECTED
    assert len(dcase.build_index(dest)) == 4
    # the zip is gone after a verified extraction, the marker is there
    assert not (dest / dcase.STATE_DIR / "dev_data_fan.zip").exists()
    assert (dest / dcase.STATE_DIR / "dev_data_fan.zip.done.json").exists()
    assert [r[0] for r in server.requests] == [f"/{RECORD}/files/dev_data_fan.zip"]
    # a second run makes no request
    dcase.download(dest, types=["fan"], base_url=server.url, progress=False,
                   manifest=manifest_for(files))
    assert len(server.requests) == 1


def test_deleted_file_triggers_a_new_download(served, tmp_path):
    server, files = served
    dest = tmp_path / "data"
    kwargs = dict(types=["fan"], base_url=server.url, progress=False, manifest=manifest_for(files))
    dcase.download(dest, **kwargs)
    (dest / EXPECTED[0]).unlink()
    dcase.download(dest, **kwargs)
    assert wavs_under(dest) == EXPECTED
    assert len(server.requests) == 2


def test_env_var_sets_base_url(served, tmp_path, monkeypatch):
    server, files = served
    monkeypatch.setenv(dcase.URL_ENV_VAR, server.url + "/")
    dcase.download(tmp_path / "data", types="fan", progress=False, manifest=manifest_for(files))
    assert wavs_under(tmp_path / "data") == EXPECTED
    row = dcase.load_manifest().iloc[0]
    assert dcase.zip_url(row) == f"{server.url}/{row['record']}/files/{row['filename']}"
    monkeypatch.delenv(dcase.URL_ENV_VAR)
    assert dcase.zip_url(row) == row["url"]


def test_wrong_md5_names_the_file_and_leaves_nothing(served, tmp_path):
    server, files = served
    dest = tmp_path / "data"
    with pytest.raises(ValueError, match="dev_data_fan.zip"):
        dcase.download(dest, types=["fan"], base_url=server.url, progress=False,
                       manifest=manifest_for(files, md5="0" * 32))
    assert wavs_under(dest) == []
    state = dest / dcase.STATE_DIR
    assert [p.name for p in state.iterdir()] == []  # no zip, no .part, no marker


def test_interrupted_download_errors_then_resumes(served, tmp_path, monkeypatch):
    server, files = served
    monkeypatch.setattr(dcase, "DOWNLOAD_CHUNK", 256)
    dest = tmp_path / "data"
    kwargs = dict(types=["fan"], base_url=server.url, progress=False, manifest=manifest_for(files))
    server.cut_next = 1
    with pytest.raises(OSError, match=r"dev_data_fan.zip .*failed .* bytes are kept in .*\.part and "
                                      "the next attempt resumes from there.*run the same download again"):
        dcase.download(dest, **kwargs)
    # nothing that looks complete: no wav, no zip, no marker; only the .part file
    assert wavs_under(dest) == []
    state = dest / dcase.STATE_DIR
    assert sorted(p.name for p in state.iterdir()) == ["dev_data_fan.zip.part"]
    dcase.download(dest, **kwargs)
    assert wavs_under(dest) == EXPECTED
    # the second request asked only for the missing bytes
    size = len(files["dev_data_fan.zip"])
    kept = int(server.requests[1][1].split("=")[1].rstrip("-"))
    assert size // 2 - 256 < kept <= size // 2


def test_resume_restarts_when_the_server_ignores_range(served, tmp_path, monkeypatch):
    server, files = served
    monkeypatch.setattr(dcase, "DOWNLOAD_CHUNK", 256)
    kwargs = dict(types=["fan"], base_url=server.url, progress=False, manifest=manifest_for(files))
    server.cut_next, server.honour_range = 1, False
    with pytest.raises(OSError, match="bytes are kept in"):
        dcase.download(tmp_path / "data", **kwargs)
    dcase.download(tmp_path / "data", **kwargs)  # gets 200 + the whole file: starts over
    assert server.requests[1][1] is not None
    assert wavs_under(tmp_path / "data") == EXPECTED


def test_extraction_is_robust_to_a_leading_folder(tmp_path):
    files = {"dev_data_fan.zip": make_dev_zip(tmp_path, leading="dev_data/")}
    server = ZipServer(files)
    try:
        dcase.download(tmp_path / "data", types=["fan"], base_url=server.url, progress=False,
                       manifest=manifest_for(files))
    finally:
        server.stop()
    assert wavs_under(tmp_path / "data") == EXPECTED


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="types"):
        dcase.download(tmp_path, types=["drill"])
    with pytest.raises(ValueError, match="subsets"):
        dcase.download(tmp_path, subsets=("train",))
