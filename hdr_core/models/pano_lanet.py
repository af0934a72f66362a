"""panoLANet: LDR equirectangular panorama -> log HDR panorama (method.md §3, reference-code.md §2).

Origin: Yu et al., CGF 2021, and the official code ``LWT3437/LANet`` (``panoLANet/src/module.py::panoHDR_network``).

* **Panorama branch** (``pano_branch``): ``"lanet"`` = the paper's LANet structure (:class:`LANet`, default, since no
  official weights are ported), or ``"unet"`` = the released code's plain ResNet U-Net (:class:`ResUNet`: no attention,
  512-ch bottleneck, ``d0 = up(relu d1) -> 3``, ``out = SkipFuse(d0, log lin)``). Either returns its d1
  (C1 ch @H/2) as the skip features of the ceiling branch. ``bottleneck_ch=None`` picks 1024 for ``"lanet"`` and
  512 for ``"unet"``, so ``create_model("panolanet", pano_branch="unet")`` is exactly the released network.
* **Ceiling branch**: input ``P2C(x)`` (h x h, the LDR network input warped to the ceiling view); its own ResNet
  encoder (same config; :meth:`PanoLANet.init_ceiling_from_pano` copies the pano encoder, stage-2 init); no encoder
  skips: 4 levels ``IN(up(.))`` + ``IN(conv(relu .))`` from c5 (h/32) to h/2 (the first up has no ReLU before it);
  concat ``P2C(d1)``; d0p = IN(up(relu)) @h; gated conv (pre-activation ReLU; 3x3 conv to 2k, feature * sigmoid(gate));
  conv3x3 -> 3 = log HDR on the ceiling grid (no bias, no activation).
* **Merge (Eq. 7-8, log domain as in the code)**: ``m * C2P(ceiling) + (1 - m) * pano`` with
  ``m = hdr_core.masks.merge_mask(linear LDR, merge_threshold)``.

Input size: ``H x 2H`` with H a multiple of 32 (the azimuth must not be reflect-padded and the ceiling grid is tied to
H), else ``ValueError``; the Predictor resizes panoramas to the working size (e.g. 1024x512 or 512x256).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from hdr_core.masks import highlight_gain, merge_mask
from hdr_core.models._registry import ModelConfig, register_model
from hdr_core.models.lanet import PAD_MULTIPLE, LANet, LANetConfig
from hdr_core.models.layers import (
    GatedConv,
    HDRModel,
    HDROutput,
    PreActConv,
    ReplicateConv2d,
    SkipFuse,
    UNetDecoder,
    log_linear_input,
    trunc_normal_,
)
from hdr_core.models.resnet import ResNetEncoder
from hdr_core.projections import ceiling_to_pano, pano_to_ceiling

__all__ = ["PanoLANetConfig", "PanoLANet", "ResUNet", "CeilingBranch", "PANO_BRANCHES"]

PANO_BRANCHES = ("lanet", "unet")


@dataclasses.dataclass
class PanoLANetConfig(ModelConfig):
    """panoLANet architecture. Defaults = the paper (LANet pano branch, ResNet-50 encoders).

    Attributes:
        pano_branch: ``"lanet"`` (paper) or ``"unet"`` (released code).
        encoder_layers, encoder_width, encoder_expansion: ResNet of both branches.
        decoder_widths: pano decoder widths C5..C1.
        bottleneck_ch: pano e6/e7 channels; ``None`` = 1024 for ``"lanet"``, 512 for ``"unet"``.
        attention_ch, head_ch, num_attention_maps, num_classes: the ``"lanet"`` branch (see :class:`LANetConfig`).
        ceiling_widths: ceiling decoder widths from h/16 to h/2 (d0p uses the last one).
        gate_ch: output channels k of the gated conv (it computes 2k).
        merge_threshold: merge-mask ramp start t (code 0.83; the paper text says 0.13).
        highlight_gain: stops added to the merged output where the input is saturated (:class:`LANetConfig`);
            the panorama branch itself never gets it.
    """

    pano_branch: str = "lanet"
    encoder_layers: tuple[int, ...] = (3, 4, 6, 3)
    encoder_width: int = 64
    encoder_expansion: int = 4
    decoder_widths: tuple[int, ...] = (512, 256, 128, 64, 64)
    bottleneck_ch: int | None = None
    attention_ch: int = 64
    head_ch: int = 64
    num_attention_maps: int = 2
    num_classes: int = 3
    ceiling_widths: tuple[int, ...] = (256, 128, 64, 64)
    gate_ch: int = 32
    merge_threshold: float = 0.83
    highlight_gain: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pano_branch not in PANO_BRANCHES:
            raise ValueError(f"pano_branch must be one of {PANO_BRANCHES}, got {self.pano_branch!r}")
        if len(self.ceiling_widths) != 4:
            raise ValueError(f"ceiling_widths needs 4 values (h/16..h/2), got {self.ceiling_widths}")
        if not 0.0 <= self.merge_threshold < 1.0:
            raise ValueError(f"merge_threshold must be in [0, 1), got {self.merge_threshold}")
        self.pano_config()  # validates the shared fields

    def pano_config(self) -> LANetConfig:
        """The panorama branch's :class:`LANetConfig` (``bottleneck_ch`` resolved)."""
        names = {f.name for f in dataclasses.fields(LANetConfig)}
        kw = {k: v for k, v in self.to_dict().items() if k in names}
        kw["highlight_gain"] = 0.0  # applied once, to the merged output
        if self.bottleneck_ch is None:
            kw["bottleneck_ch"] = 1024 if self.pano_branch == "lanet" else 512
        return LANetConfig.from_dict(kw)


class ResUNet(HDRModel):
    """The released panoLANet panorama branch (``UNet_network``): ResNet U-Net, no attention stream.

    ``d0 = up(relu d1) -> 3`` (no norm), ``log_hdr = SkipFuse(d0, log(lin))``. Any input size (padded like LANet).
    """

    pad_multiple = PAD_MULTIPLE

    def __init__(self, config: LANetConfig | None = None):
        super().__init__()
        cfg = self.config = config or LANetConfig(bottleneck_ch=512)
        self.encoder = ResNetEncoder(cfg.encoder_layers, cfg.encoder_width, cfg.encoder_expansion)
        self.decoder = UNetDecoder(self.encoder.out_channels, cfg.decoder_widths, cfg.bottleneck_ch)
        self.up0 = PreActConv(cfg.decoder_widths[-1], 3, up=True, norm=False)
        self.out_fuse = SkipFuse(3)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Encoder + decoder on an aligned input: ``[d5..d1]``."""
        return self.decoder(self.encoder(x))

    def forward_head(self, feats: list[Tensor], x: Tensor) -> HDROutput:
        return HDROutput(log_hdr=self.out_fuse(self.up0(feats[-1], size=x.shape[-2:]), log_linear_input(x)))


class CeilingBranch(nn.Module):
    """panoLANet's ceiling luminance branch (reference-code.md §2.2), on the ``h x h`` ceiling grid.

    Args:
        config: the panoLANet config (encoder, ``ceiling_widths``, ``gate_ch``).
        skip_ch: channels of the warped pano-decoder features concatenated at h/2.
    """

    def __init__(self, config: PanoLANetConfig, skip_ch: int):
        super().__init__()
        cw = config.ceiling_widths
        self.encoder = ResNetEncoder(config.encoder_layers, config.encoder_width, config.encoder_expansion)
        ins = (self.encoder.out_channels[-1],) + tuple(cw[:-1])
        self.ups = nn.ModuleList(PreActConv(i, w, up=True, act=j > 0) for j, (i, w) in enumerate(zip(ins, cw)))
        self.convs = nn.ModuleList(PreActConv(w, w) for w in cw)
        self.up0 = PreActConv(cw[-1] + skip_ch, cw[-1], up=True)
        self.gate = GatedConv(cw[-1], config.gate_ch)
        self.out_conv = ReplicateConv2d(config.gate_ch, 3, 3)
        trunc_normal_(self.out_conv.weight)

    def forward(self, x_ceil: Tensor, skip_ceil: Tensor) -> Tensor:
        """``x_ceil``: P2C of the network input (Bx3xhxh); ``skip_ceil``: P2C of d1 (h/2). Returns ceiling log HDR."""
        y = self.encoder(x_ceil)[-1]
        for up, conv in zip(self.ups, self.convs):
            y = conv(up(y))
        if skip_ceil.dtype != y.dtype:  # autocast (P2C samples in float32): the next conv rounds it to y's anyway
            skip_ceil = skip_ceil.to(y.dtype)
        y = self.up0(torch.cat([y, skip_ceil], dim=1), size=x_ceil.shape[-2:])
        return self.out_conv(self.gate(y))


class PanoLANet(HDRModel):
    """panoLANet (see the module docstring). ``forward(x)``: ``x = 2 * linear_rgb - 1``, ``Bx3xHx2H``, 32 | H.

    Args:
        config: the architecture; default the paper's.
    """

    def __init__(self, config: PanoLANetConfig | None = None):
        super().__init__()
        cfg = self.config = config or PanoLANetConfig()
        pano_cfg = cfg.pano_config()
        self.pano = LANet(pano_cfg) if cfg.pano_branch == "lanet" else ResUNet(pano_cfg)
        self.ceiling = CeilingBranch(cfg, pano_cfg.decoder_widths[-1])

    @torch.no_grad()
    def init_ceiling_from_pano(self) -> None:
        """Stage-2 init: copy the panorama encoder's weights (and BN statistics) into the ceiling encoder."""
        self.ceiling.encoder.load_state_dict(self.pano.encoder.state_dict())

    @staticmethod
    def check_input(x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``Bx3xHx2H`` with H a positive multiple of 32."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"panoLANet expects a Bx3xHxW tensor, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if w != 2 * h or h % PAD_MULTIPLE:
            raise ValueError(f"panoLANet needs an equirectangular panorama of size H x 2H with H a multiple of "
                             f"{PAD_MULTIPLE}, got {h}x{w} (HxW); resize it first (e.g. to 512x1024 or 256x512)")

    def forward_pano(self, x: Tensor) -> HDROutput:
        """The panorama branch alone on any size (stage-1 training on crops; padded like LANet)."""
        return self.pano(x)

    def forward_features(self, x: Tensor) -> tuple[HDROutput, Tensor]:
        """The panorama branch: its output and its d1 skip features."""
        return self.pano.forward_aligned(x)

    def forward_head(self, pano_out: HDROutput, d1: Tensor, x: Tensor) -> HDROutput:
        """Ceiling branch and merge."""
        ceil_log = self.ceiling(pano_to_ceiling(x), pano_to_ceiling(d1))
        m = merge_mask((x + 1.0) * 0.5, self.config.merge_threshold)
        log_hdr = m * ceiling_to_pano(ceil_log) + (1.0 - m) * pano_out.log_hdr
        log_hdr = highlight_gain(log_hdr, (x + 1.0) * 0.5, self.config.highlight_gain)
        return HDROutput(log_hdr=log_hdr, seg_logits=pano_out.seg_logits, attention=pano_out.attention,
                         merge_mask=m, ceiling_log_hdr=ceil_log, pano_log_hdr=pano_out.log_hdr)

    def forward_aligned(self, x: Tensor):
        raise TypeError("panoLANet has no padded any-size forward: it takes whole 2:1 panoramas (forward) or, for "
                        "its panorama branch alone, any size (forward_pano)")

    def forward(self, x: Tensor) -> HDROutput:
        self.check_input(x)
        pano_out, d1 = self.forward_features(x)
        return self.forward_head(pano_out, d1, x)


@register_model(PanoLANetConfig())
def panolanet(cfg: PanoLANetConfig) -> PanoLANet:
    """Paper panoLANet: LANet pano branch (ResNet-50, 1024-ch bottleneck) + ResNet-50 ceiling branch.

    ``pano_branch="unet"`` gives the released code's network (512-ch bottleneck).
    """
    return PanoLANet(cfg)


@register_model(PanoLANetConfig(encoder_layers=(2, 2, 2, 2), encoder_width=16, decoder_widths=(128, 64, 48, 32, 16),
                                bottleneck_ch=128, attention_ch=16, head_ch=16, ceiling_widths=(64, 48, 32, 16),
                                gate_ch=8))
def panolanet_small(cfg: PanoLANetConfig) -> PanoLANet:
    """CPU-trainable panoLANet: the ``lanet_small`` pano branch and a ceiling branch of the same encoder size."""
    return PanoLANet(cfg)


@register_model(PanoLANetConfig(encoder_layers=(2, 2, 2, 2), encoder_width=24, decoder_widths=(192, 96, 72, 48, 24),
                                bottleneck_ch=192, attention_ch=24, head_ch=24, ceiling_widths=(96, 72, 48, 24),
                                gate_ch=12))
def panolanet_w24(cfg: PanoLANetConfig) -> PanoLANet:
    """``panolanet_small`` at 1.5x every width (encoder width 24; 8.3 M parameters): the shipped default since
    2026-12-04 (docs/models.md, "A larger variant"); the ``lanet_w24`` pano branch and a ceiling branch of its size."""
    return PanoLANet(cfg)
