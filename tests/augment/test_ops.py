"""Each op against the PIL op Fast AutoAugment searched with, on real photos (RGB) and faces (grey).

Tolerances: geometric ops and the exact ops (Invert, Equalize, Solarize, Posterize, flips) agree pixel for
pixel, except nearest-neighbour ties on a rotation (at most 0.1% of pixels); blends and AutoContrast work
in float where PIL rounds to 8 bits after each op: at most 1.5 levels (of 255) on any pixel.
"""
import glob
import os

import numpy as np
import PIL.Image
import PIL.ImageEnhance as enhance
import PIL.ImageOps as image_ops
import pytest
import torch

from autoclint.augment.ops import OPS, apply_op
from tests.conftest import shared

GEOMETRIC = ["ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"]
EXACT = ["Invert", "Equalize", "Solarize", "Posterize", "FlipLR", "FlipUD"]
ROUNDED = ["AutoContrast", "Contrast", "Color", "Brightness", "Sharpness"]


def real_images(kind: str) -> list[PIL.Image.Image]:
    if kind == "rgb":
        paths = sorted(p for p in glob.glob(os.path.join(shared("raw", "photos"), "*", "*")) if not p.endswith(".md"))
        return [PIL.Image.open(p).convert("RGB").resize((64, 48)) for p in paths[:4]]
    paths = sorted(glob.glob(os.path.join(shared("raw", "faces_pgm"), "s1", "*.pgm")))
    return [PIL.Image.open(p).resize((46, 56)) for p in paths[:3]]


def pil_op(name: str, img: PIL.Image.Image, m: float) -> PIL.Image.Image:
    w, h = img.size
    factor = 0.1 + 1.8 * m
    affine = lambda coefficients: img.transform(img.size, PIL.Image.AFFINE, coefficients)  # noqa: E731
    return {
        "ShearX": lambda: affine((1, 0.3 * m, 0, 0, 1, 0)),
        "ShearY": lambda: affine((1, 0, 0, 0.3 * m, 1, 0)),
        "TranslateX": lambda: affine((1, 0, 0.45 * m * w, 0, 1, 0)),
        "TranslateY": lambda: affine((1, 0, 0, 0, 1, 0.45 * m * h)),
        "Rotate": lambda: img.rotate(30 * m),
        "AutoContrast": lambda: image_ops.autocontrast(img),
        "Invert": lambda: image_ops.invert(img),
        "Equalize": lambda: image_ops.equalize(img),
        "Solarize": lambda: image_ops.solarize(img, 256 * (1 - m)),
        "Posterize": lambda: image_ops.posterize(img, int(round(8 - 4 * m))),
        "Contrast": lambda: enhance.Contrast(img).enhance(factor),
        "Color": lambda: enhance.Color(img).enhance(factor),
        "Brightness": lambda: enhance.Brightness(img).enhance(factor),
        "Sharpness": lambda: enhance.Sharpness(img).enhance(factor),
        "FlipLR": lambda: image_ops.mirror(img),
        "FlipUD": lambda: image_ops.flip(img),
    }[name]()


def to_batch(images) -> torch.Tensor:
    a = np.stack([np.asarray(i) for i in images]).astype(np.float32) / 255
    return torch.from_numpy(a if a.ndim == 4 else a[..., None]).permute(0, 3, 1, 2).contiguous()


def to_levels(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).numpy() * 255


@pytest.mark.parametrize("kind", ["rgb", "grey"])
@pytest.mark.parametrize("name", GEOMETRIC + EXACT + ROUNDED)
def test_op_matches_pil(kind, name):
    images = real_images(kind)
    x = to_batch(images)
    magnitudes = [0.3, 0.8] + ([-0.6] if OPS[name].signed else [])
    for m in magnitudes:
        ours = to_levels(apply_op(name, x, torch.full((len(x),), m)))
        reference = to_levels(to_batch([pil_op(name, img, m) for img in images]))
        diff = np.abs(ours - reference)
        if name in ROUNDED:
            assert diff.max() <= 1.5, (name, m, diff.max())
        else:
            assert np.mean(diff > 0.5) <= 0.001, (name, m, np.mean(diff > 0.5))
        if name not in ("Color",) or kind == "rgb":  # Color leaves grey images alone, as PIL does
            assert np.abs(ours - to_levels(x)).mean() > 0.1, f"{name} m={m} changed nothing"


def test_per_example_magnitudes_match_one_at_a_time():
    x = to_batch(real_images("rgb"))
    for name in GEOMETRIC + ["Solarize", "Posterize", "Contrast", "Brightness", "Sharpness", "Color", "Cutout"]:
        m = torch.tensor([0.0, 0.3, -0.7, 1.0]) if OPS[name].signed else torch.tensor([0.0, 0.3, 0.7, 1.0])
        batched = apply_op(name, x, m)
        if name == "Cutout":  # random centres: only whether a square was cut can be compared
            assert [(batched[i] != x[i]).any().item() for i in range(len(x))] == [False, True, True, True]
            continue
        single = torch.cat([apply_op(name, x[i:i + 1], m[i:i + 1]) for i in range(len(x))])
        assert torch.allclose(batched, single, atol=1e-5), name
        assert torch.equal(batched[0], x[0]) or name in ("Contrast", "Brightness", "Sharpness", "Color"), name


def test_many_channels_and_tiny_images_pass_through_every_op():
    rng = np.random.default_rng(0)
    faces = to_batch(real_images("grey"))
    four = torch.cat([faces, faces.flip(-1), 1 - faces, faces * 0.5], 1)  # 4 channels from real pixels
    tiny = torch.from_numpy(rng.integers(0, 256, (3, 2, 2, 2)).astype(np.float32) / 255)
    for x in (four, tiny):
        for name in OPS:
            out = apply_op(name, x, torch.full((len(x),), 0.7))
            assert out.shape == x.shape and torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1, name


def test_unknown_op_is_named():
    with pytest.raises(KeyError, match="Blur"):
        apply_op("Blur", torch.zeros(1, 3, 8, 8), torch.zeros(1))
