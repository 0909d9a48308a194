"""The uint8 caches: time-bounded reads, the cap, streaming that never touches held-out examples, and a
test set larger than its cache."""
import os

import numpy as np

from autoclint.data.adapt import InputShape, read_batch
from autoclint.data.cache import TestSetCache, TrainCache
from autoclint.data.dataset import AutoDLDataset
from tests.conftest import shared

FASHION = InputShape(1, 28, 28, 1)


def fashion(subset: str):
    return AutoDLDataset(os.path.join(shared("suite", "Fashion", "Fashion.data"), subset)).get_dataset()


def test_reads_are_bounded_by_time_and_resume_where_they_stopped():
    cache = TrainCache(fashion("train"), FASHION, 0.0, 1.0, cap_bytes=2**30)
    assert cache.read(until=0.0) == 256 and not cache.complete  # one batch, then the deadline
    assert cache.read(until=float("inf")) == 6000 - 256 and cache.complete and not cache.capped
    assert cache.x.shape == (6000, 1, 28, 28, 1) and cache.y.shape == (6000, 10)
    assert cache.read(until=float("inf")) == 0


def test_reading_steps_follow_the_source_size():
    """A read stops only between steps: large sources are decoded a few at a time."""
    assert read_batch(InputShape(1, 28, 28, 1), 32 * 2**20) == 256  # small images: the usual step
    assert read_batch(InputShape(1, 1054, 1000, 3), 16 * 2**20) == 5  # 1-megapixel photos
    assert read_batch(InputShape(2000, 120, 160, 1), 16 * 2**20) == 1  # a long clip alone, never none
    cache = TrainCache(fashion("train"), FASHION, 0.0, 1.0, cap_bytes=2**30, batch=40)
    assert cache.read(until=0.0) == 40
    cache.read(until=float("inf"))
    whole = TrainCache(fashion("train"), FASHION, 0.0, 1.0, cap_bytes=2**30)
    whole.read(until=float("inf"))
    np.testing.assert_array_equal(cache.x, whole.x)


def test_sets_beyond_the_cap_are_streamed_without_touching_held_out_examples():
    cache = TrainCache(fashion("train"), FASHION, 0.0, 1.0, cap_bytes=28 * 28 * 1000)  # 1000 of 6000
    cache.read(until=float("inf"))
    assert len(cache) == 1000 and cache.capped
    protected = np.arange(0, 1000, 7)
    slots = np.setdiff1d(np.arange(1000), protected)
    before = cache.x.copy()
    for _ in range(5):  # 5 x 857 examples, all from beyond the cached 1000
        assert cache.refresh(slots, protected, until=float("inf")) == len(slots)
    np.testing.assert_array_equal(cache.x[protected], before[protected])
    assert (cache.x[slots] != before[slots]).reshape(len(slots), -1).any(1).mean() > 0.95
    assert cache.next_position == 1000 + 5 * len(slots)  # nothing skipped: a batch's rest waits for the next
    # past the end the stream starts over at the cached prefix, skipping the protected examples
    for _ in range(3):
        assert cache.refresh(slots, protected, until=float("inf")) == len(slots)
    assert cache.next_position < 3000
    protected_rows = {before[i].tobytes() for i in protected}
    assert not protected_rows & {cache.x[i].tobytes() for i in slots}
    assert cache.refresh(slots, protected, until=0.0) <= 256  # bounded by time: one batch at most


def test_a_test_set_larger_than_its_cache_is_decoded_per_pass_with_the_same_results():
    def mean_pixel(x):
        return x.reshape(len(x), -1).mean(1, keepdims=True)
    cached = TestSetCache(fashion("test"), FASHION, 0.0, 1.0, cap_bytes=2**30)
    streamed = TestSetCache(fashion("test"), FASHION, 0.0, 1.0, cap_bytes=28 * 28 * 100)
    assert len(cached) == len(streamed) == 2000 and cached.x is not None and streamed.x is None
    np.testing.assert_array_equal(cached.map(mean_pixel), streamed.map(mean_pixel))
