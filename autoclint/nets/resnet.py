"""ResNet-18 with torchvision's parameter names, so torchvision's ImageNet file loads as is.

Defined here rather than imported: importing torchvision after TensorFlow segfaults when triton is
installed (measured with torch 2.14.1 / TF 2.21), and the official ingestion imports TensorFlow first.
"""
from __future__ import annotations

import hashlib
import logging
import os

import torch
from torch import nn

from autoclint.nets.registry import NetCfg, adapt_input_conv, register_model

log = logging.getLogger(__name__)

RESNET18_FILES = {  # torchvision's file names; the hash prefix in the name is the file's sha256 prefix
    "resnet18-f37072fd.pth": "f37072fd",
    "resnet18-5c106cde.pth": "5c106cde",
}


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18Features(nn.Module):
    def __init__(self, in_chans: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_levels(self, x, levels: int) -> list[torch.Tensor]:
        """The last `levels` layers' maps (layer4's last, as forward's)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        maps = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            maps.append(x)
        return maps[-levels:]


def find_resnet18_weights(weights_dir: str) -> str | None:
    for name in RESNET18_FILES:
        path = os.path.join(weights_dir, name)
        if os.path.isfile(path):
            return path
    return None


def load_torchvision_state(path: str, expected_prefix: str | None) -> dict:
    """torchvision's state dict, checksum-verified against the hash prefix in its file name."""
    if expected_prefix:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if not digest.startswith(expected_prefix):
            raise ValueError(f"{path}: sha256 {digest[:8]}... does not match {expected_prefix}; re-download it")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


@register_model
def resnet18(in_chans: int = 3, weights_dir: str = "", pretrained: bool = True) -> tuple[nn.Module, NetCfg]:
    net = ResNet18Features(3)
    path = find_resnet18_weights(weights_dir) if weights_dir and pretrained else None
    if path:
        state = load_torchvision_state(path, RESNET18_FILES[os.path.basename(path)])
        net.load_state_dict(state)
        log.info("resnet18: ImageNet weights from %s", path)
    elif pretrained:
        log.warning("resnet18: no ImageNet weights in %s (resnet18-f37072fd.pth); RANDOM INIT", weights_dir or "-")
    with torch.no_grad():
        net.conv1.weight = nn.Parameter(adapt_input_conv(net.conv1.weight.data, in_chans))
    net.conv1.in_channels = in_chans
    cfg = NetCfg(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), min_side=32, num_features=512,
                 pretrained=bool(path), level_widths=(64, 128, 256, 512))
    return net, cfg
