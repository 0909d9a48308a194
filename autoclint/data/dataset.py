"""`AutoDLDataset`: the official data API on `tf.data` (AutoDL protocol, section 3).

Elements are `(example float32 (T, H, W, C), labels float32 (output_dim,))`. COMPRESSED frames are
decoded to [0, 1]; DENSE values are returned as stored; test labels are all zero.
"""
from __future__ import annotations

import glob
import os

import numpy as np
import tensorflow as tf

from autoclint.data.metadata import AutoDLMetadata
from autoclint.errors import AutoclintError


def find_record_files(dataset_name: str) -> list[str]:
    """The `sample*` files of a subset, sorted (the official reader used unsorted glob order)."""
    files = sorted(glob.glob(os.path.join(dataset_name, "sample*")))
    if not files:
        raise AutoclintError(f"{dataset_name}: no record file named sample* in this folder.")
    return files


def _label_vector(ctx, output_dim: int):
    index = ctx["label_index"].values
    score = ctx["label_score"].values
    # A scatter of label_score at label_index, not a one-hot of label_index: legacy "labels erased"
    # test records keep the true index with score 0 and must read as all-zero (protocol trap 19).
    n = tf.minimum(tf.size(index), tf.size(score))
    return tf.tensor_scatter_nd_update(
        tf.zeros([output_dim], tf.float32), tf.expand_dims(index[:n], 1), score[:n])


def make_parser(metadata: AutoDLMetadata):
    """A function mapping one serialized SequenceExample to `(example, labels)`."""
    output_dim = metadata.get_output_size()
    row_count, col_count = metadata.get_matrix_size()
    channels = metadata.get_num_channels()
    sequence_size = metadata.get_sequence_size()
    context_spec = {"label_index": tf.io.VarLenFeature(tf.int64), "label_score": tf.io.VarLenFeature(tf.float32)}

    if metadata.is_compressed():
        sequence_spec = {"0_compressed": tf.io.VarLenFeature(tf.string)}

        def decode_frame(data):
            image = tf.io.decode_image(data, channels=channels, expand_animations=False)
            return tf.ensure_shape(image, [None, None, channels])

        def example_fn(seq):
            frames = tf.map_fn(decode_frame, seq["0_compressed"].values,
                               fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8))
            return tf.cast(frames, tf.float32) / 255.0
    elif metadata.is_sparse():
        sequence_spec = {k: tf.io.VarLenFeature(tf.int64)
                         for k in ("0_sparse_row_index", "0_sparse_col_index", "0_sparse_channel_index")}
        sequence_spec["0_sparse_value"] = tf.io.VarLenFeature(tf.float32)

        def example_fn(seq):
            # v20191204: tabular (col_count > channels) -> (1, nnz, 2, 1) of (col, value); text -> (nnz, 1, 1, 1).
            if col_count > channels:
                cols = tf.cast(seq["0_sparse_col_index"].values, tf.float32)
                pairs = tf.stack([cols, seq["0_sparse_value"].values], axis=1)
                return tf.reshape(pairs, [1, -1, 2, 1])
            return tf.reshape(tf.cast(seq["0_sparse_channel_index"].values, tf.float32), [-1, 1, 1, 1])
    else:
        if row_count <= 0 or col_count <= 0:
            raise AutoclintError(
                f"{metadata.get_dataset_name()}/metadata.textproto: DENSE records need positive row_count and "
                f"col_count (got {row_count}, {col_count}).")
        frame_len = row_count * col_count * channels
        sequence_spec = {"0_dense_input": tf.io.FixedLenSequenceFeature([frame_len], tf.float32)}
        shape = [sequence_size if sequence_size > 0 else -1, row_count, col_count, channels]

        def example_fn(seq):
            return tf.reshape(seq["0_dense_input"], shape)

    def parse(serialized):
        ctx, seq = tf.io.parse_single_sequence_example(serialized, context_spec, sequence_spec)
        return example_fn(seq), _label_vector(ctx, output_dim)

    return parse


class AutoDLDataset:
    """Same methods and semantics as the official `dataset.AutoDLDataset`."""

    def __init__(self, dataset_name: str, num_parallel_readers: int = 3):
        self.dataset_name_ = dataset_name
        self.num_parallel_readers = num_parallel_readers
        self.metadata_ = AutoDLMetadata(dataset_name)
        self.files_ = find_record_files(dataset_name)
        self.dataset_ = None

    def get_dataset(self):
        """The same unshuffled, unbatched `tf.data.Dataset` on every call."""
        if self.dataset_ is None:
            files = tf.data.Dataset.from_tensor_slices(self.files_)
            records = files.interleave(tf.data.TFRecordDataset, cycle_length=self.num_parallel_readers,
                                       block_length=1)
            self.dataset_ = records.map(make_parser(self.metadata_), num_parallel_calls=tf.data.AUTOTUNE,
                                        deterministic=True)
        return self.dataset_

    def get_metadata(self) -> AutoDLMetadata:
        return self.metadata_

    def get_class_labels(self) -> list[str]:
        by_index = {v: k for k, v in self.metadata_.get_label_to_index_map().items()}
        return [by_index.get(i, str(i)) for i in range(self.metadata_.get_output_size())]

    def get_nth_element(self, num: int):
        for example, labels in self.get_dataset().skip(num).take(1):
            return example.numpy(), labels.numpy()
        raise IndexError(f"{self.dataset_name_}: no element {num}")

    def show_image(self, num: int):
        import matplotlib.pyplot as plt
        example, _ = self.get_nth_element(num)
        plt.imshow(np.squeeze(example[0]))
        plt.show()


def check_records(dataset_name: str) -> int:
    """Read and decode every record of a subset once; return the count or raise AutoclintError.

    The official reader fails deep inside the model's own loop on a bad record; the harness calls
    this before the clock starts so that a corrupt file is named in one sentence instead.
    """
    metadata = AutoDLMetadata(dataset_name)
    parse = make_parser(metadata)
    total = 0
    for path in find_record_files(dataset_name):
        frames = tf.data.TFRecordDataset(path).map(
            lambda r: tf.shape(parse(r)[0])[0], num_parallel_calls=tf.data.AUTOTUNE).batch(4096)
        try:
            counts = np.concatenate([c.numpy() for c in frames] or [np.zeros(0, np.int32)])
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, ValueError):
            _locate_bad_record(path, parse)  # raises, naming the record
            raise
        if metadata.is_compressed() and (counts == 0).any():
            raise AutoclintError(f"{path}: record {int(np.argmax(counts == 0))} holds no frame.")
        total += len(counts)
    if total != metadata.size():
        raise AutoclintError(f"{dataset_name}/metadata.textproto: sample_count is {metadata.size()} but the "
                             f"sample* files hold {total} records; fix sample_count.")
    return total


def _locate_bad_record(path: str, parse) -> None:
    """Slow per-record pass, run only after the fast pass failed, to name the bad record."""
    raw = iter(tf.data.TFRecordDataset(path))
    k = 0
    while True:
        try:
            serialized = next(raw)
        except StopIteration:
            return
        except tf.errors.DataLossError:
            raise AutoclintError(f"{path}: record {k} is truncated or corrupt (bad length or CRC); "
                                 f"rebuild the dataset, e.g. with `autoclint convert`.") from None
        try:
            parse(serialized)
        except (tf.errors.InvalidArgumentError, ValueError) as e:
            reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise AutoclintError(f"{path}: record {k} cannot be parsed or decoded ({reason}).") from None
        k += 1
