"""Colour: sRGB transfer functions, luminance, and the network's input encoding (method.md §1).

All functions work on numpy arrays and torch tensors alike (channels last for numpy images, any layout for
the element-wise ones).
"""

from __future__ import annotations

import numpy as np

#: Rec. 709 / sRGB luminance weights.
LUMA_709 = (0.2126, 0.7152, 0.0722)

#: 8-bit values are clamped to at least this before linearisation (method.md §1: ``max(1, v) / 255``).
MIN_8BIT = 1.0 / 255.0


def _where(cond, a, b):
    if isinstance(cond, np.ndarray | np.generic | bool):
        return np.where(cond, a, b)
    import torch

    return torch.where(cond, a, b)


def srgb_to_linear(v):
    """sRGB EOTF (IEC 61966-2-1): display values in [0, 1] -> linear."""
    v = v.clip(0.0, 1.0) if hasattr(v, "clip") else v
    return _where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x):
    """Inverse sRGB EOTF (OETF): linear -> display values in [0, 1] (input clipped to [0, 1])."""
    x = x.clip(0.0, 1.0)
    return _where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1.0 / 2.4) - 0.055)


def display_encode(linear, exposure: float = 0.0) -> np.ndarray:
    """Linear RGB -> display values in [0, 1]: ``srgb(clip(linear * 2**exposure, 0, 1))`` (float64 numpy).

    One fixed exposure and a hard clip, no tone mapping: how the renders are scored (PSNR/SSIM) and shown.
    """
    return linear_to_srgb(np.clip(np.asarray(linear, np.float64) * 2.0**exposure, 0.0, 1.0))


def ldr_to_linear(ldr):
    """Method.md §1: 8-bit-scaled display values in [0, 1] -> linear, after clamping to >= 1/255.

    ``ldr`` is the image divided by 255 (or 65535 for 16-bit inputs). The clamp keeps ``log(linear)`` finite.
    """
    return srgb_to_linear(ldr.clip(MIN_8BIT, 1.0))


def to_network_input(linear):
    """Linear RGB in [0, 1] -> the network's input range [-1, 1] (``2 * lin - 1``, reference code)."""
    return 2.0 * linear - 1.0


def from_network_input(x):
    """Inverse of :func:`to_network_input`."""
    return (x + 1.0) * 0.5


def luminance(rgb, channel_axis: int = -1):
    """Rec. 709 luminance of linear RGB along ``channel_axis``."""
    r, g, b = (rgb.take(i, axis=channel_axis) if isinstance(rgb, np.ndarray) else rgb.select(channel_axis, i)
               for i in range(3))
    return LUMA_709[0] * r + LUMA_709[1] * g + LUMA_709[2] * b


def quantize_8bit(x: np.ndarray) -> np.ndarray:
    """Display values in [0, 1] -> uint8 with round-to-nearest."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
