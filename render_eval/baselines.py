"""Training-free baselines: the linearised LDR and three classical expansion operators (method.md §5).

Every operator maps an LDR in display values (sRGB, ``HxWx3`` in [0, 1]) to a linear HDR image on a *relative*
scale (float32, >= 0, finite). All linearise with the project's input model, :func:`hdr_core.color.ldr_to_linear`
(sRGB EOTF after clamping to >= 1/255), where the MATLAB implementations remove a gamma of 2.2; the operators on
luminance (Rec. 709 of the linear RGB) recolour with the ratio ``rgb_out = rgb_lin * L_out / L_in``. The caller
calibrates each output against the linearised LDR (:func:`hdr_core.calibration.calibrate`, Eq. 1) before any
metric, so absolute output levels (the papers' display peaks in cd/m2) do not matter and are dropped.

What calibration leaves of the LDR where it is not saturated (:data:`PRESERVES_UNSATURATED`; "kept" means equal
to the linearised LDR up to one global scale, which calibration then fixes):

* ``ldr``: kept exactly (it *is* the linearised LDR; calibration scale 1).
* ``koeo``: kept, except within about 2 ``sigma_s`` in space *and* 2 ``sigma_r`` (~50/255) in brightness of
  clipped pixels, where the expand map starts to rise, and for the display black level (``display_min /
  display_max`` = 2.5e-4 of white, added to every pixel). Boosted near-threshold pixels (display ~0.8-0.92) are
  inside the calibration mask (linear mean < 0.83), so the calibration scale drops a little (6 % on a gray ramp
  with a clipped fifth).
* ``akyuz``: not kept: it subtracts the image's black level ``L_d,min``; with the default gamma 1 that is all it
  does, so on images that contain black it is nearly the ``ldr`` baseline.
* ``masia``: not kept: a global power curve changes every tone.

References:
    Akyuz, Fleming, Riecke, Reinhard, Bulthoff, "Do HDR displays support LDR content? A psychophysical
    evaluation", ACM TOG 26(3) (SIGGRAPH 2007), Eq. 1.
    Masia, Agustin, Fleming, Sorkine, Gutierrez, "Evaluation of reverse tone mapping through varying exposure
    conditions", ACM TOG 28(5) (SIGGRAPH Asia 2009), the image key and the fitted gamma(k) = 10.44 k - 6.282.
    Kovaleski, Oliveira, "High-quality reverse tone mapping for a wide range of exposures", SIBGRAPI 2014
    (KOEO, the paper's Table 4), building on their "High-quality brightness enhancement functions for real-time
    reverse tone mapping", The Visual Computer 25 (2009), which computes the cross-bilateral filter with the
    bilateral grid (Chen, Paris, Durand, SIGGRAPH 2007; Paris & Durand, ECCV 2006), as done here.
The code is written from the papers' formulas. Parameter defaults are the papers' values as also used by Banterle's
HDR Toolbox (``AkyuzEO.m``, ``MasiaEO.m``, ``imKey.m``, ``KovaleskiOliveiraEO.m``; consulted for the constants,
no code taken). KOEO's expand-map maximum ``alpha = 4`` and Masia's 1 % robust key quantiles are the toolbox's
values; the KOEO paper body was not available to confirm them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from hdr_core.color import LUMA_709, ldr_to_linear, luminance


def _check_ldr(ldr_display) -> np.ndarray:
    x = np.asarray(ldr_display, dtype=np.float64)
    if x.ndim != 3 or x.shape[-1] != 3 or min(x.shape[:2]) < 1:
        raise ValueError(f"expected an HxWx3 LDR image, got shape {x.shape}")
    if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise ValueError("LDR display values must be finite and in [0, 1] (divide 8-bit images by 255)")
    return x


def _recolour(lin: np.ndarray, l_in: np.ndarray, l_out: np.ndarray) -> np.ndarray:
    """``rgb * L_out / L_in`` (``L_in > 0`` because of the 1/255 clamp), float32, >= 0."""
    out = lin * (np.maximum(l_out, 0.0) / l_in)[..., None]
    return out.astype(np.float32)


def ldr(ldr_display: np.ndarray) -> np.ndarray:
    """The floor every method must beat: the LDR linearised (sRGB EOTF, >= 1/255 clamp) and used as is.

    Args:
        ldr_display: LDR display values, ``HxWx3`` in [0, 1].

    Returns:
        :func:`hdr_core.color.ldr_to_linear` of the input, float32.
    """
    return ldr_to_linear(_check_ldr(ldr_display)).astype(np.float32)


def akyuz(ldr_display: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """Akyuz et al. 2007, Eq. 1: ``L = k * ((L_d - L_d,min) / (L_d,max - L_d,min))^gamma`` (here ``k = 1``).

    ``L_d`` is the luminance of the linearised LDR; min and max are over the image. The paper found plain linear
    scaling (``gamma = 1``, the default) as good as or better than more complex expansions on an HDR display.
    A flat image (``L_d,max == L_d,min``) is returned linearised.

    Args:
        ldr_display: LDR display values, ``HxWx3`` in [0, 1].
        gamma: exponent of the expansion curve (> 0).

    Returns:
        Linear HDR, relative scale (peak luminance 1), float32.
    """
    if gamma <= 0:
        raise ValueError(f"akyuz: gamma must be > 0, got {gamma}")
    lin = ldr_to_linear(_check_ldr(ldr_display))
    lum = luminance(lin)
    lo, hi = float(lum.min()), float(lum.max())
    if hi <= lo:
        return lin.astype(np.float32)
    return _recolour(lin, lum, ((lum - lo) / (hi - lo)) ** gamma)


def masia_key(lum: np.ndarray, robust: float = 0.01, eps: float = 1e-6) -> float:
    """Image key of Masia et al. 2009: ``k = (log L_avg - log L_min) / (log L_max - log L_min)``.

    ``L_avg = exp(mean(log(L + eps)))``; ``L_min`` / ``L_max`` are the ``robust`` and ``1 - robust`` quantiles
    (1 % of the darkest and of the brightest pixels excluded, as in the HDR Toolbox's ``imKey``). Returns 0.5 for a
    flat image.
    """
    lum = np.asarray(lum, dtype=np.float64)
    l_avg = float(np.exp(np.mean(np.log(lum + eps))))
    l_min, l_max = (float(v) for v in np.quantile(lum, [robust, 1.0 - robust]))
    l_min = max(l_min, eps)
    if l_max <= l_min:
        return 0.5
    return float(np.clip((np.log(l_avg) - np.log(l_min)) / (np.log(l_max) - np.log(l_min)), 0.0, 1.0))


def masia(ldr_display: np.ndarray, a: float = 10.44, b: float = -6.282, min_gamma: float = 0.1) -> np.ndarray:
    """Masia et al. 2009: gamma expansion ``L = L_d^gamma`` with ``gamma = a * k + b`` from the image key ``k``.

    ``a = 10.44``, ``b = -6.282`` are the paper's fit of the preferred gamma against the key (:func:`masia_key`),
    computed here on the linearised LDR luminance. The fit gives ``gamma <= 0`` for keys below 0.60 (dark
    images), which would invert or flatten the tones; this implementation clamps ``gamma`` to ``min_gamma`` (a
    deviation the paper does not specify). The optional bilateral detail preservation of the later journal
    version (Masia et al. 2015) is not included.

    Args:
        ldr_display: LDR display values, ``HxWx3`` in [0, 1].
        a: slope of ``gamma(k)``.
        b: intercept of ``gamma(k)``.
        min_gamma: lower clamp of ``gamma`` (> 0).

    Returns:
        Linear HDR, relative scale (LDR white -> 1), float32.
    """
    lin = ldr_to_linear(_check_ldr(ldr_display))
    lum = luminance(lin)
    gamma = max(a * masia_key(lum) + b, min_gamma)
    return _recolour(lin, lum, lum**gamma)


def cross_bilateral_grid(values: np.ndarray, guide: np.ndarray, sigma_s: float, sigma_r: float) -> np.ndarray:
    """Cross-bilateral filter of ``values`` with edges from ``guide`` (both ``HxW``), via the bilateral grid.

    Splat ``(values, 1)`` into a grid of cells ``sigma_s`` pixels by ``sigma_r`` guide units, blur with a unit
    Gaussian in cell units, slice trilinearly and normalise (Paris & Durand 2006; Chen et al. 2007). The result
    approximates ``sum_q G_s(p - q) G_r(I_p - I_q) v_q / sum_q G_s(p - q) G_r(I_p - I_q)``.
    """
    h, w = guide.shape
    pad = 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    g0 = float(guide.min())
    coords = [yy / sigma_s + pad, xx / sigma_s + pad, (guide - g0) / sigma_r + pad]
    shape = tuple(int(np.ceil(c.max())) + pad + 1 for c in coords)
    idx = np.ravel_multi_index(tuple(np.rint(c).astype(np.int64) for c in coords), shape)
    size = int(np.prod(shape))
    num = np.bincount(idx.ravel(), weights=values.ravel(), minlength=size).reshape(shape)
    den = np.bincount(idx.ravel(), minlength=size).astype(np.float64).reshape(shape)
    num, den = (ndimage.gaussian_filter(g, 1.0, mode="constant") for g in (num, den))
    pts = np.stack([c.ravel() for c in coords])
    n = ndimage.map_coordinates(num, pts, order=1).reshape(h, w)
    d = ndimage.map_coordinates(den, pts, order=1).reshape(h, w)
    return n / np.maximum(d, 1e-12)


def koeo(ldr_display: np.ndarray, threshold: float = 254.0 / 255.0, sigma_s: float | None = None,
         sigma_r: float = 25.0 / 255.0, alpha: float = 4.0, display_min: float = 0.3,
         display_max: float = 1200.0) -> np.ndarray:
    """Kovaleski & Oliveira 2014 (KOEO): expand map from a cross-bilateral filter of the saturation mask.

    1. Mask ``M = max_c(v) > threshold`` on the display values ``v`` (254/255 for still images; the paper uses
       230/255 for video).
    2. Brightness enhancement function ``E = 1 + (alpha - 1) * CBF(M)``: the cross-bilateral filter of ``M``
       guided by the LDR's display luma (Rec. 709 weights on ``v``), spatial sigma ``sigma_s``, range sigma
       ``sigma_r`` = 25/255, via the bilateral grid as in their 2009 paper. ``E`` is 1 far from clipped pixels
       and up to ``alpha`` = 4 inside large clipped regions.
    3. Expanded luminance ``L = (L_d * (display_max - display_min) + display_min) * E`` with ``L_d`` the
       linearised LDR luminance, divided by ``display_max`` (relative scale), recoloured by the luminance ratio.

    ``sigma_s`` defaults to the paper's 150 px for HD (1920-px-wide) content scaled to the image width,
    ``150 * W / 1920``. Edges are not wrapped around the panorama's seam.

    Args:
        ldr_display: LDR display values, ``HxWx3`` in [0, 1].
        threshold: saturation threshold on the display values' channel max.
        sigma_s: spatial sigma in pixels (None: ``150 * W / 1920``).
        sigma_r: range sigma in display-luma units.
        alpha: maximum of the expand map.
        display_min: display black level (cd/m2), the paper's 0.3.
        display_max: display peak (cd/m2), the paper's 1200.

    Returns:
        Linear HDR, relative scale (unsaturated LDR white -> ~1), float32.
    """
    v = _check_ldr(ldr_display)
    lin = ldr_to_linear(v)
    lum = luminance(lin)
    mask = (v.max(axis=-1) > threshold).astype(np.float64)
    if mask.any():
        guide = v @ np.asarray(LUMA_709)
        sigma = 150.0 * v.shape[1] / 1920.0 if sigma_s is None else float(sigma_s)
        expand = 1.0 + (alpha - 1.0) * np.clip(cross_bilateral_grid(mask, guide, max(sigma, 1.0), sigma_r), 0, 1)
    else:
        expand = np.ones_like(lum)
    m = display_min / display_max
    return _recolour(lin, lum, (lum * (1.0 - m) + m) * expand)


#: Name -> operator, each ``fn(ldr_display HxWx3 in [0, 1], **params) -> float32 linear HDR (relative scale)``.
BASELINES: dict[str, Callable[..., np.ndarray]] = {"ldr": ldr, "akyuz": akyuz, "masia": masia, "koeo": koeo}
#: Name -> whether calibrated output equals the linearised LDR on unsaturated pixels (module docstring).
PRESERVES_UNSATURATED = {"ldr": True, "akyuz": False, "masia": False, "koeo": True}
