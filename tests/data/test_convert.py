"""The formatter on the real raw data: read back with the data layer, pixels and labels must match."""
import csv
import glob
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from autoclint.cli import main as cli_main
from autoclint.data import convert
from autoclint.data.dataset import AutoDLDataset, check_records
from autoclint.errors import AutoclintError
from autoclint.harness.scoring import read_solution
from tests.conftest import shared


def read_back(root: str, name: str):
    """All (pixels uint8, label vector) of train + test; test labels come from the solution."""
    out = []
    solution = read_solution(os.path.join(root, f"{name}.solution"))
    for subset in ("train", "test"):
        path = os.path.join(root, f"{name}.data", subset)
        assert check_records(path) == AutoDLDataset(path).get_metadata().size()
        for k, (x, y) in enumerate(AutoDLDataset(path).get_dataset()):
            labels = y.numpy() if subset == "train" else solution[k]
            out.append((np.round(x.numpy() * 255).astype(np.uint8), labels))
    return out


def build(source_collect, tmp_path, name, **kw):
    return convert.write_dataset(source_collect, str(tmp_path), name, **kw)


def expected_pixels(path: str, channels: int) -> np.ndarray:
    pixels, original = convert.load_image(path)
    if original is not None:  # stored as is: the reader's decoder is the reference
        return tf.io.decode_image(original, channels=channels, expand_animations=False).numpy()
    return np.repeat(pixels, channels, axis=2) if pixels.shape[2] < channels else pixels


def test_pgm_faces_round_trip(tmp_path):
    src = shared("raw", "faces_pgm")
    collected = convert.collect_folder(src)
    assert len(collected.class_names) == 40 and len(collected.examples) == 160
    root = build(collected, tmp_path, "Faces")
    back = read_back(root, "Faces")
    assert len(back) == 160
    meta = AutoDLDataset(os.path.join(root, "Faces.data", "train")).get_metadata()
    assert meta.get_tensor_shape() == (1, 112, 92, 1)  # rows = height, not swapped
    wanted = {(expected_pixels(e.source, 1).tobytes(), int(e.labels[0])) for e in collected.examples}
    got = {(x[0].tobytes(), int(np.argmax(y))) for x, y in back}
    assert got == wanted


def test_stratified_seeded_split(tmp_path):
    collected = convert.collect_folder(shared("raw", "faces_pgm"))
    train, test = convert.stratified_split(collected.examples, 0.25, seed=1)
    assert (train, test) == convert.stratified_split(collected.examples, 0.25, seed=1)
    per_class = np.bincount([collected.examples[i].labels[0] for i in test], minlength=40)
    assert (per_class == 1).all()  # 4 per class, 25 % -> exactly one in test each


def test_photos_large_jpegs_and_exif(tmp_path):
    collected = convert.collect_folder(shared("raw", "photos"))
    root = build(collected, tmp_path, "Photos", test_fraction=0.3)
    back = read_back(root, "Photos")
    got = sorted((x.shape, int(np.argmax(y))) for x, y in back)
    wanted = sorted(((1, *expected_pixels(e.source, 3).shape), e.labels[0]) for e in collected.examples)
    assert got == wanted
    assert any(s[1] >= 3000 for s, _ in got), "the 4032x3024 photo must be kept at full size"
    lamp = [e.source for e in collected.examples if "orientation6" in e.source][0]
    assert Image.open(lamp).size == (2048, 1536) and expected_pixels(lamp, 3).shape[:2] == (2048, 1536)
    lamp_pixels = expected_pixels(lamp, 3)
    assert any(np.array_equal(x[0], lamp_pixels) for x, _ in back), "EXIF-rotated photo must read back upright"


def test_max_side_shrinks(tmp_path):
    root = build(convert.collect_folder(shared("raw", "photos")), tmp_path, "Small", max_side=256, test_fraction=0.3)
    assert max(max(x.shape[1:3]) for x, _ in read_back(root, "Small")) == 256


def test_multilabel_csv_rgba_and_palette(tmp_path):
    csv_path = shared("raw", "pokemon_multilabel", "labels.csv")
    collected = convert.collect_csv(csv_path)
    assert len(collected.examples) == 60 and "poison" in collected.class_names
    assert max(len(e.labels) for e in collected.examples) == 2
    root = build(collected, tmp_path, "Poke")
    back = read_back(root, "Poke")
    wanted = {(expected_pixels(e.source, 3).tobytes(), tuple(e.labels)) for e in collected.examples}
    got = {(x[0].tobytes(), tuple(np.flatnonzero(y))) for x, y in back}
    assert got == wanted
    assert max(y.sum() for _, y in back) == 2


def test_kth_videos_round_trip(tmp_path):
    collected = convert.collect_folder(shared("raw", "kth_avi"))
    assert collected.kind == "video" and len(collected.examples) == 12
    root = build(collected, tmp_path, "Kth", test_fraction=0.5)
    meta = AutoDLDataset(os.path.join(root, "Kth.data", "train")).get_metadata()
    assert meta.get_num_channels() == 1 and meta.get_sequence_size() == -1
    back = read_back(root, "Kth")
    by_length = {}
    for e in collected.examples:
        clip = convert.load_video(e.source).mean(-1, keepdims=True)
        by_length.setdefault((len(clip), e.labels[0]), []).append(clip)
    for x, y in back:
        candidates = by_length[(len(x), int(np.argmax(y)))]
        err = min(np.abs(x.astype(float) - c).mean() for c in candidates)
        assert err < 2.0, "JPEG frames must stay within 2/255 on average"


def test_frame_folders_and_max_frames(tmp_path):
    src = tmp_path / "clips"
    for cls, video in (("box", "boxing"), ("walk", "walking")):
        for k, path in enumerate(sorted(glob.glob(os.path.join(shared("raw", "kth_avi", video), "*.avi")))):
            clip_dir = src / cls / f"clip{k}"
            clip_dir.mkdir(parents=True)
            for t, frame in enumerate(convert.load_video(path)[:12]):
                Image.fromarray(frame).save(clip_dir / f"{t:04d}.png")
    root = build(convert.collect_folder(str(src)), tmp_path, "Frames", test_fraction=0.5, max_frames=5)
    back = read_back(root, "Frames")
    assert len(back) == 4 and all(x.shape[0] == 5 for x, _ in back)


def test_presplit_folders(tmp_path):
    src = tmp_path / "split"
    faces = shared("raw", "faces_pgm")
    for subset, take in (("train", slice(0, 3)), ("test", slice(3, 4))):
        for cls in ("s1", "s2", "s3"):
            (src / subset / cls).mkdir(parents=True)
            for f in sorted(os.listdir(os.path.join(faces, cls)))[take]:
                shutil.copy(os.path.join(faces, cls, f), src / subset / cls / f)
    root = build(convert.collect_folder(str(src)), tmp_path, "Split")
    assert AutoDLDataset(os.path.join(root, "Split.data", "test")).get_metadata().size() == 3
    assert AutoDLDataset(os.path.join(root, "Split.data", "train")).get_metadata().size() == 9


def test_tiff_16bit_and_rgba(tmp_path):
    """Formats absent from the raw folders, made from a real face: 16-bit TIFF, RGBA PNG, RGB BMP."""
    face = np.asarray(Image.open(sorted(glob.glob(os.path.join(shared("raw", "faces_pgm"), "s1", "*")))[0]))
    src = tmp_path / "mixed"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir(parents=True)
    Image.fromarray((face.astype(np.uint16) * 257)).save(src / "a" / "deep.tif")
    rgba = np.dstack([face, face // 2, face // 3, np.full_like(face, 255)])
    Image.fromarray(rgba, "RGBA").save(src / "a" / "alpha.png")
    Image.fromarray(np.dstack([face] * 3)).save(src / "b" / "colour.bmp")
    Image.fromarray(face).save(src / "b" / "grey.tiff")
    pixels, _ = convert.load_image(str(src / "a" / "deep.tif"))
    assert pixels.dtype == np.uint8 and np.array_equal(pixels[..., 0], face)
    root = build(convert.collect_folder(str(src)), tmp_path, "Mixed", test_fraction=0.5)
    back = read_back(root, "Mixed")
    assert {x.shape[-1] for x, _ in back} == {3}
    assert any(np.array_equal(x[0], rgba[..., :3]) for x, _ in back)


def test_12_bit_grey_in_16_bit_files_keeps_its_levels(tmp_path):
    """An x-ray's 12 bits in a 16-bit PNG or TIFF (values up to 4095): scaled by 4095, not 65535 (which left
    the 16 darkest of 256 levels)."""
    face = np.asarray(Image.open(sorted(glob.glob(os.path.join(shared("raw", "faces_pgm"), "s1", "*")))[0]))
    deep = face.astype(np.uint16) * 16  # 0..4080
    for name in ("xray.png", "xray.tif"):
        Image.fromarray(deep).save(tmp_path / name)
        assert Image.open(tmp_path / name).mode.startswith("I")
        pixels, _ = convert.load_image(str(tmp_path / name))
        assert np.abs(pixels[..., 0].astype(int) - face).max() <= 1


def test_a_2048x1536_48_bit_colour_tiff_converts(tmp_path):
    """A microscope-style 16-bit-per-channel RGB TIFF (written by OpenCV) from a real photo: read as the high
    byte of each channel, in RGB order, through convert and the dataset it writes."""
    import cv2
    photo = Image.open(os.path.join(shared("raw", "photos"), "nature", "snow_forest_Reconyx.jpg")).convert("RGB")
    rgb = np.asarray(photo.resize((2048, 1536)))
    deep = rgb.astype(np.uint16) * 257  # high byte: rgb
    for cls in ("a", "b"):
        (tmp_path / "tiffs" / cls).mkdir(parents=True)
        for i in range(2):
            assert cv2.imwrite(str(tmp_path / "tiffs" / cls / f"{i}.tif"), deep[..., ::-1])  # OpenCV writes BGR
    pixels, _ = convert.load_image(str(tmp_path / "tiffs" / "a" / "0.tif"))
    assert pixels.shape == (1536, 2048, 3) and np.array_equal(pixels, rgb)
    root = build(convert.collect_folder(str(tmp_path / "tiffs")), tmp_path, "Tiff", test_fraction=0.5)
    assert all(x.shape[-3:] == (1536, 2048, 3) for x, _ in read_back(root, "Tiff"))


def test_numpy_uint8_and_float(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 8, 9, 3), dtype=np.uint8)
    y = np.arange(30) % 3
    root = build(convert.collect_arrays(x, y), tmp_path, "U8")
    got = sorted((xx[0].tobytes(), int(np.argmax(yy))) for xx, yy in read_back(root, "U8"))
    assert got == sorted((x[i].tobytes(), int(y[i])) for i in range(30))
    xf = rng.random((20, 4, 5, 6, 1)).astype(np.float32)  # video of 4 frames, dense floats
    yf = np.eye(2, dtype=int)[np.arange(20) % 2]
    root = build(convert.collect_arrays(xf, yf), tmp_path, "F32")
    ds = AutoDLDataset(os.path.join(root, "F32.data", "train"))
    assert not ds.get_metadata().is_compressed()
    stored = {x.numpy().tobytes() for x, _ in ds.get_dataset()}
    assert stored <= {xf[i].tobytes() for i in range(20)} and len(stored) == ds.get_metadata().size()


def test_cli_convert_npz(tmp_path, capsys):
    x = np.random.default_rng(1).integers(0, 256, (12, 6, 6), dtype=np.uint8)
    np.savez(tmp_path / "digits.npz", x=x, y=np.arange(12) % 2)
    assert cli_main(["convert", str(tmp_path / "digits.npz"), "--out", str(tmp_path / "out")]) == 0
    assert os.path.exists(tmp_path / "out" / "digits" / "digits.solution")
    assert "12 array examples, 2 classes" in capsys.readouterr().out


# ----------------------------------------------------------------------------- bad input

def test_one_class_is_refused(tmp_path):
    (tmp_path / "src" / "only").mkdir(parents=True)
    shutil.copy(glob.glob(os.path.join(shared("raw", "faces_pgm"), "s1", "*"))[0], tmp_path / "src" / "only")
    with pytest.raises(AutoclintError, match=r"src: found 1 class folder\(s\) \['only'\]; .* at least 2"):
        convert.collect_folder(str(tmp_path / "src"))


def test_empty_class_folder_is_named(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(os.path.join(shared("raw", "faces_pgm"), "s1"), src / "s1")
    (src / "empty").mkdir()
    with pytest.raises(AutoclintError, match=r"src/empty: class folder holds no image"):
        convert.collect_folder(str(src))


def test_a_class_with_a_single_image_is_named_kept_in_train(tmp_path, caplog):
    src = tmp_path / "src"
    shutil.copytree(os.path.join(shared("raw", "faces_pgm"), "s1"), src / "s1")
    (src / "lonely").mkdir()
    shutil.copy(sorted(glob.glob(os.path.join(shared("raw", "faces_pgm"), "s2", "*")))[0], src / "lonely")
    caplog.set_level("WARNING", logger="autoclint")
    root = build(convert.collect_folder(str(src)), tmp_path, "Alone", test_fraction=0.3)
    assert "Alone: 1 class(es) with a single example, kept in train and never tested: lonely" in caplog.text
    train = AutoDLDataset(os.path.join(root, "Alone.data", "train"))
    assert sum(int(np.argmax(y.numpy()) == 0) for _, y in train.get_dataset()) == 1  # classes sorted: lonely, s1


def test_unreadable_file_is_named_and_nothing_is_lost(tmp_path):
    src = tmp_path / "src"
    for cls in ("s1", "s2"):
        shutil.copytree(os.path.join(shared("raw", "faces_pgm"), cls), src / cls)
    (src / "s2" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    out = tmp_path / "out"
    (out / "Faces").mkdir(parents=True)
    (out / "Faces" / "keep.txt").write_text("earlier work")
    collected = convert.collect_folder(str(src))
    with pytest.raises(AutoclintError, match=r"Faces: already exists; pass --overwrite"):
        convert.write_dataset(collected, str(out), "Faces")
    with pytest.raises(AutoclintError, match=r"s2/broken.jpg: cannot be read as an image"):
        convert.write_dataset(collected, str(out), "Faces", overwrite=True)
    assert (out / "Faces" / "keep.txt").read_text() == "earlier work"
    assert os.listdir(out) == ["Faces"], "no partial folder may be left behind"


def test_skip_unreadable_leaves_them_out_names_them_and_lists_every_file(tmp_path, caplog):
    """--skip-unreadable: the broken file is named and counted in the log, the others are written;
    files.csv maps every example of each split back to its file; a one-image class is warned about."""
    src = tmp_path / "src"
    for cls in ("s1", "s2"):
        shutil.copytree(os.path.join(shared("raw", "faces_pgm"), cls), src / cls)
    (src / "s2" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (src / "s3").mkdir()
    s3 = os.path.join(shared("raw", "faces_pgm"), "s3")
    shutil.copy(os.path.join(s3, sorted(os.listdir(s3))[0]), src / "s3" / "only.pgm")
    caplog.set_level("WARNING", logger="autoclint")
    root = convert.write_dataset(convert.collect_folder(str(src)), str(tmp_path / "out"), "Faces", 0.5,
                                 skip_unreadable=True)
    assert "s2/broken.jpg: cannot be read as an image" in caplog.text
    assert "left out 1 unreadable file(s): broken.jpg" in caplog.text
    assert "class 's3' has 1 example(s), none in the test set" in caplog.text
    with open(os.path.join(root, "files.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9 and not any(r["file"].endswith("broken.jpg") for r in rows)
    test_rows = sorted((int(r["index"]), r) for r in rows if r["split"] == "test")
    solution = read_solution(os.path.join(root, "Faces.solution"))
    assert [i for i, _ in test_rows] == list(range(len(solution)))
    for (_, row), truth in zip(test_rows, solution):  # the listed file's class is the solution's
        assert row["labels"] == ["s1", "s2", "s3"][int(truth.argmax())] == os.path.basename(os.path.dirname(row["file"]))


def test_csv_missing_file_is_named(tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("path,labels\nimages/none.png,fire water\n")
    with pytest.raises(AutoclintError, match=r"labels.csv: line 2 names 'images/none.png', which does not exist"):
        convert.collect_csv(str(csv_path))


def test_numpy_shape_mismatch(tmp_path):
    with pytest.raises(AutoclintError, match="x holds 5 examples but y holds 4 labels"):
        convert.collect_arrays(np.zeros((5, 4, 4), np.uint8), np.arange(4))
