"""Image I/O: LDR (PNG, JPEG, TIFF; WebP and BMP read only) and HDR (OpenEXR, Radiance ``.hdr``) files <-> float32
``HxWx3`` RGB arrays.

Only numpy, OpenCV and the ``OpenEXR`` package are used: this module is imported inside Blender, where torch is
absent.

* EXR files go through the ``OpenEXR`` package, except inside a Blender *binary* (``bpy.app.binary_path`` set):
  there the package's OpenEXR library clashes with the one Blender links (Debian's Blender 3.4 segfaults reading
  and fails writing), so OpenCV's built-in EXR codec is used; so it is where the package is not installed (a GPU
  machine's own Python). ``HDR_CORE_EXR_BACKEND=openexr|opencv`` forces one.

* Readers detect the format by its magic bytes, not by the file name. LDR files give display values scaled to
  [0, 1] (not linearised); HDR files give linear values with NaN/Inf repaired (and a warning) and negatives
  clamped to 0. Grayscale is replicated to RGB and alpha is dropped.
* Writers validate the array first (shape, float dtype, finite) and write atomically: the encoder writes a temp
  file in the destination folder, which then replaces the destination with :func:`os.replace`.
* Every bad input raises :class:`~hdr_core.errors.ImageError`, whose message is one line ``<path>: <reason>``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
import warnings
from collections.abc import Callable

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")  # before cv2's first EXR call (the opencv EXR backend)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from hdr_core.errors import ImageError

PathLike = str | os.PathLike

HDR_FORMATS = ("exr", "hdr")
LDR_FORMATS = ("png", "jpeg", "tiff")
#: LDR formats that are read but never written (the Blender add-on reads them too)
READ_ONLY_LDR_FORMATS = ("webp", "bmp")
_NAMES = {"exr": "OpenEXR", "hdr": "Radiance HDR", "png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "webp": "WebP",
          "bmp": "BMP"}
_MAGIC = ((b"v/1\x01", "exr"), (b"#?RADIANCE", "hdr"), (b"#?RGBE", "hdr"), (b"\x89PNG\r\n\x1a\n", "png"),
          (b"\xff\xd8\xff", "jpeg"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"), (b"II+\x00", "tiff"),
          (b"MM\x00+", "tiff"))
#: sizes of the BMP info headers (BITMAPCOREHEADER ... BITMAPV5HEADER): "BM" alone is too common a start to trust
_BMP_DIB_SIZES = (12, 40, 52, 56, 64, 108, 124)
_EXT_FORMAT = {".exr": "exr", ".hdr": "hdr", ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff",
               ".tiff": "tiff", ".webp": "webp", ".bmp": "bmp"}
#: EXR compressions, in the order of the OpenEXR enum (OpenCV's ``IMWRITE_EXR_COMPRESSION`` uses the same values).
_EXR_COMPRESSION = ("none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a", "dwaa", "dwab")
EXR_BACKENDS = ("openexr", "opencv")
_HALF_MAX = float(np.finfo(np.float16).max)


def _why(e: BaseException) -> str:
    """An exception as one short line."""
    return " ".join(str(e).split())[:300] or type(e).__name__


def exr_backend() -> str:
    """The EXR codec: ``HDR_CORE_EXR_BACKEND`` if set, else ``opencv`` inside a Blender binary or where the ``OpenEXR``
    package is not installed, else ``openexr``."""
    forced = os.environ.get("HDR_CORE_EXR_BACKEND", "").strip().lower()
    if forced:
        if forced not in EXR_BACKENDS:
            raise ValueError(f"HDR_CORE_EXR_BACKEND={forced!r}: expected one of {', '.join(EXR_BACKENDS)}")
        return forced
    bpy = sys.modules.get("bpy")
    if bpy is not None and getattr(getattr(bpy, "app", None), "binary_path", ""):
        return "opencv"
    return "openexr" if _has_openexr() else "opencv"  # e.g. a GPU machine's image without the OpenEXR package


def _has_openexr() -> bool:
    import importlib.util

    return "OpenEXR" in sys.modules or importlib.util.find_spec("OpenEXR") is not None


def _ext_format(path: str) -> str | None:
    return _EXT_FORMAT.get(os.path.splitext(path)[1].lower())


def _sniff(path: PathLike) -> tuple[str, str]:
    """Check that ``path`` is a readable, non-empty file and return ``(path_str, format)`` from its magic bytes."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise ImageError(p, "file not found")
    if os.path.isdir(p):
        raise ImageError(p, "is a directory, expected an image file")
    try:
        with open(p, "rb") as f:
            head = f.read(18)
    except OSError as e:
        raise ImageError(p, f"cannot read file ({e.strerror or _why(e)})") from e
    if not head:
        raise ImageError(p, "empty file (0 bytes)")
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return p, fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return p, "webp"
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _BMP_DIB_SIZES:
        return p, "bmp"
    if _ext_format(p):
        raise ImageError(p, "not a valid image (the contents match no supported format)")
    raise ImageError(p, "unsupported format (supported: OpenEXR, Radiance .hdr, PNG, JPEG, TIFF, WebP, BMP)")


def is_hdr_path(path: PathLike) -> bool:
    """Whether ``path`` is an HDR image (OpenEXR or Radiance): by content if it is a readable image, else by name."""
    try:
        return _sniff(path)[1] in HDR_FORMATS
    except ImageError:
        return _ext_format(os.fspath(path)) in HDR_FORMATS


def _jpeg_complete(p: str) -> bool:
    """False if a JPEG stops before its end-of-image marker (libjpeg only warns and pads such files with gray)."""
    with open(p, "rb") as f:
        data = f.read()
    i = 2
    while i + 4 <= len(data):  # walk the segments up to the first start-of-scan (skips EXIF thumbnails)
        if data[i] != 0xFF:
            return True  # unusual structure: leave the verdict to libjpeg
        marker = data[i + 1]
        if marker == 0xDA:  # entropy-coded data stuffs 0xFF bytes, so FF D9 after SOS can only be a marker
            return data.find(b"\xff\xd9", i) >= 0
        i += 1 if marker == 0xFF else 2 if 0xD0 <= marker <= 0xD7 else 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return False


def _imread(p: str, fmt: str) -> np.ndarray:
    """Raw ``cv2.imread`` (BGR[A] or gray, original dtype) that never returns None."""
    try:
        raw = cv2.imread(p, cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        raise ImageError(p, f"corrupt or truncated {_NAMES[fmt]} file ({_why(e)})") from e
    if raw is None or (fmt == "jpeg" and not _jpeg_complete(p)):
        raise ImageError(p, f"corrupt or truncated {_NAMES[fmt]} file")
    return raw


def _to_rgb(a: np.ndarray, p: str, bgr: bool = True) -> np.ndarray:
    """``HxW`` or ``HxWxC`` (C = 1 gray, 2 gray+alpha, 3 colour, 4 colour+alpha) -> ``HxWx3`` RGB, same dtype."""
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ImageError(p, f"unsupported image layout {a.shape}")
    if a.size == 0:
        raise ImageError(p, "zero-size image")
    if a.shape[2] <= 2:
        return np.repeat(a[..., :1], 3, axis=2)
    return a[..., 2::-1] if bgr else a[..., :3]


def _pick_exr_channels(names: list[str]) -> list[str] | None:
    """Names of the R, G, B (or else Y) channels; unprefixed layers first, then "Combined"/"beauty" layers."""
    layers: dict[str, dict[str, str]] = {}
    for name in names:
        prefix, _, suffix = name.rpartition(".")
        layers.setdefault(prefix, {})[suffix.upper()] = name

    def rank(prefix: str) -> tuple:
        return prefix != "", not any(w in prefix.lower() for w in ("combined", "beauty", "rgb")), prefix

    for wanted in (("R", "G", "B"), ("Y",)):
        for prefix in sorted(layers, key=rank):
            if all(c in layers[prefix] for c in wanted):
                return [layers[prefix][c] for c in wanted]
    return None


def _read_exr(p: str) -> np.ndarray:
    if exr_backend() == "opencv":
        try:
            img = cv2.imread(p, cv2.IMREAD_UNCHANGED)
        except cv2.error as e:
            raise ImageError(p, f"corrupt or unreadable OpenEXR file ({_why(e)})") from e
        if img is None:
            raise ImageError(p, "corrupt or unreadable OpenEXR file (OpenCV could not decode it)")
        return _to_rgb(img.astype(np.float32, copy=False), p)
    import OpenEXR

    try:
        f = OpenEXR.File(p, separate_channels=True)  # a str, not a Path: a Path is taken for a binary stream
        parts = [f.channels(i) for i in range(len(f.parts))]  # a truncated file gives 0 parts, not an exception
    except Exception as e:
        raise ImageError(p, f"corrupt or unreadable OpenEXR file ({_why(e)})") from e
    if not parts:
        raise ImageError(p, "corrupt or truncated OpenEXR file (no readable parts)")
    for chans in parts:
        picked = _pick_exr_channels(list(chans))
        if picked:
            planes = [np.asarray(chans[n].pixels) for n in picked]
            if len({pl.shape for pl in planes}) != 1 or planes[0].ndim != 2:
                raise ImageError(p, "subsampled or non-2D EXR channels are not supported")
            return _to_rgb(np.stack(planes, axis=-1).astype(np.float32), p, bgr=False)
    found = sorted(n for chans in parts for n in chans)
    raise ImageError(p, f"no R,G,B or Y channels (found: {', '.join(found[:12])}{' ...' if len(found) > 12 else ''})")


def _repair(img: np.ndarray, p: str) -> np.ndarray:
    """NaN -> 0, +Inf -> the largest finite value, -Inf -> 0 (with a warning); then clamp negatives to 0."""
    bad = ~np.isfinite(img)
    if bad.any():
        finite = img[~bad]
        top = float(finite.max()) if finite.size else 0.0
        img = np.nan_to_num(img, nan=0.0, posinf=top, neginf=0.0)
        warnings.warn(f"{p}: replaced {int(bad.sum())} non-finite value(s) (NaN -> 0, +Inf -> {top:g}, -Inf -> 0)",
                      stacklevel=3)
    return np.maximum(img, 0.0).astype(np.float32, copy=False)


def _read_ldr(p: str, fmt: str) -> tuple[np.ndarray, int]:
    if fmt in HDR_FORMATS:
        raise ImageError(p, f"is an HDR file ({_NAMES[fmt]}), expected an 8/16-bit LDR image")
    raw = _imread(p, fmt)
    bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(raw.dtype)
    if bits is None:
        raise ImageError(p, f"unsupported {_NAMES[fmt]} sample type {raw.dtype} (expected 8- or 16-bit)")
    return _to_rgb(raw, p).astype(np.float32) / np.float32(2**bits - 1), bits


def _read_hdr(p: str, fmt: str) -> np.ndarray:
    if fmt not in HDR_FORMATS:
        raise ImageError(p, f"is an LDR image ({_NAMES[fmt]}), expected an HDR file (OpenEXR or Radiance .hdr)")
    img = _read_exr(p) if fmt == "exr" else _to_rgb(_imread(p, fmt), p).astype(np.float32)
    return np.ascontiguousarray(_repair(img, p))


def read_ldr(path: PathLike) -> tuple[np.ndarray, int]:
    """Read an 8- or 16-bit PNG, JPEG or TIFF, or an 8-bit WebP or BMP.

    Args:
        path: The image file; its format is detected from its contents.

    Returns:
        ``(image, bit_depth)``: float32 ``HxWx3`` RGB display values in [0, 1] (divided by 255 or 65535, not
        linearised) and 8 or 16.

    Raises:
        ImageError: The file is missing, unreadable, corrupt, not an LDR image (e.g. an EXR), or not 8/16-bit.
    """
    return _read_ldr(*_sniff(path))


def read_hdr(path: PathLike) -> np.ndarray:
    """Read an OpenEXR (half/float, any channel naming) or Radiance ``.hdr`` file.

    Args:
        path: The image file; its format is detected from its contents.

    Returns:
        float32 ``HxWx3`` linear RGB, finite and non-negative. A luminance-only (``Y``) EXR is replicated to RGB.
        NaN/Inf values are replaced (NaN -> 0, +Inf -> the largest finite value, -Inf -> 0) with a warning.

    Raises:
        ImageError: The file is missing, unreadable, corrupt, has no RGB/Y channels, or is an LDR image.
    """
    return _read_hdr(*_sniff(path))


def read_image(path: PathLike) -> np.ndarray:
    """Read any supported image: :func:`read_hdr` for HDR files, else the display values of :func:`read_ldr`.

    Args:
        path: The image file; its format is detected from its contents.

    Returns:
        float32 ``HxWx3`` RGB: linear values for HDR files, display values in [0, 1] for LDR files.

    Raises:
        ImageError: The file cannot be read as an image.
    """
    p, fmt = _sniff(path)
    return _read_hdr(p, fmt) if fmt in HDR_FORMATS else _read_ldr(p, fmt)[0]


def _prepare(path: PathLike, img: np.ndarray, *formats: str) -> tuple[str, str, np.ndarray]:
    """Validate a write; return ``(path_str, format, contiguous float32 HxWx3 RGB)``, gray replicated, no alpha."""
    p = os.fspath(path)
    fmt = _ext_format(p)
    if fmt not in formats:
        exts = sorted(e for e, f in _EXT_FORMAT.items() if f in formats)
        raise ImageError(p, f"unsupported output file name extension (expected {', '.join(exts)})")
    a = np.asarray(img)
    if not np.issubdtype(a.dtype, np.floating):
        raise ImageError(p, f"cannot write a {a.dtype} array, expected floats")
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageError(p, f"cannot write an array of shape {a.shape}, expected HxW or HxWx1/3/4")
    if a.size == 0:
        raise ImageError(p, f"cannot write an empty image of shape {a.shape}")
    a = a.astype(np.float32, copy=False)
    n_bad = int(np.count_nonzero(~np.isfinite(a)))
    if n_bad:
        raise ImageError(p, f"refusing to write an image with {n_bad} NaN/Inf value(s)")
    return p, fmt, np.ascontiguousarray(_to_rgb(a, p, bgr=False))


def _atomic_write(p: str, encode: Callable[[str], None]) -> None:
    """Run ``encode(tmp)`` on a temp file next to ``p`` (same extension), then move it onto ``p``."""
    parent = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(parent):
        raise ImageError(p, "the parent directory does not exist")
    if os.path.isdir(p):
        raise ImageError(p, "is a directory")
    stem, ext = os.path.splitext(os.path.basename(p))
    tmp = os.path.join(parent, f".{stem}.tmp{uuid.uuid4().hex[:8]}{ext}")
    done = False
    try:
        encode(tmp)
        if not os.path.isfile(tmp) or os.path.getsize(tmp) == 0:
            raise ImageError(p, "the encoder wrote nothing")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, p)
        done = True
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(p, f"could not write the image ({_why(e)})") from e
    finally:
        if not done:
            with contextlib.suppress(OSError):
                os.remove(tmp)


def _encode_exr(tmp: str, rgb: np.ndarray, half: bool, compression: str) -> None:
    dtype = np.float16 if half else np.float32
    data = np.clip(rgb, -_HALF_MAX, _HALF_MAX) if half else rgb
    code = _EXR_COMPRESSION.index(compression)
    if exr_backend() == "opencv":
        exr_type = cv2.IMWRITE_EXR_TYPE_HALF if half else cv2.IMWRITE_EXR_TYPE_FLOAT
        _encode_cv2(tmp, data.astype(np.float32), (cv2.IMWRITE_EXR_TYPE, exr_type, cv2.IMWRITE_EXR_COMPRESSION, code))
        return
    import OpenEXR

    chans = {c: np.ascontiguousarray(data[..., i], dtype=dtype) for i, c in enumerate("RGB")}
    header = {"compression": OpenEXR.Compression(code), "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, chans).write(tmp)


def _encode_cv2(tmp: str, rgb: np.ndarray, params: tuple[int, ...] = ()) -> None:
    if not cv2.imwrite(tmp, np.ascontiguousarray(rgb[..., ::-1]), list(params)):
        raise OSError("OpenCV could not encode the image")


def write_exr(path: PathLike, img: np.ndarray, half: bool = False, compression: str = "zip") -> None:
    """Write linear RGB as an OpenEXR file with channels R, G, B, atomically.

    Args:
        path: Destination ``.exr`` file; its folder must exist.
        img: Float ``HxW`` or ``HxWx{1,3,4}`` array (gray is replicated, alpha dropped), finite.
        half: Store 16-bit half floats (values are clipped to +-65504) instead of 32-bit floats.
        compression: One of none, rle, zips, zip, piz, pxr24, b44, b44a, dwaa, dwab.

    Raises:
        ImageError: Invalid array, extension or compression, a missing folder, or a failed write.
    """
    p, _, rgb = _prepare(path, img, "exr")
    if compression.lower() not in _EXR_COMPRESSION:
        raise ImageError(p, f"unknown EXR compression {compression!r} (one of {', '.join(_EXR_COMPRESSION)})")
    _atomic_write(p, lambda tmp: _encode_exr(tmp, rgb, half, compression.lower()))


def write_hdr(path: PathLike, img: np.ndarray) -> None:
    """Write linear RGB as a Radiance RGBE ``.hdr`` file (about 1% precision; negatives stored as 0), atomically.

    Args:
        path: Destination ``.hdr`` file; its folder must exist.
        img: Float ``HxW`` or ``HxWx{1,3,4}`` array, finite.

    Raises:
        ImageError: Invalid array or extension, a missing folder, or a failed write.
    """
    p, _, rgb = _prepare(path, img, "hdr")
    _atomic_write(p, lambda tmp: _encode_cv2(tmp, np.maximum(rgb, 0.0)))


def write_ldr(path: PathLike, img01: np.ndarray, bit_depth: int = 8, quality: int = 95) -> None:
    """Write display values in [0, 1] as an 8-bit PNG/JPEG/TIFF or a 16-bit PNG/TIFF (round to nearest), atomically.

    Args:
        path: Destination ``.png``, ``.jpg``/``.jpeg`` or ``.tif``/``.tiff`` file; its folder must exist.
        img01: Float ``HxW`` or ``HxWx{1,3,4}`` array of display values (clipped to [0, 1]), finite.
        bit_depth: 8, or 16 for PNG and TIFF.
        quality: JPEG quality, 0-100.

    Raises:
        ImageError: Invalid array, extension or bit depth, a missing folder, or a failed write.
    """
    p, fmt, rgb = _prepare(path, img01, *LDR_FORMATS)
    if bit_depth not in (8, 16) or (bit_depth == 16 and fmt == "jpeg"):
        raise ImageError(p, f"cannot write a {bit_depth}-bit {_NAMES[fmt]} file")
    q = np.rint(np.clip(rgb, 0.0, 1.0) * (2**bit_depth - 1)).astype(np.uint8 if bit_depth == 8 else np.uint16)
    params = (cv2.IMWRITE_JPEG_QUALITY, int(quality)) if fmt == "jpeg" else ()
    _atomic_write(p, lambda tmp: _encode_cv2(tmp, q, params))


def write_image(path: PathLike, img: np.ndarray) -> None:
    """Write ``img`` in the format named by the extension: EXR (float32), ``.hdr``, or 8-bit PNG/JPEG/TIFF.

    Args:
        path: Destination file (``.exr``, ``.hdr``, ``.png``, ``.jpg``, ``.jpeg``, ``.tif``, ``.tiff``).
        img: Linear values for HDR formats, display values in [0, 1] for LDR formats.

    Raises:
        ImageError: Unsupported extension, invalid array, a missing folder, or a failed write.
    """
    fmt = _ext_format(os.fspath(path))
    if fmt == "exr":
        write_exr(path, img)
    elif fmt == "hdr":
        write_hdr(path, img)
    elif fmt in LDR_FORMATS:
        write_ldr(path, img)
    else:
        raise ImageError(path, "unsupported output format (expected .exr, .hdr, .png, .jpg, .jpeg, .tif, .tiff)")
