"""HDRCNN: single-exposure HDR reconstruction of saturated regions (reference-code.md §3.1, method.md §5).

Origin: Eilertsen, Kronander, Denes, Mantiuk, Unger, "HDR image reconstruction from a single exposure using deep
CNNs", SIGGRAPH Asia 2017; official TensorFlow/TensorLayer code ``gabrieleilertsen/hdrcnn`` (``network.py``,
``hdrcnn_predict.py``, ``training_code/hdrcnn_train.py``). Written here from the paper and the facts collected in
the docs; no code was copied.

Network (:class:`HDRCNNNet`), on an image ``v`` in [0, 1]:

* encoder: VGG16 conv blocks (2, 2, 3, 3, 3 convs of 64, 128, 256, 512, 512 channels; 3x3, bias, ReLU; 2x2 max
  pool after each block) on ``255 * v`` in BGR order minus the VGG mean, as the official code feeds it. The skips are
  the block outputs before pooling (H .. H/16) and the input itself;
* bottleneck: conv3x3 + BN + ReLU at H/32;
* decoder: 5 x [transposed conv 4x4 / 2 (bilinear init) + BN + activation, then fuse the encoder skip of that size]
  (channels 512, 512, 256, 128, 64), then conv1x1 -> 3 + BN + activation, fused with the input skip. Every fusion
  is ``conv1x1(concat[decoder, T(skip)])`` initialised to addition (:class:`~hdr_core.models.layers.SkipFuse`);
* skip domain transform ``T`` (``skip_transform``): ``"log"`` (HDRCNN) ``T(s) = log((s / 255)^2 + 1/255)``, i.e. the
  LDR encoder features mapped to the log-HDR decoder under a gamma-2 camera assumption; ``"linear"`` ``T(s) = s / 255``
  (SingleHDR's modified copy, used as its hallucination net);
* ``upsample="nearest"`` replaces each transposed conv by SingleHDR's nearest x2 + reflect pad + conv3x3 (ReLU) + BN.

The output ``y_hat`` estimates ``log(H + 1/255)`` of the saturated regions. :class:`HDRCNN` blends it with the
input (``get_final``): ``d = linear_to_srgb((x + 1) / 2)`` are the display values,
``alpha = clamp((max_c d - 0.95) / 0.05, 0, 1)``, ``H = (1 - alpha) d^2 + alpha (exp(y_hat) - 1/255)``: the linear part
is ``d^2`` (gamma 2, *not* sRGB), so every pixel whose channels are all <= 0.95 is exactly ``d^2``.
``log_hdr = log(max(H, 1e-8))``. ``H`` is in the camera's linear units (1 = the LDR's white point), so the target of
the loss is ``batch["hdr_camera"]`` (see :mod:`hdr_core.data.pairs`), not the LANet-calibrated ``batch["hdr"]``.

Gamma trick (``gamma_trick=True``, eval mode only): ``H = f(d^(1/g))^g`` with ``g = gamma`` (README: 1.1-1.3), i.e.
the whole prediction-and-blend ``f`` is run on ``d^(1/g)`` and raised to ``g`` (``log_hdr = g * log f``). It boosts
the highlights, which the network tends to underestimate. (:meth:`hdr_core.predict.Predictor.predict` has a similar
``exposure_boost`` on the *linear* input for every model; use one or the other.)

Loss (:func:`illumination_reflectance_loss`, ``training_code/hdrcnn_train.py``): in the log domain on the raw
``y_hat`` (``out.aux["log_pred"]``), masked by ``alpha`` of the *target* (max channel of ``hdr_camera`` over 0.95).
Illumination = 13x13 Gaussian (sigma range 2, zero padding) of the log luminance (weights 0.213, 0.715, 0.072) of
``exp(y_hat)`` (the prediction) and of ``target + 1/255``; reflectance = log colour - illumination;
``mean((0.5 (I - I_gt)^2 + 0.5 (R - R_gt)^2) * mask)``.

Deviations from the official code:

* no pretrained VGG16 (Places365) weights and no pre-training on simulated Places HDR data: Kaiming-normal encoder
  convs, trained from scratch;
* the decoder activation is a leaky ReLU with slope ``leaky_slope``; the default 0.0 is what the released code runs
  (its "leaky_relu" layers have alpha 0.0, i.e. a ReLU); set e.g. 0.2 for a true leaky ReLU;
* the input is reflect-padded at the bottom/right to a multiple of 32 and cropped back (the official code resizes to
  multiples of 32);
* ``exp(y_hat)`` is computed from ``min(y_hat, 30)`` so that ``0 * exp`` can never be NaN; irrelevant in practice;
* ``_small``: the same network with widths (12, 24, 48, 96, 192), about the compute of ``lanet_small``.

Size (FlopCounterMode, 1x3x512x1024, eval; FLOPs = 2 x multiply-adds):

=================  ==========  =================
variant            parameters  GFLOPs @1024x512
=================  ==========  =================
``hdrcnn``         29.44 M     484.4
``hdrcnn_small``   2.51 M      21.3
``lanet_small``    2.41 M      18.1 (reference)
=================  ==========  =================
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hdr_core.color import linear_to_srgb
from hdr_core.models._registry import ModelConfig, register_model
from hdr_core.models.layers import HDRModel, HDROutput, SkipFuse, trunc_normal_

__all__ = ["HDRCNNConfig", "HDRCNNNet", "HDRCNN", "VGGEncoder", "UpBlock", "highlight_mask", "gaussian_kernel_1d",
           "log_luminance", "illumination_reflectance_loss", "skip_transform"]

#: VGG16 (Caffe) channel means, BGR order, on 0..255 inputs.
VGG_MEAN_BGR = (103.939, 116.779, 123.68)
#: The official ``eps`` (log offset of the output and the loss) and the blend ramp width.
EPS = 1.0 / 255.0
BLEND_THRESHOLD = 0.05
#: Luminance weights of the official loss.
LUM_WEIGHTS = (0.213, 0.715, 0.072)
#: ``y_hat`` is clamped to this before ``exp`` in the blend (exp(30) ~ 1e13, far beyond any real highlight).
MAX_LOG = 30.0
#: Inputs are padded to a multiple of the encoder's total stride.
PAD_MULTIPLE = 32


def highlight_mask(img: Tensor, threshold: float = BLEND_THRESHOLD) -> Tensor:
    """``clamp((max_c img - (1 - threshold)) / threshold, 0, 1)``, ``Bx1xHxW``: 0 where every channel <= 1 - t."""
    m = img.amax(dim=1, keepdim=True)
    return ((m - (1.0 - threshold)) / threshold).clamp(0.0, 1.0)


def skip_transform(s: Tensor, mode: str) -> Tensor:
    """Map encoder features (0..255 scale) to the decoder's domain: ``"log"`` or ``"linear"`` (see module doc)."""
    if mode == "log":
        return torch.log(torch.square(s * (1.0 / 255.0)) + EPS)
    return s * (1.0 / 255.0)


def gaussian_kernel_1d(size: int = 13, nsig: float = 2.0) -> Tensor:
    """The 1-D factor of the official 13x13 illumination kernel.

    The official 2-D kernel is ``sqrt(outer(k, k))`` normalised, with ``k`` the normal probability mass of ``size``
    bins spanning +-(nsig + half a bin); that is ``outer(s, s)`` with ``s = sqrt(k) / sum(sqrt(k))``, so the blur is
    separable.
    """
    interval = (2 * nsig + 1.0) / size
    edges = [-nsig - interval / 2 + i * (2 * nsig + interval) / size for i in range(size + 1)]
    cdf = [0.5 * (1.0 + math.erf(e / math.sqrt(2.0))) for e in edges]
    s = torch.tensor([math.sqrt(b - a) for a, b in zip(cdf[:-1], cdf[1:])], dtype=torch.float64)
    return (s / s.sum()).float()


def _blur(x: Tensor, k1d: Tensor) -> Tensor:
    """Separable blur of a ``Bx1xHxW`` map with zero 'same' padding (TF ``conv2d(..., 'SAME')``)."""
    n = k1d.numel()
    k = k1d.to(x)
    x = F.conv2d(x, k.view(1, 1, n, 1), padding=(n // 2, 0))
    return F.conv2d(x, k.view(1, 1, 1, n), padding=(0, n // 2))


def log_luminance(log_rgb: Tensor) -> Tensor:
    """``log(sum_c w_c exp(log_rgb_c))`` (``Bx1xHxW``) with the loss's weights, computed stably (logsumexp)."""
    w = torch.tensor(LUM_WEIGHTS, dtype=log_rgb.dtype, device=log_rgb.device).log().view(1, 3, 1, 1)
    return torch.logsumexp(log_rgb + w, dim=1, keepdim=True)


def illumination_reflectance_loss(log_pred: Tensor, target: Tensor, mask: Tensor, lambda_ir: float = 0.5,
                                  kernel: Tensor | None = None) -> Tensor:
    """HDRCNN's masked illumination + reflectance loss (``hdrcnn_train.py``, ``sep_loss``).

    Args:
        log_pred: the network's raw output ``y_hat`` = log(HDR + 1/255), ``Bx3xHxW``.
        target: linear HDR target in the prediction's units, ``Bx3xHxW``.
        mask: ``Bx1xHxW`` weights (the target's highlight mask).
        lambda_ir: weight of the illumination term (1 - lambda for reflectance).
        kernel: 1-D blur factor (default :func:`gaussian_kernel_1d`).

    Returns:
        The scalar loss, averaged over batch, pixels and the 3 channels like the official ``reduce_mean``.
    """
    k = gaussian_kernel_1d() if kernel is None else kernel
    t = target.clamp_min(0.0)
    log_t = torch.log(t + EPS)
    lum_w = torch.tensor(LUM_WEIGHTS, dtype=t.dtype, device=t.device).view(1, 3, 1, 1)
    ill_t = _blur(torch.log((t * lum_w).sum(1, keepdim=True) + EPS), k)
    # lum(exp(y) - eps) + eps == lum(exp(y)) since the weights sum to 1
    ill_p = _blur(log_luminance(log_pred), k)
    refl_t, refl_p = log_t - ill_t, log_pred - ill_p
    per_px = lambda_ir * torch.square(ill_p - ill_t) + (1.0 - lambda_ir) * torch.square(refl_p - refl_t)
    return (per_px * mask).mean()


@dataclasses.dataclass
class HDRCNNConfig(ModelConfig):
    """HDRCNN architecture and options. Defaults = the paper / official code.

    Attributes:
        widths: VGG16 block widths (also the decoder widths, which mirror them).
        depths: convs per VGG block.
        skip_transform: ``"log"`` (HDRCNN) or ``"linear"`` (SingleHDR's hallucination net).
        upsample: ``"deconv"`` (transposed conv 4x4/2, HDRCNN) or ``"nearest"`` (nearest x2 + conv3x3, SingleHDR).
        leaky_slope: negative slope of the decoder activations (0.0 = the released code).
        lambda_ir: illumination weight of the loss (reflectance: 1 - lambda_ir).
        gamma_trick: apply the gamma trick ``f(d^(1/g))^g`` at inference (eval mode).
        gamma: ``g`` of the gamma trick.
    """

    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    depths: tuple[int, ...] = (2, 2, 3, 3, 3)
    skip_transform: str = "log"
    upsample: str = "deconv"
    leaky_slope: float = 0.0
    lambda_ir: float = 0.5
    gamma_trick: bool = False
    gamma: float = 1.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.widths) != 5 or len(self.depths) != 5 or min(self.depths) < 1:
            raise ValueError(f"HDRCNN needs 5 VGG blocks, got widths {self.widths}, depths {self.depths}")
        if self.skip_transform not in ("log", "linear"):
            raise ValueError(f"skip_transform must be 'log' or 'linear', got {self.skip_transform!r}")
        if self.upsample not in ("deconv", "nearest"):
            raise ValueError(f"upsample must be 'deconv' or 'nearest', got {self.upsample!r}")
        if self.gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")


def _bilinear_deconv_init(w: Tensor) -> None:
    """Transposed-conv weight ``in x out x k x k``: a bilinear upsampling kernel on the channel diagonal, else 0."""
    k = w.shape[-1]
    f = (k + 1) // 2
    c = f - 1 if k % 2 == 1 else f - 0.5
    r = torch.arange(k, dtype=w.dtype)
    filt = (1 - (r - c).abs() / f)
    filt = filt[:, None] * filt[None, :]
    with torch.no_grad():
        w.zero_()
        for i in range(min(w.shape[0], w.shape[1])):
            w[i, i] = filt


class VGGEncoder(nn.Module):
    """VGG16 conv blocks (3x3 conv + bias + ReLU, zero 'same' padding; 2x2 max pool after each block).

    ``forward`` returns ``(pool5, [b1, ..., b5])`` with ``b_i`` the output of block ``i`` before its pool (stride
    ``2^(i-1)``).
    """

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512, 512), depths: tuple[int, ...] = (2, 2, 3, 3, 3),
                 in_chans: int = 3):
        super().__init__()
        blocks, c = [], in_chans
        for w, n in zip(widths, depths):
            layers = []
            for _ in range(n):
                layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(inplace=True)]
                c = w
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = tuple(widths)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        skips = []
        for block in self.blocks:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        return x, skips


class UpBlock(nn.Module):
    """x2 upsampling unit of the decoder: ``act(BN(deconv4x4/2(x)))`` or ``act(BN(ReLU(conv3x3(nearest x2))))``."""

    def __init__(self, in_ch: int, out_ch: int, mode: str = "deconv", slope: float = 0.0):
        super().__init__()
        self.mode, self.slope = mode, slope
        if mode == "deconv":
            self.conv = nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=False)
            _bilinear_deconv_init(self.conv.weight)
        else:
            self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, padding_mode="reflect")
            trunc_normal_(self.conv.weight)
            nn.init.zeros_(self.conv.bias)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "deconv":
            y = self.conv(x)
        else:
            y = F.relu(self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest")))
        return F.leaky_relu(self.bn(y), self.slope)


class HDRCNNNet(nn.Module):
    """The HDRCNN auto-encoder (see the module docstring): image in [0, 1] -> ``y_hat`` (``Bx3xHxW``).

    Sides must be multiples of 32. With ``skip_transform="log"`` ``y_hat`` is log(HDR + 1/255); with ``"linear"`` a
    linear quantity (SingleHDR uses ``ReLU(y_hat)`` as the highlight residual).
    """

    def __init__(self, config: HDRCNNConfig):
        super().__init__()
        self.skip_mode = config.skip_transform
        w = config.widths
        self.register_buffer("mean_bgr", torch.tensor(VGG_MEAN_BGR).view(1, 3, 1, 1), persistent=False)
        self.encoder = VGGEncoder(w, config.depths)
        self.bottleneck = nn.Conv2d(w[4], w[4], 3, padding=1)
        trunc_normal_(self.bottleneck.weight)
        nn.init.zeros_(self.bottleneck.bias)
        self.bottleneck_bn = nn.BatchNorm2d(w[4])
        ins, outs = (w[4], w[4], w[3], w[2], w[1]), (w[4], w[3], w[2], w[1], w[0])
        self.ups = nn.ModuleList(UpBlock(i, o, config.upsample, config.leaky_slope) for i, o in zip(ins, outs))
        self.fuse = nn.ModuleList(SkipFuse(o) for o in outs)
        self.out_conv = nn.Conv2d(w[0], 3, 1)
        nn.init.xavier_normal_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)
        self.out_bn = nn.BatchNorm2d(3)
        self.out_fuse = SkipFuse(3)
        self.slope = config.leaky_slope

    def forward(self, img: Tensor) -> Tensor:
        x255 = img * 255.0
        bgr = torch.cat([x255[:, 2:3], x255[:, 1:2], x255[:, 0:1]], dim=1) - self.mean_bgr
        y, skips = self.encoder(bgr)
        y = F.relu(self.bottleneck_bn(self.bottleneck(y)))
        for up, fuse, s in zip(self.ups, self.fuse, skips[::-1]):
            y = fuse(up(y), skip_transform(s, self.skip_mode))
        y = F.leaky_relu(self.out_bn(self.out_conv(y)), self.slope)
        return self.out_fuse(y, skip_transform(x255, self.skip_mode))


class HDRCNN(HDRModel):
    """HDRCNN (see the module docstring). ``forward(x)`` with ``x = 2 * linear_rgb - 1``, ``Bx3xHxW``, any size.

    ``out.aux``: ``"log_pred"`` = the raw ``y_hat`` (what the loss sees), ``"alpha"`` = the blend mask (``Bx1xHxW``).

    Args:
        config: the architecture; default the paper's.
    """

    pad_multiple = PAD_MULTIPLE  #: the encoder's total stride; forward pads to it, ONNX graphs need it

    def __init__(self, config: HDRCNNConfig | None = None):
        super().__init__()
        self.config = config or HDRCNNConfig()
        self.net = HDRCNNNet(self.config)
        self.register_buffer("blur_kernel", gaussian_kernel_1d(), persistent=False)

    def blend(self, d: Tensor, log_pred: Tensor) -> tuple[Tensor, Tensor]:
        """``get_final``: ``(1 - alpha) d^2 + alpha (exp(y_hat) - 1/255)`` and ``alpha``."""
        alpha = highlight_mask(d)
        pred = torch.exp(log_pred.clamp(max=MAX_LOG)) - EPS
        return (1.0 - alpha) * (d * d) + alpha * pred, alpha

    def forward_aligned(self, x: Tensor) -> tuple[HDROutput, None]:
        """Forward on an input whose sides are multiples of 32 (ONNX export entry point)."""
        d = linear_to_srgb((x + 1.0) * 0.5)
        g = self.config.gamma if (self.config.gamma_trick and not self.training) else 1.0
        if g != 1.0:
            d = d.clamp_min(1e-8) ** (1.0 / g)
        log_pred = self.net(d)
        hdr, alpha = self.blend(d, log_pred)
        log_hdr = torch.log(hdr.clamp_min(1e-8))
        if g != 1.0:
            log_hdr = g * log_hdr
        return HDROutput(log_hdr=log_hdr, aux={"log_pred": log_pred, "alpha": alpha}), None

    def training_loss(self, out: HDROutput, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """The official masked illumination + reflectance loss against ``batch["hdr_camera"]`` (module doc).

        Parts: ``ir`` (the loss), ``mask`` (mean of the target's highlight mask), ``ir_input`` (the same loss for the
        trivial prediction ``log(d^2 + 1/255)``; the official ``cost_input_output`` reference).
        """
        target = batch["hdr_camera"]
        mask = highlight_mask(target)
        loss = illumination_reflectance_loss(out.aux["log_pred"], target, mask, self.config.lambda_ir,
                                             self.blur_kernel)
        with torch.no_grad():
            d = linear_to_srgb(batch["ldr"])
            ref = illumination_reflectance_loss(torch.log(d * d + EPS), target, mask, self.config.lambda_ir,
                                                self.blur_kernel)
        return loss, {"ir": loss.item(), "mask": mask.mean().item(), "ir_input": ref.item()}


@register_model(HDRCNNConfig())
def hdrcnn(cfg: HDRCNNConfig) -> HDRCNN:
    """Paper HDRCNN: VGG16 encoder (64..512), transposed-conv decoder, log skip transform."""
    return HDRCNN(cfg)


@register_model(HDRCNNConfig(widths=(12, 24, 48, 96, 192)))
def hdrcnn_small(cfg: HDRCNNConfig) -> HDRCNN:
    """CPU-trainable HDRCNN: the same network with widths (12, 24, 48, 96, 192) (compute of ``lanet_small``)."""
    return HDRCNN(cfg)
