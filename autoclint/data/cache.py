"""The uint8 examples the learner works on, decoded once at the adapted input size.

`TrainCache` reads the train set in time-bounded steps (a first part for the first predictions, then the
rest), keeps at most a memory cap of it, and streams examples beyond the cap into the train slots.
`TestSetCache` holds the test set, or, when it is larger than its cap, decodes it again for every pass.
Both are the only holders of the `tf.data.Dataset` the model was given (read through data.reader).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from autoclint.data.adapt import InputShape, iterate_cache

log = logging.getLogger("autoclint")


def example_bytes(shape: InputShape) -> int:
    return shape.frames * shape.height * shape.width * shape.channels


class TrainCache:
    def __init__(self, dataset, shape: InputShape, low: float, high: float, cap_bytes: int, batch: int = 256):
        """batch: examples decoded per step (data.adapt.read_batch): a read stops only between steps."""
        self.dataset, self.shape, self.low, self.high, self.batch = dataset, shape, low, high, batch
        self.cap = max(1, cap_bytes // example_bytes(shape))
        self.x = np.zeros((0, *vars(shape).values()), np.uint8)
        self.y = np.zeros((0, 0), np.float32)
        self.complete = False  # everything up to the cap has been read
        self._stream = None
        self._unused = None  # (x, y, dataset positions) read but not yet written into the cache
        self.stream_position = self.cap  # index in the dataset of the next batch streaming reads

    def __len__(self) -> int:
        return len(self.x)

    def read(self, until: float) -> int:
        """Read batches until `until` (time.monotonic; at least one batch) or the end; returns how many.

        Each call reads through its own iterator and closes it: a reader left open keeps decoding a few
        steps ahead in the background, and on camera photos that slowed the test read which the first
        prediction waits for from ~0.8 s to ~1.1 s (measured). The next call skips what is cached, which
        costs about half the decoding of those examples (a first part of ~0.5 s).
        """
        xs, ys = [], []
        reader = iterate_cache(self.dataset, self.shape, self.low, self.high, batch=self.batch,
                               skip=len(self.x), take=self.cap - len(self.x))
        while not self.complete:
            batch = next(reader, None)
            if batch is None:
                self.complete = True
                break
            xs.append(batch[0])
            ys.append(batch[1])
            if time.monotonic() > until:
                break
        reader.close()
        if xs:
            self.x = np.concatenate([self.x, *xs]) if len(self.x) else np.concatenate(xs)
            self.y = np.concatenate([self.y, *ys]) if len(self.y) else np.concatenate(ys)
        return sum(len(x) for x in xs)

    @property
    def capped(self) -> bool:
        """The cache is full: the dataset may hold more than fits (streamed by refresh)."""
        return self.complete and len(self.x) == self.cap

    def refresh(self, slots: np.ndarray, protected: np.ndarray, until: float) -> int:
        """Overwrite `slots` (in order, until `until`) with the next examples beyond the cache.

        At the end of the dataset streaming starts over; examples whose index is in `protected` (the
        held-out split, all inside the cached prefix) are skipped so that they never enter training.
        What a batch holds beyond the slots is kept for the next refresh. Returns how many were refreshed.
        """
        done, restarts = 0, 0
        while done < len(slots) and restarts < 2:
            if self._unused is None:
                if time.monotonic() >= until:
                    break
                if self._stream is None:
                    self._stream = iterate_cache(self.dataset, self.shape, self.low, self.high,
                                                 batch=self.batch, skip=self.stream_position)
                batch = next(self._stream, None)
                if batch is None:
                    self._stream, self.stream_position, restarts = None, 0, restarts + 1
                    continue
                positions = self.stream_position + np.arange(len(batch[0]))
                keep = ~np.isin(positions, protected)
                self._unused = (batch[0][keep], batch[1][keep], positions[keep])
                self.stream_position += len(positions)
            x, y, positions = self._unused
            n = min(len(x), len(slots) - done)
            target = slots[done:done + n]
            self.x[target], self.y[target] = x[:n], y[:n]
            self._unused = (x[n:], y[n:], positions[n:]) if n < len(x) else None
            done += n
        return done

    @property
    def next_position(self) -> int:
        """Index in the dataset of the next example streaming will use."""
        return int(self._unused[2][0]) if self._unused is not None else self.stream_position


class TestSetCache:
    """The test examples in dataset order; `map` applies a function chunk by chunk and joins the results."""

    __test__ = False  # not a pytest test class

    def __init__(self, dataset, shape: InputShape, low: float, high: float, cap_bytes: int, chunk: int = 256):
        self.dataset, self.shape, self.low, self.high, self.chunk = dataset, shape, low, high, chunk
        cap = max(1, cap_bytes // example_bytes(shape))
        xs, count = [], 0
        for x, _ in iterate_cache(dataset, shape, low, high, batch=chunk):
            count += len(x)
            if count <= cap:
                xs.append(x)
        self.count = count
        self.x = np.concatenate(xs) if count <= cap and xs else None
        if self.x is None and count:
            log.warning("test set of %d examples is larger than the test cache (%d): decoded again for each "
                        "prediction", count, cap)

    def __len__(self) -> int:
        return self.count

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        if self.x is not None:
            return np.concatenate([fn(self.x[i:i + self.chunk]) for i in range(0, len(self.x), self.chunk)])
        return np.concatenate([fn(x) for x, _ in iterate_cache(self.dataset, self.shape, self.low, self.high,
                                                              batch=self.chunk)])
