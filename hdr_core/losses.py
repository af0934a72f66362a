"""Training losses of LANet / panoLANet (method.md §2-3, reference-code.md §0 items 2, 6, 7, §1.5, §2.1).

All predictions and targets are **natural-log** HDR (``log(clamp(hdr, 1e-8, 1e4))``). Every function returns a
scalar tensor (mean over the batch); :func:`lanet_loss` can also return its parts.

* :func:`si_mse` - scale-invariant MSE (Eq. 3-4, lambda = 1, no eps): per image ``mean(d^2) - mean(d)^2`` over all
  pixels *and* channels, ``d = pred - gt``; a global exposure change ``pred + log k`` costs nothing.
* :func:`seg_loss` - 3-class softmax cross-entropy, classes [over, correct, under] (Eq. 5).
* :func:`lanet_loss` - ``si_mse + 0.05 * seg_loss`` (Eq. 2).
* :func:`log_mse` - plain log-domain MSE (released panoLANet stage 1).
* :func:`pano_masked_loss` - Eq. 9, ``0.2 * mean((m d)^2) + 0.01 * mean(((1 - m) d)^2)`` (released panoLANet stage 2).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["si_mse", "seg_loss", "lanet_loss", "log_mse", "pano_masked_loss", "SEG_WEIGHT", "BETA1", "BETA2"]

#: Weight of the segmentation loss in LANet's objective.
SEG_WEIGHT = 0.05
#: Eq. 9 weights of the merged-region and remaining-region terms (reference code).
BETA1, BETA2 = 0.2, 0.01


def _check_same_shape(pred: Tensor, gt: Tensor) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(gt.shape)}")


def si_mse(pred_log: Tensor, gt_log: Tensor, lam: float = 1.0) -> Tensor:
    """Scale-invariant MSE: per image ``mean(d^2) - lam * mean(d)^2`` over pixels and channels, batch-averaged.

    Args:
        pred_log: predicted log HDR, ``BxCxHxW`` (any shape with a leading batch axis).
        gt_log: target log HDR, same shape.
        lam: weight of the scale-invariance term (reference: 1).
    """
    _check_same_shape(pred_log, gt_log)
    d = (pred_log - gt_log).flatten(1)
    return (d.square().mean(dim=1) - lam * d.mean(dim=1).square()).mean()


def seg_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of ``Bx3xHxW`` logits against ``BxHxW`` int64 class indices (0 over, 1 correct, 2 under)."""
    return F.cross_entropy(logits, labels)


def log_mse(pred_log: Tensor, gt_log: Tensor) -> Tensor:
    """Plain log-domain MSE (stage-1 loss of the released panoLANet U-Net)."""
    _check_same_shape(pred_log, gt_log)
    return F.mse_loss(pred_log, gt_log)


def lanet_loss(out, gt_log: Tensor, labels: Tensor | None = None, seg_weight: float = SEG_WEIGHT,
               return_parts: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """LANet objective (Eq. 2): ``si_mse(out.log_hdr, gt_log) + seg_weight * seg_loss(out.seg_logits, labels)``.

    Args:
        out: an :class:`~hdr_core.models.HDROutput`. Without ``seg_logits`` (or ``labels``) only ``si_mse`` counts.
        gt_log: target log HDR.
        labels: Eq. 6 segmentation labels ``BxHxW`` (:func:`hdr_core.masks.segmentation_labels`).
        seg_weight: weight of the segmentation term (0.05).
        return_parts: also return ``{"si_mse": ..., "seg": ...}`` (detached).

    Returns:
        The scalar loss, or ``(loss, parts)``.
    """
    si = si_mse(out.log_hdr, gt_log)
    loss, parts = si, {"si_mse": si.detach()}
    if out.seg_logits is not None and labels is not None and seg_weight:
        seg = seg_loss(out.seg_logits, labels)
        loss = loss + seg_weight * seg
        parts["seg"] = seg.detach()
    return (loss, parts) if return_parts else loss


def pano_masked_loss(pred_log: Tensor, gt_log: Tensor, mask: Tensor, beta1: float = BETA1,
                     beta2: float = BETA2) -> Tensor:
    """Eq. 9: ``beta1 * mean((m * d)^2) + beta2 * mean(((1 - m) * d)^2)``, ``d = pred - gt``.

    Args:
        pred_log: merged log-HDR panorama ``Bx3xHxW``.
        gt_log: target log HDR.
        mask: merge mask ``Bx1xHxW`` (or ``Bx3xHxW``) in [0, 1]; the means run over the 3-channel product, as
            the reference tiles the mask to 3 channels.
        beta1: weight of the masked (saturated, ceiling-merged) region.
        beta2: weight of the rest.
    """
    _check_same_shape(pred_log, gt_log)
    d = pred_log - gt_log
    m = mask.to(d.dtype)
    return beta1 * (m * d).square().mean() + beta2 * ((1.0 - m) * d).square().mean()
