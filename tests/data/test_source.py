"""Raw sources become AutoDL datasets once: the conversion is cached under a key of the source's files."""
import os
import re
import shutil

import pytest

from autoclint.data.source import as_autodl_dataset, is_autodl_dataset, source_key
from autoclint.errors import AutoclintError
from tests.conftest import shared


def small_photos(tmp_path, per_class: int = 3) -> str:
    """A writable copy of a few real photos per class (the test changes it)."""
    src, dst = shared("raw", "photos"), tmp_path / "photos"
    for cls in sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))):
        os.makedirs(dst / cls)
        for name in sorted(os.listdir(os.path.join(src, cls)))[:per_class]:
            shutil.copy2(os.path.join(src, cls, name), dst / cls / name)
    return str(dst)


def test_a_folder_is_converted_once_and_again_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCLINT_CACHE_DIR", str(tmp_path / "cache"))
    photos = small_photos(tmp_path)
    first = as_autodl_dataset(photos)
    assert is_autodl_dataset(first) and os.path.dirname(first) == str(tmp_path / "cache")
    assert as_autodl_dataset(photos) == first  # unchanged: reused
    assert as_autodl_dataset(photos, test_fraction=0.4) != first  # other settings, another conversion
    a_photo = os.path.join(photos, "nature", sorted(os.listdir(os.path.join(photos, "nature")))[0])
    shutil.copy2(a_photo, os.path.join(photos, "nature", "copy.jpg"))
    changed = as_autodl_dataset(photos)
    assert changed != first and os.path.isdir(first)  # the earlier conversion is left alone
    assert as_autodl_dataset(shared("suite", "Faces")) == shared("suite", "Faces")  # a dataset stays itself


def test_the_key_sees_content_changes(tmp_path):
    photos = small_photos(tmp_path, 2)
    key = source_key(photos, (0.2, 42))
    assert source_key(photos, (0.2, 42)) == key and source_key(photos, (0.3, 42)) != key
    path = os.path.join(photos, "objects", sorted(os.listdir(os.path.join(photos, "objects")))[0])
    with open(path, "ab") as f:
        f.write(b"\0")
    assert source_key(photos, (0.2, 42)) != key


def test_sources_that_are_not_data_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCLINT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    for source, message in [(str(tmp_path / "missing"), "no such file or folder"),
                            (str(tmp_path / "empty"), "found 0 class folder(s)"),
                            (shared("raw", "photos", "README.md"), "not a dataset this tool reads")]:
        with pytest.raises(AutoclintError, match=re.escape(message)):
            as_autodl_dataset(source)
    assert not (tmp_path / "cache").exists()  # nothing written for a bad source


def faces_folder(tmp_path, subjects: int = 3, per_subject: int = 4) -> str:
    src, dst = shared("raw", "faces_pgm"), tmp_path / "faces"
    for s in range(1, subjects + 1):
        os.makedirs(dst / f"s{s}")
        for name in sorted(os.listdir(os.path.join(src, f"s{s}")))[:per_subject]:
            shutil.copy2(os.path.join(src, f"s{s}", name), dst / f"s{s}" / name)
    return str(dst)


def test_folds_test_every_example_once_stratified(tmp_path, monkeypatch):
    import csv
    from autoclint.data.source import fold_datasets
    monkeypatch.setenv("AUTOCLINT_CACHE_DIR", str(tmp_path / "cache"))
    faces = faces_folder(tmp_path)
    roots = fold_datasets(faces, 2)
    assert len(roots) == 2 and fold_datasets(faces, 2) == roots  # converted once, then reused
    tested = []
    for root in roots:
        with open(os.path.join(root, "files.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        test = [r for r in rows if r["split"] == "test"]
        assert len(rows) == 12 and len(test) == 6
        assert sorted(r["labels"] for r in test) == ["s1"] * 2 + ["s2"] * 2 + ["s3"] * 2  # stratified
        tested += [r["file"] for r in test]
    assert len(tested) == len(set(tested)) == 12
    with pytest.raises(AutoclintError, match=r"--folds=5: class 's1' has 4 example\(s\), fewer than the folds.*"
                                             r"--folds 4 or fewer"):
        fold_datasets(faces, 5)
    with pytest.raises(AutoclintError, match="an AutoDL dataset is split already"):
        fold_datasets(roots[0], 2)
