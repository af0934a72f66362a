"""LDR styles: 8-bit panoramas as real cameras and tone mappers make them (issue #14; ``docs/method-notes.md``).

One entry point, :func:`make_ldr`, turns a linear HDR image (a whole 2:1 panorama or a perspective crop) into an
8-bit display-referred RGB LDR in one of :data:`LDR_STYLES`, and returns every parameter it drew:

* ``virtual``: the paper's virtual camera (:func:`hdr_core.camera.virtual_camera`; same pixels for the same seed).
* ``mdk08``: the Display Adaptive TMO of Mantiuk, Daly and Kerofsky 2008, the paper's second LDR per HDR "to fit
  images that may be post-processed": a display model (peak, black level, ambient reflections, gamma 2.2) and the
  piecewise-linear tone curve in log10 luminance that minimises ``sum_k p_k (1 - s_k)^2`` (``p_k`` the image's
  log-luminance histogram, ``s_k`` the curve's slopes, ``delta`` = 0.1 log10 units) subject to the display's
  dynamic range ``sum_k s_k delta <= r``, ``s_k >= 0``. That is MDK08's optimisation with its visual-model
  transducer left out (closed form; the same reduction as Eilertsen et al. 2015); details in
  ``docs/method-notes.md``.
* ``phone_hdr``: a phone's HDR mode, multi-frame exposure fusion (Mertens et al. 2007, OpenCV's
  ``MergeMertens``) of a 3-frame bracket (a short frame that holds the highlights, the metered one, a long one),
  then white balance error, saturation, contrast, sharpening, JPEG 80-95.
* ``phone_local``: a phone's HDR-mode *local* tone mapping: log-luminance base/detail split with a bilateral filter
  (Durand & Dorsey 2002), the base compressed to an 8:1-30:1 range and exposed so that its brightest level stays
  below white, detail kept or boosted, then the same finish as ``phone_hdr`` (JPEG 75-92).
* ``filmic``: a filmic highlight roll-off (Hable's curve with a random white point and shoulder) on an
  auto-exposed image, mild saturation/contrast, JPEG 85-95.
* ``camera360``: a consumer 360 camera: whole-sphere auto-exposure, a soft-shoulder camera curve, sensor noise,
  the blur of stitching and equirectangular resampling (a global resample and, on 2:1 panoramas, two feathered
  lens seams half a turn apart with a small gain mismatch between the lenses), sharpening, JPEG 70-88.

Every look is seeded (``rng`` a Generator or a seed) and deterministic; the returned dict is JSON-serialisable and
holds ``"style"`` and every drawn value. Building blocks (:func:`white_balance`, :func:`saturate`,
:func:`contrast`, :func:`sharpen`, :func:`resample_blur`, :func:`hable`, :func:`mdk08_tone_curve`, ...) are public
and tested one by one.
"""

from __future__ import annotations

import cv2
import numpy as np

from hdr_core.camera import CameraConfig, jpeg_roundtrip, meter, virtual_camera
from hdr_core.color import LUMA_709, linear_to_srgb, luminance, quantize_8bit, srgb_to_linear

__all__ = ["LDR_STYLES", "contrast", "exposure_fusion", "hable", "local_tone_map", "make_ldr", "mdk08",
           "mdk08_slopes", "mdk08_tone_curve", "meter", "resample_blur", "saturate", "sharpen", "stitch_seams",
           "white_balance"]

#: Every LDR style :func:`make_ldr` knows.
LDR_STYLES = ("virtual", "mdk08", "phone_hdr", "phone_local", "filmic", "camera360")

_LUMA = np.asarray(LUMA_709, np.float32)


# ---------------------------------------------------------------------------------------------- building blocks


def white_balance(x: np.ndarray, gains) -> np.ndarray:
    """Per-channel gains on linear RGB (an auto white balance that misjudged the illuminant)."""
    return x * np.asarray(gains, np.float32)


def saturate(d: np.ndarray, amount: float) -> np.ndarray:
    """Scale chroma about each pixel's luma (display values; 1 = unchanged, > 1 more saturated), clipped to [0, 1]."""
    y = (d @ _LUMA)[..., None]
    return np.clip(y + amount * (d - y), 0.0, 1.0)


def contrast(d: np.ndarray, amount: float) -> np.ndarray:
    """An S-curve about mid-grey on display values: ``d + 4 a (d - 0.5) d (1 - d)``.

    Fixes 0, 0.5 and 1; slope ``1 + a`` at mid-grey; monotonic for ``0 <= a < 0.5``.
    """
    if not 0.0 <= amount < 0.5:
        raise ValueError(f"contrast amount must be in [0, 0.5), got {amount}")
    d = np.clip(d, 0.0, 1.0)
    return d + 4.0 * amount * (d - 0.5) * d * (1.0 - d)


def sharpen(d: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """Unsharp mask ``d + amount (d - G_sigma * d)`` (display values), clipped to [0, 1]."""
    blur = cv2.GaussianBlur(d, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    return np.clip(d + amount * (d - blur), 0.0, 1.0)


def resample_blur(d: np.ndarray, factor: float) -> np.ndarray:
    """Down-sample by ``factor`` (area filter) and back up (bilinear): the softness of a resampled image."""
    h, w = d.shape[:2]
    small = cv2.resize(d, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def stitch_seams(d: np.ndarray, offset: float, band: float, sigma: float, gain: float) -> np.ndarray:
    """Two lens seams of a dual-lens 360 camera on a 2:1 panorama.

    The seams sit at azimuth fractions ``offset`` and ``offset + 0.5``; within a feathered band of ``band`` x width
    columns the image is blurred (``sigma`` pixels), and the half between the seams (one lens) is scaled by
    ``gain``, feathered across the bands (the exposure mismatch between two lenses).
    """
    h, w = d.shape[:2]
    x = (np.arange(w) + 0.5) / w
    dist = np.minimum(np.abs(((x - offset) + 0.5) % 1.0 - 0.5), np.abs(((x - offset - 0.5) + 0.5) % 1.0 - 0.5))
    half = max(band * 0.5, 1.0 / w)
    weight = np.clip(1.0 - dist / half, 0.0, 1.0).astype(np.float32)  # 1 on the seam, 0 outside the band
    padded = np.concatenate([d[:, -w // 4:], d, d[:, : w // 4]], axis=1)  # the panorama wraps around
    blurred = cv2.GaussianBlur(padded, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)[:, w // 4: w // 4 + w]
    out = d + weight[None, :, None] * (blurred - d)
    # lens B spans the half-turn after the first seam; its gain ramps in across each band (signed distance)
    phase = (x - offset) % 1.0
    signed = np.where(phase < 0.5, np.minimum(phase, 0.5 - phase), -np.minimum(phase - 0.5, 1.0 - phase))
    inside = np.clip(0.5 + signed / (2.0 * half), 0.0, 1.0).astype(np.float32)
    return np.clip(out * (1.0 + (gain - 1.0) * inside[None, :, None]), 0.0, 1.0)


def hable(x: np.ndarray, white: float, shoulder: float = 0.22) -> np.ndarray:
    """Hable's filmic curve (Uncharted 2), normalised so that ``white`` maps to 1; linear in, linear display out.

    ``shoulder`` is the curve's A (shoulder strength); B..F are Hable's published constants.
    """
    a, b, c, dd, e, f = shoulder, 0.30, 0.10, 0.20, 0.01, 0.30

    def curve(v):
        return (v * (a * v + c * b) + dd * e) / (v * (a * v + b) + dd * f) - e / f

    return np.clip(curve(np.maximum(x, 0.0)) / curve(np.float32(white)), 0.0, 1.0)


def _soft_shoulder(x: np.ndarray, white: float) -> np.ndarray:
    """Extended Reinhard ``x (1 + x / w^2) / (1 + x)``: a camera's gentle highlight shoulder, ``w`` maps to 1."""
    x = np.maximum(x, 0.0)
    return np.clip(x * (1.0 + x / (white * white)) / (1.0 + x), 0.0, 1.0)


def exposure_fusion(frames: list[np.ndarray]) -> np.ndarray:
    """Mertens et al. 2007 exposure fusion of 8-bit display-referred frames (OpenCV ``MergeMertens``).

    Contrast, saturation and well-exposedness weighted 1 each (the paper's; OpenCV's default leaves
    well-exposedness out). The pyramid blend overshoots 1 around large highlights (their low frequencies come from
    the frames the rest of the image prefers), so the result is scaled to put its 99.9th percentile at most at 1,
    as fusion pipelines normalise before the display curve. Returns float32 display values in [0, 1].
    """
    merge = cv2.createMergeMertens(1.0, 1.0, 1.0)
    # on one OpenCV thread: with several, MergeMertens adds the frames' weighted pyramids into one sum in the order
    # the threads finish, so the same frames gave different bits now and then (~1 pair in 1500 when two training
    # processes shared the cores; 2026-12-06)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        fused = merge.process([np.ascontiguousarray(f, np.uint8) for f in frames])
    finally:
        cv2.setNumThreads(threads)
    return np.clip(fused / max(1.0, float(np.percentile(fused, 99.9))), 0.0, 1.0)


def local_tone_map(hdr: np.ndarray, base_range: float, detail: float, color: float = 1.0) -> np.ndarray:
    """Durand & Dorsey 2002 style local tone mapping: linear HDR in, linear (peak ~1) out.

    log10 luminance = base (bilateral filter, computed at up to 256 px on the long side) + detail; the base is
    scaled to span ``base_range`` log10 units below 0, the detail multiplied by ``detail``; colour ratios
    ``(rgb / L)^color`` are kept.
    """
    lum = np.maximum(luminance(hdr), 1e-9).astype(np.float32)
    logl = np.log10(lum)
    h, w = logl.shape
    s = min(1.0, 256.0 / max(h, w))
    small = cv2.resize(logl, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    sigma_space = max(1.0, 0.02 * max(small.shape))
    base_small = cv2.bilateralFilter(small, d=-1, sigmaColor=0.4, sigmaSpace=sigma_space,
                                     borderType=cv2.BORDER_REFLECT)
    base = cv2.resize(base_small, (w, h), interpolation=cv2.INTER_LINEAR)
    hi, lo = np.percentile(base, [99.5, 0.5])
    scale = min(1.0, base_range / max(float(hi - lo), 1e-6))
    out_log = (base - hi) * scale + detail * (logl - base)
    out_lum = np.power(10.0, out_log).astype(np.float32)
    ratio = np.power(np.maximum(hdr, 0.0) / lum[..., None], color)
    return (ratio * out_lum[..., None]).astype(np.float32)


# ---------------------------------------------------------------------------------------------- MDK08


def mdk08_slopes(p: np.ndarray, r_over_delta: float) -> np.ndarray:
    """Slopes of the MDK08 tone curve for histogram ``p`` (one value per bin).

    Minimises ``sum_k p_k (1 - s_k)^2`` subject to ``sum_k s_k <= r / delta`` and ``s_k >= 0``: if the image fits
    the display (``N <= r / delta``) every slope is 1; otherwise ``s_k = 1 + (r/delta - N') / (p_k sum_i 1/p_i)``
    over the active bins, bins whose slope would be negative (and empty bins) set to 0 and dropped, repeated.
    """
    p = np.asarray(p, np.float64)
    n = p.size
    if n <= r_over_delta:
        return np.ones(n)
    s = np.zeros(n)
    active = p > 0
    while active.any():
        inv = 1.0 / p[active]
        cand = 1.0 + (r_over_delta - active.sum()) / (p[active] * inv.sum())
        if (cand >= 0).all():
            s[active] = cand
            break
        idx = np.flatnonzero(active)
        active[idx[cand < 0]] = False
    return s


def mdk08_tone_curve(log_lum: np.ndarray, display_range: float, delta: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The MDK08 tone curve for an image's log10 luminances: nodes ``(l, d)``, ``d`` in log10 display units with
    the brightest node at 0 (the display's peak) and the curve spanning at most ``display_range`` log10 units."""
    lo, hi = np.percentile(log_lum, 0.1), float(log_lum.max())
    n = max(1, int(np.ceil((hi - lo) / delta)))
    edges = hi - delta * np.arange(n, -1, -1)
    p, _ = np.histogram(log_lum, bins=edges)
    s = mdk08_slopes(p / max(1, p.sum()), display_range / delta)
    d = np.concatenate([[0.0], np.cumsum(s * delta)])
    return edges, d - d[-1]


def mdk08(hdr: np.ndarray, peak: float, contrast_ratio: float, ambient_lux: float, saturation: float = 1.0,
          reflectivity: float = 0.01, gamma: float = 2.2, delta: float = 0.1) -> tuple[np.ndarray, dict]:
    """Display Adaptive Tone Mapping (MDK08, visual model omitted): linear HDR -> display values in [0, 1].

    Display model (MDK08 Eq. 1): ``L_d(V) = (peak - black) V^gamma + black + reflected``, ``black = peak /
    contrast_ratio``, ``reflected = reflectivity / pi * ambient_lux``. Its range ``r = log10((peak + reflected) /
    (black + reflected))`` bounds the tone curve (:func:`mdk08_tone_curve`); colours follow ``L_d (C / L)^s``.
    """
    black = peak / contrast_ratio
    refl = reflectivity / np.pi * ambient_lux
    d_max, d_min = peak + refl, black + refl
    r = float(np.log10(d_max / d_min))
    lum = np.maximum(luminance(hdr), 1e-12).astype(np.float32)
    floor = float(lum.max()) * 1e-12
    logl = np.log10(np.maximum(lum, floor))
    edges, d = mdk08_tone_curve(logl, r, delta)
    ld = d_max * np.power(10.0, np.interp(logl, edges, d, left=-np.inf)).astype(np.float32)
    rgb = ld[..., None] * np.power(np.maximum(hdr, 0.0) / lum[..., None], saturation)
    v = np.clip((rgb - d_min) / (peak - black), 0.0, 1.0) ** (1.0 / gamma)
    compression = float((d[-1] - d[0]) / max(edges[-1] - edges[0], 1e-9))
    return v.astype(np.float32), {"display_range_log10": r, "image_range_log10": float(edges[-1] - edges[0]),
                                  "curve_compression": compression, "bins": int(edges.size - 1)}


# ---------------------------------------------------------------------------------------------- the looks


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _wb_gains(rng: np.random.Generator, max_ratio: float) -> list[float]:
    """A white balance error: red and blue gains up to ``max_ratio`` apart, grey luminance kept."""
    g = np.array([np.exp(rng.uniform(-np.log(max_ratio), np.log(max_ratio))), 1.0,
                  np.exp(rng.uniform(-np.log(max_ratio), np.log(max_ratio)))])
    g = g / float(g @ np.asarray(LUMA_709))
    return [round(float(x), 6) for x in g]


def _finish(d: np.ndarray, rng: np.random.Generator, sat: tuple[float, float], con: tuple[float, float],
            sharp: tuple[float, float], jpeg: tuple[int, int], params: dict) -> np.ndarray:
    """The processing every phone-like look ends with: saturation, contrast, sharpening, 8 bits, JPEG."""
    params["saturation"] = _u(rng, *sat)
    params["contrast"] = _u(rng, *con)
    params["sharpen_amount"] = _u(rng, *sharp)
    params["sharpen_sigma"] = _u(rng, 0.7, 1.5)
    params["jpeg_quality"] = int(rng.integers(jpeg[0], jpeg[1] + 1))
    d = saturate(d, params["saturation"])
    d = contrast(d, params["contrast"])
    d = sharpen(d.astype(np.float32), params["sharpen_amount"], params["sharpen_sigma"])
    return jpeg_roundtrip(quantize_8bit(d), params["jpeg_quality"])


def _srgb(x: np.ndarray) -> np.ndarray:
    return linear_to_srgb(np.clip(x, 0.0, 1.0)).astype(np.float32)


def _exposed(p: dict, ev: float) -> None:
    """An exposure error of ``ev`` stops on the look's metered exposure (recorded only when not 0)."""
    if ev:
        p["exposure_ev"] = float(ev)
        p["exposure"] = float(p["exposure"] * 2.0**ev)


def _look_mdk08(hdr: np.ndarray, rng: np.random.Generator, ev: float = 0.0) -> tuple[np.ndarray, dict]:
    # a display-adaptive tone curve of the log-luminance histogram: the same for any scale of the input, so an
    # exposure error has nothing to act on (``ev`` is ignored)
    p = {"display_peak": _u(rng, 80.0, 400.0), "contrast_ratio": float(np.exp(rng.uniform(np.log(300), np.log(3000)))),
         "ambient_lux": float(np.exp(rng.uniform(np.log(20), np.log(500)))), "color_saturation": _u(rng, 0.9, 1.1)}
    v, info = mdk08(hdr, p["display_peak"], p["contrast_ratio"], p["ambient_lux"], p["color_saturation"])
    return quantize_8bit(v), {**p, **info}


def _look_phone_hdr(hdr: np.ndarray, rng: np.random.Generator, ev: float = 0.0) -> tuple[np.ndarray, dict]:
    p: dict = {"wb_gains": _wb_gains(rng, 1.06), "bracket_ev": _u(rng, 1.5, 2.5), "target_mean": _u(rng, 0.42, 0.5),
               "highlight_percentile": _u(rng, 99.0, 99.9)}
    x = white_balance(hdr, p["wb_gains"])
    p["exposure"] = meter(x, _srgb, p["target_mean"])
    # the short frame protects the highlights (as HDR+ style brackets do): the chosen percentile just below white,
    # between bracket_ev and 6 stops under the metered exposure
    hi = float(np.percentile(luminance(x[:: max(1, x.shape[0] // 128), :: max(1, x.shape[1] // 256)]),
                             p["highlight_percentile"]))
    p["short_ev"] = float(np.clip(np.log2(max(hi * p["exposure"] / 0.9, 1e-9)), p["bracket_ev"], 6.0))
    frames = [_srgb(x * np.float32(p["exposure"] * 2.0**stops)) for stops in (-p["short_ev"], 0.0, p["bracket_ev"])]
    d = exposure_fusion([quantize_8bit(f) for f in frames])
    if ev:  # exposure compensation on the fused image (fusion of a shifted bracket would undo most of it)
        p["exposure_ev"] = float(ev)
        d = _srgb(srgb_to_linear(d) * np.float32(2.0**ev))
    return _finish(d, rng, (1.05, 1.3), (0.05, 0.25), (0.2, 0.8), (80, 95), p), p


def _look_phone_local(hdr: np.ndarray, rng: np.random.Generator, ev: float = 0.0) -> tuple[np.ndarray, dict]:
    p: dict = {"wb_gains": _wb_gains(rng, 1.06), "base_range_log10": _u(rng, 0.9, 1.5),
               "detail_boost": _u(rng, 1.0, 1.3), "color_ratio": _u(rng, 0.8, 1.0), "target_mean": _u(rng, 0.42, 0.5),
               "highlight_headroom": _u(rng, 1.0, 1.25)}
    x = local_tone_map(white_balance(hdr, p["wb_gains"]), p["base_range_log10"], p["detail_boost"], p["color_ratio"])
    # auto-exposure, but never above the gain that puts the brightest base level at white (the point of HDR mode)
    p["exposure"] = min(meter(x, _srgb, p["target_mean"]), 1.0 / p["highlight_headroom"])
    _exposed(p, ev)
    d = _srgb(x * np.float32(p["exposure"]))
    return _finish(d, rng, (1.05, 1.3), (0.0, 0.2), (0.2, 0.7), (75, 92), p), p


def _look_filmic(hdr: np.ndarray, rng: np.random.Generator, ev: float = 0.0) -> tuple[np.ndarray, dict]:
    p: dict = {"wb_gains": _wb_gains(rng, 1.04), "white": float(np.exp(rng.uniform(np.log(4.0), np.log(16.0)))),
               "shoulder": _u(rng, 0.15, 0.3), "target_mean": _u(rng, 0.4, 0.48)}
    x = white_balance(hdr, p["wb_gains"])
    tone = lambda v: _srgb(hable(v, p["white"], p["shoulder"]))  # noqa: E731
    p["exposure"] = meter(x, tone, p["target_mean"])
    _exposed(p, ev)
    d = tone(x * np.float32(p["exposure"]))
    return _finish(d, rng, (0.95, 1.15), (0.0, 0.15), (0.0, 0.4), (85, 95), p), p


def _look_camera360(hdr: np.ndarray, rng: np.random.Generator, ev: float = 0.0) -> tuple[np.ndarray, dict]:
    h, w = hdr.shape[:2]
    p: dict = {"wb_gains": _wb_gains(rng, 1.08), "shoulder_white": _u(rng, 2.0, 6.0), "target_mean": _u(rng, 0.42, 0.5),
               "noise": _u(rng, 0.002, 0.01), "resample_factor": _u(rng, 1.2, 2.0),
               "seams": bool(w == 2 * h), "seam_offset": _u(rng, 0.0, 1.0), "seam_band": _u(rng, 0.02, 0.05),
               "seam_sigma": _u(rng, 1.0, 3.0), "lens_gain": _u(rng, 0.96, 1.04)}
    x = white_balance(hdr, p["wb_gains"])
    tone = lambda v: _srgb(_soft_shoulder(v, p["shoulder_white"]))  # noqa: E731
    p["exposure"] = meter(x, tone, p["target_mean"])
    _exposed(p, ev)
    lin = np.clip(x * np.float32(p["exposure"]), 0.0, None)
    # shot noise (variance proportional to the signal) plus read noise, on the clipped sensor signal
    sig = np.minimum(lin, 1.0)
    noise = rng.standard_normal(lin.shape, dtype=np.float32) * np.sqrt(p["noise"] * sig + (0.1 * p["noise"]) ** 2)
    d = tone(np.maximum(lin + noise.astype(np.float32), 0.0))
    d = resample_blur(d, p["resample_factor"])
    if p["seams"]:
        d = stitch_seams(d, p["seam_offset"], p["seam_band"], p["seam_sigma"], p["lens_gain"])
    return _finish(d, rng, (1.0, 1.2), (0.0, 0.2), (0.1, 0.5), (70, 88), p), p


_LOOKS = {"mdk08": _look_mdk08, "phone_hdr": _look_phone_hdr, "phone_local": _look_phone_local,
          "filmic": _look_filmic, "camera360": _look_camera360}


def make_ldr(hdr: np.ndarray, style: str, rng: np.random.Generator | int | None = None, *,
             camera: CameraConfig | None = None, exposure_ev: float = 0.0) -> tuple[np.ndarray, dict]:
    """Make one 8-bit LDR of a linear HDR image in an LDR style.

    Args:
        hdr: linear HDR, ``HxWx3`` float (negatives are clamped to 0): a whole panorama or a perspective crop.
        style: one of :data:`LDR_STYLES`.
        rng: a numpy Generator or a seed; the same seed gives the same LDR and parameters.
        camera: ranges of the ``virtual`` style (default: the paper's :class:`~hdr_core.camera.CameraConfig`).
        exposure_ev: an exposure error in stops, as a photo exposed brighter (> 0) or darker than its meter chose:
            the style's metered exposure times ``2 ** exposure_ev`` (``params["exposure_ev"]`` when not 0); for
            ``phone_hdr`` the fused image's linear values times ``2 ** exposure_ev`` (a shifted bracket would fuse
            to nearly the same image). No effect on ``mdk08``, whose tone curve does not depend on the input's
            scale. The random numbers drawn
            are the same for any value.

    Returns:
        ``(ldr, params)``: ``ldr`` is ``HxWx3`` uint8 display-referred RGB; ``params`` a JSON-serialisable dict of
        everything drawn, with ``"style"``.

    Raises:
        ValueError: an unknown style, a wrong shape, or a black / non-finite image.
    """
    if style not in LDR_STYLES:
        raise ValueError(f"unknown LDR style {style!r}; valid styles: {', '.join(LDR_STYLES)}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    hdr = np.asarray(hdr, dtype=np.float32)
    if hdr.ndim != 3 or hdr.shape[-1] != 3:
        raise ValueError(f"LDR style {style}: expected an HxWx3 image, got shape {hdr.shape}")
    if style == "virtual":
        ldr, cam = virtual_camera(hdr, rng, camera or CameraConfig(), exposure_ev=exposure_ev)
        shift = {"exposure_ev": float(exposure_ev)} if exposure_ev else {}
        return ldr, {"style": "virtual", **cam.to_dict(), **shift}
    hdr = np.maximum(hdr, 0.0)
    if not np.isfinite(hdr).all() or float(hdr.max()) <= 0:
        raise ValueError(f"LDR style {style}: the HDR image is black or not finite")
    ldr, params = _LOOKS[style](hdr, rng, exposure_ev)
    params = {"style": style, **params, "clipped_fraction": float((ldr.max(axis=-1) == 255).mean())}
    return np.ascontiguousarray(ldr, dtype=np.uint8), params
