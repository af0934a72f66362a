"""Image files through Blender (``bpy.data.images``): read an LDR panorama, write and load float EXRs.

Blender reads every format it supports without OpenCV, and ``Image.save_render`` with an OpenEXR scene setting
writes float pixels exactly (32-bit) or rounded to half floats (16-bit; ``Image.save`` is slightly off in
Blender 5.0), so the extension needs no image library of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import bpy
import numpy as np

from .imaging import check_ldr_file, check_panorama_size


class InputError(ValueError):
    """The input panorama cannot be used; the message is one line for the user."""


def image_pixels(img: bpy.types.Image) -> np.ndarray:
    """``HxWxC`` float32 pixels of a Blender image, row 0 at the top."""
    w, h = img.size
    ch = img.channels
    buf = np.empty(w * h * ch, dtype=np.float32)
    img.pixels.foreach_get(buf)
    return buf.reshape(h, w, ch)[::-1]


def read_ldr(path: str | os.PathLike) -> np.ndarray:
    """Read an 8/16-bit panorama, row 0 at the top: ``HxWx3`` display values, ``uint8`` for 8-bit files (Blender's
    byte buffer, exactly), float32 in [0, 1] for 16-bit ones. A partial photo sphere (its GPano metadata says where
    it lies on the sphere) comes back placed on its whole 2:1 panorama (:func:`read_ldr_noted` says so).

    The image is loaded as a temporary data-block and removed again, so the blend file is left as it was.

    Raises:
        InputError: missing, unreadable, not an image, an HDR file, too small or not 2:1.
    """
    return read_ldr_noted(path)[0]


def read_ldr_noted(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """:func:`read_ldr`, and a note for the user on what was done to the image (empty: nothing)."""
    from hdr_core.gpano import place_on_sphere, placement_note, read_sphere_crop

    path = os.fspath(path)
    reason = check_ldr_file(path)
    if reason:
        raise InputError(reason)
    try:
        crop = read_sphere_crop(path)
    except (OSError, ValueError) as e:
        raise InputError(" ".join(str(e).split())) from None
    partial = crop is not None and not crop.whole_sphere
    try:
        img = bpy.data.images.load(path, check_existing=False)
    except RuntimeError as e:
        raise InputError(f"not a readable image ({' '.join(str(e).split())})") from None
    try:
        reason = check_panorama_size(*img.size) if not partial or min(img.size) <= 0 else None
        if reason:  # a partial sphere is checked once placed
            raise InputError(reason)
        if img.is_float:  # 16-bit files are decoded to float and linearised unless marked as data
            img.colorspace_settings.name = "Non-Color"
        is_byte = not img.is_float
        px = image_pixels(img)
    finally:
        bpy.data.images.remove(img)
    h, w, ch = px.shape
    out = np.empty((h, w, 3), np.uint8 if is_byte else np.float32)
    for y0 in range(0, h, 256):  # band by band: no full-size float temporaries
        band = px[y0: y0 + 256]
        rgb = band[..., :3] if ch >= 3 else np.repeat(band[..., :1], 3, axis=2)
        out[y0: y0 + 256] = np.rint(rgb * 255.0) if is_byte else np.clip(rgb, 0.0, 1.0)
    if not partial:
        return out, ""
    try:
        placed = place_on_sphere(out, crop)
    except ValueError as e:
        raise InputError(str(e)) from None
    reason = check_panorama_size(placed.shape[1], placed.shape[0])
    if reason:
        raise InputError(reason)
    return placed, placement_note(crop)


def write_exr(path: str | os.PathLike, hdr: np.ndarray, half: bool = True) -> Path:
    """Write ``hdr`` (``HxWx3`` linear float) as an RGB OpenEXR file of half floats (``half``, PIZ-compressed; values
    beyond 65504 are clipped) or 32-bit floats (ZIP), atomically: written to a hidden temporary name in the same folder,
    then renamed, so ``path`` is either absent or complete."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    h, w = hdr.shape[:2]
    img = bpy.data.images.new(".lanet_hdr_tmp", w, h, alpha=False, float_buffer=True)
    scene = bpy.data.scenes.new(".lanet_hdr_tmp")
    try:
        rgba = np.empty((h, w, 4), dtype=np.float32)
        rgba[..., 3] = 1.0
        clip = half and (float(hdr.max()) > 65504.0 or float(hdr.min()) < -65504.0)
        flipped = hdr[::-1]  # Blender's rows run bottom to top
        for y0 in range(0, h, 256):  # band by band: no full-size temporaries
            band = flipped[y0: y0 + 256]
            rgba[y0: y0 + 256, :, :3] = np.clip(band, -65504.0, 65504.0) if clip else band
        img.pixels.foreach_set(rgba.ravel())
        del rgba
        settings = scene.render.image_settings
        settings.file_format = "OPEN_EXR"
        settings.color_depth = "16" if half else "32"
        settings.exr_codec = "PIZ" if half else "ZIP"  # PIZ: as small as ZIP for half floats, twice as fast
        settings.color_mode = "RGB"
        img.save_render(str(tmp), scene=scene)
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise OSError(f"{path}: Blender did not write the file")
        os.replace(tmp, path)
    finally:
        bpy.data.images.remove(img)
        bpy.data.scenes.remove(scene)
        if tmp.exists():
            tmp.unlink()
    return path


def load_exr(path: str | os.PathLike, pack: bool = False) -> bpy.types.Image:
    """Load an EXR as a new image data-block (scene-linear colour space); ``pack`` it into the .blend if asked."""
    img = bpy.data.images.load(os.fspath(path), check_existing=False)
    img.name = Path(path).name
    names = {item.identifier for item in img.colorspace_settings.bl_rna.properties["name"].enum_items}
    if not img.colorspace_settings.name.startswith("Linear") and "Linear Rec.709" in names:
        img.colorspace_settings.name = "Linear Rec.709"
    if pack:
        img.pack()
    return img
