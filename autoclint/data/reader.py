"""Iterating a `tf.data.Dataset` as numpy, in either of TensorFlow's modes.

The challenge ran TensorFlow 1.13 in graph mode (protocol trap 33): there a dataset cannot be iterated in
Python, only through an iterator evaluated by a session on the graph the dataset was built in. Today's
TensorFlow gives the same semantics after `tf.compat.v1.disable_v2_behavior()`. Everything that reads a
dataset handed to the model goes through `numpy_batches`, which works both ways.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from autoclint.data.arrays import ArrayDataset

# TensorFlow is imported where a tf.data.Dataset is read, not at the top: the learner also runs on
# ArrayDataset where TensorFlow is absent (a lent GPU).
Transform = Callable[[object], object]  # tf.data.Dataset -> tf.data.Dataset


def _graph_of(dataset):
    import tensorflow as tf
    # A graph-mode dataset records the graph its ops live in; new ops on it must be built in that graph.
    graph = getattr(dataset, "_graph", None)
    return graph if isinstance(graph, tf.Graph) else tf.compat.v1.get_default_graph()


def numpy_batches(dataset, transform: Transform | None = None) -> Iterator:
    """Elements of `transform(dataset)` (a tf.data.Dataset) as numpy (tuples stay tuples), eagerly or
    through a TF1 session.

    The transform (map, batch, take, skip ...) is built here, in the dataset's own graph when in graph
    mode. Each call starts again at the dataset's first element, as a new Python iterator does eagerly.
    """
    import tensorflow as tf
    if tf.executing_eagerly():
        yield from (transform(dataset) if transform else dataset).as_numpy_iterator()
        return
    graph = _graph_of(dataset)
    with graph.as_default():
        element = tf.compat.v1.data.make_one_shot_iterator(transform(dataset) if transform else dataset).get_next()
    with tf.compat.v1.Session(graph=graph) as session:
        while True:
            try:
                yield session.run(element)
            except tf.errors.OutOfRangeError:
                return


def count_examples(dataset, until: float = float("inf")) -> int | None:
    """The number of elements, read without keeping them; None when `until` (time.monotonic) came first."""
    if isinstance(dataset, ArrayDataset):
        return len(dataset)
    total = 0
    for count in numpy_batches(dataset, lambda d: d.map(lambda *element: 1).batch(1024)):
        total += len(count)
        if time.monotonic() > until:
            return None
    return total
