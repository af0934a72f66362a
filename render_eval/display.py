"""Display encoding of linear renders: one fixed exposure, clip, sRGB. Used for PSNR/SSIM and for PNGs."""

from __future__ import annotations

import numpy as np

from hdr_core.color import display_encode as _encode

#: Exposure (stops) applied before display encoding. Renders lit by calibrated panoramas are on the LDR's
#: scale (diffuse white ~ 1), so 0 EV shows them as the LDR would.
DISPLAY_EXPOSURE = 0.0


def display_encode(linear: np.ndarray, exposure: float = DISPLAY_EXPOSURE) -> np.ndarray:
    """Linear RGB -> display values in [0, 1]: :func:`hdr_core.color.display_encode` at the renders' exposure."""
    return _encode(linear, exposure)


def to_uint8(display: np.ndarray) -> np.ndarray:
    """Display values in [0, 1] -> uint8 (round to nearest)."""
    return np.clip(np.rint(display * 255.0), 0, 255).astype(np.uint8)
