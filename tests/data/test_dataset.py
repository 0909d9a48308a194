import glob
import os

import numpy as np
import pytest

from autoclint.data.dataset import AutoDLDataset, check_records
from autoclint.errors import AutoclintError
from autoclint.harness.scoring import read_solution
from tests.conftest import copy_dataset, shared

SUITE = ["Fashion", "Cifar", "Signs", "Faces", "Pokemon", "Kth"]


def elements(subset_dir):
    return [(x.numpy(), y.numpy()) for x, y in AutoDLDataset(subset_dir).get_dataset()]


def test_miniciao_train_and_test():
    root = shared("samples", "miniciao", "miniciao.data")
    train, test = elements(os.path.join(root, "train")), elements(os.path.join(root, "test"))
    assert len(train) == 82 and len(test) == 18
    x, y = train[0]
    assert x.shape == (1, 32, 32, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == (10,) and y.sum() == 1
    assert all(not y.any() for _, y in test), "test labels must be all zero"


def test_same_dataset_object_and_order():
    ds = AutoDLDataset(shared("samples", "miniciao", "miniciao.data", "train"))
    assert ds.get_dataset() is ds.get_dataset()
    first = [y.numpy().argmax() for _, y in ds.get_dataset()]
    assert first == [y.numpy().argmax() for _, y in ds.get_dataset()]


def test_dense_legacy_records_and_erased_labels():
    """mini1: DENSE rows, no id, test records keep label_index with score 0 -> labels must read zero."""
    root = shared("samples", "mini1", "mini1.data")
    train, test = elements(os.path.join(root, "train")), elements(os.path.join(root, "test"))
    assert len(train) == 50 and train[0][0].shape == (1, 28, 28, 1)
    assert all(y.sum() == 1 for _, y in train)
    assert all(not y.any() for _, y in test)


def test_variable_image_sizes():
    shapes = {x.shape for x, _ in elements(shared("samples", "Monkeys", "Monkeys.data", "train"))}
    assert len(shapes) > 1 and all(s[0] == 1 and s[3] == 3 for s in shapes)


def test_class_labels_follow_index():
    ds = AutoDLDataset(shared("samples", "miniciao", "miniciao.data", "train"))
    assert ds.get_class_labels()[0] == "airplane" and len(ds.get_class_labels()) == 10


@pytest.mark.parametrize("name", SUITE)
def test_suite_counts_match_metadata(name):
    root = shared("suite", name, f"{name}.data")
    for subset in ("train", "test"):
        path = os.path.join(root, subset)
        ds = AutoDLDataset(path)
        assert check_records(path) == ds.get_metadata().size()
        x, y = next(iter(ds.get_dataset()))
        t, h, w, c = ds.get_metadata().get_tensor_shape()
        assert tuple(x.shape) == (t, h, w, c) and y.shape == (ds.get_metadata().get_output_size(),)
    assert len(read_solution(shared("suite", name, f"{name}.solution"))) == \
        AutoDLDataset(os.path.join(root, "test")).get_metadata().size()


def test_suite_multilabel_pokemon():
    labels = np.stack([y.numpy() for _, y in AutoDLDataset(shared("suite", "Pokemon", "Pokemon.data", "train")).get_dataset()])
    assert labels.sum(1).max() == 2 and labels.sum(1).min() == 1


def _record_file(root):
    return glob.glob(os.path.join(root, "miniciao.data", "train", "sample*"))[0]


def test_truncated_record_is_named(tmp_path):
    root = copy_dataset(shared("samples", "miniciao"), tmp_path)
    path = _record_file(root)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) - 500])
    with pytest.raises(AutoclintError, match=r"sample-miniciao-train.tfrecord: record \d+ is truncated or corrupt"):
        check_records(os.path.dirname(path))


def test_bad_crc_is_named(tmp_path):
    root = copy_dataset(shared("samples", "miniciao"), tmp_path)
    path = _record_file(root)
    data = bytearray(open(path, "rb").read())
    data[5000] ^= 0xFF  # inside a payload: its CRC no longer matches
    open(path, "wb").write(bytes(data))
    with pytest.raises(AutoclintError, match=r"record \d+ is truncated or corrupt \(bad length or CRC\)"):
        check_records(os.path.dirname(path))


def test_undecodable_image_is_named(tmp_path):
    """A record whose JPEG bytes are garbage (valid CRC): the record index is named."""
    import tensorflow as tf
    root = copy_dataset(shared("samples", "miniciao"), tmp_path)
    path = _record_file(root)
    records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    bad = tf.train.SequenceExample.FromString(records[3])
    bad.feature_lists.feature_list["0_compressed"].feature[0].bytes_list.value[0] = b"not an image at all"
    records[3] = bad.SerializeToString()
    with tf.io.TFRecordWriter(path) as w:
        for r in records:
            w.write(r)
    with pytest.raises(AutoclintError, match=r"record 3 cannot be parsed or decoded"):
        check_records(os.path.dirname(path))


def test_sample_count_must_be_true(tmp_path):
    root = copy_dataset(shared("samples", "miniciao"), tmp_path)
    meta = os.path.join(root, "miniciao.data", "test", "metadata.textproto")
    text = open(meta).read().replace("sample_count: 18", "sample_count: 20")
    open(meta, "w").write(text)
    with pytest.raises(AutoclintError, match="sample_count is 20 but the sample\\* files hold 18 records"):
        check_records(os.path.dirname(meta))


def test_no_record_file(tmp_path):
    root = copy_dataset(shared("samples", "miniciao"), tmp_path)
    os.remove(_record_file(root))
    with pytest.raises(AutoclintError, match="no record file named sample"):
        AutoDLDataset(os.path.join(root, "miniciao.data", "train"))
