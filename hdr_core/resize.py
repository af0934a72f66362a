"""Image resizing with OpenCV when it is importable, else in numpy (inside Blender, which has no OpenCV).

``resize(img, (width, height), "area" | "linear")``: OpenCV's ``INTER_AREA`` / ``INTER_LINEAR`` semantics.
"""

from __future__ import annotations

import numpy as np

INTERPOLATIONS = ("area", "linear")


def _area_axis(a: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Shrink ``a`` along ``axis`` to ``n_out`` samples by exact area averaging (integral of the step function)."""
    n_in = a.shape[axis]
    a = np.moveaxis(a, axis, 0).astype(np.float64)
    csum = np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a, axis=0)], axis=0)
    edges = np.arange(n_out + 1) * (n_in / n_out)
    i = np.minimum(np.floor(edges).astype(np.int64), n_in - 1)
    frac = (edges - i).reshape((-1,) + (1,) * (a.ndim - 1))
    integral = csum[i] + frac * a[i]  # integral of the step function from 0 to each edge
    out = (integral[1:] - integral[:-1]) / (n_in / n_out)
    return np.moveaxis(out, 0, axis)


def linear_taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear resampling of ``n_in`` samples to ``n_out`` with half-pixel centres and replicated borders (OpenCV's
    rule): output ``j`` is ``x[i0[j]] * (1 - frac[j]) + x[i1[j]] * frac[j]`` (``frac`` in float64)."""
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
    i0 = np.floor(src).astype(np.int64)
    return i0, np.minimum(i0 + 1, n_in - 1), src - i0


def _linear_axis(a: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Resample ``a`` along ``axis`` bilinearly with half-pixel centres and replicated borders (OpenCV's rule)."""
    i0, i1, frac = linear_taps(n_out, a.shape[axis])
    w = frac.reshape((-1,) + (1,) * (a.ndim - 1))
    a = np.moveaxis(a, axis, 0).astype(np.float64)
    return np.moveaxis(a[i0] * (1.0 - w) + a[i1] * w, 0, axis)


def _block_mean(img: np.ndarray, ky: int, kx: int) -> np.ndarray:
    """Area shrink by integer factors: the mean of each ``ky x kx`` block (in float64), a band of rows at a time."""
    h, w = img.shape[0] // ky, img.shape[1] // kx
    out = np.empty((h, w) + img.shape[2:], dtype=img.dtype)
    step = max(1, 64 // ky)
    for y0 in range(0, h, step):
        n = min(h, y0 + step) - y0
        block = img[y0 * ky: (y0 + n) * ky].reshape((n, ky, w, kx) + img.shape[2:])
        out[y0: y0 + n] = block.mean(axis=(1, 3), dtype=np.float64)
    return out


def resize_numpy(img: np.ndarray, dsize: tuple[int, int], interpolation: str = "linear") -> np.ndarray:
    """``cv2.resize(img, (width, height))`` in numpy, for ``HxW`` or ``HxWxC`` float arrays.

    ``"area"`` averages areas when shrinking an axis (and interpolates bilinearly when enlarging it, close to what
    OpenCV does; integer factors in both axes take block means, band by band); ``"linear"`` is bilinear. The result
    has ``img``'s dtype. Matches OpenCV within 1e-4.
    """
    w, h = int(dsize[0]), int(dsize[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"invalid size {dsize}")
    ky, kx = img.shape[0] // h, img.shape[1] // w
    if interpolation == "area" and ky * h == img.shape[0] and kx * w == img.shape[1] and ky * kx > 1:
        return _block_mean(img, ky, kx)
    out = img
    for axis, n in ((0, h), (1, w)):
        if out.shape[axis] == n:
            continue
        shrink = interpolation == "area" and n < out.shape[axis]
        out = _area_axis(out, n, axis) if shrink else _linear_axis(out, n, axis)
    return out.astype(img.dtype, copy=False)



def resize(img: np.ndarray, dsize: tuple[int, int], interpolation: str = "linear") -> np.ndarray:
    """Resize ``img`` to ``dsize = (width, height)``: OpenCV if importable, else :func:`resize_numpy`."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    try:
        import cv2
    except ImportError:
        return resize_numpy(img, dsize, interpolation)
    flag = cv2.INTER_AREA if interpolation == "area" else cv2.INTER_LINEAR
    return cv2.resize(img, (int(dsize[0]), int(dsize[1])), interpolation=flag)


def resize_to(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize to ``height x width``: area averaging when the height shrinks, bilinear otherwise; same size = as is."""
    if img.shape[:2] == (height, width):
        return img
    return resize(img, (width, height), "area" if img.shape[0] > height else "linear")
