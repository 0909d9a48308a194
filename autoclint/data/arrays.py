"""A dataset of examples already decoded into arrays, read without TensorFlow.

The learner reads `tf.data` datasets (the challenge's interface). A machine without TensorFlow (a lent
GPU: its registry is unreachable and TensorFlow's wheel is larger than what travels there) can still run
the same learner on an `ArrayDataset`: the examples as the AutoDL reader would yield them (T, H, W, C),
stored as uint8 (what the AutoDL files hold) and yielded in [0, 1] as float32, as `AutoDLDataset` does.
`scan` and `iterate_cache` (data.adapt) take either kind; here is the same adaptation in torch: frames
sampled evenly, channels averaged or repeated, TensorFlow's area resize, values mapped from the scan's
range: on the suite's images and clips the caches equal TensorFlow's, level for level
(tests/data/test_arrays.py).
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class ArrayDataset:
    examples: Sequence[np.ndarray]  # uint8 (T, H, W, C) each; shapes may differ between examples
    labels: np.ndarray  # float32 (N, K); test sets carry zeros, as AutoDL's do

    def __post_init__(self) -> None:
        if len(self.examples) != len(self.labels):
            raise ValueError(f"{len(self.examples)} examples but {len(self.labels)} label rows")
        for k, x in enumerate(self.examples):
            if x.dtype != np.uint8 or x.ndim != 4:
                raise ValueError(f"example {k}: expected uint8 (T, H, W, C), got {x.dtype} {x.shape}")

    def __len__(self) -> int:
        return len(self.examples)

    def save(self, path: str) -> None:
        """One compressed .npz (examples of one shape stacked, else one entry per example)."""
        shapes = {x.shape for x in self.examples}
        if len(shapes) == 1:
            np.savez_compressed(path, x=np.stack(self.examples), y=self.labels)
        else:
            np.savez_compressed(path, y=self.labels, **{f"x{k}": x for k, x in enumerate(self.examples)})

    @classmethod
    def load(cls, path: str) -> ArrayDataset:
        with np.load(path) as f:
            labels = f["y"]
            examples = list(f["x"]) if "x" in f else [f[f"x{k}"] for k in range(len(labels))]
        return cls(examples, labels)


def from_tf(dataset) -> ArrayDataset:
    """A tf.data.Dataset of AutoDL examples (values in [0, 1], as decoded images are) as an ArrayDataset
    (needs TensorFlow; the result does not)."""
    from autoclint.data.reader import numpy_batches
    examples, labels = [], []
    for k, (x, y) in enumerate(numpy_batches(dataset)):
        if x.min() < 0 or x.max() > 1:
            raise ValueError(f"example {k}: values in [{x.min():g}, {x.max():g}], outside the [0, 1] of "
                             "decoded images; an ArrayDataset holds 8-bit images only")
        examples.append(np.round(x * 255).astype(np.uint8))
        labels.append(y)
    return ArrayDataset(examples, np.asarray(labels, np.float32).reshape(len(labels), -1))


def scan_arrays(dataset: ArrayDataset, count: int, until: float) -> tuple[list[tuple[int, ...]], list[float],
                                                                            list[float]]:
    """Shapes and value ranges (in [0, 1]) of the first `count` examples, or those seen by `until`."""
    shapes, lows, highs = [], [], []
    for x in dataset.examples[:count]:
        shapes.append(x.shape)
        lows.append(float(x.min()) / 255)
        highs.append(float(x.max()) / 255)
        if time.monotonic() > until:
            break
    return shapes, lows, highs


def area_weights(size: int, new: int) -> torch.Tensor:
    """(new, size): each output pixel the average of the source interval it covers, fractional pixels
    weighted by their overlap (TensorFlow's area resize; torch's "area" mode rounds the intervals to
    whole pixels, up to 120 levels of 255 away from it on real images)."""
    scale = size / new
    starts = torch.arange(new, dtype=torch.float64).view(-1, 1) * scale
    pixels = torch.arange(size, dtype=torch.float64).view(1, -1)
    overlap = (torch.minimum(pixels + 1, starts + scale) - torch.maximum(pixels, starts)).clamp(min=0)
    return (overlap / scale).float()


def adapt_arrays(examples: Sequence[np.ndarray], frames: int, height: int, width: int, channels: int,
                 low: float, high: float) -> np.ndarray:
    """uint8 (B, frames, height, width, channels): the rule of data.adapt.iterate_cache, in torch."""
    out = np.empty((len(examples), frames, height, width, channels), np.uint8)
    k = 0
    while k < len(examples):  # runs of examples of one shape are adapted as one batch
        j = k + 1
        while j < len(examples) and examples[j].shape == examples[k].shape:
            j += 1
        index = np.round(np.linspace(0.0, len(examples[k]) - 1, frames)).astype(int)
        out[k:j] = _adapt_batch(np.stack([clip[index] for clip in examples[k:j]]), height, width, channels, low, high)
        k = j
    return out


def _adapt_batch(clips: np.ndarray, height: int, width: int, channels: int, low: float, high: float) -> np.ndarray:
    b, t = clips.shape[:2]
    x = torch.from_numpy(clips).flatten(0, 1).float() / 255  # (B*T, H, W, C) in [0, 1]
    if channels == 1:
        x = x.mean(-1, keepdim=True)
    elif x.shape[-1] != channels:
        x = x.mean(-1, keepdim=True).expand(-1, -1, -1, channels)
    x = x.permute(0, 3, 1, 2)
    if x.shape[-2:] != (height, width):  # TensorFlow's choice of method (area, bilinear for one row)
        x = (area_weights(x.shape[-2], height) @ x @ area_weights(x.shape[-1], width).T if height > 1
             else F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True))
    if not (-0.1 <= low and high <= 1.1):
        x = (x - low) / max(high - low, 1e-6)
    x = torch.clamp(torch.round(x * 255), 0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return x.reshape(b, t, height, width, channels).numpy()


def iterate_arrays(dataset: ArrayDataset, frames: int, height: int, width: int, channels: int, low: float,
                   high: float, batch: int, skip: int, take: int | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    end = len(dataset) if take is None else min(len(dataset), skip + take)
    for start in range(skip, end, batch):
        stop = min(start + batch, end)
        yield (adapt_arrays(dataset.examples[start:stop], frames, height, width, channels, low, high),
               dataset.labels[start:stop].astype(np.float32))
