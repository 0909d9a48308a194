from collections import Counter

import numpy as np
import pytest
import torch

from autoclint.augment.policy import (AUTOAUGMENT_CIFAR, NO_POLICY, OpSpec, Policy, SubPolicy, apply_policy,
                                      random_sub_policy)
from autoclint.augment.ops import OPS
from tests.augment.test_ops import real_images, to_batch


def test_autoaugment_pool_is_autoclints_92():
    assert len(AUTOAUGMENT_CIFAR) == 92 and all(len(s.ops) == 2 for s in AUTOAUGMENT_CIFAR)
    counts = Counter(op.name for s in AUTOAUGMENT_CIFAR for op in s.ops)
    assert counts["Equalize"] == 39 and counts["AutoContrast"] == 34 and counts["TranslateY"] == 22
    assert counts["Posterize"] == 2 and "Cutout" not in counts
    assert all(0 <= op.prob <= 1 and 0 <= op.magnitude <= 1 for s in AUTOAUGMENT_CIFAR for op in s.ops)


def test_policy_round_trips_and_rejects_bad_entries():
    policy = Policy(AUTOAUGMENT_CIFAR[:5])
    assert Policy.from_list(policy.to_list()) == policy
    assert str(NO_POLICY) == "none" and "Invert(p=0.10,m=0.70)" in str(policy)
    with pytest.raises(ValueError, match="Blur"):
        Policy.from_list([[["Blur", 0.5, 0.5], ["Invert", 0.5, 0.5]]])
    with pytest.raises(ValueError, match="Rotate"):
        Policy.from_list([[["Rotate", 1.5, 0.5]]])


def test_same_generator_same_draws_and_probability_zero_changes_nothing():
    x = to_batch(real_images("rgb"))
    policy = Policy(AUTOAUGMENT_CIFAR[:10])
    first = apply_policy(x, policy, generator=torch.Generator().manual_seed(3))
    again = apply_policy(x, policy, generator=torch.Generator().manual_seed(3))
    other = apply_policy(x, policy, generator=torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)
    never = Policy((SubPolicy((OpSpec("Invert", 0.0, 0.5), OpSpec("Rotate", 0.0, 1.0))),))
    assert torch.equal(apply_policy(x, never), x) and torch.equal(apply_policy(x, NO_POLICY), x)
    always = Policy((SubPolicy((OpSpec("Invert", 1.0, 0.5), OpSpec("Invert", 1.0, 0.5))),))
    assert torch.allclose(apply_policy(x, always), x)  # inverted twice


def test_frames_of_a_clip_share_ops_and_magnitudes():
    faces = to_batch(real_images("grey"))
    clips = faces.repeat_interleave(4, 0)  # 3 clips of 4 identical frames
    rng = np.random.default_rng(0)
    policy = Policy(tuple(random_sub_policy(rng, list(OPS)) for _ in range(16)))
    changed = 0
    for seed in range(6):
        out = apply_policy(clips, policy, frames=4, generator=torch.Generator().manual_seed(seed))
        out = out.view(3, 4, *faces.shape[1:])
        assert all(torch.equal(out[c, 0], out[c, f]) for c in range(3) for f in range(1, 4)), seed
        changed += int(not torch.equal(out[:, 0], faces))
    assert changed >= 4  # and the policy did something


def test_trivial_augment_applies_one_uniform_op_a_clip():
    """Every sub-policy is one op that always fires (but the identity), op x magnitude covering the grid, and
    the frames of a clip get the same op."""
    import torch
    from autoclint.augment.policy import TRIVIAL_LEVELS, TRIVIAL_OPS, apply_policy, trivial_augment
    policy = trivial_augment()
    assert len(policy.subs) == len(TRIVIAL_OPS) * len(TRIVIAL_LEVELS) + 1
    assert all(len(s.ops) == 1 for s in policy.subs)
    assert sorted(s.ops[0].prob for s in policy.subs)[:2] == [0.0, 1.0]
    x = torch.rand(64, 1, 3, 16, 16).expand(64, 2, 3, 16, 16).reshape(128, 3, 16, 16)  # clips of 2 equal frames
    y = apply_policy(x, policy, frames=2, generator=torch.Generator().manual_seed(0)).view(64, 2, 3, 16, 16)
    assert torch.allclose(y[:, 0], y[:, 1])  # one op, one magnitude for the whole clip
    changed = (y[:, 0] - x.view(64, 2, 3, 16, 16)[:, 0]).abs().flatten(1).amax(1) > 1e-6
    assert changed.float().mean() > 0.8
