"""Photo-sphere metadata (the GPano XMP properties): where a partial 360° panorama sits on the sphere.

Apps that stitch 360° panoramas on a phone (Google Camera's Photo Sphere and others) and 360° cameras write the
`GPano` properties (https://developers.google.com/streetview/spherical-metadata) into the image's XMP. A sphere shot
without its top or bottom, or without part of the turn, is saved **cropped**: the image is only the covered area, and
the XMP says where it lies in the full equirectangular panorama (``FullPanoWidthPixels`` x ``FullPanoHeightPixels``;
the crop's size and its ``CroppedAreaLeftPixels`` / ``CroppedAreaTopPixels``). Such a file is not 2:1, and read as
a plain image it would be refused or stretched over the whole sphere.

:func:`read_sphere_crop` reads the properties from a JPEG (APP1 XMP) or PNG (``iTXt`` XMP) file, in pure Python (the
Blender add-on uses it too); :func:`place_on_sphere` puts the image where they say on the full 2:1 canvas and
extends its edges over what the camera did not cover: the missing top or bottom repeats the nearest covered row of
each column, a missing part of the turn blends linearly from one edge of the image to the other. That fill is a
guess (a blurred horizon, the same sky further up), so the light of those regions is too.
"""

from __future__ import annotations

import math
import os
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["SphereCrop", "read_xmp", "parse_sphere_crop", "read_sphere_crop", "place_on_sphere", "place_partial_sphere",
           "placement_note"]

GPANO_NS = "http://ns.google.com/photos/1.0/panorama/"
_XMP_JPEG = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_PNG = b"XML:com.adobe.xmp"


@dataclass(frozen=True)
class SphereCrop:
    """Where an image lies in its full equirectangular panorama, in the pixels of the metadata."""

    full_width: int
    full_height: int
    width: int  #: the cropped area (the image as the metadata knows it)
    height: int
    left: int
    top: int

    @property
    def whole_sphere(self) -> bool:
        """The image is the whole panorama (nothing to place)."""
        return (self.width, self.height, self.left, self.top) == (self.full_width, self.full_height, 0, 0)

    def coverage(self) -> float:
        """Fraction of the sphere's solid angle the image covers."""
        lat = lambda row: math.pi / 2 - math.pi * row / self.full_height  # noqa: E731
        band = (math.sin(lat(self.top)) - math.sin(lat(self.top + self.height))) / 2
        return band * min(1.0, self.width / self.full_width)


def read_xmp(path: str | os.PathLike) -> str | None:
    """The XMP packet of a JPEG (the standard APP1 one, not Extended XMP) or PNG file, or None (no XMP, another
    format, or a file too broken to walk)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if head[:2] == b"\xff\xd8":
            return _jpeg_xmp(f)
        if head == b"\x89PNG\r\n\x1a\n":
            return _png_xmp(f)
    return None


def _jpeg_xmp(f) -> str | None:
    f.seek(2)
    while True:
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        if marker[1] == 0xFF:  # fill byte before a marker
            f.seek(-1, 1)
            continue
        if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:  # no length
            continue
        if marker[1] in (0xDA, 0xD9):  # start of scan / end of image: the metadata is all before
            return None
        size = f.read(2)
        if len(size) < 2:
            return None
        n = struct.unpack(">H", size)[0] - 2
        if marker[1] == 0xE1:
            data = f.read(n)
            if data.startswith(_XMP_JPEG):
                return data[len(_XMP_JPEG):].decode("utf-8", "replace")
        else:
            f.seek(n, 1)


def _png_xmp(f) -> str | None:
    f.seek(8)
    while True:
        head = f.read(8)
        if len(head) < 8:
            return None
        n, kind = struct.unpack(">I", head[:4])[0], head[4:]
        if kind in (b"IDAT", b"IEND"):  # XMP written after the image data is rare: not looked for
            return None
        if kind != b"iTXt":
            f.seek(n + 4, 1)
            continue
        data = f.read(n)
        f.seek(4, 1)  # CRC
        keyword, _, rest = data.partition(b"\x00")
        if keyword != _XMP_PNG or len(rest) < 2:
            continue
        compressed, text = rest[0], rest[2:].split(b"\x00", 2)[-1]  # skip language and translated keyword
        try:
            return (zlib.decompress(text) if compressed else text).decode("utf-8", "replace")
        except zlib.error:
            return None


def _gpano_value(xmp: str, prefix: str, name: str) -> str | None:
    for pattern in (rf"\b{prefix}:{name}\s*=\s*[\"']([^\"']*)[\"']", rf"<{prefix}:{name}\s*>\s*([^<]*?)\s*<"):
        m = re.search(pattern, xmp)
        if m:
            return m.group(1).strip()
    return None


def parse_sphere_crop(xmp: str) -> SphereCrop | None:
    """The GPano crop of an XMP packet; None when it has no GPano full-panorama size or is not equirectangular.

    Raises:
        ValueError: the properties are there but not numbers, or they do not fit in each other.
    """
    m = re.search(rf"xmlns:(\w+)\s*=\s*[\"']{re.escape(GPANO_NS)}[\"']", xmp)
    prefix = m.group(1) if m else "GPano"
    projection = _gpano_value(xmp, prefix, "ProjectionType")
    if projection is not None and projection.lower() != "equirectangular":
        return None
    names = ("FullPanoWidthPixels", "FullPanoHeightPixels", "CroppedAreaImageWidthPixels",
             "CroppedAreaImageHeightPixels", "CroppedAreaLeftPixels", "CroppedAreaTopPixels")
    raw = {n: _gpano_value(xmp, prefix, n) for n in names}
    if raw["FullPanoWidthPixels"] is None:
        return None
    try:
        v = {n: int(round(float(s))) for n, s in raw.items() if s is not None}
    except ValueError:
        bad = next(n for n, s in raw.items() if s is not None and not _is_number(s))
        raise ValueError(f"photo-sphere metadata: {bad} is {raw[bad]!r}, not a number") from None
    fw = v["FullPanoWidthPixels"]
    fh = v.get("FullPanoHeightPixels", fw // 2)
    crop = SphereCrop(fw, fh, v.get("CroppedAreaImageWidthPixels", fw), v.get("CroppedAreaImageHeightPixels", fh),
                      v.get("CroppedAreaLeftPixels", 0), v.get("CroppedAreaTopPixels", 0))
    if min(crop.full_width, crop.full_height, crop.width, crop.height) <= 0 or min(crop.left, crop.top) < 0:
        raise ValueError(f"photo-sphere metadata: sizes must be positive and offsets not negative "
                         f"({_describe(crop)})")
    if crop.width > crop.full_width or crop.top + crop.height > crop.full_height or crop.left >= crop.full_width:
        raise ValueError(f"photo-sphere metadata: the cropped area does not fit in the full panorama "
                         f"({_describe(crop)})")
    return crop


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _describe(c: SphereCrop) -> str:
    return f"{c.width}x{c.height} at ({c.left}, {c.top}) of {c.full_width}x{c.full_height}"


def read_sphere_crop(path: str | os.PathLike) -> SphereCrop | None:
    """:func:`parse_sphere_crop` of the file's XMP; None without one. Raises ``ValueError`` as it does."""
    xmp = read_xmp(path)
    return parse_sphere_crop(xmp) if xmp else None


def place_on_sphere(img: np.ndarray, crop: SphereCrop) -> np.ndarray:
    """``img`` (``HxWxC``, the cropped area, at any scale of the metadata's pixels) placed on its full 2:1
    equirectangular canvas, the uncovered rest filled from its edges (module docstring). Same dtype as ``img``.

    Raises:
        ValueError: the image's aspect is not the crop's (the metadata describes another image), or the full
            panorama is not 2:1 (not a whole 360° x 180° sphere).
    """
    h, w = img.shape[:2]
    if abs(crop.full_width - 2 * crop.full_height) > 2:
        raise ValueError(f"photo-sphere metadata: the full panorama is {crop.full_width}x{crop.full_height}, "
                         "not 2:1 (not a whole 360° sphere)")
    scale = w / crop.width
    if abs(crop.height * scale - h) > 0.01 * h + 1:
        raise ValueError(f"photo-sphere metadata describes a {crop.width}x{crop.height} image, this one is {w}x{h}")
    full_w = max(2, int(round(crop.full_width * scale / 2)) * 2)
    full_h = full_w // 2
    w = min(w, full_w)
    top = min(int(round(crop.top * scale)), full_h - 1)
    left = int(round(crop.left * scale)) % full_w
    h = min(h, full_h - top)
    cols = (left + np.arange(w)) % full_w
    out = np.empty((full_h, full_w) + img.shape[2:], img.dtype)
    out[top: top + h, cols] = img[:h, :w]
    out[:top, cols] = img[:1, :w]  # the missing top and bottom: each column's nearest covered row
    out[top + h:, cols] = img[h - 1: h, :w]
    gap = full_w - w
    if gap:  # the missing part of the turn: from the image's right edge to its left edge, linearly
        t = ((np.arange(gap) + 1.0) / (gap + 1.0)).reshape(1, gap, *([1] * (img.ndim - 2)))
        right = out[:, cols[-1]: cols[-1] + 1].astype(np.float32)
        first = out[:, cols[0]: cols[0] + 1].astype(np.float32)
        blend = (1.0 - t) * right + t * first
        gap_cols = (cols[-1] + 1 + np.arange(gap)) % full_w
        out[:, gap_cols] = np.rint(blend) if np.issubdtype(img.dtype, np.integer) else blend
    return out


def place_partial_sphere(path: str | os.PathLike, img: np.ndarray) -> tuple[np.ndarray, str]:
    """``img`` (the pixels of ``path``) on its full 2:1 panorama when the file's photo-sphere metadata says it is a
    cropped part of one, and a note saying so for the user; else ``img`` itself and an empty note.

    Raises:
        ValueError: the metadata is there but broken, or does not describe this image (one line, no file name).
    """
    crop = read_sphere_crop(path)
    if crop is None or crop.whole_sphere:
        return img, ""
    return place_on_sphere(img, crop), placement_note(crop)


def placement_note(crop: SphereCrop) -> str:
    """What :func:`place_on_sphere` did, for the user."""
    return (f"a partial photo sphere ({crop.coverage():.0%} of the sphere) placed by its metadata, the rest extended "
            "from its edges")
