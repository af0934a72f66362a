"""Training losses of LANet / panoLANet (method.md §2-3, reference-code.md §0 items 2, 6, 7, §1.5, §2.1).

All predictions and targets are **natural-log** HDR (``log(clamp(hdr, 1e-8, 1e4))``). Every function returns a
scalar tensor (mean over the batch); :func:`lanet_loss` can also return its parts.

* :func:`si_mse` - scale-invariant MSE (Eq. 3-4, lambda = 1, no eps): per image ``mean(d^2) - mean(d)^2`` over all
  pixels *and* channels, ``d = pred - gt``; a global exposure change ``pred + log k`` costs nothing.
* :func:`seg_loss` - 3-class softmax cross-entropy, classes [over, correct, under] (Eq. 5).
* :func:`lanet_loss` - ``si_mse + 0.05 * seg_loss`` (Eq. 2).
* :func:`log_mse` - plain log-domain MSE (released panoLANet stage 1).
* :func:`pano_masked_loss` - Eq. 9, ``0.2 * mean((m d)^2) + 0.01 * mean(((1 - m) d)^2)`` (released panoLANet stage 2).
* :func:`light_loss` - beyond the paper (off by default): what the panorama lights a scene with, on the prediction
  *calibrated to the LDR input inside the graph* (Eq. 1) against the calibrated ground truth, in log space
  (:mod:`hdr_core.lighting`): diffuse irradiance on 26 normals, glossy prefiltered radiance, and the energy of the
  ground truth's brightest light (sun, lamp) as the prediction carries it.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["si_mse", "seg_loss", "lanet_loss", "log_mse", "pano_masked_loss", "light_loss", "SEG_WEIGHT", "BETA1",
           "BETA2"]

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


#: Largest log value exponentiated by :func:`light_loss` (e^20 ~ 5e8: beyond any real sun after calibration).
_LOG_MAX = 20.0


def light_loss(pred_log: Tensor, gt_hdr: Tensor, ldr_linear: Tensor, irradiance_weight: float = 1.0,
               glossy_weight: float = 1.0, peak_weight: float = 1.0,
               return_parts: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """Lighting loss on whole panoramas: squared log errors of the light the calibrated prediction casts.

    Args:
        pred_log: predicted natural-log HDR panoramas ``Bx3xHx2H``.
        gt_hdr: calibrated linear ground truth, same shape (not clamped: a sun keeps its energy).
        ldr_linear: the linearised LDR input, same shape; the prediction is calibrated to it (Eq. 1) in the graph.
        irradiance_weight: weight of ``mean_n (ln E_pred(n) - ln E_gt(n))^2`` over the 26 normals.
        glossy_weight: weight of the mean squared log error of the glossy-prefiltered panoramas (both
            :data:`hdr_core.lighting.GLOSSY_EXPONENTS` lobes, averaged).
        peak_weight: weight of ``(ln P - ln G)^2``, the energy in the cap around the ground truth's brightest light
            as the prediction (P) and the truth (G) carry it.
        return_parts: also return the three terms (detached).

    Cost: a few 8192 x 26 and 2048 x 2048 products per panorama (the panorama is area-averaged to 128x64 first);
    forward + backward took ~0.3 s for a batch of two 512x256 panoramas on the project's 2-core CPU while it was
    shared with other jobs (2026-12-02).
    """
    import torch

    from hdr_core.calibration import calibrate
    from hdr_core.lighting import GLOSSY_EXPONENTS, _luminance_small, cap_light, glossy, irradiance, peak_cap

    _check_same_shape(pred_log, gt_hdr)
    eps = 1e-6  # well below any panorama's irradiance after calibration (the LDR's white is ~1)
    pred = calibrate(pred_log.clamp(max=_LOG_MAX).exp(), ldr_linear, channel_axis=1)
    lp, lg = _luminance_small(pred)[:, None], _luminance_small(gt_hdr.clamp_min(0))[:, None]

    def sq_log(a: Tensor, b: Tensor) -> Tensor:
        return (torch.log(a + eps) - torch.log(b + eps)).square().mean()

    parts = {"irradiance": sq_log(irradiance(lp), irradiance(lg)),
             "glossy": torch.stack([sq_log(glossy(lp, k), glossy(lg, k)) for k in GLOSSY_EXPONENTS]).mean()}
    cap = peak_cap(lg)  # where the truth's brightest light is
    parts["peak"] = sq_log(cap_light(lp, cap)[0], cap_light(lg, cap)[0])
    loss = irradiance_weight * parts["irradiance"] + glossy_weight * parts["glossy"] + peak_weight * parts["peak"]
    parts = {k: v.detach() for k, v in parts.items()}
    return (loss, parts) if return_parts else loss
