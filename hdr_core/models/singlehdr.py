"""SingleHDR: LDR -> HDR by reversing the camera pipeline (reference-code.md §3.2, method.md §5).

Origin: Liu, Lai, Chen, Kao, Yang, Chuang, Huang, "Single-Image HDR Reconstruction by Learning to Reverse the Camera
Pipeline", CVPR 2020; official TensorFlow code ``alex04072000/SingleHDR`` (``dequantization_net.py``,
``linearization_net.py``, ``hallucination_net.py``, ``util.py``, ``training_code/*``). Written here from the paper and
the facts collected in the docs; no code was copied.

Pipeline on the display values ``d = linear_to_srgb((x + 1) / 2)`` (the 8-bit LDR / 255):

1. **Dequantization-Net** (:class:`DequantizationNet`): a 5-level U-Net (16, 32, 64, 128, 256 channels; 7x7, 5x5 then
   3x3 convs; average-pool down, bilinear up; LeakyReLU 0.1), ``C = clip(d + tanh(conv(.)), 0, 1)``.
2. **Linearization-Net** (:class:`LinearizationNet`): input ``[C, Sobel edges (dy, dx per channel, reflect padding),
   soft histograms of C with 4, 8 and 16 bins (K + 1 triangular bins each)]`` = 102 channels; a ResNet-style feature
   net (conv1 7x7/2 + BN + ReLU, max pool 3x3/2, bottleneck blocks res2a-c (64 -> 256), res3a-b (128 -> 512, stride 2),
   post-add ReLU) and a global mean; one FC layer predicts ``K = 11`` weights ``w`` of an inverse-CRF PCA basis,
   ``g = g0 + H w`` at 1024 samples (``H`` = the PCA components scaled by the family's standard deviation along
   each, so that Adam's equal-size steps do not blow up the high-order components); ``_increase`` makes it monotone
   (shift the finite differences up to >= 1e-6, normalise their sum to 1, cumulative sum, prepend 0), so
   ``g(0) = 0``, ``g(1) = 1``. ``B = g(C)`` by linear interpolation of the curve.
3. **Hallucination-Net**: the HDRCNN network (:class:`~hdr_core.models.hdrcnn.HDRCNNNet`) in SingleHDR's modified
   form, ``skip_transform="linear"`` (skips / 255, no log) and ``upsample="nearest"`` (nearest x2 + conv3x3), run on
   ``B``. ``A = B + alpha * ReLU(y_hat)`` with ``alpha = clamp((max_c B - (1 - 0.12)) / 0.12, 0, 1)``: additive, in the
   linear domain, only near saturation.

``log_hdr = log(max(A, 1e-8))``. ``A`` is in the camera's linear units (1 = white point). ``out.aux``: ``"dequantized"``
(C), ``"linearized"`` (B), ``"hdr_linear"`` (A), ``"alpha"`` (``Bx1xHxW``) and ``"inv_crf"``, the predicted curve as a
``Bx1024x1x1`` tensor (a per-image quantity; its 1x1 "spatial" size survives :meth:`HDROutput.crop`).

**Inverse-CRF basis**: the EMoR files (``invemor.txt``) are not available here; :mod:`hdr_core.models.crf_basis`
builds our own 11-component PCA basis of a broad family of monotone inverse CRFs (including the virtual camera's
sigmoid family) and **replaces EMoR**. The basis is stored in the model's buffers (``g0``, ``hinv``), hence in every
checkpoint.

**Loss** (:meth:`SingleHDR.training_loss`), one joint objective over the three stages, with the targets the pairs
pipeline provides (:mod:`hdr_core.data.pairs`):

* dequantisation: ``mean((C - batch["display"])^2)`` (display values before 8-bit quantisation);
* linearisation: ``mean((B - clip(hdr_camera, 0, 1))^2) + 0.1 mean((g - g_true)^2)``, where ``g_true`` is the
  analytic inverse of the virtual camera's sigmoid CRF ``batch["crf"] = [sigma, n]`` at the 1024 samples;
* hallucination: ``mean(|mu(A) - mu(hdr_camera)|) + 0.1 TV(mu(A))`` with ``mu(y) = log(1 + 10 y) / log(11)``;
* as in the official training scripts, images whose 8-bit grey (0.299, 0.587, 0.114) is >= 249 or <= 6 on more than
  half of the pixels are excluded from the linearisation and hallucination terms.

Deviations from the paper / official code (state these with any result):

* **no VGG perceptual term** (0.001 x VGG16 pool1-3 in the hallucination loss) and **no Refinement-Net**;
* the three nets are trained **together from scratch** with the sum of the three stage losses. By default
  (``detach_stages=True``) the gradient is cut between the stages while training, so each net learns only from its
  own loss, as in the official stage-wise training, but on the previous stage's *prediction* rather than on
  ground-truth inputs (the official linearisation and hallucination nets were trained on the unquantised LDR and the
  clipped ground-truth HDR). ``detach_stages=False`` trains end to end, like the official fine-tuning (which, unlike
  here, had only the refinement net's final loss). The official recipe also starts from ImageNet/Places VGG16
  weights for the hallucination encoder and a pretrained ``crf_net_v2.npy`` feature net;
* our own inverse-CRF PCA basis instead of EMoR (see above);
* initialisation for training from scratch: the dequantisation net's last conv is zero (an untrained net is the
  identity), the basis-weight FC layer is zero (an untrained net predicts the mean curve ``g0``);
* monotonicity shift ``relu(1e-6 - min diff)`` instead of ``relu(-min diff)`` (the official code's commented-out
  variant), which avoids a 0/0 for a constant curve;
* the input is reflect-padded at the bottom/right to a multiple of 64 and cropped back (the official test code
  resizes bicubically to a multiple of 64 and adds a symmetric 32-pixel border);
* ``_small``: narrower nets, and the linearisation net sees ``C`` area-downsampled by 4 (the inverse CRF is a global
  quantity); see the size table.

Size (FlopCounterMode, 1x3x512x1024, eval; FLOPs = 2 x multiply-adds):

====================  ==========  =================
variant               parameters  GFLOPs @1024x512
====================  ==========  =================
``singlehdr``         27.77 M     824.4 (hallucination 640.1, linearisation 108.6, dequantisation 75.7)
``singlehdr_small``   2.14 M      23.8 (hallucination 15.9, linearisation 1.7, dequantisation 6.2)
``lanet_small``       2.41 M      18.1 (reference)
====================  ==========  =================
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hdr_core.color import linear_to_srgb
from hdr_core.models._registry import ModelConfig, register_model
from hdr_core.models.crf_basis import N_COMPONENTS, N_SAMPLES, load_basis, sigmoid_inverse_crf
from hdr_core.models.hdrcnn import HDRCNNConfig, HDRCNNNet, highlight_mask
from hdr_core.models.layers import HDRModel, HDROutput

__all__ = ["SingleHDRConfig", "SingleHDR", "DequantizationNet", "LinearizationNet", "sobel_kernel", "sobel_edges",
           "soft_histogram", "increasing", "apply_inverse_crf", "true_inverse_crf", "mu_law", "exposure_mask"]

#: Inputs are padded to this multiple (the official test code resizes to multiples of 64).
PAD_MULTIPLE = 64
#: Hallucination blend threshold on the linearised max channel.
HALLUCINATION_THRESHOLD = 0.12


# ----------------------------------------------------------------------------------------------- helpers

def sobel_kernel(channels: int = 3) -> Tensor:
    """Depthwise Sobel weights ``(2C, 1, 3, 3)`` in the order c0 dy, c0 dx, c1 dy, ..."""
    ky = torch.tensor([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]])
    return torch.stack([ky, ky.t()]).unsqueeze(1).repeat(channels, 1, 1, 1)


def sobel_edges(img: Tensor, kernel: Tensor | None = None) -> Tensor:
    """Sobel responses ``[dy, dx]`` per channel (``tf.image.sobel_edges`` order and reflect padding): ``Bx2CxHxW``.

    ``kernel``: :func:`sobel_kernel` of the channel count, precomputed (a constant of traced/ONNX graphs).
    """
    k = sobel_kernel(img.shape[1]) if kernel is None else kernel
    return F.conv2d(F.pad(img, (1, 1, 1, 1), mode="reflect"), k.to(img), groups=k.shape[0] // 2)


def soft_histogram(img: Tensor, bins: int) -> Tensor:
    """Triangular soft histogram maps ``relu(1 - |img - i/K| K)``, ``i = 0..K``: ``Bx(K+1)CxHxW`` (bin-major)."""
    centres = torch.arange(bins + 1, dtype=img.dtype, device=img.device).view(1, bins + 1, 1, 1, 1) / bins
    h = F.relu(1.0 - (img.unsqueeze(1) - centres).abs() * bins)
    return h.flatten(1, 2)


def increasing(curve: Tensor, min_step: float = 1e-6) -> Tensor:
    """``_increase``: a monotone curve from 0 to 1 with the shape of ``curve`` (``BxN`` -> ``BxN``)."""
    g = curve[:, 1:] - curve[:, :-1]
    g = g + F.relu(min_step - g.amin(dim=1, keepdim=True))
    g = g / g.sum(dim=1, keepdim=True)
    return torch.cat([torch.zeros_like(curve[:, :1]), torch.cumsum(g, dim=1)], dim=1)


def apply_inverse_crf(img: Tensor, curve: Tensor) -> Tensor:
    """``curve(img)`` by linear interpolation between the ``N`` samples at ``i / (N - 1)``; ``img`` in [0, 1]."""
    b, n = curve.shape
    pos = img.clamp(0.0, 1.0).flatten(1) * (n - 1)
    i0 = torch.floor(pos).clamp(max=n - 2)
    w = pos - i0
    i0 = i0.long()
    v0 = torch.gather(curve, 1, i0)
    v1 = torch.gather(curve, 1, i0 + 1)
    return (v0 + w * (v1 - v0)).view_as(img)


def true_inverse_crf(crf: Tensor, n_samples: int = N_SAMPLES) -> Tensor:
    """The inverse of the virtual camera's sigmoid CRF for ``crf = [[sigma, n], ...]`` at the samples: ``BxN``."""
    d = torch.linspace(0.0, 1.0, n_samples, dtype=crf.dtype, device=crf.device).unsqueeze(0)
    return sigmoid_inverse_crf(d, crf[:, :1], crf[:, 1:2])


def mu_law(y: Tensor) -> Tensor:
    """The hallucination loss's tone curve ``log(1 + 10 y) / log(11)`` (``y >= 0``)."""
    return torch.log1p(10.0 * y.clamp_min(0.0)) / math.log(11.0)


def exposure_mask(d: Tensor) -> Tensor:
    """Per-image 1/0 (``B``): 0 if the 8-bit grey of ``d`` is >= 249 or <= 6 on more than half of the pixels."""
    grey = torch.round(255.0 * (0.299 * d[:, 0] + 0.587 * d[:, 1] + 0.114 * d[:, 2]))
    over = (grey >= 249).float().mean(dim=(1, 2)) > 0.5
    under = (grey <= 6).float().mean(dim=(1, 2)) > 0.5
    return (~(over | under)).float()


def total_variation(y: Tensor) -> Tensor:
    """Per-image anisotropic TV ``mean|dy| + mean|dx|`` with a replicated last row/column (official ``tv_loss``)."""
    p = F.pad(y, (0, 1, 0, 1), mode="replicate")
    return (p[:, :, 1:, :-1] - p[:, :, :-1, :-1]).abs().mean(dim=(1, 2, 3)) + \
        (p[:, :, :-1, 1:] - p[:, :, :-1, :-1]).abs().mean(dim=(1, 2, 3))


# ----------------------------------------------------------------------------------------------- config

@dataclasses.dataclass
class SingleHDRConfig(ModelConfig):
    """SingleHDR architecture and loss weights. Defaults = the paper / official code.

    Attributes:
        deq_widths: Dequantization-Net widths, 5 levels (the first at full resolution).
        deq_kernels: conv kernel size per level (7, 5, 3, 3, 3 in the code).
        lin_stem: Linearization-Net conv1 channels.
        lin_widths: bottleneck widths of res2 and res3 (outputs x4).
        lin_blocks: blocks in res2 and res3.
        lin_downsample: area-downsampling of C before the Linearization-Net (1 = full resolution, the paper).
        hist_bins: soft-histogram bin counts.
        n_basis: inverse-CRF basis components (11, as EMoR).
        hal_widths: Hallucination-Net (HDRCNN) VGG widths.
        hal_depths: Hallucination-Net convs per VGG block.
        hal_upsample: ``"nearest"`` (SingleHDR) or ``"deconv"`` (HDRCNN).
        threshold: hallucination blend threshold on max_c B.
        w_deq, w_lin, w_crf, w_hal, w_tv: loss weights (dequantisation L2, linearised-image L2, inverse-CRF L2,
            mu-law L1, total variation).
        detach_stages: in training, cut the gradient between the stages, so each net learns from its own loss only
            (the official stage-wise training); False = fully end-to-end (the official fine-tuning).
    """

    deq_widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    deq_kernels: tuple[int, ...] = (7, 5, 3, 3, 3)
    lin_stem: int = 64
    lin_widths: tuple[int, ...] = (64, 128)
    lin_blocks: tuple[int, ...] = (3, 2)
    lin_downsample: int = 1
    hist_bins: tuple[int, ...] = (4, 8, 16)
    n_basis: int = N_COMPONENTS
    hal_widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    hal_depths: tuple[int, ...] = (2, 2, 3, 3, 3)
    hal_upsample: str = "nearest"
    threshold: float = HALLUCINATION_THRESHOLD
    w_deq: float = 1.0
    w_lin: float = 1.0
    w_crf: float = 0.1
    w_hal: float = 1.0
    w_tv: float = 0.1
    detach_stages: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.deq_widths) != 5 or len(self.deq_kernels) != 5:
            raise ValueError(f"deq_widths/deq_kernels need 5 levels, got {self.deq_widths}, {self.deq_kernels}")
        if len(self.lin_widths) != 2 or len(self.lin_blocks) != 2 or min(self.lin_blocks) < 1:
            raise ValueError(f"lin_widths/lin_blocks need 2 stages, got {self.lin_widths}, {self.lin_blocks}")
        if self.lin_downsample < 1 or PAD_MULTIPLE % (8 * self.lin_downsample):
            raise ValueError(f"lin_downsample must be a power of two <= 8, got {self.lin_downsample}")
        if not 1 <= self.n_basis <= N_COMPONENTS:
            raise ValueError(f"n_basis must be in 1..{N_COMPONENTS}, got {self.n_basis}")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")

    def hallucination_config(self) -> HDRCNNConfig:
        """The HDRCNN config of the Hallucination-Net (linear skips)."""
        return HDRCNNConfig(widths=self.hal_widths, depths=self.hal_depths, skip_transform="linear",
                            upsample=self.hal_upsample)


# ----------------------------------------------------------------------------------------------- blocks

def _conv_lrelu(in_ch: int, out_ch: int, k: int) -> nn.Sequential:
    conv = nn.Conv2d(in_ch, out_ch, k, padding=k // 2)
    nn.init.xavier_uniform_(conv.weight)  # tf.layers.conv2d default (glorot uniform, zero bias)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv, nn.LeakyReLU(0.1, inplace=True))


class DequantizationNet(nn.Module):
    """The Dequantization-Net U-Net: ``clip(img + tanh(unet(img)), 0, 1)`` (see the module docstring).

    Args:
        widths: channels of the 5 levels (full resolution first).
        kernels: conv kernel size of the 5 levels (the up path uses 3x3).
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128, 256), kernels: tuple[int, ...] = (7, 5, 3, 3, 3)):
        super().__init__()
        self.inc = nn.Sequential(_conv_lrelu(3, widths[0], kernels[0]), _conv_lrelu(widths[0], widths[0], kernels[0]))
        self.downs = nn.ModuleList(nn.Sequential(_conv_lrelu(widths[i - 1], widths[i], kernels[i]),
                                                 _conv_lrelu(widths[i], widths[i], kernels[i])) for i in range(1, 5))
        self.up_convs = nn.ModuleList(_conv_lrelu(widths[i + 1], widths[i], 3)
                                      for i in range(3, -1, -1))
        self.fuse_convs = nn.ModuleList(_conv_lrelu(2 * widths[i], widths[i], 3) for i in range(3, -1, -1))
        self.out = nn.Conv2d(widths[0], 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # deviation: start as the identity (training from scratch)
        nn.init.zeros_(self.out.bias)

    def forward(self, img: Tensor) -> Tensor:
        skips = [self.inc(img)]
        for down in self.downs:
            skips.append(down(F.avg_pool2d(skips[-1], 2)))
        y = skips.pop()
        for up, fuse, s in zip(self.up_convs, self.fuse_convs, skips[::-1]):
            y = up(F.interpolate(y, size=s.shape[-2:], mode="bilinear", align_corners=False))
            y = fuse(torch.cat([y, s], dim=1))
        return (img + torch.tanh(self.out(y))).clamp(0.0, 1.0)


def _conv_bn(in_ch: int, out_ch: int, k: int = 1, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(in_ch, out_ch, k, stride, padding=k // 2, bias=False), nn.BatchNorm2d(out_ch)]
    nn.init.kaiming_normal_(layers[0].weight, mode="fan_out", nonlinearity="relu")
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _Bottleneck(nn.Module):
    """Caffe ResNet bottleneck of the CRF feature net: 1x1/s, 3x3, 1x1 (BN each), projection, ReLU after the add."""

    def __init__(self, in_ch: int, width: int, stride: int = 1):
        super().__init__()
        out_ch = 4 * width
        self.body = nn.Sequential(_conv_bn(in_ch, width, 1, stride), _conv_bn(width, width, 3),
                                  _conv_bn(width, out_ch, 1, relu=False))
        self.proj = _conv_bn(in_ch, out_ch, 1, stride, relu=False) if stride != 1 or in_ch != out_ch else None

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + (x if self.proj is None else self.proj(x)))


class LinearizationNet(nn.Module):
    """Predicts a monotone inverse CRF (``BxN``, N = 1024) from the dequantised image (see the module docstring).

    Args:
        basis: ``{"g0": N, "hinv": N x K, "std": K}`` arrays (:func:`hdr_core.models.crf_basis.load_basis`); the
            model's basis is ``hinv * std``, so the predicted weights of a typical curve are O(1) per component.
        n_basis: components used (the first ``n_basis`` columns of ``hinv``).
        stem: conv1 channels.
        widths: bottleneck widths of res2 / res3.
        blocks: blocks of res2 / res3.
        hist_bins: soft-histogram bin counts.
        downsample: area-downsampling of the input first.
    """

    def __init__(self, basis: dict[str, np.ndarray], n_basis: int = N_COMPONENTS, stem: int = 64,
                 widths: tuple[int, ...] = (64, 128), blocks: tuple[int, ...] = (3, 2),
                 hist_bins: tuple[int, ...] = (4, 8, 16), downsample: int = 1):
        super().__init__()
        self.hist_bins, self.downsample = tuple(hist_bins), downsample
        in_ch = 3 + 6 + sum(3 * (k + 1) for k in hist_bins)
        self.conv1 = nn.Conv2d(in_ch, stem, 7, 2, padding=3)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.conv1.bias)
        self.bn1 = nn.BatchNorm2d(stem)
        layers, c = [], stem
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for b in range(n):
                layers.append(_Bottleneck(c, w, 2 if (i > 0 and b == 0) else 1))
                c = 4 * w
        self.res = nn.Sequential(*layers)
        self.fc = nn.Linear(c, n_basis)
        nn.init.zeros_(self.fc.weight)  # deviation: an untrained net predicts the mean curve g0
        nn.init.zeros_(self.fc.bias)
        self.register_buffer("g0", torch.as_tensor(basis["g0"], dtype=torch.float32).clone())
        hinv = basis["hinv"][:, :n_basis] * basis["std"][:n_basis]  # unit-variance coordinates (see the docstring)
        self.register_buffer("hinv", torch.as_tensor(hinv, dtype=torch.float32).clone())
        self.register_buffer("sobel", sobel_kernel(3), persistent=False)
        self.out_features = c

    def features(self, img: Tensor) -> Tensor:
        """The 102-channel input stack ``[img, Sobel, histograms]``."""
        return torch.cat([img, sobel_edges(img, self.sobel)] + [soft_histogram(img, k) for k in self.hist_bins], dim=1)

    def forward(self, img: Tensor) -> Tensor:
        if self.downsample > 1:
            img = F.avg_pool2d(img, self.downsample)
        y = F.relu(self.bn1(self.conv1(self.features(img))))
        y = self.res(F.max_pool2d(y, 3, 2, padding=1))
        w = self.fc(y.mean(dim=(2, 3)))
        return increasing(self.g0 + w @ self.hinv.t())


# ----------------------------------------------------------------------------------------------- model

class SingleHDR(HDRModel):
    """SingleHDR (see the module docstring). ``forward(x)`` with ``x = 2 * linear_rgb - 1``, ``Bx3xHxW``, any size.

    Args:
        config: the architecture; default the paper's.
    """

    pad_multiple = PAD_MULTIPLE  #: forward pads to it; ONNX graphs need it
    #: the linearisation loss compares with the virtual camera's analytic inverse CRF (batch["crf"]): training pairs
    #: must come from the virtual camera (hdr_core.train refuses other LDR styles)
    requires_virtual_camera = True

    def __init__(self, config: SingleHDRConfig | None = None):
        super().__init__()
        cfg = self.config = config or SingleHDRConfig()
        self.dequantization = DequantizationNet(cfg.deq_widths, cfg.deq_kernels)
        self.linearization = LinearizationNet(load_basis(), cfg.n_basis, cfg.lin_stem, cfg.lin_widths,
                                              cfg.lin_blocks, cfg.hist_bins, cfg.lin_downsample)
        self.hallucination = HDRCNNNet(cfg.hallucination_config())

    def forward_aligned(self, x: Tensor) -> tuple[HDROutput, None]:
        """Forward on an input whose sides are multiples of 64 (ONNX export entry point)."""
        d = linear_to_srgb((x + 1.0) * 0.5)
        c = self.dequantization(d)
        stagewise = self.training and self.config.detach_stages
        c_in = c.detach() if stagewise else c
        inv_crf = self.linearization(c_in)
        b = apply_inverse_crf(c_in, inv_crf)
        b_in = b.detach() if stagewise else b
        alpha = highlight_mask(b_in, self.config.threshold)
        a = b_in + alpha * F.relu(self.hallucination(b_in))
        aux = {"dequantized": c, "linearized": b, "hdr_linear": a, "alpha": alpha,
               "inv_crf": inv_crf[:, :, None, None]}
        return HDROutput(log_hdr=torch.log(a.clamp_min(1e-8)), aux=aux), None

    def training_loss(self, out: HDROutput, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """The joint three-stage loss of the module docstring against ``display``, ``hdr_camera`` and ``crf``.

        Parts: ``deq``, ``lin``, ``crf``, ``hal``, ``tv`` (unweighted, the last four averaged over the valid images)
        and ``valid`` (fraction of images not excluded by the exposure mask).
        """
        cfg, aux = self.config, out.aux
        target = batch["hdr_camera"]
        valid = exposure_mask(linear_to_srgb(batch["ldr"]))
        n_valid = valid.sum().clamp_min(1.0)

        def masked(per_image: Tensor) -> Tensor:
            return (per_image * valid).sum() / n_valid

        deq = torch.mean(torch.square(aux["dequantized"] - batch["display"]))
        lin = masked(torch.square(aux["linearized"] - target.clamp(0.0, 1.0)).mean(dim=(1, 2, 3)))
        crf = masked(torch.square(aux["inv_crf"].flatten(1) - true_inverse_crf(batch["crf"])).mean(dim=1))
        mu_pred = mu_law(aux["hdr_linear"])
        hal = masked((mu_pred - mu_law(target)).abs().mean(dim=(1, 2, 3)))
        tv = masked(total_variation(mu_pred))
        loss = cfg.w_deq * deq + cfg.w_lin * lin + cfg.w_crf * crf + cfg.w_hal * hal + cfg.w_tv * tv
        parts = {"deq": deq.item(), "lin": lin.item(), "crf": crf.item(), "hal": hal.item(), "tv": tv.item(),
                 "valid": valid.mean().item()}
        return loss, parts


@register_model(SingleHDRConfig())
def singlehdr(cfg: SingleHDRConfig) -> SingleHDR:
    """Paper SingleHDR (without the Refinement-Net): U-Net 16..256, ResNet CRF net, VGG16 hallucination net."""
    return SingleHDR(cfg)


@register_model(SingleHDRConfig(deq_widths=(8, 12, 16, 24, 32), deq_kernels=(3, 3, 3, 3, 3), lin_stem=16,
                                lin_widths=(32, 64), lin_downsample=4, hal_widths=(8, 16, 32, 64, 192)))
def singlehdr_small(cfg: SingleHDRConfig) -> SingleHDR:
    """CPU-trainable SingleHDR: narrower nets, 3x3 dequantisation convs, linearisation on a 4x downsampled image.

    Dequantisation widths (8, 12, 16, 24, 32), CRF net stem 16 / widths (32, 64), hallucination VGG
    (8, 16, 32, 64, 192): about the compute of ``lanet_small``.
    """
    return SingleHDR(cfg)
