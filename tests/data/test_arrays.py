"""ArrayDataset: the learner's input without TensorFlow gives the caches TensorFlow's reading gives, on
real images and clips; bad arrays are one sentence."""
import os
import subprocess
import sys

import numpy as np
import pytest

from autoclint.data.adapt import InputShape, iterate_cache, scan
from autoclint.data.arrays import ArrayDataset, area_weights, from_tf
from autoclint.data.dataset import AutoDLDataset
from tests.conftest import REPO, shared


def suite_train(name: str, n: int):
    return AutoDLDataset(shared("suite", name, f"{name}.data", "train")).get_dataset().take(n)


@pytest.mark.parametrize("name, shapes", [
    ("Faces", [(1, 64, 48, 1), (1, 112, 92, 3)]),  # down, grey -> RGB at its own size
    ("Pokemon", [(1, 96, 96, 3), (1, 64, 64, 1), (1, 128, 128, 3)]),  # down, RGB -> grey, up
    ("Fashion", [(1, 28, 28, 1), (1, 64, 64, 3)]),
    ("Kth", [(8, 48, 64, 1)]),  # 40-frame clips: frames sampled, then resized
])
def test_caches_equal_tensorflows(name, shapes):
    tf_data = suite_train(name, 120)
    arrays = from_tf(tf_data)
    n = min(120, AutoDLDataset(shared("suite", name, f"{name}.data", "train")).get_metadata().size())  # Kth: 54
    assert len(arrays) == n
    tf_scan, array_scan = scan(tf_data), scan(arrays)
    assert tf_scan.median == array_scan.median
    assert abs(tf_scan.low - array_scan.low) < 1e-6 and abs(tf_scan.high - array_scan.high) < 1e-6
    for shape in (InputShape(*s) for s in shapes):
        expected, labels = next(iterate_cache(tf_data, shape, tf_scan.low, tf_scan.high, batch=120))
        got, got_labels = next(iterate_cache(arrays, shape, array_scan.low, array_scan.high, batch=120))
        assert got.shape == expected.shape == (n, *vars(shape).values())
        diff = np.abs(got.astype(int) - expected.astype(int))
        assert diff.max() <= 1 and diff.mean() < 1e-3, (shape, diff.max(), diff.mean())
        np.testing.assert_array_equal(got_labels, labels)


def test_skip_take_and_batches_follow_the_dataset_order():
    arrays = from_tf(suite_train("Faces", 50))
    shape = InputShape(1, 32, 32, 1)
    whole = np.concatenate([x for x, _ in iterate_cache(arrays, shape, batch=7)])
    part = np.concatenate([x for x, _ in iterate_cache(arrays, shape, batch=4, skip=10, take=13)])
    assert whole.shape[0] == 50 and part.shape[0] == 13
    np.testing.assert_array_equal(part, whole[10:23])


def test_area_weights_average_what_each_output_pixel_covers():
    w = area_weights(3, 2).numpy()  # two outputs over 1.5 source pixels each
    np.testing.assert_allclose(w, [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]], atol=1e-6)
    np.testing.assert_allclose(area_weights(7, 3).sum(1).numpy(), 1, atol=1e-6)


def test_save_and_load_round_trip(tmp_path):
    arrays = from_tf(suite_train("Kth", 3))
    arrays.save(str(tmp_path / "kth.npz"))
    back = ArrayDataset.load(str(tmp_path / "kth.npz"))
    assert all(np.array_equal(a, b) for a, b in zip(arrays.examples, back.examples))
    np.testing.assert_array_equal(arrays.labels, back.labels)
    mixed = ArrayDataset([np.zeros((1, 4, 4, 1), np.uint8), np.ones((2, 5, 3, 3), np.uint8)],
                         np.eye(2, dtype=np.float32))
    mixed.save(str(tmp_path / "mixed.npz"))
    assert [x.shape for x in ArrayDataset.load(str(tmp_path / "mixed.npz")).examples] == [(1, 4, 4, 1), (2, 5, 3, 3)]


def test_bad_arrays_are_one_sentence():
    with pytest.raises(ValueError, match=r"^example 0: expected uint8 \(T, H, W, C\), got float32 \(4, 4, 1\)$"):
        ArrayDataset([np.zeros((4, 4, 1), np.float32)], np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match=r"^2 examples but 1 label rows$"):
        ArrayDataset([np.zeros((1, 4, 4, 1), np.uint8)] * 2, np.zeros((1, 2), np.float32))


def test_the_learner_reads_an_array_dataset_where_tensorflow_cannot_be_imported(tmp_path):
    train, test = from_tf(suite_train("Faces", 280)), from_tf(
        AutoDLDataset(shared("suite", "Faces", "Faces.data", "test")).get_dataset())
    train.save(str(tmp_path / "train.npz"))
    test.save(str(tmp_path / "test.npz"))
    script = f"""
import sys
sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
from autoclint.data.arrays import ArrayDataset
from autoclint.train.config import TrainCfg
from autoclint.train.session import Session
train, test = ArrayDataset.load({str(tmp_path / 'train.npz')!r}), ArrayDataset.load({str(tmp_path / 'test.npz')!r})
session = Session(40, TrainCfg(), train_size=len(train))
for _ in range(3):
    session.train(train, 600.0)
    prediction = session.test(test, 600.0)
print("stage", session.stage, "shape", prediction.shape, "tensorflow" in sys.modules and sys.modules["tensorflow"])
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600,
                         check=False, env={**os.environ, "PYTHONPATH": REPO})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "shape (120, 40) None" in out.stdout and "stage finetune" in out.stdout, out.stdout + out.stderr[-2000:]
