"""Build a 60k-train / 10k-test 28x28 grey dataset (MNIST-sized) from the suite's real Fashion images,
for the memory benchmark: each image reappears shifted by up to 2 pixels, labels kept.

    .venv/bin/python bench/make_large.py            # -> bench/runs/large/Fashion60k (git-ignored)
    .venv/bin/python bench/run.py --suite bench/runs/large --datasets Fashion60k --budget 300 --out bench/results/memory-60k
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from autoclint.data.adapt import InputShape, decode_to_cache  # noqa: E402
from autoclint.data.convert import Collected, Example, write_dataset  # noqa: E402
from autoclint.data.dataset import AutoDLDataset  # noqa: E402
from autoclint.harness.scoring import read_solution  # noqa: E402


def shifted_copies(x: np.ndarray, y: np.ndarray, count: int, rng: np.random.Generator):
    pick = rng.integers(0, len(x), count)
    out = np.empty((count, *x.shape[1:]), np.uint8)
    for i, j in enumerate(pick):
        dy, dx = rng.integers(-2, 3, 2)
        out[i] = np.roll(x[j], (dy, dx), axis=(1, 2))
    return out, y[pick]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default=os.path.join(REPO, "..", "shared", "data", "suite"))
    p.add_argument("--out", default=os.path.join(REPO, "bench", "runs", "large"))
    p.add_argument("--train", type=int, default=60000)
    p.add_argument("--test", type=int, default=10000)
    args = p.parse_args()
    root = os.path.join(args.suite, "Fashion")
    shape = InputShape(1, 28, 28, 1)
    x_train, y_train = decode_to_cache(AutoDLDataset(os.path.join(root, "Fashion.data", "train")).get_dataset(), shape)
    x_test, _ = decode_to_cache(AutoDLDataset(os.path.join(root, "Fashion.data", "test")).get_dataset(), shape)
    y_test = read_solution(os.path.join(root, "Fashion.solution"))
    rng = np.random.default_rng(0)
    xtr, ytr = shifted_copies(x_train, y_train, args.train, rng)
    xte, yte = shifted_copies(x_test, y_test, args.test, rng)
    examples = [Example(x, list(np.flatnonzero(y)), "train") for x, y in zip(xtr, ytr)]
    examples += [Example(x, list(np.flatnonzero(y)), "test") for x, y in zip(xte, yte)]
    names = [str(i) for i in range(y_train.shape[1])]
    path = write_dataset(Collected("array", examples, names), args.out, "Fashion60k", overwrite=True)
    print(f"wrote {path}: {args.train} train, {args.test} test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
