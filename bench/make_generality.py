"""Build the generality suite: real datasets that stress what the shared suite does not (issue 10).

    .venv/bin/python bench/make_generality.py          # -> bench/runs/generality/<Name> (git-ignored)
    .venv/bin/python bench/run.py --suite bench/runs/generality --out bench/results/generality-T300

Every set is cut from ../shared/data (the suite and the raw photos); nothing is synthetic except the
choices of which real examples go where (and, for ShoesLR and the 8x8 / 16x16 sets, a mirror or a resize
of real images). Seeded, so a rebuild gives the same records (`--only` too: Photos draws last from the
shared generator, ShoesLR from its own).

| name | stresses | train / test |
|---|---|---|
| Faces1 | one example per class (40 classes) | 40 / 120 |
| Signs2 | two examples per class (36 classes) | 72 / 719 |
| Cifar5 | five examples per class | 50 / 1000 |
| CatDog4 | 4:1 imbalanced binary colour photos (Cifar cat vs dog) | 500 / 125 |
| Shirt10 | 10:1 imbalanced binary grey (Fashion T-shirt vs shirt) | 550 / 220 |
| Fashion8 | 8x8 grey images, train records sorted by class | 6000 / 2000 |
| Cifar16 | 16x16 colour images | 5000 / 1000 |
| Photos | large variable-size colour photos (600-2400 px crops of 10 camera JPEGs, split by photo) | ~100 / ~60 |
| KthShort | clips of 3 frames, test clips from other sub-sequences than train | 54 / 18 |
| ShoesLR | mirroring changes the class (Fashion shoes as photographed vs mirrored) | 600 / 400 |
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from autoclint.data.adapt import InputShape, decode_to_cache  # noqa: E402
from autoclint.data.convert import Collected, Example, collect_folder, write_dataset  # noqa: E402
from autoclint.data.dataset import AutoDLDataset  # noqa: E402
from autoclint.harness.scoring import read_solution  # noqa: E402

SHARED = os.path.join(REPO, "..", "shared", "data")
NATIVE = {"Faces": InputShape(1, 112, 92, 1), "Signs": InputShape(1, 64, 64, 1), "Cifar": InputShape(1, 32, 32, 3),
          "Fashion": InputShape(1, 28, 28, 1), "Kth": InputShape(40, 60, 80, 1)}


def load(suite: str, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """A suite dataset at its native shape: uint8 (N, T, H, W, C) and multi-hot labels, train and test."""
    root = os.path.join(suite, name)
    shape = NATIVE[name]
    x_train, y_train = decode_to_cache(AutoDLDataset(os.path.join(root, f"{name}.data", "train")).get_dataset(), shape)
    x_test, _ = decode_to_cache(AutoDLDataset(os.path.join(root, f"{name}.data", "test")).get_dataset(), shape)
    y_test = read_solution(os.path.join(root, f"{name}.solution")).astype(np.float32)
    with open(os.path.join(root, f"{name}_label.name"), encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    return x_train, y_train, x_test, y_test, names


def per_class(y: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` seeded examples of every class."""
    labels = y.argmax(1)
    return np.concatenate([rng.permutation(np.flatnonzero(labels == k))[:count] for k in range(y.shape[1])])


def write(out: str, name: str, x_train, y_train, x_test, y_test, names: list[str], sort: bool = False) -> str:
    """sort: train records in class order (the official reader never shuffles: protocol trap 26)."""
    if sort:
        order = np.argsort(y_train.argmax(1), kind="stable")
        x_train, y_train = x_train[order], y_train[order]
    examples = [Example(x, [int(k) for k in np.flatnonzero(y)], "train") for x, y in zip(x_train, y_train)]
    examples += [Example(x, [int(k) for k in np.flatnonzero(y)], "test") for x, y in zip(x_test, y_test)]
    return write_dataset(Collected("array", examples, names), out, name, overwrite=True, shuffle=not sort)


def resize(x: np.ndarray, side: int) -> np.ndarray:
    """Area-averaged resize of uint8 (N, T, H, W, C) images to side x side (PIL's box filter)."""
    from PIL import Image
    out = np.empty((*x.shape[:2], side, side, x.shape[-1]), np.uint8)
    for i, clip in enumerate(x):
        for t, frame in enumerate(clip):
            image = Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame)
            small = np.asarray(image.resize((side, side), Image.BOX))
            out[i, t] = small.reshape(side, side, -1)
    return out


def photo_crops(out: str, rng: np.random.Generator) -> str:
    """Crops of 600-2400 px from the raw camera photos, whole photos assigned to train or test."""
    from PIL import Image, ImageOps
    source = os.path.join(SHARED, "raw", "photos")
    work = tempfile.mkdtemp(prefix="photos-")
    try:
        for label in sorted(os.listdir(source)):
            folder = os.path.join(source, label)
            if not os.path.isdir(folder):
                continue
            photos = sorted(f for f in os.listdir(folder) if f.lower().endswith(".jpg"))
            test_photos = set(rng.permutation(photos)[:max(1, len(photos) // 3)])
            for photo in photos:
                image = ImageOps.exif_transpose(Image.open(os.path.join(folder, photo))).convert("RGB")
                subset = "test" if photo in test_photos else "train"
                os.makedirs(os.path.join(work, subset, label), exist_ok=True)
                for k in range(12):
                    w = int(rng.integers(600, min(2400, image.width) + 1))
                    h = int(np.clip(w * rng.uniform(0.6, 1.4), 400, image.height))
                    left, top = int(rng.integers(0, image.width - w + 1)), int(rng.integers(0, image.height - h + 1))
                    crop = image.crop((left, top, left + w, top + h))
                    crop.save(os.path.join(work, subset, label, f"{photo[:-4]}_{k}.jpg"), quality=90)
        return write_dataset(collect_folder(work), out, "Photos", overwrite=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default=os.path.join(SHARED, "suite"))
    p.add_argument("--out", default=os.path.join(REPO, "bench", "runs", "generality"))
    p.add_argument("--only", nargs="+", default=None, help="build only these sets")
    args = p.parse_args()
    rng = np.random.default_rng(20261128)
    want = set(args.only or ["Faces1", "Signs2", "Cifar5", "CatDog4", "Shirt10", "Fashion8", "Cifar16", "Photos",
                             "KthShort", "ShoesLR"])

    def build(name: str, *arrays) -> None:
        if name in want:
            print("wrote", write(args.out, name, *arrays), flush=True)

    faces = load(args.suite, "Faces")
    pick = per_class(faces[1], 1, rng)
    build("Faces1", faces[0][pick], faces[1][pick], *faces[2:])
    signs = load(args.suite, "Signs")
    pick = per_class(signs[1], 2, rng)
    build("Signs2", signs[0][pick], signs[1][pick], *signs[2:])
    cifar = load(args.suite, "Cifar")
    pick = per_class(cifar[1], 5, rng)
    build("Cifar5", cifar[0][pick], cifar[1][pick], *cifar[2:])

    def binary(x, y, negative: int, positive: int, n_neg: int, n_pos: int):
        labels = y.argmax(1)
        neg = rng.permutation(np.flatnonzero(labels == negative))[:n_neg]
        pos = rng.permutation(np.flatnonzero(labels == positive))[:n_pos]
        idx = rng.permutation(np.concatenate([neg, pos]))
        out = np.zeros((len(idx), 2), np.float32)
        out[np.arange(len(idx)), (labels[idx] == positive).astype(int)] = 1
        return x[idx], out

    names = cifar[4]
    build("CatDog4", *binary(cifar[0], cifar[1], 3, 5, 400, 100), *binary(cifar[2], cifar[3], 3, 5, 100, 25),
          [names[3], names[5]])
    fashion = load(args.suite, "Fashion")
    names = fashion[4]
    build("Shirt10", *binary(fashion[0], fashion[1], 0, 6, 500, 50), *binary(fashion[2], fashion[3], 0, 6, 200, 20),
          [names[0], names[6]])
    if "Fashion8" in want:
        root = write(args.out, "Fashion8", resize(fashion[0], 8), fashion[1], resize(fashion[2], 8), fashion[3],
                     fashion[4], sort=True)
        print("wrote", root, "(train sorted by class)", flush=True)
    build("Cifar16", resize(cifar[0], 16), cifar[1], resize(cifar[2], 16), cifar[3], cifar[4])
    if "Photos" in want:
        print("wrote", photo_crops(args.out, rng), flush=True)
    kth = load(args.suite, "Kth")
    frames = [0, 20, 39]
    build("KthShort", kth[0][:, frames], kth[1], kth[2][:, frames], kth[3], kth[4])

    shoe_rng = np.random.default_rng(20261129)  # its own: `--only ShoesLR` builds the same set

    def shoes(x, y, count: int):
        """Sandals, sneakers and ankle boots (which all face one way in Fashion-MNIST): half mirrored."""
        idx = shoe_rng.permutation(np.flatnonzero(y[:, [5, 7, 9]].sum(1) > 0))[:count]
        mirrored = np.arange(len(idx)) % 2 == 1
        xs = x[idx].copy()
        xs[mirrored] = xs[mirrored][:, :, :, ::-1]
        labels = np.zeros((len(idx), 2), np.float32)
        labels[np.arange(len(idx)), mirrored.astype(int)] = 1
        return xs, labels

    build("ShoesLR", *shoes(fashion[0], fashion[1], 600), *shoes(fashion[2], fashion[3], 400),
          ["as_photographed", "mirrored"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
