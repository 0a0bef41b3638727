"""benchmarks/diagnose.py (issue 11's diagnosis): it runs on any DCASE-layout folder and reports
both reference models, their gap and the ID recognition of STgram + ArcFace."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _diagnose():
    spec = importlib.util.spec_from_file_location("diagnose", REPO / "benchmarks" / "diagnose.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_diagnose_a_data_root(smoke_data, tmp_path, capsys, one_torch_thread):
    root = smoke_data("valve")
    report_path = tmp_path / "report.json"
    assert _diagnose().main(["--profile", "smoke", "--data-root", str(root),
                             "--json", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "the clips of --data-root" in out and str(root) in out
    assert "ID recognition of STgram (ArcFace)" in out
    report = json.loads(report_path.read_text())
    assert set(report["mean"]) == {"DCASE 2020 autoencoder", "STgram (ArcFace)"}
    gap = (
        report["mean"]["STgram (ArcFace)"]["Average AUC"]
        - report["mean"]["DCASE 2020 autoencoder"]["Average AUC"])
    assert report["gap"] == pytest.approx(gap)
    (row,) = report["id_recognition"]
    assert row["machine_type"] == "valve"
    assert 0 <= row["normal_named"] <= 1
    # NaN when a one-epoch smoke network names no normal clip of any ID (tests/test_evaluate.py)
    assert math.isnan(row["auc_named_normals"]) or 0 <= row["auc_named_normals"] <= 1


def test_diagnose_rejects_a_missing_data_root(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _diagnose().main(["--profile", "smoke", "--data-root", str(tmp_path / "nothing")])
    assert "--data-root" in capsys.readouterr().err
