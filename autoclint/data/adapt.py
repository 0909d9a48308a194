"""Input adaptation: the median example shape decides one input size; every example is decoded once
into a uint8 cache at that size (AutoCLINT's rule, without its failures: no side rounds to 0, any
aspect ratio, any channel count, values outside [0, 1] rescaled from a scan)."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from autoclint.data.arrays import ArrayDataset, iterate_arrays, scan_arrays
from autoclint.data.reader import numpy_batches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputShape:
    frames: int
    height: int
    width: int
    channels: int


@dataclass(frozen=True)
class Scan:
    median: InputShape
    low: float  # value range of the scanned examples
    high: float


def scan(dataset, count: int = 256, until: float = float("inf")) -> Scan:
    """Median (T, H, W, C) and value range over the first `count` examples, or those read by `until`
    (time.monotonic; at least one is read: 256 camera photos take tens of seconds to decode)."""
    if isinstance(dataset, ArrayDataset):
        shapes, lows, highs = scan_arrays(dataset, count, until)
    else:
        shapes, lows, highs = _scan_tf(dataset, count, until)
    if not shapes:
        raise ValueError("the dataset is empty")
    t, h, w, c = (int(np.median([s[i] for s in shapes])) for i in range(4))
    return Scan(InputShape(max(t, 1), max(h, 1), max(w, 1), max(c, 1)), float(min(lows)), float(max(highs)))


def _scan_tf(dataset, count: int, until: float) -> tuple[list, list, list]:
    import tensorflow as tf  # here, not at the top: the learner also runs where there is none (data.arrays)

    def summary(d):
        # One example per step: a step of 8 camera photos took ~0.4 s, past a 0.5 s scan's end by most of it
        return d.take(count).map(lambda x, y: (tf.shape(x), tf.reduce_min(x), tf.reduce_max(x)))
    shapes, lows, highs = [], [], []
    for shape, low, high in numpy_batches(dataset, summary):
        shapes.append(shape)
        lows.append(low)
        highs.append(high)
        if time.monotonic() > until:
            break
    return shapes, lows, highs


def side_cap(median: InputShape, examples: int, frames: int, base: int, largest: int, pass_pixels: float) -> int:
    """The long-side cap: `base` (AutoCLINT's 64), raised in steps of 16 up to `largest` while the source
    has that much detail and one pass over `examples` clips of `frames` frames stays within `pass_pixels`.
    Small sets of large images gain most from resolution (Pokemon 120 px, frozen features: test NAUC
    0.404 at 64 px, 0.457 at 96, 0.460 at 128, measured) and cost least."""
    side = base
    while (side + 16 <= min(largest, max(median.height, median.width))
           and examples * frames * (side + 16) ** 2 <= pass_pixels):
        side += 16
    return side


def read_batch(source: InputShape, batch_bytes: int, most: int = 256) -> int:
    """Examples per decoding batch: about `batch_bytes` of decoded source values (at least 1, at most
    `most`), so that a time-bounded read stops on time whatever the source size (one batch of 256 camera
    photos takes ~5 s to decode; 256 small images take milliseconds; one long clip may exceed it alone)."""
    size = source.frames * source.height * source.width * source.channels
    return int(np.clip(batch_bytes // max(size, 1), 1, most))


def _fit16(x: float) -> int:
    """AutoCLINT's rounding to a multiple of 16 (up once the fraction reaches 0.2), never below 16."""
    return max(16, int(x / 16 + 0.8) * 16)


def adapted_shape(median: InputShape, max_side: int = 64, wide_max_side: int = 128, max_frames: int = 8) -> InputShape:
    """Inputs <= 32x32 stay as they are; others are capped on the long side (wider cap for aspect > 2)."""
    frames = min(median.frames, max_frames)
    h, w = median.height, median.width
    if h <= 32 and w <= 32:
        return InputShape(frames, h, w, median.channels)
    aspect = w / h
    cap = wide_max_side if aspect > 2 or aspect < 0.5 else max_side
    scale = min(1.0, cap / max(h, w))
    return InputShape(frames, min(_fit16(h * scale), cap), min(_fit16(w * scale), cap), median.channels)


def iterate_cache(dataset, shape: InputShape, low: float = 0.0, high: float = 1.0, batch: int = 256,
                  skip: int = 0, take: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of uint8 (B, T, H, W, C) examples at `shape` with float32 (B, K) labels, in dataset order.

    Frames are sampled evenly (shorter clips repeat frames); values are mapped from [low, high] when the
    scan found them outside [0, 1]; channels are averaged or repeated to `shape.channels`. `skip` and
    `take` select examples before any decoding work is spent on the others.
    """
    if isinstance(dataset, ArrayDataset):
        yield from iterate_arrays(dataset, *vars(shape).values(), low, high, batch, skip, take)
        return
    import tensorflow as tf
    rescale = not (-0.1 <= low and high <= 1.1)
    span = max(high - low, 1e-6)

    def adapt(x, y):
        x = tf.cast(x, tf.float32)
        t = tf.shape(x)[0]
        index = tf.cast(tf.round(tf.linspace(0.0, tf.cast(t - 1, tf.float32), shape.frames)), tf.int32)
        x = tf.gather(x, index)
        c = tf.shape(x)[-1]
        if shape.channels == 1:
            x = tf.reduce_mean(x, axis=-1, keepdims=True)
        else:
            x = tf.cond(tf.equal(c, shape.channels), lambda: x,  # Tensor == is identity in TF1 graph mode
                        lambda: tf.tile(tf.reduce_mean(x, axis=-1, keepdims=True), [1, 1, 1, shape.channels]))
        x = tf.image.resize(x, (shape.height, shape.width), method="area" if shape.height > 1 else "bilinear",
                            antialias=True)
        if rescale:
            x = (x - low) / span
        x = tf.clip_by_value(tf.round(x * 255.0), 0, 255)
        return tf.cast(x, tf.uint8), y

    def pipeline(d):
        d = d.skip(skip) if skip else d
        d = d.take(take) if take is not None else d
        return d.map(adapt, num_parallel_calls=tf.data.AUTOTUNE).batch(batch).prefetch(2)

    for x, y in numpy_batches(dataset, pipeline):
        yield x, y.astype(np.float32)


def decode_to_cache(dataset, shape: InputShape, low: float = 0.0, high: float = 1.0,
                    max_examples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All examples (or the first max_examples) as one uint8 cache (N, T, H, W, C), labels (N, K)."""
    xs, ys = [], []
    for x, y in iterate_cache(dataset, shape, low, high, take=max_examples):
        xs.append(x)
        ys.append(y)
    if not xs:
        raise ValueError("the dataset is empty")
    return np.concatenate(xs), np.concatenate(ys)
