"""FHDR: a feedback network for single-image LDR -> HDR (baseline; reference-code.md §3.3, method.md §5).

Origin: Khan, Khanna, Raman, "FHDR: HDR Image Reconstruction from a Single LDR Image using Feedback Network",
GlobalSIP 2019 (arXiv 1912.11463); official PyTorch code ``mukulkhanna/FHDR`` (``model.py``, ``train.py``,
``util.py``). Re-implemented here from that description, timm style (docs/style.md). Structure, with ``F``
features (64), growth ``G`` (32):

* feature extraction: ``feb1 = ReLU(conv3x3_reflect(d))`` 3 -> F, ``feb2 = ReLU(conv3x3(feb1))``;
* feedback block (FB), run ``iterations`` times on the same ``feb2`` with a hidden state ``h``:
  ``compress_in = conv1x1(concat[feb2, h])`` 2F -> F, then 3 dilated residual dense blocks (DRDB), then
  ``GFF = ReLU(conv3x3)``; the FB's output becomes its next hidden state;
* DRDB (also with its own hidden state ``h_k``): ``conv1x1(concat[x, h_k])`` 2F -> F, 4 dense layers
  ``concat[y, ReLU(conv3x3 dilation 2 (y))]`` (G each, no bias), ``conv1x1`` F + 4G -> F (no bias). The output
  becomes ``h_k``. Despite the name there is **no local residual add** (as in the code);
* reconstruction, per iteration: ``ReLU(conv3x3(FB + feb1))``, ``conv3x3_reflect`` -> 3, ``tanh``; the official
  code maps the tanh output ``t`` to ``(t + 1) / 2`` in [0, 1] before writing it (and inside the mu-law of its loss).

All hidden states start as a copy of the block's own input at the first iteration (as the code does) and, as the
code does (``Variable(out.data)``), are **detached** between iterations (``detach_hidden``): each iteration's
output is trained through its own path, not back through time.

Port conventions:

* Input: every model here gets ``x = 2 * lin - 1`` with ``lin`` the sRGB-EOTF-linearised LDR. FHDR's own input is
  the display image ``d``: the network sees ``2 * linear_to_srgb((x + 1) / 2) - 1`` (the official ``[-1, 1]``
  normalisation of the 8-bit LDR), so it keeps its own input model (no linearisation, reference-code.md §3.4).
* Output: ``aux["iter_k"]`` = ``(tanh + 1) / 2`` of iteration ``k``, linear in [0, 1], ``Bx3xHxW``;
  ``log_hdr = log(max(aux[last], 1e-6))`` (natural log, finite). The scale is **relative** (FHDR learns HDR
  normalised per image to max 1); :mod:`hdr_core.calibration` rescales it against the input before any metric,
  like every other method.
* Hidden states live only inside one ``forward`` (reset at every call; the released code keeps them across calls,
  which leaks state between batches and breaks on a batch-size change).
* Fully convolutional at stride 1: any ``H, W >= 2`` (reflect padding), ``pad_multiple = 1``. The iteration loop
  runs a fixed, config-given number of times, so the traced ONNX graph is the unrolled network.

Loss (:meth:`FHDR.training_loss`): per iteration ``L1(mu(y_k), mu(gt))`` with
``mu(v) = log(1 + 5000 v) / log(5001)``, averaged over iterations (``train.py``: summed, then divided by the
count). ``gt`` is ``batch["hdr"]`` divided by its per-image maximum: the official loader passes the HDR through
unscaled and relies on the data set being prepared in [0, 1] (the tanh output cannot exceed 1; issues #7, #13);
our calibrated HDR is not, so it is max-normalised per image.

Deviations from the official code (stated, deliberate):

* **No VGG19 perceptual term** (official weight 10, relu1-5 weights 1/32 .. 1): no VGG weights are obtainable in
  this environment (only PyPI/npm/Debian are reachable, no torchvision weights). The loss is the mu-law L1 alone.
* **Initialisation**: PyTorch's default conv init (``init="torch"``). The official ``weights_init`` draws every conv
  weight from N(0, 0), i.e. zeros (biases keep PyTorch's default): every feature map starts spatially constant and
  gradients reach a layer only after all layers after it have left zero, so learning starts slowly from the back.
  ``init="official"`` reproduces it. Fitting one tiny batch (``fhdr_small``, Adam 2e-4, 300 steps) the official
  init went from 0.100 to 0.078 mu-L1, PyTorch's from 0.098 to 0.009.
* Hidden states reset every forward (see above); GT max-normalised per image (see above).
* No min-max normalisation of the output at test time (the official ``write_hdr`` does it before writing RGBE):
  ``log_hdr`` keeps the network's [0, 1] scale and the shared calibration sets the scale for every method.

Cost at 1024x512 (one image, ``torch.utils.flop_counter.FlopCounterMode``: convolutions, 1 MAC = 2 FLOPs;
``lanet_small`` is 2.41 M params / 18.1 GFLOPs):

=============  =========  =======  ================================================
name           params     GFLOPs   config
=============  =========  =======  ================================================
fhdr           571,267    2272.5   paper: F 64, G 32, 3 DRDB x 4 layers, 4 iterations
fhdr_1iter     571,267    598.5    1 iteration (released "feed-forward" checkpoint)
fhdr_2iter     571,267    1156.5   2 iterations (released 2-iteration checkpoint)
fhdr_small     9,363      18.7     F 8, G 4, 3 DRDB x 4 layers, 2 iterations
=============  =========  =======  ================================================

The compute is linear in the iteration count (weights are shared, so the parameter count is not) and, at stride 1,
roughly quadratic in the width: a small variant with ``lanet_small``'s compute has 8 features. At stride 1 the
parameter count is about the MACs per pixel, so ``fhdr_small`` has ~250x fewer parameters than ``lanet_small``
(which spends its compute at reduced resolutions).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hdr_core.color import linear_to_srgb
from hdr_core.models._registry import ModelConfig, register_model
from hdr_core.models.layers import HDRModel, HDROutput

__all__ = ["FHDRConfig", "FHDR", "FeedbackBlock", "DilatedResidualDenseBlock", "DenseLayer", "mu_law",
           "MU", "LOG_FLOOR"]

#: mu of FHDR's mu-law tone curve (``util.py::mu_tonemap``).
MU = 5000.0

#: ``log_hdr`` is ``log(max(y, LOG_FLOOR))`` of the last iteration's [0, 1] output.
LOG_FLOOR = 1e-6


def mu_law(y: Tensor, mu: float = MU) -> Tensor:
    """FHDR's tone curve on linear ``y`` in [0, 1]: ``log(1 + mu y) / log(1 + mu)``."""
    return torch.log1p(mu * y) / math.log1p(mu)


@dataclasses.dataclass
class FHDRConfig(ModelConfig):
    """FHDR architecture. Defaults = the paper (its results use the 4-iteration model, maintainer in issue #3; the
    code's ``--iter`` default is 1 and the released checkpoints have 1 and 2 iterations).

    Attributes:
        iterations: feedback iterations (one output each).
        num_features: feature channels F (feb1, feb2, hidden states, DRDB outputs).
        growth_rate: channels added by each dense layer.
        num_dense_layers: dense layers per DRDB.
        num_drdb: DRDBs in the feedback block.
        detach_hidden: detach the hidden states between iterations (official code); False backpropagates through
            the iterations.
        init: ``"torch"`` (PyTorch's default conv init) or ``"official"`` (all conv weights zero, ``train.py``).
    """

    iterations: int = 4
    num_features: int = 64
    growth_rate: int = 32
    num_dense_layers: int = 4
    num_drdb: int = 3
    detach_hidden: bool = True
    init: str = "torch"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("iterations", "num_features", "growth_rate", "num_dense_layers", "num_drdb"):
            if getattr(self, name) < 1:
                raise ValueError(f"FHDRConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.init not in ("torch", "official"):
            raise ValueError(f"FHDRConfig.init must be 'torch' or 'official', got {self.init!r}")


class DenseLayer(nn.Module):
    """``concat[x, ReLU(conv3x3 dilation 2 (x))]``: adds ``growth_rate`` channels (zero padding 2, no bias)."""

    def __init__(self, in_ch: int, growth_rate: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, growth_rate, 3, padding=2, dilation=2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, F.relu(self.conv(x))], dim=1)


class DilatedResidualDenseBlock(nn.Module):
    """DRDB: ``conv1x1(concat[x, hidden]) -> dense layers -> conv1x1``; the output is also the next hidden state.

    Stateless: the caller passes the hidden state (``None`` at the first iteration = a copy of ``x``).

    Args:
        channels: input/output channels F.
        growth_rate: channels per dense layer.
        num_layers: dense layers.
    """

    def __init__(self, channels: int, growth_rate: int, num_layers: int):
        super().__init__()
        self.compress = nn.Conv2d(2 * channels, channels, 1)
        self.dense = nn.Sequential(*(DenseLayer(channels + i * growth_rate, growth_rate) for i in range(num_layers)))
        self.conv_1x1 = nn.Conv2d(channels + num_layers * growth_rate, channels, 1, bias=False)

    def forward(self, x: Tensor, hidden: Tensor | None = None) -> Tensor:
        h = x if hidden is None else hidden
        return self.conv_1x1(self.dense(self.compress(torch.cat([x, h], dim=1))))


class FeedbackBlock(nn.Module):
    """The dense feedback block: ``ReLU(GFF3x3(DRDB...(conv1x1(concat[x, hidden]))))``.

    Its state is the list ``[own hidden, DRDB 1 hidden, ...]``, passed in and returned (``None`` = first iteration,
    every hidden state a copy of its block's input).

    Args:
        channels: F.
        growth_rate: dense growth rate.
        num_dense_layers: dense layers per DRDB.
        num_drdb: DRDBs.
    """

    def __init__(self, channels: int, growth_rate: int, num_dense_layers: int, num_drdb: int):
        super().__init__()
        self.compress_in = nn.Conv2d(2 * channels, channels, 1)
        self.drdbs = nn.ModuleList(DilatedResidualDenseBlock(channels, growth_rate, num_dense_layers)
                                   for _ in range(num_drdb))
        self.gff = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor, state: list[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        """One iteration; returns the output and the new state ``[output, DRDB outputs...]`` (not detached)."""
        hidden = state or [None] * (1 + len(self.drdbs))
        y = self.compress_in(torch.cat([x, x if hidden[0] is None else hidden[0]], dim=1))
        new_state = []
        for drdb, h in zip(self.drdbs, hidden[1:]):
            y = drdb(y, h)
            new_state.append(y)
        out = F.relu(self.gff(y))
        return out, [out] + new_state


class FHDR(HDRModel):
    """FHDR (see the module docstring). ``forward(x)`` with ``x = 2 * linear_rgb - 1``, ``Bx3xHxW``, ``H, W >= 2``.

    Args:
        config: the architecture; default the paper's (4 iterations).
    """

    pad_multiple = 1  #: fully convolutional at stride 1: any size works, nothing to pad

    def __init__(self, config: FHDRConfig | None = None):
        super().__init__()
        cfg = self.config = config or FHDRConfig()
        c = cfg.num_features
        self.feb1 = nn.Conv2d(3, c, 3, padding=1, padding_mode="reflect")
        self.feb2 = nn.Conv2d(c, c, 3, padding=1)
        self.feedback = FeedbackBlock(c, cfg.growth_rate, cfg.num_dense_layers, cfg.num_drdb)
        self.hrb1 = nn.Conv2d(c, c, 3, padding=1)
        self.hrb2 = nn.Conv2d(c, 3, 3, padding=1, padding_mode="reflect")
        self.init_weights(cfg.init)

    def init_weights(self, mode: str = "torch") -> None:
        """``"torch"``: PyTorch's default init (re-drawn); ``"official"``: conv weights zero, biases untouched."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if mode == "official":
                    nn.init.zeros_(m.weight)
                else:
                    m.reset_parameters()

    @staticmethod
    def network_input(x: Tensor) -> Tensor:
        """FHDR's own input from ours: the display image ``linear_to_srgb((x + 1) / 2)`` mapped to [-1, 1]."""
        return 2.0 * linear_to_srgb((x + 1.0) * 0.5) - 1.0

    def forward_features(self, d: Tensor) -> tuple[Tensor, Tensor]:
        """Feature extraction on FHDR's input ``d`` (display image in [-1, 1]): ``(feb1, feb2)``."""
        feb1 = F.relu(self.feb1(d))
        return feb1, F.relu(self.feb2(feb1))

    def forward_head(self, fb: Tensor, feb1: Tensor) -> Tensor:
        """Reconstruction of one iteration: the tanh output in [-1, 1]."""
        return torch.tanh(self.hrb2(F.relu(self.hrb1(fb + feb1))))

    def forward_iterations(self, x: Tensor) -> list[Tensor]:
        """All iterations' outputs, each ``(tanh + 1) / 2`` in [0, 1]. The hidden state starts fresh here."""
        feb1, feb2 = self.forward_features(self.network_input(x))
        state: list[Tensor] | None = None
        outs = []
        for _ in range(self.config.iterations):
            fb, state = self.feedback(feb2, state)
            if self.config.detach_hidden:
                state = [s.detach() for s in state]
            outs.append((self.forward_head(fb, feb1) + 1.0) * 0.5)
        return outs

    def forward_aligned(self, x: Tensor) -> tuple[HDROutput, None]:
        """Same as :meth:`forward` (any size is aligned at stride 1); the ``None`` mirrors LANet's skip features."""
        outs = self.forward_iterations(x)
        log_hdr = torch.log(torch.clamp(outs[-1], min=LOG_FLOOR))
        return HDROutput(log_hdr=log_hdr, aux={f"iter_{k}": y for k, y in enumerate(outs)}), None

    def forward(self, x: Tensor) -> HDROutput:
        return self.forward_aligned(x)[0]

    def training_loss(self, out: HDROutput, batch: dict) -> tuple[Tensor, dict[str, float]]:
        """FHDR's loss without the VGG term: mean over iterations of ``L1(mu(y_k), mu(hdr / max(hdr)))``.

        Args:
            out: this model's output (``aux["iter_k"]``, linear [0, 1]).
            batch: a training batch; uses ``batch["hdr"]`` (``Bx3xHxW`` linear HDR, any scale).

        Returns:
            The loss and ``{"l1_mu": ..., "l1_mu_iter_k": ...}`` as floats.
        """
        ys = [out.aux[f"iter_{k}"] for k in range(self.config.iterations)]
        gt = batch["hdr"].to(ys[-1]).clamp(min=0.0)
        gt = gt / gt.amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-8)
        mu_gt = mu_law(gt)
        per_iter = [F.l1_loss(mu_law(y), mu_gt) for y in ys]
        loss = torch.stack(per_iter).mean()
        parts = {"l1_mu": loss.item(), **{f"l1_mu_iter_{k}": v.item() for k, v in enumerate(per_iter)}}
        return loss, parts


def _create_fhdr(cfg: FHDRConfig) -> FHDR:
    return FHDR(cfg)


@register_model(FHDRConfig())
def fhdr(cfg: FHDRConfig) -> FHDR:
    """Paper FHDR: F 64, growth 32, 3 DRDBs x 4 dense layers, 4 iterations (the paper's results)."""
    return _create_fhdr(cfg)


@register_model(FHDRConfig(iterations=1))
def fhdr_1iter(cfg: FHDRConfig) -> FHDR:
    """FHDR with 1 iteration (the released "feed-forward" checkpoint, ``--iter 1``)."""
    return _create_fhdr(cfg)


@register_model(FHDRConfig(iterations=2))
def fhdr_2iter(cfg: FHDRConfig) -> FHDR:
    """FHDR with 2 iterations (the released 2-iteration checkpoint)."""
    return _create_fhdr(cfg)


@register_model(FHDRConfig(iterations=2, num_features=8, growth_rate=4))
def fhdr_small(cfg: FHDRConfig) -> FHDR:
    """CPU-trainable FHDR of ``lanet_small``'s compute: F 8, growth 4, 3 DRDBs x 4 dense layers, 2 iterations."""
    return _create_fhdr(cfg)
