"""HDR calibration (method.md §1, paper Eq. 1, tau = 0.83).

Relative HDR images have an arbitrary scale. Calibration scales an HDR image so that it agrees with its LDR
where the LDR is not over-exposed::

    M     = mean_c(I_lin) < tau                      (per pixel)
    H_cal = H * sum(M * I_lin) / sum(M * H)          (sums over pixels and channels)

``I_lin`` is the linearised LDR (:func:`hdr_core.color.ldr_to_linear`). The reference code uses the RGB mean,
not luminance, for the mask; so does this module. The same calibration puts every method's prediction and the
ground truth on one scale before rendering or scoring.

Fallback (not in the reference code, which divides by zero): when no pixel is below ``tau`` (a fully
saturated LDR) or the HDR is zero under the mask, the scale is ``sum(I_lin) / sum(H)`` over *all* pixels;
if the HDR is zero everywhere the scale is 1. Either case emits no error; :func:`calibration_scale` reports
which rule was used.

Works on numpy arrays and torch tensors, for one image or a batch (leading batch axis).
"""

from __future__ import annotations

import numpy as np

#: Calibration threshold on the linear LDR's channel mean (method.md §1).
TAU = 0.83
#: Clamp range before taking logs (reference code).
LOG_CLAMP = (1e-8, 1e4)


def _reduce_axes(ndim: int, batched: bool) -> tuple[int, ...]:
    return tuple(range(1 if batched else 0, ndim))


def calibration_scale(hdr, ldr_linear, tau: float = TAU, channel_axis: int = -1):
    """Return ``(scale, used_fallback)`` of Eq. 1 for ``hdr`` against ``ldr_linear``.

    Args:
        hdr: linear HDR, ``HxWx3`` / ``BxHxWx3`` (``channel_axis=-1``) or ``3xHxW`` / ``Bx3xHxW``
            (``channel_axis`` 0 or 1). A 4-D input is a batch.
        ldr_linear: the linearised LDR, same shape.
        tau: saturation threshold on the channel mean.
        channel_axis: the channel axis of the inputs.

    Returns:
        ``scale`` (a float for one image, an array/tensor of shape ``(B,)`` for a batch) and a boolean
        (array) saying where the all-pixels fallback was used.
    """
    if hdr.shape != ldr_linear.shape:
        raise ValueError(f"calibration: HDR shape {tuple(hdr.shape)} != LDR shape {tuple(ldr_linear.shape)}")
    batched = hdr.ndim == 4
    axes = _reduce_axes(hdr.ndim, batched)
    mask = ldr_linear.mean(axis=channel_axis, keepdims=True) < tau
    mask = mask.astype(hdr.dtype) if isinstance(mask, np.ndarray) else mask.to(hdr.dtype)
    num = (mask * ldr_linear).sum(axis=axes)
    den = (mask * hdr).sum(axis=axes)
    num_all = ldr_linear.sum(axis=axes)
    den_all = hdr.sum(axis=axes)
    fallback = den <= 0
    if isinstance(hdr, np.ndarray):
        scale = np.where(fallback, np.where(den_all > 0, num_all / np.where(den_all > 0, den_all, 1), 1.0),
                         num / np.where(fallback, 1, den))
    else:
        import torch

        one = torch.ones_like(den)
        scale = torch.where(fallback, torch.where(den_all > 0, num_all / torch.where(den_all > 0, den_all, one), one),
                            num / torch.where(fallback, one, den))
    if not batched:
        return float(scale), bool(fallback)
    return scale, fallback


def scale_from_sums(num: float, den: float, num_all: float, den_all: float) -> tuple[float, bool]:
    """Eq. 1's ``(scale, used_fallback)`` from its four sums, for an image calibrated piece by piece: ``num`` =
    sum(M * I_lin), ``den`` = sum(M * H), ``num_all`` = sum(I_lin), ``den_all`` = sum(H). Same rule and fallback
    as :func:`calibration_scale`."""
    if den > 0:
        return num / den, False
    return (num_all / den_all if den_all > 0 else 1.0), True


def calibrate(hdr, ldr_linear, tau: float = TAU, channel_axis: int = -1):
    """Scale ``hdr`` to agree with ``ldr_linear`` on unsaturated pixels (Eq. 1). See :func:`calibration_scale`."""
    scale, _ = calibration_scale(hdr, ldr_linear, tau, channel_axis)
    if hdr.ndim == 4:
        shape = [-1, 1, 1, 1]
        scale = scale.reshape(shape)
    return hdr * scale


def hdr_log(hdr):
    """``log`` of HDR values clamped to ``[1e-8, 1e4]`` (the reference code's clamp before logs)."""
    if isinstance(hdr, np.ndarray):
        return np.log(np.clip(hdr, *LOG_CLAMP))
    return hdr.clamp(*LOG_CLAMP).log()
