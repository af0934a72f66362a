"""Masks: luminance segmentation labels (paper Eq. 6) and panoLANet's merge mask (Eq. 8).

Torch, batched ``Bx3xHxW`` tensors, device-agnostic; usable inside a network (ONNX-exportable).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hdr_core.calibration import hdr_log

#: Segmentation classes, in the reference code's channel order.
OVER, CORRECT, UNDER = 0, 1, 2
#: Eq. 6 thresholds on the channel mean of log HDR (reference code).
OVER_LOG, UNDER_LOG = 0.1, -5.5
#: Merge-mask ramp start (method.md §3: the code's 0.83; the paper text says 0.13).
MERGE_THRESHOLD = 0.83


def dilate3x3(x: torch.Tensor) -> torch.Tensor:
    """Grey-level 3x3 dilation (max filter); borders do not extend the image.

    The max of three shifted slices along the width, then along the height: the same values as
    ``F.max_pool2d(x, 3, stride=1, padding=1)`` (a max in any order is exact), ~6x faster on the CPU, whose
    stride-1 pooling kernel is slow (tested against it)."""
    p = F.pad(x, (1, 1, 1, 1), value=float("-inf"))
    w = torch.maximum(torch.maximum(p[..., :-2], p[..., 1:-1]), p[..., 2:])
    return torch.maximum(torch.maximum(w[..., :-2, :], w[..., 1:-1, :]), w[..., 2:, :])


def erode3x3(x: torch.Tensor) -> torch.Tensor:
    """Grey-level 3x3 erosion (min filter)."""
    return -dilate3x3(-x)


def closing3x3(x: torch.Tensor) -> torch.Tensor:
    """3x3 morphological closing (dilation then erosion), binary or grey-level, ``BxCxHxW``."""
    return erode3x3(dilate3x3(x))


def segmentation_labels(hdr_cal: torch.Tensor) -> torch.Tensor:
    """Eq. 6: per-pixel class of a *calibrated* HDR ``Bx3xHxW`` -> ``BxHxW`` int64 in {OVER, CORRECT, UNDER}.

    Over-exposed where the channel mean of ``log(HDR)`` > 0.1, under-exposed where < -5.5; each mask gets a
    3x3 closing (reference code); the rest is "correct". Where the closed masks overlap, "over" wins.
    """
    m = hdr_log(hdr_cal).mean(dim=1, keepdim=True)
    over = closing3x3((m > OVER_LOG).to(hdr_cal.dtype))[:, 0] > 0.5
    under = closing3x3((m < UNDER_LOG).to(hdr_cal.dtype))[:, 0] > 0.5
    return torch.where(over, OVER, torch.where(under, UNDER, CORRECT))


def saturation_ramp(linear_ldr: torch.Tensor, threshold: float = MERGE_THRESHOLD) -> torch.Tensor:
    """``clamp((mean_c(I) - t) / (1 - t), 0, 1)`` of a linear LDR ``Bx3xHxW`` -> ``Bx1xHxW``."""
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"merge threshold must be in [0, 1), got {threshold}")
    return ((linear_ldr.mean(dim=1, keepdim=True) - threshold) / (1.0 - threshold)).clamp(0.0, 1.0)


def highlight_gain(log_hdr: torch.Tensor, linear_ldr: torch.Tensor, stops: float,
                   threshold: float = MERGE_THRESHOLD) -> torch.Tensor:
    """Raise a natural-log HDR prediction by up to ``stops`` where its LDR input is saturated (beyond the paper).

    ``log_hdr + stops * ln 2 * saturation_ramp(linear_ldr, threshold)``: nothing changes where the input's channel
    mean is at or below ``threshold`` (with the default 0.83, exactly Eq. 1's calibration mask, so calibration is
    unchanged), the full ``stops`` applies where the input is white. Why: a network trained with log-domain losses
    predicts about the median of what a clipped highlight may hold, while the light a panorama casts is its energy
    (the mean), so on panoramas it has not seen its suns and lamps come out too dark; one gain fitted on validation
    panoramas (``scripts/fit_highlight_gain.py``, docs/models.md) corrects that on average. ``stops == 0`` returns
    ``log_hdr`` itself (no operation: the paper's models and graphs are unchanged)."""
    if not stops:
        return log_hdr
    ramp = saturation_ramp(linear_ldr, threshold).to(log_hdr.dtype)
    return log_hdr + (float(stops) * math.log(2.0)) * ramp


def merge_mask(linear_ldr: torch.Tensor, threshold: float = MERGE_THRESHOLD) -> torch.Tensor:
    """Eq. 8 as in the code: saturation ramp x C2P coverage mask, then 3x3 closing -> ``Bx1xHxW`` in [0, 1].

    ``linear_ldr`` is an ``h x 2h`` panorama in linear [0, 1].
    """
    from hdr_core.projections import ceiling_coverage_mask

    cover = ceiling_coverage_mask(linear_ldr.shape[-2], device=linear_ldr.device, dtype=linear_ldr.dtype)
    return closing3x3(saturation_ramp(linear_ldr, threshold) * cover)
