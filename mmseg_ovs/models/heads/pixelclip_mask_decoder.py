"""PixelCLIP's training-only convolutional "mask decoder" (official ``ConvHead``)."""
import torch
import torch.nn as nn
from mmseg.registry import MODELS


class DoubleConv(nn.Module):
    """[conv3x3 (no bias) -> GroupNorm(C // 16) -> ReLU] x 2; ``double_conv.{0,1,3,4}`` keys."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int = None):
        super().__init__()
        mid_channels = mid_channels or out_channels
        # the official code sizes BOTH GroupNorms with mid_channels (== out_channels in use)
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, 3, padding=1, bias=False),
            nn.GroupNorm(mid_channels // 16, mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(mid_channels // 16, mid_channels),
            nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


@MODELS.register_module()
class PixelCLIPMaskDecoder(nn.Module):
    """Per-cluster cosine map upsampler: (N, 1, h, w) -> (N, 1, 4h, 4w).

    conv3x3(1->64) -> convT2x2/2 (64->64) -> DoubleConv(64, GN 4) -> convT2x2/2 (64->32)
    -> DoubleConv(32, GN 2) -> conv3x3(32->1). 118,145 parameters with the defaults; parameter
    names match the official checkpoint's ``head.*``.

    The convolution weights are kept channels-last (NHWC): on CPU (oneDNN) the decoder's forward +
    backward then takes about 0.6x the time (the 32->1 output convolution about 0.25x), and NHWC is
    the tensor-core layout on GPUs. Values, names and checkpoints are unchanged. Under autocast the
    convolutions run in the autocast dtype (the head computes the BCE in float32).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, mid_channels=(64, 64, 32)):
        super().__init__()
        c0, c1, c2 = mid_channels
        self.conv0 = nn.Conv2d(in_channels, c0, 3, padding=1)
        self.up1 = nn.ConvTranspose2d(c0, c1, 2, stride=2)
        self.conv1 = DoubleConv(c1, c1)
        self.up2 = nn.ConvTranspose2d(c1, c2, 2, stride=2)
        self.conv2 = DoubleConv(c2, c2)
        self.proj = nn.Conv2d(c2, out_channels, 3, padding=1)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv0(x.contiguous(memory_format=torch.channels_last))
        x = self.conv1(self.up1(x))
        x = self.conv2(self.up2(x))
        return self.proj(x)
