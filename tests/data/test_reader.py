"""Reading a dataset handed to the model, eagerly and in TF1 graph mode (a fresh interpreter per mode:
graph mode is process-wide)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from autoclint.data.adapt import InputShape, decode_to_cache, scan
from autoclint.data.dataset import AutoDLDataset
from autoclint.data.reader import count_examples, numpy_batches
from tests.conftest import REPO, shared


def miniciao(subset: str) -> AutoDLDataset:
    return AutoDLDataset(os.path.join(shared("samples", "miniciao", "miniciao.data"), subset))


def test_eager_batches_count_and_restart_at_the_first_element():
    dataset = miniciao("train").get_dataset()
    first = [x for x, _ in numpy_batches(dataset, lambda d: d.batch(10))]
    again = [x for x, _ in numpy_batches(dataset, lambda d: d.batch(10))]
    assert sum(len(x) for x in first) == 82 and np.array_equal(first[0], again[0])
    assert count_examples(dataset) == 82
    assert count_examples(dataset, until=0.0) is None  # the deadline passed before the first batch ended


GRAPH_SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
import tensorflow as tf
tf.compat.v1.disable_v2_behavior()
import numpy as np
from autoclint.data.adapt import InputShape, decode_to_cache, scan
from autoclint.data.dataset import AutoDLDataset
from autoclint.data.reader import count_examples
dataset = AutoDLDataset({path!r}).get_dataset()
assert not tf.executing_eagerly()
try:
    iter(dataset)
    raise SystemExit("a graph-mode dataset was iterable in Python: this test checks nothing")
except RuntimeError:
    pass
s = scan(dataset)
x, y = decode_to_cache(dataset, InputShape(1, 16, 16, 3))
np.save({out!r}, x)
print("OK", count_examples(dataset), s.median, x.shape, int(y.sum()))
"""


def test_graph_mode_reads_the_same_pixels_as_eager_mode(tmp_path):
    path = os.path.join(shared("samples", "miniciao", "miniciao.data"), "train")
    out = str(tmp_path / "graph.npy")
    proc = subprocess.run([sys.executable, "-c", GRAPH_SCRIPT.format(repo=REPO, path=path, out=out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "OK 82 InputShape(frames=1, height=32, width=32, channels=3) (82, 1, 16, 16, 3) 82" in proc.stdout
    eager, _ = decode_to_cache(AutoDLDataset(path).get_dataset(), InputShape(1, 16, 16, 3))
    np.testing.assert_array_equal(np.load(out), eager)


def test_scan_stops_at_its_deadline_but_reads_something():
    dataset = miniciao("train").get_dataset()
    s = scan(dataset, until=0.0)
    assert s.median == InputShape(1, 32, 32, 3) and 0 <= s.low < s.high <= 1
    with pytest.raises(ValueError, match="empty"):
        scan(dataset.take(0))
