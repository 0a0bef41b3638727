"""asdlib.dcase: the manifest, the index of a data root and the class map."""

import warnings
from pathlib import Path

import pytest

from asdlib import dcase
from asdlib.layout import ADD_IDS, ALL_IDS, DEV_IDS, MACHINE_TYPES, reference_class_map

REPO = Path(__file__).resolve().parents[1]


def touch(root: Path, *relative):
    """Empty files are enough for the index (it never opens them)."""
    for rel in relative:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def make_tree(root: Path, ids=DEV_IDS, eval_ids=None, per_id=2):
    """A DCASE-layout tree: train normals, test normals and anomalies for ``ids``; unlabelled
    evaluation test clips for ``eval_ids``."""
    for machine_type, type_ids in ids.items():
        for machine_id in type_ids:
            for n in range(per_id):
                touch(root, f"{machine_type}/train/normal_{machine_id}_{n:08d}.wav")
                if machine_id in DEV_IDS[machine_type]:
                    touch(root, f"{machine_type}/test/normal_{machine_id}_{n:08d}.wav",
                          f"{machine_type}/test/anomaly_{machine_id}_{n:08d}.wav")
    for machine_type, type_ids in (eval_ids or {}).items():
        for machine_id in type_ids:
            touch(root, f"{machine_type}/test/{machine_id}_{0:08d}.wav")
    return root


# ---- manifest ----

def test_repository_manifest_is_identical_to_the_packaged_one():
    assert (REPO / "data" / "dcase2020_task2.csv").read_bytes() == dcase.manifest_path().read_bytes()


def test_manifest_rows():
    manifest = dcase.load_manifest()
    assert list(manifest.columns) == ["subset", "machine_type", "record", "filename", "url", "md5"]
    assert len(manifest) == 18
    for subset, record, pattern in [("dev", "3678171", "dev_data_{}.zip"),
                                    ("add", "3727685", "eval_data_train_{}.zip"),
                                    ("eval", "3841772", "eval_data_test_{}.zip")]:
        rows = manifest[manifest["subset"] == subset]
        assert tuple(rows["machine_type"]) == MACHINE_TYPES
        assert set(rows["record"]) == {record}
        assert list(rows["filename"]) == [pattern.format(t) for t in MACHINE_TYPES]
    assert manifest["md5"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert manifest["md5"].is_unique
    fan = manifest.iloc[0]
    assert fan["md5"] == "649bdfc06263ae7a838963f43b6641e6"
    assert fan["url"] == "https://zenodo.org/records/3678171/files/dev_data_fan.zip?download=1"
    assert dcase.zip_url(fan, base_url="http://127.0.0.1:8000/m/") == \
        "http://127.0.0.1:8000/m/3678171/files/dev_data_fan.zip"


# ---- index ----

def test_index_columns_values_and_order(tmp_path):
    root = make_tree(tmp_path, ids={"ToyCar": ("id_01",), "fan": ("id_00",)})
    index = dcase.build_index(root)
    assert list(index.columns[:7]) == ["path", "machine_type", "machine_id", "split", "label",
                                      "is_anomaly", "number"]
    assert len(index) == 12  # 2 types x (2 train + 2 normal test + 2 anomalous test)
    # fan before ToyCar (authors' order), train before test, then label and number
    assert list(index["machine_type"]) == ["fan"] * 6 + ["ToyCar"] * 6
    fan = index[index["machine_type"] == "fan"]
    assert list(fan["split"]) == ["train"] * 2 + ["test"] * 4
    assert list(fan["label"]) == ["normal"] * 2 + ["anomaly"] * 2 + ["normal"] * 2
    assert list(fan["is_anomaly"]) == [0, 0, 1, 1, 0, 0]
    assert list(fan["number"]) == [0, 1, 0, 1, 0, 1]
    assert Path(index["path"][0]) == root / "fan/train/normal_id_00_00000000.wav"
    assert set(index["subset"]) == {"dev"}
    # deterministic: a second call gives the same frame
    assert index.equals(dcase.build_index(root))


def test_paths_are_absolute_for_a_relative_root(tmp_path, monkeypatch):
    make_tree(tmp_path / "d", ids={"fan": ("id_00",)})
    monkeypatch.chdir(tmp_path)
    index = dcase.build_index("d")
    assert all(Path(p).is_absolute() and Path(p).exists() for p in index["path"])


def test_evaluation_clips_have_unknown_labels_and_subsets_filter(tmp_path):
    root = make_tree(tmp_path, ids={"fan": ("id_00", "id_01")}, eval_ids={"fan": ("id_01",)})
    index = dcase.build_index(root)
    unknown = index[index["label"] == "unknown"]
    assert len(unknown) == 1 and unknown["is_anomaly"].tolist() == [-1]
    assert unknown["split"].tolist() == ["test"] and unknown["subset"].tolist() == ["eval"]
    assert set(index[index["machine_id"] == "id_01"]["subset"]) == {"add", "eval"}
    dev = dcase.build_index(root, subsets=["dev"])
    assert set(dev["machine_id"]) == {"id_00"} and len(dev) == 6
    with pytest.raises(ValueError, match="subsets"):
        dcase.build_index(root, subsets=["test"])


def test_dev_data_eval_data_layout_is_accepted(tmp_path):
    make_tree(tmp_path / "dev_data", ids={"pump": ("id_00",)})
    make_tree(tmp_path / "eval_data", ids={"pump": ("id_01",)}, eval_ids={"pump": ("id_01",)})
    index = dcase.build_index(tmp_path)
    assert sorted(set(index["machine_id"])) == ["id_00", "id_01"]
    assert len(index) == 6 + 2 + 1


def test_missing_root_or_no_clip_shows_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)does not exist.*fan/.*train/normal_id_00"):
        dcase.build_index(tmp_path / "nowhere")
    (tmp_path / "fan" / "train").mkdir(parents=True)
    (tmp_path / "fan" / "train" / "readme.txt").touch()
    with pytest.raises(FileNotFoundError, match=r"(?s)no DCASE wav clip.*├── fan/"):
        dcase.build_index(tmp_path)


def test_unparsable_names_are_skipped_with_one_counting_warning(tmp_path):
    root = make_tree(tmp_path, ids={"fan": ("id_00",)})
    touch(root, "fan/train/copy of normal.wav", "fan/train/normal_id_0_1.wav", "fan/test/x.wav")
    with pytest.warns(UserWarning) as record:
        index = dcase.build_index(root)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith("3 wav file(s)") and "copy of normal.wav" in message
    assert len(index) == 6


# ---- class map ----

def test_class_map_is_the_reference_when_all_41_ids_are_there(tmp_path):
    root = make_tree(tmp_path, ids=ALL_IDS, eval_ids=ADD_IDS, per_id=1)
    cmap = dcase.class_map(dcase.build_index(root))
    assert cmap == reference_class_map()
    assert list(cmap) == list(reference_class_map())  # same order too
    assert len(cmap) == 41 and cmap[("ToyCar", "id_01")] == 21


def test_class_map_is_contiguous_over_present_ids(tmp_path):
    root = make_tree(tmp_path, ids=DEV_IDS, per_id=1)
    cmap = dcase.class_map(dcase.build_index(root))
    assert len(cmap) == 23
    assert sorted(cmap.values()) == list(range(23))
    assert cmap[("fan", "id_00")] == 0 and cmap[("fan", "id_06")] == 3
    assert cmap[("pump", "id_00")] == 4 and cmap[("valve", "id_06")] == 22
    # the order follows the authors' order
    ref = reference_class_map()
    assert sorted(cmap, key=ref.get) == list(cmap)


def test_test_ids_without_training_clips_are_a_clear_error(tmp_path):
    # development + evaluation test clips but no additional training set
    root = make_tree(tmp_path, ids=DEV_IDS, eval_ids=ADD_IDS, per_id=1)
    index = dcase.build_index(root)
    with pytest.raises(ValueError, match=r"18 machine ID\(s\).*fan/id_01.*gives 23 classes.*41"):
        dcase.class_map(index)
    with pytest.raises(ValueError, match="no training clip"):
        dcase.class_map(index[index["split"] == "test"])
