"""Shared building blocks of the LANet family (reference-code.md §1.3, §1.4, §2.2) and the typed model output.

Decoder conventions of the official code (``LANet/src/ops.py``), kept here:

* pre-activation order ``IN(conv(ReLU(x)))``; no conv bias; instance norm with affine parameters, eps 1e-5;
* upsampling = nearest-neighbour resize + 3x3 conv, never a transposed conv. The resize goes to an explicit target
  size (the skip's), as the reference test code does, so sizes that are not powers of two (the e6/e7 bottleneck of a
  ``32 * odd`` input) still line up;
* 3x3 stride-1 convs pad with TF ``SYMMETRIC`` mode, which for a pad of 1 is exactly ``replicate``;
  stride-2 convs (e6/e7) use slim's zero 'same' padding;
* skip fusion: concat, then a 1x1 conv *with* bias initialised to element-wise addition (trainable);
* decoder weights start as truncated normal(0.02) (slim default).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["InstanceNorm2d", "ReplicateConv2d", "StridedConv2d", "PreActConv", "SkipFuse", "GatedConv", "UNetDecoder",
           "HDROutput", "HDRModel", "ExportWrapper", "pad_to_multiple", "log_linear_input", "trunc_normal_"]


def log_linear_input(x: Tensor) -> Tensor:
    """The log of the linear input, ``log(max((x + 1) / 2, 1e-8))`` for a network input ``x = 2 * lin - 1``."""
    return torch.log(torch.clamp((x + 1.0) * 0.5, min=1e-8))


def pad_to_multiple(x: Tensor, multiple: int = 32) -> Tensor:
    """Pad ``x`` at the bottom/right up to a multiple of ``multiple`` (at least one multiple).

    Reflect padding as in method.md §2; it needs ``pad < size``, so tiny inputs fall back to replicate padding.
    Padding only the bottom/right keeps the crop trivial, also for the half-resolution attention maps.
    While tracing (ONNX export) it always reflect-pads with symbolic amounts, so one graph serves every size >= 32.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if torch.jit.is_tracing():  # ONNX export: no size-dependent branch, the pad amounts stay symbolic
        return F.pad(x, (0, pw, 0, ph), mode="reflect")
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def copy_in_place_dtype(x: Tensor):
    """A context for ops that only move values (replicate padding, nearest upsampling), under autocast: they then run
    in ``x``'s own dtype. CPU autocast lists them as float32 ops, so a bf16 activation would be copied to float32 and
    back to bf16 by the next conv, two full-size copies per conv; the values are the same either way (the gradients
    sum the copies of an edge pixel in bf16 instead of float32). Without autocast: nothing."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.autocast(x.device.type, enabled=False)
    return contextlib.nullcontext()


def trunc_normal_(w: Tensor, std: float = 0.02) -> Tensor:
    """In-place truncated normal(0, std) in [-2 std, 2 std] (slim default initialiser).

    Redraws out-of-range values like TF (three rounds leave ~4e-6 of them, which are clipped); several times faster
    than ``nn.init.trunc_normal_`` on the big bottleneck convs.
    """
    with torch.no_grad():
        w.normal_()
        for _ in range(3):
            w.copy_(torch.where(w.abs() > 2.0, torch.randn_like(w), w))
        return w.clamp_(-2.0, 2.0).mul_(std)


class InstanceNorm2d(nn.InstanceNorm2d):
    """Affine instance norm (eps 1e-5) that also accepts a single spatial element.

    ``torch`` refuses a 1x1 map (the e7 level of a small input) in training mode; the explicit formula
    (:meth:`formula`) gives 0 there before the affine part, so the output is the shift. A traced/ONNX graph takes
    the formula: it has no size-dependent branch, so the graph stays valid for every input size. Eager runs and
    ``torch.compile`` take ``F.group_norm`` with one group per channel (the same function, to float rounding) on maps
    of more than one element: one fused kernel each way, also in channels-last order, ~3x faster than the formula's
    element-wise passes (``benchmarks/bench_train.py``).
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__(num_features, eps=eps, affine=True)

    def formula(self, x: Tensor) -> Tensor:
        var, mean = torch.var_mean(x, dim=(2, 3), unbiased=False, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or x.shape[-2] * x.shape[-1] == 1:
            return self.formula(x)
        channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        if x.device.type == "cpu" and x.dtype != torch.float32 and channels_last:
            # bf16 (autocast) in channels-last order: the CPU kernel's backward is ~7x slower than in NCHW order
            # (torch 2.13); the round trip through NCHW costs far less
            y = F.group_norm(x.contiguous(), self.num_features, self.weight, self.bias, self.eps)
            return y.contiguous(memory_format=torch.channels_last)
        return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)


class ReplicateConv2d(nn.Conv2d):
    """``nn.Conv2d(..., padding=k // 2, padding_mode="replicate")``, no bias unless asked (the decoder's 3x3 convs).

    Under ``torch.compile`` the padding is built from edge slices instead (the same values): inductor of torch 2.13
    asserts a wrong stride in ``replication_pad2d_backward`` on channels-last and concatenated inputs. Otherwise the
    ops of nn.Conv2d's own path (``F.pad``, then ``F.conv2d`` without padding; tracing and ONNX export unchanged),
    with the pad in the input's dtype under autocast (:func:`copy_in_place_dtype`).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, bias: bool = False):
        super().__init__(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=bias, padding_mode="replicate")

    def forward(self, x: Tensor) -> Tensor:
        p = self.kernel_size[0] // 2
        if not p:
            return super().forward(x)
        if torch.compiler.is_compiling():
            for _ in range(p):
                x = torch.cat([x[..., :1], x, x[..., -1:]], dim=-1)
                x = torch.cat([x[..., :1, :], x, x[..., -1:, :]], dim=-2)
        else:
            with copy_in_place_dtype(x):
                x = F.pad(x, self._reversed_padding_repeated_twice, mode="replicate")
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class StridedConv2d(nn.Conv2d):
    """``nn.Conv2d`` with zero 'same' padding for the decoder's stride-2 convs (e6/e7), in float32 on a one-pixel-wide
    map under CPU autocast.

    PyTorch 2.13's CPU bf16 convolution returns a **wrong weight gradient** for a stride-2 kernel wider than one pixel
    on an input one pixel wide: values from uninitialised memory, up to 1e38 or inf/NaN, in most calls
    (``tests/test_models.py``; the input gradient and every wider map are right). e7 sees such a map for inputs of
    64 pixels or fewer (stage-1 crops of 64, the 32-pixel smoke tests), e6 for 32; the shipped recipes (128-pixel
    crops, 512x256 panoramas) never do. A map that small costs nothing in float32. Without autocast, on other
    devices and when tracing: ``nn.Conv2d`` itself.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] == 1 and x.device.type == "cpu" and self.stride[-1] > 1 and self.kernel_size[-1] > 1 \
                and torch.is_autocast_enabled("cpu") and not torch.jit.is_tracing():
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


class PreActConv(nn.Module):
    """The reference decoder unit ``IN(conv(up(ReLU(x))))`` (``ops.conv2d`` / ``ops.deconv2d``).

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel_size: 1 or 3.
        stride: 1, or 2 for the e6/e7 downsampling convs (zero 'same' padding).
        up: nearest-neighbour upsample before the conv (to ``size`` if given to ``forward``, else x2).
        act: ReLU first (pre-activation).
        norm: instance norm last.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, up: bool = False,
                 act: bool = True, norm: bool = True):
        super().__init__()
        self.act, self.up = act, up
        self.conv = (ReplicateConv2d(in_ch, out_ch, kernel_size) if stride == 1 and kernel_size > 1 else
                     StridedConv2d(in_ch, out_ch, kernel_size, stride, padding=kernel_size // 2, bias=False))
        self.norm = InstanceNorm2d(out_ch) if norm else nn.Identity()
        trunc_normal_(self.conv.weight)

    def forward(self, x: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        if self.act:
            x = F.relu(x)
        if self.up:
            with copy_in_place_dtype(x):
                x = F.interpolate(x, size=size, mode="nearest") if size is not None else \
                    F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.norm(self.conv(x))


class SkipFuse(nn.Module):
    """``conv1x1(concat[a, s])`` with bias, initialised to ``a + s`` (weights ``[I | I]``, bias 0); trainable."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, channels, 1, bias=True)
        with torch.no_grad():
            eye = torch.eye(channels).view(channels, channels, 1, 1)
            self.conv.weight.copy_(torch.cat([eye, eye], dim=1))
            self.conv.bias.zero_()

    def forward(self, a: Tensor, s: Tensor) -> Tensor:
        return self.conv(torch.cat([a, s], dim=1))


class GatedConv(nn.Module):
    """Gated convolution (panoLANet ``gate_deconv2d``): one 3x3 conv to ``2 * out_ch``, ``feature * sigmoid(gate)``.

    The feature half gets no activation. Pre-activation ReLU on the input, as for every decoder conv.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = ReplicateConv2d(in_ch, 2 * out_ch, 3)
        trunc_normal_(self.conv.weight)

    def forward(self, x: Tensor) -> Tensor:
        feat, gate = self.conv(F.relu(x)).chunk(2, dim=1)
        return feat * torch.sigmoid(gate)


class UNetDecoder(nn.Module):
    """The LANet/panoLANet U-Net decoder (reference-code.md §1.3) over skips ``[c1..c5]``; returns ``[d5..d1]``.

    e6 = IN(conv/2(c5)); e7 = IN(conv/2(relu e6)); d6 = IN(up(relu e7)) at e6's size; for k = 5..1:
    dkp = IN(up(relu prev)) at c_k's size, sk = IN(conv1x1(c_k)), dk = SkipFuse(IN(conv3x3(relu dkp)), sk).

    Args:
        skip_channels: channels of c1..c5.
        widths: decoder widths C5..C1 (paper: 512, 256, 128, 64, 64).
        bottleneck_ch: e6/e7/d6 channels (1024 LANet, 512 released panoLANet).
    """

    def __init__(self, skip_channels: tuple[int, ...], widths: tuple[int, ...], bottleneck_ch: int):
        super().__init__()
        if len(skip_channels) != 5 or len(widths) != 5:
            raise ValueError(f"UNetDecoder: need 5 skip channels and 5 widths, got {skip_channels}, {widths}")
        self.e6 = PreActConv(skip_channels[4], bottleneck_ch, stride=2, act=False)
        self.e7 = PreActConv(bottleneck_ch, bottleneck_ch, stride=2)
        self.d6 = PreActConv(bottleneck_ch, bottleneck_ch, up=True)
        ins = (bottleneck_ch,) + tuple(widths[:-1])
        self.ups = nn.ModuleList(PreActConv(i, w, up=True) for i, w in zip(ins, widths))
        self.skips = nn.ModuleList(PreActConv(c, w, 1, act=False) for c, w in zip(skip_channels[::-1], widths))
        self.convs = nn.ModuleList(PreActConv(w, w) for w in widths)
        self.fuse = nn.ModuleList(SkipFuse(w) for w in widths)
        self.out_channels = tuple(widths)

    def forward(self, skips: list[Tensor]) -> list[Tensor]:
        e6 = self.e6(skips[4])
        y = self.d6(self.e7(e6), size=e6.shape[-2:])
        out = []
        for up, sk, conv, fuse, s in zip(self.ups, self.skips, self.convs, self.fuse, skips[::-1]):
            y = fuse(conv(up(y, size=s.shape[-2:])), sk(s))
            out.append(y)
        return out


@dataclasses.dataclass
class HDROutput:
    """Typed output of every HDR network here. All HDR fields are **natural-log** HDR.

    Attributes:
        log_hdr: the prediction, ``Bx3xHxW`` (panoLANet: the merged panorama).
        seg_logits: LANet's 3-class luminance segmentation logits ``Bx3xHxW``, order [over, correct, under].
        attention: LANet's 2 attention maps (after the sigmoid), ``Bx2xceil(H/2)xceil(W/2)``.
        merge_mask: panoLANet's merge mask ``Bx1xHxW`` in [0, 1].
        ceiling_log_hdr: panoLANet's ceiling-branch prediction on the ``h x h`` ceiling grid.
        pano_log_hdr: panoLANet's panorama-branch prediction alone, ``Bx3xHxW``.
        aux: other full-resolution ``BxCxHxW`` tensors a model's own training loss needs (e.g. FHDR's per-iteration
            outputs, SingleHDR's dequantised and linearised images), by name.
    """

    log_hdr: Tensor
    seg_logits: Tensor | None = None
    attention: Tensor | None = None
    merge_mask: Tensor | None = None
    ceiling_log_hdr: Tensor | None = None
    pano_log_hdr: Tensor | None = None
    aux: dict[str, Tensor] | None = None

    @property
    def hdr(self) -> Tensor:
        """Linear relative HDR, ``exp(log_hdr)``."""
        return torch.exp(self.log_hdr)

    def crop(self, height: int, width: int) -> HDROutput:
        """Crop the full-resolution fields to ``height x width`` and the attention maps to half of it (rounded up)."""
        def full(t: Tensor | None) -> Tensor | None:
            return None if t is None else t[..., :height, :width]

        att = None if self.attention is None else self.attention[..., :math.ceil(height / 2), :math.ceil(width / 2)]
        aux = None if self.aux is None else {k: full(v) for k, v in self.aux.items()}
        return HDROutput(full(self.log_hdr), full(self.seg_logits), att, full(self.merge_mask),
                         self.ceiling_log_hdr, full(self.pano_log_hdr), aux)


class HDRModel(nn.Module):
    """Common base: ``config``, ``num_params``, the any-size ``forward`` and a plain-tensor ``forward_export``.

    A subclass defines ``forward_aligned(x) -> (HDROutput, features or None)`` on inputs whose sides are multiples of
    ``pad_multiple`` (the ONNX export entry point), or ``forward_features`` + ``forward_head`` for the default one.
    """

    config: object
    pad_multiple: int = 1  #: the encoder's total stride; forward pads to it, ONNX graphs need it

    def forward_aligned(self, x: Tensor) -> tuple[HDROutput, Tensor | None]:
        """``forward_head(forward_features(x), x)`` and the last decoder features (panoLANet's d1 skip)."""
        feats = self.forward_features(x)
        return self.forward_head(feats, x), feats[-1]

    def forward(self, x: Tensor) -> HDROutput:
        """Any input size: padded at the bottom/right to ``pad_multiple``, ``forward_aligned``, cropped back."""
        h, w = x.shape[-2:]
        out, _ = self.forward_aligned(pad_to_multiple(x, self.pad_multiple))
        return out.crop(h, w)

    def num_params(self, trainable_only: bool = False) -> int:
        """Number of parameters (all, or only those with ``requires_grad``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def forward_export(self, x: Tensor) -> Tensor:
        """``forward(x).log_hdr``: a plain tensor, for ONNX export and tracing."""
        return self(x).log_hdr


class ExportWrapper(nn.Module):
    """Wrap an HDR model so that ``forward(x)`` returns only the log-HDR tensor (ONNX export)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x).log_hdr
