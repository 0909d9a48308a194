"""A small residual CNN trained from scratch (1.2 M parameters): the network `--max-params` leaves when
the pretrained ones are too large, and a point of `autoclint search`'s space (no ImageNet weights exist
for it: its frozen features are random, its fine-tune is training from scratch)."""
from __future__ import annotations

from torch import nn

from autoclint.nets.registry import NetCfg, register_model
from autoclint.nets.resnet import BasicBlock

WIDTHS = (32, 64, 128, 256)  # one residual block per stage, stride 2 from the second: 64 px -> 8 x 8 features


class SmallCNN(nn.Module):
    def __init__(self, in_chans: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, WIDTHS[0], 3, 1, 1, bias=False), nn.BatchNorm2d(WIDTHS[0]),
                                  nn.ReLU(inplace=True))
        blocks, width = [], WIDTHS[0]
        for k, out in enumerate(WIDTHS):
            blocks.append(BasicBlock(width, out, stride=1 if k == 0 else 2))
            width = out
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.blocks(self.stem(x))

    def forward_levels(self, x, levels: int) -> list[torch.Tensor]:
        """The last `levels` stages' maps (the last, as forward's)."""
        x = self.stem(x)
        maps = []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        return maps[-levels:]


@register_model
def small_cnn(in_chans: int = 3, weights_dir: str = "", pretrained: bool = True) -> tuple[nn.Module, NetCfg]:
    net = SmallCNN(in_chans)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net, NetCfg(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), min_side=16, num_features=WIDTHS[-1],
                       pretrained=False, level_widths=WIDTHS)
