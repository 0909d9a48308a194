import numpy as np
import pytest
import tensorflow as tf

from autoclint.data.adapt import InputShape, adapted_shape, decode_to_cache, scan
from autoclint.data.dataset import AutoDLDataset
from tests.conftest import shared


@pytest.mark.parametrize("median,expected", [
    (InputShape(1, 28, 28, 1), (1, 28, 28, 1)),  # <= 32 kept
    (InputShape(1, 203, 74, 3), (1, 128, 48, 3)),  # AutoCLINT's Pedro example
    (InputShape(1, 576, 944, 3), (1, 48, 64, 3)),  # Decal
    (InputShape(46, 120, 160, 1), (8, 48, 64, 1)),  # KTH video: 8 frames
    (InputShape(1, 1, 500, 3), (1, 16, 128, 3)),  # 1x500: no side rounds to 0
    (InputShape(1, 3000, 4000, 4), (1, 48, 64, 4)),
])
def test_adapted_shape(median, expected):
    assert tuple(vars(adapted_shape(median)).values()) == expected


def test_cache_of_variable_size_images():
    ds = AutoDLDataset(shared("samples", "Monkeys", "Monkeys.data", "train")).get_dataset()
    s = scan(ds)
    shape = adapted_shape(s.median)
    x, y = decode_to_cache(ds, shape, s.low, s.high)
    assert x.dtype == np.uint8 and x.shape == (26, 1, shape.height, shape.width, 3) and y.shape == (26, 10)


def test_dense_values_outside_unit_range_are_rescaled():
    data = tf.data.Dataset.from_tensor_slices((np.linspace(0, 255, 2 * 4 * 4).reshape(2, 1, 4, 4, 1).astype("float32"),
                                               np.eye(2, dtype="float32")))
    s = scan(data)
    x, _ = decode_to_cache(data, InputShape(1, 4, 4, 1), s.low, s.high)
    assert x.min() == 0 and x.max() == 255


def test_short_and_long_clips_give_the_requested_frames():
    clips = [np.random.rand(n, 6, 8, 1).astype("float32") for n in (1, 2000)]
    data = tf.data.Dataset.from_generator(lambda: ((c, np.eye(2, dtype="float32")[i]) for i, c in enumerate(clips)),
                                          output_signature=(tf.TensorSpec([None, 6, 8, 1]), tf.TensorSpec([2])))
    x, _ = decode_to_cache(data, InputShape(8, 6, 8, 1))
    assert x.shape == (2, 8, 6, 8, 1)
    assert (x[0] == x[0, :1]).all(), "a 1-frame clip repeats its frame"
