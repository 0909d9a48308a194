"""Augmentation policies as data, and their application to a batch.

A sub-policy is two ops, each with a probability and a magnitude in [0, 1] (ops.py); a policy is a few
sub-policies, one drawn per example (per clip: every frame of a clip gets the same ops and magnitudes).
Policies are saved with a model and shown in the log as text, e.g. "Equalize(p=0.8,m=0.80)+Invert(p=0.1)".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from autoclint.augment.ops import OPS, TRANSLATE_MAX, apply_op


@dataclass(frozen=True)
class OpSpec:
    name: str
    prob: float
    magnitude: float

    def __str__(self) -> str:
        return f"{self.name}(p={self.prob:.2f},m={self.magnitude:.2f})"


@dataclass(frozen=True)
class SubPolicy:
    ops: tuple[OpSpec, ...]

    def __str__(self) -> str:
        return "+".join(str(op) for op in self.ops)


@dataclass(frozen=True)
class Policy:
    subs: tuple[SubPolicy, ...]

    def __str__(self) -> str:
        return " | ".join(str(s) for s in self.subs) if self.subs else "none"

    def to_list(self) -> list:
        return [[[op.name, op.prob, op.magnitude] for op in sub.ops] for sub in self.subs]

    @classmethod
    def from_list(cls, data: list) -> "Policy":
        """From to_list's form (a saved model); unknown ops or values outside [0, 1] raise ValueError."""
        subs = []
        for sub in data:
            ops = []
            for name, prob, magnitude in sub:
                if name not in OPS:
                    raise ValueError(f"unknown augmentation op {name!r}")
                if not (0 <= float(prob) <= 1 and 0 <= float(magnitude) <= 1):
                    raise ValueError(f"{name}: probability and magnitude must lie in [0, 1]")
                ops.append(OpSpec(str(name), float(prob), float(magnitude)))
            subs.append(SubPolicy(tuple(ops)))
        return cls(tuple(subs))


NO_POLICY = Policy(())

# AutoAugment's CIFAR-10 policies as AutoCLINT used them (FAA's archive.autoaug_policy without the three
# CutoutAbs sub-policies): 92 sub-policies of two "op probability level" each, levels 0-10.
_AUTOAUGMENT_CIFAR = """
Invert 0.1 7 Contrast 0.2 6
Rotate 0.7 2 TranslateXAbs 0.3 9
Sharpness 0.8 1 Sharpness 0.9 3
ShearY 0.5 8 TranslateYAbs 0.7 9
AutoContrast 0.5 8 Equalize 0.9 2
Solarize 0.4 5 AutoContrast 0.9 3
TranslateYAbs 0.9 9 TranslateYAbs 0.7 9
AutoContrast 0.9 2 Solarize 0.8 3
Equalize 0.8 8 Invert 0.1 3
TranslateYAbs 0.7 9 AutoContrast 0.9 1
Solarize 0.4 5 AutoContrast 0.0 2
TranslateYAbs 0.7 9 TranslateYAbs 0.7 9
AutoContrast 0.9 0 Solarize 0.4 3
Equalize 0.7 5 Invert 0.1 3
TranslateYAbs 0.7 9 TranslateYAbs 0.7 9
Solarize 0.4 5 AutoContrast 0.9 1
TranslateYAbs 0.8 9 TranslateYAbs 0.9 9
AutoContrast 0.8 0 TranslateYAbs 0.7 9
TranslateYAbs 0.2 7 Color 0.9 6
Equalize 0.7 6 Color 0.4 9
ShearY 0.2 7 Posterize2 0.3 7
Color 0.4 3 Brightness 0.6 7
Sharpness 0.3 9 Brightness 0.7 9
Equalize 0.6 5 Equalize 0.5 1
Contrast 0.6 7 Sharpness 0.6 5
Brightness 0.3 7 AutoContrast 0.5 8
AutoContrast 0.9 4 AutoContrast 0.5 6
Solarize 0.3 5 Equalize 0.6 5
TranslateYAbs 0.2 4 Sharpness 0.3 3
Brightness 0.0 8 Color 0.8 8
Solarize 0.2 6 Color 0.8 6
Solarize 0.2 6 AutoContrast 0.8 1
Solarize 0.4 1 Equalize 0.6 5
Brightness 0.0 0 Solarize 0.5 2
AutoContrast 0.9 5 Brightness 0.5 3
Contrast 0.7 5 Brightness 0.0 2
Solarize 0.2 8 Solarize 0.1 5
Contrast 0.5 1 TranslateYAbs 0.2 9
AutoContrast 0.6 5 TranslateYAbs 0.0 9
AutoContrast 0.9 4 Equalize 0.8 4
Brightness 0.0 7 Equalize 0.4 7
Solarize 0.2 5 Equalize 0.7 5
Equalize 0.6 8 Color 0.6 2
Color 0.3 7 Color 0.2 4
AutoContrast 0.5 2 Solarize 0.7 2
AutoContrast 0.2 0 Equalize 0.1 0
ShearY 0.6 5 Equalize 0.6 5
Brightness 0.9 3 AutoContrast 0.4 1
Equalize 0.8 8 Equalize 0.7 7
Equalize 0.7 7 Solarize 0.5 0
Equalize 0.8 4 TranslateYAbs 0.8 9
TranslateYAbs 0.8 9 TranslateYAbs 0.6 9
TranslateYAbs 0.9 0 TranslateYAbs 0.5 9
AutoContrast 0.5 3 Solarize 0.3 4
Solarize 0.5 3 Equalize 0.4 4
Color 0.7 7 TranslateXAbs 0.5 8
Equalize 0.3 7 AutoContrast 0.4 8
TranslateYAbs 0.4 3 Sharpness 0.2 6
Brightness 0.9 6 Color 0.2 8
Solarize 0.5 2 Invert 0.0 3
AutoContrast 0.1 5 Brightness 0.0 0
Equalize 0.7 7 AutoContrast 0.6 4
Color 0.1 8 ShearY 0.2 3
ShearY 0.4 2 Rotate 0.7 0
ShearY 0.1 3 AutoContrast 0.9 5
Equalize 0.5 0 Solarize 0.6 6
AutoContrast 0.3 5 Rotate 0.2 7
Equalize 0.8 2 Invert 0.4 0
Equalize 0.9 5 Color 0.7 0
Equalize 0.1 1 ShearY 0.1 3
AutoContrast 0.7 3 Equalize 0.7 0
Brightness 0.5 1 Contrast 0.1 7
Contrast 0.1 4 Solarize 0.6 5
Solarize 0.2 3 ShearX 0.0 0
TranslateXAbs 0.3 0 TranslateXAbs 0.6 0
Equalize 0.5 9 TranslateYAbs 0.6 7
ShearX 0.1 0 Sharpness 0.5 1
Equalize 0.8 6 Invert 0.3 6
ShearX 0.4 4 AutoContrast 0.9 2
ShearX 0.0 3 Posterize2 0.0 3
Solarize 0.4 3 Color 0.2 4
Equalize 0.1 4 Equalize 0.7 6
Equalize 0.3 8 AutoContrast 0.4 3
Solarize 0.6 4 AutoContrast 0.7 6
AutoContrast 0.2 9 Brightness 0.4 8
Equalize 0.1 0 Equalize 0.0 6
Equalize 0.8 4 Equalize 0.0 4
Equalize 0.5 5 AutoContrast 0.1 2
Solarize 0.5 5 AutoContrast 0.9 5
AutoContrast 0.6 1 AutoContrast 0.7 8
Equalize 0.2 0 AutoContrast 0.1 2
Equalize 0.6 9 Equalize 0.4 4
"""


def _magnitude(name: str, level: int) -> float:
    """AutoAugment level (0-10) -> FAA magnitude in [0, 1]. Translations were L pixels on 32-pixel CIFAR
    images: here the same share of the side. Posterize2 kept 4 - 0.4L bits: the harshest setting of
    FAA's range (4 bits) stands in for it."""
    if name.endswith("Abs"):
        return min(1.0, level / 32 / TRANSLATE_MAX)
    if name == "Posterize2":
        return 1.0
    return level / 10


def _parse_pool(text: str) -> tuple[SubPolicy, ...]:
    subs = []
    for line in text.strip().splitlines():
        ops = []
        words = line.split()
        for name, prob, level in zip(words[0::3], words[1::3], words[2::3]):
            ops.append(OpSpec(name.replace("Abs", "").replace("Posterize2", "Posterize"), float(prob),
                              _magnitude(name, int(level))))
        subs.append(SubPolicy(tuple(ops)))
    return tuple(subs)


AUTOAUGMENT_CIFAR: tuple[SubPolicy, ...] = _parse_pool(_AUTOAUGMENT_CIFAR)


TRIVIAL_OPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "AutoContrast", "Equalize", "Solarize",
               "Posterize", "Contrast", "Color", "Brightness", "Sharpness")  # TrivialAugment-Wide's ops here
TRIVIAL_LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)  # its uniform magnitude, in 5 bins (torchvision's has 31)


def trivial_augment() -> Policy:
    """TrivialAugment (Muller & Hutter 2021) on this op table: one op per clip, always applied, op and
    magnitude uniform; an identity sub-policy (an op that never fires) as in its op list."""
    subs = [SubPolicy((OpSpec(name, 1.0, level),)) for name in TRIVIAL_OPS for level in TRIVIAL_LEVELS]
    return Policy(tuple(subs) + (SubPolicy((OpSpec("Brightness", 0.0, 0.0),)),))


def random_sub_policy(rng: np.random.Generator, names: list[str], n_ops: int = 2) -> SubPolicy:
    """FAA's continuous space: ops drawn uniformly from `names`, probability and magnitude uniform in [0, 1]."""
    return SubPolicy(tuple(OpSpec(str(rng.choice(names)), float(rng.uniform()), float(rng.uniform()))
                           for _ in range(n_ops)))


def apply_policy(x: torch.Tensor, policy: Policy, frames: int = 1,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """x: float (B * frames, C, H, W) in [0, 1], frames of a clip consecutive. One sub-policy drawn per clip,
    each of its ops applied with its probability; the draws come from `generator` (CPU), so the same
    generator state gives the same draws for every policy of the same shape (the search compares
    candidates on equal terms)."""
    if not policy.subs or len(x) == 0:
        return x
    clips = len(x) // frames
    chosen = torch.randint(len(policy.subs), (clips,), generator=generator)
    x = x.clone()
    for slot in range(max(len(s.ops) for s in policy.subs)):
        fire = torch.rand(clips, generator=generator)
        sign = torch.where(torch.rand(clips, generator=generator) < 0.5, -1.0, 1.0)
        specs = [s.ops[slot] if slot < len(s.ops) else None for s in policy.subs]
        for name in sorted({s.name for s in specs if s is not None}):
            prob = torch.tensor([s.prob if s is not None and s.name == name else 0.0 for s in specs])
            magnitude = torch.tensor([s.magnitude if s is not None and s.name == name else 0.0 for s in specs])
            clip_idx = torch.nonzero(fire < prob[chosen]).flatten()
            if len(clip_idx) == 0:
                continue
            m = magnitude[chosen[clip_idx]]
            if OPS[name].signed:
                m = m * sign[clip_idx]
            rows = (clip_idx.view(-1, 1) * frames + torch.arange(frames).view(1, -1)).flatten().to(x.device)
            x[rows] = apply_op(name, x[rows], m.repeat_interleave(frames), frames, generator)
    return x
