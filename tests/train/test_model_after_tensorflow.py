"""The official ingestion imports TensorFlow before model.py: that order must work (with triton
installed, TF then torchvision segfaults) and the Model must train and predict."""
import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO, shared


def test_tensorflow_first_then_model_trains_one_step():
    dataset = shared("samples", "miniciao", "miniciao.data")
    script = textwrap.dedent(f"""
        import tensorflow as tf
        import sys
        sys.path.insert(0, {REPO!r})
        from autoclint.data.dataset import AutoDLDataset
        from model import Model
        train = AutoDLDataset({os.path.join(dataset, "train")!r})
        test = AutoDLDataset({os.path.join(dataset, "test")!r})
        m = Model(train.get_metadata())
        # pixels, frozen features, upsampled frozen features, one fine-tune slice; a loaded machine may
        # read the set over two calls, so the test waits for the slice, not for a count of calls
        for _ in range(8):
            m.train(train.get_dataset(), remaining_time_budget=60)
            p = m.test(test.get_dataset(), remaining_time_budget=60)
            assert p.shape == (18, 10), p.shape
            if m.session.tuner is not None and m.session.tuner.steps > 0:
                break
        assert m.session.tuner.steps > 0, "no fine-tune step ran"
        print("OK", m.session.tuner.steps)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "OK" in proc.stdout
