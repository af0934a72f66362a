"""LANet: luminance attentive network for single-image LDR -> HDR (method.md §2, reference-code.md §1).

Origin: Yu et al., "Luminance Attentive Networks for HDR Image and Panorama Reconstruction", CGF 2021; official
TensorFlow code ``LWT3437/LANet`` (``LANet/src/module.py::generator_unet``). Structure:

* encoder: Caffe-style ResNet v1 (:mod:`hdr_core.models.resnet`), skips c1..c5;
* decoder: :class:`~hdr_core.models.layers.UNetDecoder` (e6/e7 bottleneck, IN pre-activation, SkipFuse);
* luminance attention stream from d3 (H/8): a2p = IN(up(relu d3)), a2 = IN(conv(relu a2p)), a1p = IN(up(relu a2))
  @H/2, a1 = conv(relu a1p) -> 2 maps (sigmoid); segmentation head up-conv(relu a1p) -> 3 logits @H,
  classes [over, correct, under];
* LAM: h1 = IN(conv(relu d1)) multiplied by each attention map, concat, h0 = IN(conv(relu)), d0p = IN(up(relu)) @H,
  d0 = conv(relu d0p) (no norm);
* output: ``conv3x3(concat[d0, log(max(lin, 1e-8))]) -> 3`` = **log HDR**, no activation, no bias.

Input: linear RGB mapped to [-1, 1] (``hdr_core.color.to_network_input``). Any size: reflect-padded at the
bottom/right to a multiple of 32 (replicate for tiny inputs) and cropped back. The e6/e7 levels below H/32 need no
extra padding because every decoder upsample resizes to its skip's size (as the reference test code does), so a
``32 * odd`` size works; padding to 128 would waste up to 4x the pixels on small inputs.

Deviation (initialisation only): the final conv starts as the identity on the ``log(linear input)`` channels
(centre tap 1) instead of truncated-normal noise, so an untrained net predicts ``HDR = linear LDR``, which is
already right for the well-exposed pixels of a calibrated pair; this speeds up training from scratch.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from hdr_core.masks import highlight_gain
from hdr_core.models._registry import ModelConfig, register_model
from hdr_core.models.layers import (
    HDRModel,
    HDROutput,
    PreActConv,
    ReplicateConv2d,
    UNetDecoder,
    log_linear_input,
    trunc_normal_,
)
from hdr_core.models.resnet import ResNetEncoder

__all__ = ["LANetConfig", "LANet", "init_log_output_conv"]

#: Inputs are padded to a multiple of the encoder's total stride.
PAD_MULTIPLE = 32


@dataclasses.dataclass
class LANetConfig(ModelConfig):
    """LANet architecture. Defaults = the paper (ResNet-50, decoder 512..64, 1024-ch bottleneck).

    Attributes:
        encoder_layers: bottleneck blocks per ResNet stage.
        encoder_width: ResNet base width (stem channels; stages ``width * (1, 2, 4, 8) * expansion``).
        encoder_expansion: bottleneck expansion.
        decoder_widths: decoder widths C5..C1.
        bottleneck_ch: e6/e7 channels.
        attention_ch: luminance-attention-stream channels.
        head_ch: LAM / last-level channels (h1, h0, d0p, d0).
        num_attention_maps: attention maps (2 in the code; the paper's comment says 3).
        num_classes: segmentation classes (over, correct, under).
        highlight_gain: stops added to the output where the input is saturated
            (:func:`hdr_core.masks.highlight_gain`; beyond the paper, 0 = the paper's output). Not a trained
            weight: set after training by ``scripts/fit_highlight_gain.py``.
    """

    encoder_layers: tuple[int, ...] = (3, 4, 6, 3)
    encoder_width: int = 64
    encoder_expansion: int = 4
    decoder_widths: tuple[int, ...] = (512, 256, 128, 64, 64)
    bottleneck_ch: int = 1024
    attention_ch: int = 64
    head_ch: int = 64
    num_attention_maps: int = 2
    num_classes: int = 3
    highlight_gain: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.encoder_layers) != 4:
            raise ValueError(f"encoder_layers needs 4 stages, got {self.encoder_layers}")
        if len(self.decoder_widths) != 5:
            raise ValueError(f"decoder_widths needs 5 values (C5..C1), got {self.decoder_widths}")


def init_log_output_conv(conv: nn.Conv2d, n_feat: int) -> None:
    """Init the final ``conv3x3(concat[features(n_feat), log_lin(3)]) -> 3``: noise on features, identity on log_lin."""
    with torch.no_grad():
        trunc_normal_(conv.weight)
        conv.weight[:, n_feat:].zero_()
        for c in range(conv.out_channels):
            conv.weight[c, n_feat + c, conv.kernel_size[0] // 2, conv.kernel_size[1] // 2] = 1.0


class LANet(HDRModel):
    """LANet (see the module docstring). ``forward(x)`` with ``x = 2 * linear_rgb - 1``, ``Bx3xHxW``, any size.

    Args:
        config: the architecture; default the paper's.
    """

    pad_multiple = PAD_MULTIPLE  #: the encoder's total stride; forward pads to it, ONNX graphs need it

    def __init__(self, config: LANetConfig | None = None):
        super().__init__()
        cfg = self.config = config or LANetConfig()
        w, a, k, n = cfg.decoder_widths, cfg.attention_ch, cfg.head_ch, cfg.num_attention_maps
        self.encoder = ResNetEncoder(cfg.encoder_layers, cfg.encoder_width, cfg.encoder_expansion)
        self.decoder = UNetDecoder(self.encoder.out_channels, cfg.decoder_widths, cfg.bottleneck_ch)
        # luminance attention stream (branches at d3) and segmentation head
        self.att_up2 = PreActConv(w[2], a, up=True)
        self.att_conv2 = PreActConv(a, a)
        self.att_up1 = PreActConv(a, a, up=True)
        self.att_out = PreActConv(a, n, norm=False)
        self.seg_head = PreActConv(a, cfg.num_classes, up=True, norm=False)
        # luminance attention module and output
        self.lam_in = PreActConv(w[4], k)
        self.lam_out = PreActConv(k * n, k)
        self.up0 = PreActConv(k, k, up=True)
        self.conv0 = PreActConv(k, k, norm=False)
        self.out_conv = ReplicateConv2d(k + 3, 3, 3)
        init_log_output_conv(self.out_conv, k)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Encoder + U-Net decoder on an aligned input: ``[d5, d4, d3, d2, d1]`` (d1: C1 ch @H/2)."""
        return self.decoder(self.encoder(x))

    def forward_head(self, feats: list[Tensor], x: Tensor) -> HDROutput:
        """Attention stream, segmentation head, LAM and the log-HDR output conv."""
        d3, d2, d1 = feats[2], feats[3], feats[4]
        a1p = self.att_up1(self.att_conv2(self.att_up2(d3, size=d2.shape[-2:])), size=d1.shape[-2:])
        att = torch.sigmoid(self.att_out(a1p))
        seg = self.seg_head(a1p, size=x.shape[-2:])
        h = self.lam_in(d1)
        h = self.lam_out(torch.cat([h * att[:, i:i + 1] for i in range(att.shape[1])], dim=1))
        d0 = self.conv0(self.up0(h, size=x.shape[-2:]))
        log_x = log_linear_input(x)
        if log_x.dtype != d0.dtype:  # autocast: the conv would round it to d0's dtype anyway; one cast, not two
            log_x = log_x.to(d0.dtype)
        log_hdr = self.out_conv(torch.cat([d0, log_x], dim=1))
        log_hdr = highlight_gain(log_hdr, (x + 1.0) * 0.5, self.config.highlight_gain)
        return HDROutput(log_hdr=log_hdr, seg_logits=seg, attention=att)


@register_model(LANetConfig())
def lanet(cfg: LANetConfig) -> LANet:
    """Paper LANet: ResNet-50 encoder, decoder (512, 256, 128, 64, 64), 1024-ch bottleneck."""
    return LANet(cfg)


@register_model(LANetConfig(encoder_layers=(2, 2, 2, 2), encoder_width=16, decoder_widths=(128, 64, 48, 32, 16),
                            bottleneck_ch=128, attention_ch=16, head_ch=16))
def lanet_small(cfg: LANetConfig) -> LANet:
    """CPU-trainable LANet: ResNet [2, 2, 2, 2] width 16, decoder (128, 64, 48, 32, 16), bottleneck 128, heads 16.

    The full-resolution convs (d0p, d0) dominate the cost, hence the narrow last level and heads.
    """
    return LANet(cfg)


@register_model(LANetConfig(encoder_layers=(2, 2, 2, 2), encoder_width=24, decoder_widths=(192, 96, 72, 48, 24),
                            bottleneck_ch=192, attention_ch=24, head_ch=24))
def lanet_w24(cfg: LANetConfig) -> LANet:
    """``lanet_small`` at 1.5x every width (encoder width 24): ``panolanet_w24``'s pano branch, and its ablation."""
    return LANet(cfg)
