"""Virtual camera: synthetic 8-bit LDR images from HDR images (method.md §1, paper §5.2).

The released LANet code has no data-synthesis code; this follows the paper's description, with the
HDRCNN virtual camera's response family:

1. **dynamic range** ``DR`` drawn from 9.6-14.8 EV: the sensor's black level sits ``DR`` stops below its
   white point; signal below it is crushed to black and the rest rescaled, ``v = (v - 2^-DR) / (1 - 2^-DR)``;
2. **mean-value auto-exposure**: the exposure ``e`` is chosen (bisection in log2) so that the mean of the final
   display image is ``target_mean`` (middle grey, default 0.46 = sRGB-encoded 18 % grey); ``e * H`` clipped to
   [0, 1]. A smaller dynamic range darkens mid-tones, so auto-exposure raises ``e`` and clips more;
3. **camera response** ``f(v) = (1 + sigma) v^n / (v^n + sigma)``, sigma in [0.3, 0.5], n in [0.8, 1.0]
   (monotonic, ``f(0) = 0``, ``f(1) = 1``);
4. **8-bit quantisation**, optionally JPEG at a random quality.

Works on any HxWx3 image: whole panoramas and perspective crops alike. Seeded and reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from hdr_core.color import quantize_8bit


@dataclass(frozen=True)
class CameraConfig:
    """Ranges the virtual camera draws from (defaults: the paper's)."""

    dynamic_range_ev: tuple[float, float] = (9.6, 14.8)
    sigma: tuple[float, float] = (0.3, 0.5)
    n: tuple[float, float] = (0.8, 1.0)
    target_mean: float = 0.46
    jpeg_prob: float = 0.0  #: probability of JPEG compression
    jpeg_quality: tuple[int, int] = (30, 100)  #: HDRCNN's range
    metering_pixels: int = 16384  #: auto-exposure meters on at most this many pixels (a fixed strided subset)


@dataclass(frozen=True)
class CameraParams:
    """What one exposure used."""

    dynamic_range_ev: float
    exposure: float
    sigma: float
    n: float
    jpeg_quality: int | None
    clipped_fraction: float  #: fraction of pixels with any channel at 255

    def to_dict(self) -> dict:
        return asdict(self)


def crf(v: np.ndarray, sigma: float, n: float) -> np.ndarray:
    """Sigmoid camera response ``(1 + sigma) v^n / (v^n + sigma)`` on ``v`` in [0, 1]."""
    vn = np.power(v, n)
    return (1.0 + sigma) * vn / (vn + sigma)


def expose(hdr: np.ndarray, exposure: float, dynamic_range_ev: float, sigma: float, n: float) -> np.ndarray:
    """Deterministic part of the camera: exposure, clipping, black level, response -> display values in [0, 1]."""
    black = 2.0 ** (-dynamic_range_ev)
    # crf(clip((clip(hdr * exposure) - black) / (1 - black))) in place: the same operations on the same values
    v = np.multiply(hdr, exposure)
    np.clip(v, 0.0, 1.0, out=v)
    v -= black
    v /= 1.0 - black
    np.clip(v, 0.0, 1.0, out=v)
    np.power(v, n, out=v)  # v^n; crf: (1 + sigma) v^n / (v^n + sigma)
    d = v + sigma
    v *= 1.0 + sigma
    v /= d
    return v


#: how far :func:`meter`'s float32 mean must be from the target to decide a float64 bisection step: 5x the worst
#: error of a float32 mean of tones in [0, 1] (each value a few float32 ulps off, ~1e-6, but up to ~2e-5 for values
#: just above the black level, where ``v^n`` with ``n >= 0.8`` magnifies an absolute error of ~1e-7; the pairwise
#: sum adds ~1e-6)
SCREEN_MARGIN = 1e-4


def meter(hdr: np.ndarray, tone: Callable[[np.ndarray], np.ndarray], target: float = 0.46,
          metering_pixels: int = 16384, iters: int = 32, dtype=np.float32, what: str = "LDR look") -> float:
    """Mean-value auto-exposure: the gain ``e`` for which ``mean(tone(e * hdr)) == target`` (bisection in log2).

    ``tone`` maps linear values to display values in [0, 1] and must not decrease. Meters on a fixed strided
    subset of at most ``metering_pixels`` pixels, in ``dtype``; ``what`` names the caller in the error.

    In a dtype wider than float32, each bisection step is first decided in float32 (~3x cheaper): where that mean
    is further than :data:`SCREEN_MARGIN` from ``target``, it is on the same side as the ``dtype`` mean, so the
    decision is the one ``dtype`` takes; closer, the step is computed in ``dtype``. The same steps, the same gain
    (tested against the plain bisection), in about half the time. The margin is sized for tones like the virtual
    camera's (:func:`expose`: values in [0, 1], float32 error bounded as :data:`SCREEN_MARGIN` says); the LDR looks
    meter in float32 and are not screened.
    """
    flat = hdr.reshape(-1, hdr.shape[-1])
    sample = flat[:: max(1, flat.shape[0] // metering_pixels)].astype(dtype)
    peak = float(sample.max())
    if not np.isfinite(peak) or peak <= 0:
        raise ValueError(f"{what}: the HDR image is black or not finite")
    screen = sample.astype(np.float32) if np.dtype(dtype).itemsize > 4 else None
    # Bracket: at e = 1/peak nothing clips; the mean only grows with e.
    lo, hi = np.log2(1.0 / peak) - 30.0, np.log2(1.0 / peak) + 60.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        below = None
        if screen is not None:
            with np.errstate(over="ignore", invalid="ignore"):  # inf / NaN (gains beyond float32) decide nothing
                m = float(np.mean(tone(screen * np.float32(2.0**mid))))
            below = True if m < target - SCREEN_MARGIN else False if m > target + SCREEN_MARGIN else None
        if below is None:
            screen = None  # this close to the target, the later (closer) steps would not be decided either
            below = float(np.mean(tone(sample * dtype(2.0**mid)))) < target
        if below:
            lo = mid
        else:
            hi = mid
    return float(2.0 ** (0.5 * (lo + hi)))


def auto_exposure(hdr: np.ndarray, dynamic_range_ev: float, sigma: float, n: float,
                  target_mean: float = 0.46, metering_pixels: int = 16384, iters: int = 32) -> float:
    """Mean-value auto-exposure: the exposure whose display image has mean ``target_mean`` (:func:`meter`, in
    float64)."""
    return meter(hdr, lambda x: expose(x, 1.0, dynamic_range_ev, sigma, n), target_mean, metering_pixels, iters,
                 dtype=np.float64, what="virtual camera")


def jpeg_roundtrip(ldr: np.ndarray, quality: int) -> np.ndarray:
    """Encode an 8-bit RGB image as JPEG at ``quality`` (OpenCV, 4:2:0) and decode it again."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(ldr[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 BGR
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


def draw_camera(rng: np.random.Generator, config: CameraConfig = CameraConfig()) -> dict:
    """The random numbers of :func:`virtual_camera`, drawn in its order (the generator is consumed the same):
    ``dynamic_range_ev``, ``sigma``, ``n``, then ``use_jpeg`` and ``jpeg_quality`` (both drawn whether or not the
    photo is a JPEG)."""
    return {"dynamic_range_ev": rng.uniform(*config.dynamic_range_ev), "sigma": rng.uniform(*config.sigma),
            "n": rng.uniform(*config.n), "use_jpeg": rng.random() < config.jpeg_prob,
            "jpeg_quality": int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))}


def virtual_camera(hdr: np.ndarray, rng: np.random.Generator | int | None = None,
                   config: CameraConfig = CameraConfig(), exposure_ev: float = 0.0,
                   **fixed) -> tuple[np.ndarray, CameraParams]:
    """Take one synthetic LDR photograph of a linear HDR image.

    Args:
        hdr: linear HDR, ``HxWx3`` float, non-negative.
        rng: a numpy Generator or a seed; the same seed gives the same LDR and parameters.
        config: the ranges to draw from.
        exposure_ev: an exposure error in stops: the photo is exposed ``2 ** exposure_ev`` times the auto-exposure
            (or the fixed ``exposure``); 0 = as metered (the paper's).
        **fixed: fix any of ``dynamic_range_ev``, ``sigma``, ``n``, ``exposure``, ``jpeg_quality`` (None = no JPEG)
            instead of drawing it.

    Returns:
        ``(ldr, params)``: ``ldr`` is ``HxWx3`` uint8 (display-referred, RGB).
    """
    unknown = set(fixed) - {"dynamic_range_ev", "sigma", "n", "exposure", "jpeg_quality"}
    if unknown:
        raise TypeError(f"virtual_camera: unknown parameter(s) {sorted(unknown)}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    hdr = np.asarray(hdr, dtype=np.float32)
    if hdr.ndim != 3 or hdr.shape[-1] != 3:
        raise ValueError(f"virtual camera: expected an HxWx3 image, got shape {hdr.shape}")
    # Always draw every random number, so a fixed parameter does not shift the others' stream.
    draws = draw_camera(rng, config)
    use_jpeg, quality = draws.pop("use_jpeg"), draws.pop("jpeg_quality")
    draws.update({k: v for k, v in fixed.items() if k in draws})
    dr, sigma, n = draws["dynamic_range_ev"], draws["sigma"], draws["n"]
    exposure = fixed.get("exposure") or auto_exposure(hdr, dr, sigma, n, config.target_mean, config.metering_pixels)
    if exposure_ev:
        exposure = exposure * 2.0 ** exposure_ev
    jpeg_quality = fixed["jpeg_quality"] if "jpeg_quality" in fixed else (quality if use_jpeg else None)
    ldr = quantize_8bit(expose(np.maximum(hdr, 0.0), exposure, dr, sigma, n))
    if jpeg_quality is not None:
        ldr = jpeg_roundtrip(ldr, jpeg_quality)
    clipped = float((ldr.max(axis=-1) == 255).mean())
    return ldr, CameraParams(float(dr), float(exposure), float(sigma), float(n), jpeg_quality, clipped)
