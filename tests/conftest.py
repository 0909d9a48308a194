import os
import shutil

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("AUTOCLINT_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))


def shared(*parts: str) -> str:
    path = os.path.join(SHARED_DATA, *parts)
    if not os.path.exists(path):
        pytest.fail(f"real data not found at {path} (set AUTOCLINT_SHARED_DATA to the shared/data folder)")
    return path


def copy_dataset(src: str, dst_root) -> str:
    """A writable copy of a dataset root, for tests that damage it."""
    dst = os.path.join(str(dst_root), os.path.basename(src))
    shutil.copytree(src, dst)
    for dirpath, _, files in os.walk(dst):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return dst


def faces(per_subject: int = 4, subjects: int = 40):
    """Real AT&T face pixels from shared/data/raw (4 per subject there): uint8 (N, 112, 92, 1), indices (N,)."""
    from autoclint.data.convert import load_image
    root = shared("raw", "faces_pgm")
    xs, ys = [], []
    for s in range(subjects):
        folder = os.path.join(root, f"s{s + 1}")
        for name in sorted(os.listdir(folder))[:per_subject]:
            xs.append(load_image(os.path.join(folder, name))[0])
            ys.append(s)
    return np.stack(xs), np.array(ys)


def write_split_dataset(root, name: str, x_train, y_train, x_test, y_test, classes: int,
                        shuffle: bool = True) -> str:
    """An AutoDL dataset from given train and test examples (uint8 -> PNG frames, float -> DENSE).

    x: (N, T, H, W, C) or a list of such clips; y: (N, classes) multi-hot rows (all-zero rows allowed in train);
    shuffle=False keeps the records in the given order.
    """
    from autoclint.data.convert import Collected, Example, write_dataset
    examples = [Example(x, list(np.flatnonzero(y)), "train") for x, y in zip(x_train, y_train)]
    examples += [Example(x, list(np.flatnonzero(y)), "test") for x, y in zip(x_test, y_test)]
    collected = Collected("array", examples, [f"c{i}" for i in range(classes)])
    return write_dataset(collected, str(root), name, shuffle=shuffle)


def one_hot(indices, classes: int) -> np.ndarray:
    out = np.zeros((len(indices), classes), dtype=np.float32)
    out[np.arange(len(indices)), indices] = 1
    return out


@pytest.fixture(scope="session")
def faces_run(tmp_path_factory) -> str:
    """A run folder: `autoclint train` on the real Faces set for 12 s (shared by the CLI and report tests;
    copy it before writing into it)."""
    from autoclint.cli import main
    folder = str(tmp_path_factory.mktemp("runs") / "faces")
    assert main(["train", shared("suite", "Faces"), "--budget", "12", "--out", folder]) == 0
    return folder
