"""Image helpers that need only numpy and hdr_core (no ``bpy``): input checks, display shrinking, output names.

The format check sniffs more formats than :mod:`hdr_core.io` reads (BMP, WebP), because the add-on reads images
through Blender.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hdr_core.color import linear_to_srgb, srgb_to_linear
from hdr_core.resize import resize

#: Smallest panorama accepted (height in pixels; the width is about twice that).
MIN_HEIGHT = 32
#: Largest relative deviation from 2:1 accepted; inputs within it are stretched to exactly 2:1.
ASPECT_TOLERANCE = 0.02

_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"),
          (b"II+\x00", "tiff"), (b"MM\x00+", "tiff"), (b"BM", "bmp"), (b"v/1\x01", "exr"), (b"#?RADIANCE", "hdr"),
          (b"#?RGBE", "hdr"))
HDR_FORMATS = {"exr": "OpenEXR", "hdr": "Radiance HDR"}
LDR_FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "bmp": "BMP", "webp": "WebP"}


def sniff_format(path: str | os.PathLike) -> str | None:
    """The image format from the file's first bytes (``png``, ``jpeg``, ``exr``, ...), or None if unknown."""
    with open(path, "rb") as f:
        head = f.read(16)
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def check_ldr_file(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be an LDR panorama file (one short sentence), or None if its header looks fine."""
    p = Path(path)
    if not str(path):
        return "no panorama file given"
    if not p.exists():
        return "file not found"
    if p.is_dir():
        return "is a folder, not an image file"
    try:
        if p.stat().st_size == 0:
            return "empty file (0 bytes)"
        fmt = sniff_format(p)
    except OSError as e:
        return f"cannot read the file ({e.strerror or e})"
    if fmt in HDR_FORMATS:
        return (f"is already an HDR image ({HDR_FORMATS[fmt]}); use it directly as the world texture "
                "(this tool makes HDR from 8/16-bit JPEG/PNG/TIFF)")
    if fmt is None:
        return "not a supported image (expected an 8/16-bit JPEG, PNG or TIFF panorama)"
    return None


def check_panorama_size(width: int, height: int) -> str | None:
    """Why a ``width x height`` image cannot be an equirectangular panorama, or None."""
    if width <= 0 or height <= 0:
        return "not a readable image (corrupt, truncated or unsupported)"
    if height < MIN_HEIGHT or width < 2 * MIN_HEIGHT:
        return f"too small ({width}x{height}); a 360° panorama needs at least {2 * MIN_HEIGHT}x{MIN_HEIGHT} pixels"
    if abs(width / height - 2.0) > 2.0 * ASPECT_TOLERANCE:
        return (f"is {width}x{height} (aspect {width / height:.2f}:1), not a 2:1 equirectangular 360° panorama")
    return None


#: ``srgb_to_linear`` of every 8-bit value (``v / 255``).
_SRGB_8BIT = srgb_to_linear(np.arange(256, dtype=np.float32) / np.float32(255))


def _to_linear(ldr: np.ndarray, dtype=np.float32) -> np.ndarray:
    if ldr.dtype == np.uint8:
        return _SRGB_8BIT[ldr].astype(dtype, copy=False)
    return srgb_to_linear(ldr.astype(dtype))


def shrink_display_image(ldr: np.ndarray, width: int) -> np.ndarray:
    """Shrink an LDR (display values, ``HxWx3``, float in [0, 1] or ``uint8``) to ``width x width/2`` by
    area-averaging its linear values; float32 display values out (``ldr`` itself if it is not wider).

    An integer factor (8K to 4K) averages blocks band by band in float32 (no full-size temporaries); other factors
    use :func:`hdr_core.resize.resize` on the whole image in float64.
    """
    h, w = ldr.shape[:2]
    if width >= w:
        return ldr
    out_w, out_h = width, max(1, width // 2)
    k = w // out_w
    if k * out_w == w and k * out_h == h:
        out = np.empty((out_h, out_w, 3), np.float32)
        step = max(1, 256 // k)
        for y0 in range(0, out_h, step):
            n = min(out_h, y0 + step) - y0
            lin = _to_linear(ldr[y0 * k: (y0 + n) * k])
            out[y0: y0 + n] = np.clip(linear_to_srgb(lin.reshape(n, k, out_w, k, 3).mean((1, 3))), 0.0, 1.0)
        return out
    lin = resize(_to_linear(ldr, np.float64), (out_w, out_h), "area")
    return np.clip(linear_to_srgb(lin), 0.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------------------------ files
def unique_path(folder: str | os.PathLike, stem: str, suffix: str = ".exr") -> Path:
    """``folder/stem.suffix``, or ``folder/stem_001.suffix`` ... if taken: never an existing file."""
    folder = Path(folder)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._") or "panorama"
    candidate = folder / f"{stem}{suffix}"
    n = 0
    while candidate.exists():
        n += 1
        candidate = folder / f"{stem}_{n:03d}{suffix}"
    return candidate
