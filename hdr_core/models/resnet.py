"""Caffe-style ResNet v1 bottleneck encoder, as used by LANet/panoLANet (reference-code.md §1.2).

Origin: He et al., "Deep Residual Learning" (2016), in the form of the TensorLayer ``resnet50`` of the official
LANet code (``LANet/src/module.py``), which is *not* the torchvision ``Bottleneck``:

* the stride sits on the first 1x1 conv (v1, not v1.5);
* BN + ReLU follow *every* conv, including conv3 and the projection shortcut;
* there is no ReLU after the residual add (c2..c5 are the raw sums);
* stem: TF ``SYMMETRIC`` pad 3 (mirror including the edge pixel), 7x7/2 conv (no bias), BN, ReLU -> c1 @H/2;
  then a 3x3/2 max pool.

Depth (``layers``) and width (``width``; stage widths ``width * (1, 2, 4, 8)``, expansion 4) are arguments, so a
small variant can be trained from scratch on a CPU. There are no pretrained weights (no torchvision here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["symmetric_pad", "ConvBNReLU", "Bottleneck", "ResNetEncoder"]


def symmetric_pad(x: Tensor, pad: int) -> Tensor:
    """TF ``SYMMETRIC`` padding of the last two dims (mirror *including* the edge pixel); needs ``pad <= size``.

    Slices, ``flip`` and ``cat`` only, so it traces and exports to ONNX with symbolic sizes.
    """
    x = torch.cat([x[..., :pad].flip(-1), x, x[..., -pad:].flip(-1)], dim=-1)
    return torch.cat([x[..., :pad, :].flip(-2), x, x[..., -pad:, :].flip(-2)], dim=-2)


class ConvBNReLU(nn.Sequential):
    """``ReLU(BN(conv(x)))``, no conv bias, zero 'same' padding (slim/TensorLayer default)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 1, stride: int = 1):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class Bottleneck(nn.Module):
    """Caffe-style v1 bottleneck: 1x1/s -> 3x3 -> 1x1 (each BN+ReLU) plus a BN+ReLU projection; no final ReLU."""

    def __init__(self, in_ch: int, width: int, stride: int = 1, expansion: int = 4):
        super().__init__()
        out_ch = width * expansion
        self.conv1 = ConvBNReLU(in_ch, width, 1, stride)
        self.conv2 = ConvBNReLU(width, width, 3)
        self.conv3 = ConvBNReLU(width, out_ch, 1)
        self.shortcut = ConvBNReLU(in_ch, out_ch, 1, stride) if stride != 1 or in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x)


class ResNetEncoder(nn.Module):
    """ResNet v1 trunk returning the five skip tensors ``[c1, c2, c3, c4, c5]`` at strides 2, 4, 8, 16, 32.

    Args:
        layers: bottleneck blocks per stage (ResNet-50: ``(3, 4, 6, 3)``).
        width: base width; stage ``i`` has ``width * 2**i`` inner and ``width * 2**i * expansion`` output channels.
            The stem has ``width`` channels.
        expansion: bottleneck expansion factor.
        in_chans: input channels.
    """

    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), width: int = 64, expansion: int = 4, in_chans: int = 3):
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"ResNetEncoder: layers must be 4 positive block counts, got {layers}")
        self.stem = ConvBNReLU(in_chans, width, 7, 2)
        self.stem[0].padding = (0, 0)  # symmetric pad 3 is applied in forward
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        stages, in_ch = [], width
        for i, n in enumerate(layers):
            w = width * 2**i
            blocks = [Bottleneck(in_ch if b == 0 else w * expansion, w, 2 if (i > 0 and b == 0) else 1, expansion)
                      for b in range(n)]
            stages.append(nn.Sequential(*blocks))
            in_ch = w * expansion
        self.stages = nn.ModuleList(stages)
        #: Channels of c1..c5.
        self.out_channels: tuple[int, ...] = (width,) + tuple(width * 2**i * expansion for i in range(4))
        self.init_weights()

    def init_weights(self) -> None:
        """Kaiming-normal convs (fan-out, ReLU), BN scale 1 / shift 0 (training from scratch)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        padded = symmetric_pad(x, 3) if min(x.shape[-2:]) >= 3 else F.pad(x, (3, 3, 3, 3), mode="replicate")
        c1 = self.stem(padded)
        feats, y = [c1], self.pool(c1)
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        return feats
