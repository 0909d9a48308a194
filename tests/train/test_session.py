"""The learner's own rules: the validation split, the input-size cap, streaming beyond the cache."""
import os

import numpy as np

from autoclint.data.adapt import InputShape, side_cap
from autoclint.data.dataset import AutoDLDataset
from autoclint.train.config import TrainCfg
from autoclint.train.session import Session, split_indices
from tests.conftest import one_hot, shared


def test_split_keeps_one_shot_classes_in_train():
    labels = one_hot(np.array([0, 1, 2, 3] + [4] * 20 + [5] * 20), 6)
    train, valid = split_indices(labels, TrainCfg())
    assert set(np.argmax(labels[train], 1)) == set(range(6))  # every class is still trained on
    assert set(np.argmax(labels[valid], 1)) == {4, 5} and len(np.intersect1d(train, valid)) == 0
    train, valid = split_indices(one_hot(np.arange(10), 10), TrainCfg())
    assert len(train) == len(valid) == 10  # nothing can be held out: choose on train


def test_side_cap_grows_only_for_small_sets_of_large_images():
    big = InputShape(1, 120, 120, 3)
    assert side_cap(big, 813, 1, 64, 128, 1e7) == 96  # Pokemon-sized
    assert side_cap(big, 60000, 1, 64, 128, 1e7) == 64
    assert side_cap(InputShape(1, 28, 28, 1), 100, 1, 64, 128, 1e7) == 64  # no detail to gain
    assert side_cap(InputShape(40, 60, 80, 1), 54, 8, 64, 128, 1e7) == 80  # clips count every frame


def test_sets_beyond_the_cache_are_streamed_without_touching_validation():
    root = shared("suite", "Fashion", "Fashion.data")
    train = AutoDLDataset(os.path.join(root, "train"))
    test = AutoDLDataset(os.path.join(root, "test"))
    cfg = TrainCfg(cache_bytes=28 * 28 * 1000, first_slice_s=1.0, max_slice_s=1.0)  # room for 1000 of 6000
    session = Session(10, cfg, train_size=6000)
    for _ in range(2):  # read + pixels, then frozen features (streaming starts once the first read is complete)
        session.train(train.get_dataset(), 60)
        session.test(test.get_dataset(), 60)
    assert len(session.x) == 1000 and session.stream is not None
    first_x, valid_x = session.x.copy(), session.x[session.valid_idx].copy()
    for _ in range(2):  # two fine-tune slices, each streaming a quarter in
        session.train(train.get_dataset(), 60)
        session.test(test.get_dataset(), 60)
    assert session.stream_position > 1000
    changed = (session.x != first_x).reshape(1000, -1).any(1)
    assert changed.sum() >= len(session.train_idx) // 2 - 5
    assert not changed[session.valid_idx].any()
    np.testing.assert_array_equal(session.x[session.valid_idx], valid_x)


def test_a_large_set_gives_its_first_prediction_from_what_was_read_in_time():
    root = shared("suite", "Fashion", "Fashion.data")
    train = AutoDLDataset(os.path.join(root, "train"))
    test = AutoDLDataset(os.path.join(root, "test"))
    session = Session(10, TrainCfg(first_read_s=0.0), train_size=6000)  # stop after the first batch
    session.train(train.get_dataset(), 60)
    prediction = session.test(test.get_dataset(), 60)
    assert len(session.x) == 256 and prediction.shape == (2000, 10)
    valid = session.valid_idx.copy()
    session.train(train.get_dataset(), 60)  # the rest is read, then frozen features
    assert len(session.x) == 6000 and session.reader is None
    np.testing.assert_array_equal(session.valid_idx, valid)
    assert len(np.union1d(session.train_idx, valid)) == 6000 and len(np.intersect1d(session.train_idx, valid)) == 0
