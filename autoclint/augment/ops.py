"""The augmentation ops of AutoAugment / Fast AutoAugment, batched, with one magnitude per example.

Every op maps float images x (N, C, H, W) in [0, 1], on any device, and magnitudes m (N,) to images of
the same shape. m is FAA's continuous magnitude in [0, 1] (0: identity or the weakest setting, 1: the
strongest of FAA's ranges); the geometric ops take a signed m in [-1, 1] (the sign is the direction).
The arithmetic is kornia's per-sample batched ops where kornia has the PIL-compatible one, torch where
the op is a single expression; geometric ops are one batched `warp_affine` with PIL's pixel convention
(nearest neighbour, black fill), so that an op here is the PIL op FAA searched with (tests compare both
on real images, tolerances stated there). Ops that only make sense for RGB (Color) leave other channel
counts unchanged, as PIL does for grey images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from kornia.enhance import (adjust_contrast_with_mean_subtraction, adjust_saturation_with_gray_subtraction,
                            equalize, posterize, sharpness)
from kornia.geometry.transform import warp_affine

# FAA's ranges (FastAutoAugment/augmentations.py, augment_list): the magnitude 1 end of each op
SHEAR_MAX = 0.3
TRANSLATE_MAX = 0.45  # of the side
ROTATE_MAX_DEG = 30.0
ENHANCE_MIN, ENHANCE_MAX = 0.1, 1.9  # Contrast / Color / Brightness / Sharpness factors (1 = unchanged)
POSTERIZE_MIN_BITS = 4
CUTOUT_MAX = 0.2  # of the side
CUTOUT_FILL = 0.5  # FAA fills with the CIFAR mean colour (125, 123, 114); mid grey for any channel count


def _per_example(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return m.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def _affine(x: torch.Tensor, output_to_input: torch.Tensor) -> torch.Tensor:
    """Warp by PIL-style coefficients (N, 2, 3): output pixel p reads input pixel A p.

    PIL evaluates A at pixel centres (x + 0.5) and takes the pixel the result falls in; in index
    coordinates (centres at integers, what warp_affine uses) that is A shifted by half a pixel both ways.
    """
    n = x.shape[0]
    a = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
    a[:, :2] = output_to_input.to(torch.float64)
    half = torch.eye(3, dtype=torch.float64)
    half[:2, 2] = 0.5
    back = torch.eye(3, dtype=torch.float64)
    back[:2, 2] = -0.5
    source_to_output = torch.linalg.inv(back @ a @ half)[:, :2]
    return warp_affine(x, source_to_output.to(device=x.device, dtype=x.dtype), dsize=x.shape[-2:],
                       mode="nearest", padding_mode="zeros", align_corners=True)


def _coefficients(n: int) -> torch.Tensor:
    c = torch.zeros(n, 2, 3, dtype=torch.float64)
    c[:, 0, 0] = c[:, 1, 1] = 1
    return c


def shear_x(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    c = _coefficients(len(x))
    c[:, 0, 1] = SHEAR_MAX * m.double().cpu()
    return _affine(x, c)


def shear_y(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    c = _coefficients(len(x))
    c[:, 1, 0] = SHEAR_MAX * m.double().cpu()
    return _affine(x, c)


def translate_x(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    c = _coefficients(len(x))
    c[:, 0, 2] = TRANSLATE_MAX * m.double().cpu() * x.shape[-1]
    return _affine(x, c)


def translate_y(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    c = _coefficients(len(x))
    c[:, 1, 2] = TRANSLATE_MAX * m.double().cpu() * x.shape[-2]
    return _affine(x, c)


def rotate(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Counter-clockwise by ROTATE_MAX_DEG * m about the image centre (PIL's Image.rotate)."""
    h, w = x.shape[-2:]
    angle = -torch.deg2rad(ROTATE_MAX_DEG * m.double().cpu())
    cos, sin = torch.cos(angle), torch.sin(angle)
    cx, cy = w / 2, h / 2
    c = torch.stack([torch.stack([cos, sin, cx - cos * cx - sin * cy], 1),
                     torch.stack([-sin, cos, cy + sin * cx - cos * cy], 1)], 1)
    return _affine(x, c)


def auto_contrast(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Each channel stretched to the full range (PIL ImageOps.autocontrast without cutoff)."""
    low = x.amin(dim=(-2, -1), keepdim=True)
    high = x.amax(dim=(-2, -1), keepdim=True)
    span = high - low
    return torch.where(span > 0, (x - low) / span.clamp_min(1e-12), x)


def invert(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return 1 - x


def equalize_op(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return equalize(x)


def solarize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Pixels at or above the threshold are inverted; threshold 256 * (1 - m) on the 8-bit scale (m = 0:
    no pixel reaches it)."""
    threshold = _per_example(256 * (1 - m), x) / 255
    return torch.where(x >= threshold, 1 - x, x)


def posterize_op(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Keep 8 - 4m high bits (8: unchanged, 4: FAA's harshest)."""
    bits = torch.round(8 - (8 - POSTERIZE_MIN_BITS) * m).long().to(x.device)
    return posterize(x, bits)


def _factor(m: torch.Tensor) -> torch.Tensor:
    return ENHANCE_MIN + (ENHANCE_MAX - ENHANCE_MIN) * m


def contrast(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean grey level (PIL ImageEnhance.Contrast)."""
    return adjust_contrast_with_mean_subtraction(x, _factor(m).to(x.device, x.dtype))


def color(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Blend with the image's grey version (PIL ImageEnhance.Color); other than RGB: unchanged."""
    if x.shape[1] != 3:
        return x
    return adjust_saturation_with_gray_subtraction(x, _factor(m).to(x.device, x.dtype))


def brightness(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Blend with black, i.e. scale (PIL ImageEnhance.Brightness; kornia's adjust_brightness adds)."""
    return (x * _per_example(_factor(m), x)).clamp(0, 1)


def sharpness_op(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Blend with PIL's 3x3 smoothing of the image (ImageEnhance.Sharpness); needs both sides >= 3."""
    if min(x.shape[-2:]) < 3:
        return x
    return sharpness(x, _factor(m).to(x.device, x.dtype))


def cutout(x: torch.Tensor, m: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """A square of side CUTOUT_MAX * m of the shorter side centred at `centres` (N, 2: row, column as shares
    of the side), filled with mid grey."""
    n, _, h, w = x.shape
    side = _per_example(CUTOUT_MAX * m * min(h, w), x).view(n, 1, 1)
    centres = centres.to(device=x.device, dtype=x.dtype)
    cy = centres[:, 0].view(n, 1, 1) * h
    cx = centres[:, 1].view(n, 1, 1) * w
    rows = torch.arange(h, device=x.device).view(1, h, 1) + 0.5
    cols = torch.arange(w, device=x.device).view(1, 1, w) + 0.5
    inside = ((rows - cy).abs() < side / 2) & ((cols - cx).abs() < side / 2)
    return torch.where(inside.unsqueeze(1), torch.full_like(x, CUTOUT_FILL), x)


def flip_lr(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def flip_ud(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return x.flip(-2)


@dataclass(frozen=True)
class Op:
    name: str
    apply: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    signed: bool  # the magnitude's sign is drawn at random (direction of a shear, shift or turn)
    mirrors: bool = False  # changes left/right: only where mirroring keeps the classes
    placed: bool = False  # also takes a position (N, 2) in [0, 1) (Cutout), shared by the frames of a clip


OPS: dict[str, Op] = {op.name: op for op in [
    Op("ShearX", shear_x, signed=True),
    Op("ShearY", shear_y, signed=True),
    Op("TranslateX", translate_x, signed=True),
    Op("TranslateY", translate_y, signed=True),
    Op("Rotate", rotate, signed=True),
    Op("AutoContrast", auto_contrast, signed=False),
    Op("Invert", invert, signed=False),
    Op("Equalize", equalize_op, signed=False),
    Op("Solarize", solarize, signed=False),
    Op("Posterize", posterize_op, signed=False),
    Op("Contrast", contrast, signed=False),
    Op("Color", color, signed=False),
    Op("Brightness", brightness, signed=False),
    Op("Sharpness", sharpness_op, signed=False),
    Op("Cutout", cutout, signed=False, placed=True),
    Op("FlipLR", flip_lr, signed=False, mirrors=True),
    Op("FlipUD", flip_ud, signed=False),
]}


def apply_op(name: str, x: torch.Tensor, m: torch.Tensor, frames: int = 1,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """One op by name on a batch (consecutive groups of `frames` rows are one clip); values stay in [0, 1]."""
    if name not in OPS:
        raise KeyError(f"unknown augmentation op {name!r}; known: {', '.join(OPS)}")
    if len(x) == 0:
        return x
    op = OPS[name]
    if op.placed:
        positions = torch.rand(len(x) // frames, 2, generator=generator).repeat_interleave(frames, 0)
        return op.apply(x, m, positions).clamp(0, 1)
    return op.apply(x, m).clamp(0, 1)

