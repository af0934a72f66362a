"""hdr_core.io: round trips per format, EXR channel layouts, repairs, bad inputs and atomic writes."""

from __future__ import annotations

import os

import cv2
import numpy as np
import OpenEXR
import pytest

from hdr_core import io
from hdr_core.errors import ImageError
from hdr_core.io import (
    is_hdr_path,
    read_hdr,
    read_image,
    read_ldr,
    write_exr,
    write_hdr,
    write_image,
    write_ldr,
)

H, W = 24, 48


def _write_exr_channels(path, channels: dict[str, np.ndarray]) -> None:
    """Write an EXR with exactly these channels, bypassing hdr_core.io.

    The arrays must be C-contiguous: OpenEXR 3.x ignores numpy strides and would write the wrong pixels.
    """
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, {k: np.ascontiguousarray(v) for k, v in channels.items()}).write(str(path))


def _raises(path, func=read_image, match: str | None = None) -> ImageError:
    with pytest.raises(ImageError, match=match) as exc:
        func(path)
    msg = str(exc.value)
    assert msg.startswith(f"{os.fspath(path)}: ") and "\n" not in msg
    return exc.value


@pytest.fixture
def hdr_img(rng):
    """Linear HDR values spanning 1e-3 .. 1e4."""
    return (10.0 ** rng.uniform(-3, 4, (H, W, 3))).astype(np.float32)


# ----------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext, bits", [(".png", 8), (".png", 16), (".tif", 8), (".tiff", 16)])
def test_ldr_round_trip_exact(tmp_path, rng, ext, bits):
    levels = 2**bits - 1
    img = rng.integers(0, levels + 1, (H, W, 3)) / levels
    path = tmp_path / f"a{ext}"
    write_ldr(path, img, bit_depth=bits)
    out, depth = read_ldr(path)
    assert depth == bits and out.dtype == np.float32 and out.shape == (H, W, 3)
    np.testing.assert_array_equal(np.rint(out * levels), np.rint(img * levels))
    np.testing.assert_array_equal(read_image(path), out)


def test_ldr_values_round_to_nearest_and_clip(tmp_path):
    img = np.array([[[-0.5, 0.5 / 255 + 1e-6, 1.5]]], dtype=np.float64)
    write_ldr(tmp_path / "a.png", img)
    np.testing.assert_array_equal(read_ldr(tmp_path / "a.png")[0] * 255, [[[0, 1, 255]]])


def test_jpeg_round_trip_within_tolerance(tmp_path):
    y, x = np.mgrid[0:H, 0:W] / max(H, W)
    img = np.stack([x, y, 0.5 * (x + y)], axis=-1)
    write_ldr(tmp_path / "a.jpg", img, quality=95)
    out, depth = read_ldr(tmp_path / "a.jpg")
    assert depth == 8 and out.shape == (H, W, 3)
    assert np.abs(out - img).mean() < 0.01 and np.abs(out - img).max() < 0.06


@pytest.mark.parametrize("compression", ["none", "rle", "zips", "zip", "piz"])
def test_exr_float_round_trip_exact(tmp_path, hdr_img, compression):
    write_exr(tmp_path / "a.exr", hdr_img, compression=compression)
    out = read_hdr(tmp_path / "a.exr")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, hdr_img)


def test_exr_half_round_trip(tmp_path, hdr_img):
    write_exr(tmp_path / "a.exr", hdr_img, half=True)
    assert OpenEXR.File(str(tmp_path / "a.exr"), separate_channels=True).channels()["R"].pixels.dtype == np.float16
    np.testing.assert_allclose(read_hdr(tmp_path / "a.exr"), hdr_img, rtol=2**-11, atol=0)


def test_exr_half_clips_to_half_max(tmp_path):
    write_exr(tmp_path / "a.exr", np.full((2, 2, 3), 1e6, np.float32), half=True)
    np.testing.assert_array_equal(read_hdr(tmp_path / "a.exr"), 65504.0)


def test_radiance_round_trip_within_rgbe_precision(tmp_path, hdr_img):
    write_hdr(tmp_path / "a.hdr", hdr_img)
    out = read_hdr(tmp_path / "a.hdr")
    assert out.dtype == np.float32 and out.shape == (H, W, 3)
    # RGBE: one shared exponent, 8-bit mantissas -> error relative to the brightest channel of the pixel.
    assert np.all(np.abs(out - hdr_img) <= 0.01 * hdr_img.max(axis=-1, keepdims=True))


def test_channel_order_is_rgb(tmp_path):
    red = np.zeros((2, 3, 3), np.float32)
    red[..., 0] = 1.0
    for name in ("a.png", "a.jpg", "a.tif", "a.exr", "a.hdr"):
        write_image(tmp_path / name, red)
        out = read_image(tmp_path / name)
        assert out[..., 0].min() > 0.9 and out[..., 1:].max() < 0.1, name
    # A file written by OpenCV directly (BGR in memory) reads back as RGB.
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 2] = 255
    cv2.imwrite(str(tmp_path / "cv.png"), bgr)
    np.testing.assert_array_equal(read_image(tmp_path / "cv.png")[0, 0], [1, 0, 0])


@pytest.mark.parametrize("ext", [".exr", ".hdr", ".png", ".jpg", ".jpeg", ".tif", ".tiff"])
def test_write_image_dispatches_on_extension(tmp_path, ext):
    img = np.full((4, 8, 3), 0.25, np.float32)
    write_image(tmp_path / f"a{ext}", img)
    assert is_hdr_path(tmp_path / f"a{ext}") == (ext in (".exr", ".hdr"))
    np.testing.assert_allclose(read_image(tmp_path / f"a{ext}"), img, atol=2 / 255)


def test_writers_accept_gray_and_drop_alpha(tmp_path, rng):
    gray = rng.random((H, W)).astype(np.float32)
    write_exr(tmp_path / "g.exr", gray)
    np.testing.assert_array_equal(read_hdr(tmp_path / "g.exr"), np.repeat(gray[..., None], 3, axis=2))
    rgba = rng.random((H, W, 4)).astype(np.float32)
    write_exr(tmp_path / "a.exr", rgba)
    assert set(OpenEXR.File(str(tmp_path / "a.exr"), separate_channels=True).channels()) == {"R", "G", "B"}
    np.testing.assert_array_equal(read_hdr(tmp_path / "a.exr"), rgba[..., :3])


# ------------------------------------------------------------------------------------- EXR channel layouts


def test_exr_rgba_drops_alpha(tmp_path, rng):
    rgba = rng.random((H, W, 4)).astype(np.float32)
    _write_exr_channels(tmp_path / "a.exr", {c: rgba[..., i] for i, c in enumerate("RGBA")})
    np.testing.assert_array_equal(read_hdr(tmp_path / "a.exr"), rgba[..., :3])


def test_exr_luminance_only_is_replicated(tmp_path, rng):
    y = rng.random((H, W)).astype(np.float16)
    _write_exr_channels(tmp_path / "y.exr", {"Y": y})
    out = read_hdr(tmp_path / "y.exr")
    assert out.dtype == np.float32 and out.shape == (H, W, 3)
    np.testing.assert_array_equal(out, np.repeat(y[..., None].astype(np.float32), 3, axis=2))


@pytest.mark.parametrize("layer", ["beauty", "View Layer.Combined"])
def test_exr_layer_prefixed_channels(tmp_path, rng, layer):
    rgb = rng.random((H, W, 3)).astype(np.float32)
    chans = {f"{layer}.{c}": rgb[..., i] for i, c in enumerate("RGB")}
    chans["View Layer.DiffCol.R"] = chans["View Layer.DiffCol.G"] = chans["View Layer.DiffCol.B"] = -rgb[..., 0]
    chans["View Layer.Depth.Z"] = rgb[..., 0] * 100
    _write_exr_channels(tmp_path / "a.exr", chans)
    np.testing.assert_array_equal(read_hdr(tmp_path / "a.exr"), rgb)


def test_exr_mixed_half_and_float_channels(tmp_path, rng):
    rgb = rng.random((H, W, 3)).astype(np.float16)
    _write_exr_channels(tmp_path / "a.exr", {"R": rgb[..., 0], "G": rgb[..., 1].astype(np.float32), "B": rgb[..., 2]})
    np.testing.assert_array_equal(read_hdr(tmp_path / "a.exr"), rgb.astype(np.float32))


def test_exr_without_colour_channels(tmp_path):
    _write_exr_channels(tmp_path / "z.exr", {"Z": np.ones((4, 4), np.float32)})
    _raises(tmp_path / "z.exr", match="no R,G,B or Y channels.*Z")


# ------------------------------------------------------------------------------- LDR layouts and repairs


@pytest.mark.parametrize("dtype, scale", [(np.uint8, 255), (np.uint16, 65535)])
def test_grayscale_png_becomes_rgb(tmp_path, rng, dtype, scale):
    gray = rng.integers(0, scale + 1, (H, W)).astype(dtype)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    out, bits = read_ldr(tmp_path / "g.png")
    assert out.shape == (H, W, 3) and bits == (8 if dtype == np.uint8 else 16)
    np.testing.assert_array_equal(out * scale, np.repeat(gray[..., None], 3, axis=2))


def test_png_alpha_dropped(tmp_path, rng):
    bgra = rng.integers(0, 256, (H, W, 4)).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png") * 255, bgra[..., 2::-1])


def test_hdr_negatives_clamped(tmp_path, rng):
    rgb = rng.normal(size=(H, W, 3)).astype(np.float32)
    _write_exr_channels(tmp_path / "n.exr", {c: rgb[..., i] for i, c in enumerate("RGB")})
    np.testing.assert_array_equal(read_hdr(tmp_path / "n.exr"), np.maximum(rgb, 0))


def test_hdr_nan_inf_repaired_with_warning(tmp_path):
    r = np.array([[1.0, np.nan], [np.inf, -np.inf]], np.float32)
    g = np.array([[2.0, 3.0], [7.0, -1.0]], np.float32)
    path = tmp_path / "bad.exr"
    _write_exr_channels(path, {"R": r, "G": g, "B": g})
    with pytest.warns(UserWarning, match="3 non-finite") as rec:
        out = read_hdr(path)
    assert str(path) in str(rec[0].message)
    np.testing.assert_array_equal(out[..., 0], [[1, 0], [7, 0]])  # +Inf -> largest finite value of the image
    np.testing.assert_array_equal(out[..., 1], [[2, 3], [7, 0]])


def test_clean_hdr_does_not_warn(tmp_path, hdr_img, recwarn):
    write_exr(tmp_path / "a.exr", hdr_img)
    read_hdr(tmp_path / "a.exr")
    assert not recwarn.list


# ------------------------------------------------------------------------------------------ bad inputs


@pytest.fixture
def good_files(tmp_path, rng):
    img = rng.random((32, 64, 3)).astype(np.float32)
    files = {}
    for ext in (".png", ".jpg", ".tif", ".exr", ".hdr"):
        files[ext] = tmp_path / f"good{ext}"
        write_image(files[ext], img)
    return files


def test_missing_file(tmp_path):
    _raises(tmp_path / "nope.png", match="file not found")


def test_directory(tmp_path):
    _raises(tmp_path, match="is a directory")


def test_empty_file(tmp_path):
    (tmp_path / "e.exr").write_bytes(b"")
    _raises(tmp_path / "e.exr", match="empty file")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".exr", ".hdr"])
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_files(tmp_path, good_files, ext, keep):
    data = good_files[ext].read_bytes()
    bad = tmp_path / f"trunc{ext}"
    bad.write_bytes(data[: int(len(data) * keep)])
    _raises(bad, match="corrupt")


def test_corrupt_exr_header(tmp_path):
    (tmp_path / "c.exr").write_bytes(b"v/1\x01" + b"\x02\x00\x00\x00garbage" * 4)
    _raises(tmp_path / "c.exr", match="corrupt")


def test_text_named_png_is_not_an_image(tmp_path):
    (tmp_path / "t.png").write_text("hello, not an image\n")
    _raises(tmp_path / "t.png", match="not a valid image")


def test_webp_and_bmp_are_read_not_written(tmp_path, rng):
    """WebP (lossless and lossy, with alpha) and BMP read as RGB display values, by content like every format (the
    add-on reads them too); writing them is refused, and a truncated one is a one-line error."""
    img = rng.integers(0, 256, (H, W, 3)).astype(np.uint8)  # RGB
    cv2.imwrite(str(tmp_path / "a.webp"), img[..., ::-1], (cv2.IMWRITE_WEBP_QUALITY, 101))  # 101: lossless
    cv2.imwrite(str(tmp_path / "a.bmp"), img[..., ::-1])
    bgra = np.dstack([img[..., ::-1], np.full((H, W), 7, np.uint8)])
    cv2.imwrite(str(tmp_path / "alpha.webp"), bgra, (cv2.IMWRITE_WEBP_QUALITY, 101))
    for name in ("a.webp", "a.bmp", "alpha.webp"):
        out, bits = read_ldr(tmp_path / name)
        assert bits == 8
        np.testing.assert_array_equal(np.rint(out * 255).astype(np.uint8), img, err_msg=name)
    (tmp_path / "webp_named.png").write_bytes((tmp_path / "a.webp").read_bytes())
    np.testing.assert_array_equal(read_ldr(tmp_path / "webp_named.png")[0], read_ldr(tmp_path / "a.webp")[0])
    assert set(io.READ_ONLY_LDR_FORMATS) == {"webp", "bmp"} and not is_hdr_path(tmp_path / "a.webp")
    (tmp_path / "bm.png").write_text("BM is how this text starts, not a bitmap\n")  # "BM" alone is not a BMP
    _raises(tmp_path / "bm.png", match="not a valid image")
    data = (tmp_path / "a.webp").read_bytes()
    (tmp_path / "cut.webp").write_bytes(data[: len(data) // 2])
    _raises(tmp_path / "cut.webp", match="corrupt or truncated WebP")
    for ext in (".webp", ".bmp"):
        with pytest.raises(ImageError, match="unsupported output format"):
            write_image(tmp_path / f"out{ext}", img / 255.0)
        assert not (tmp_path / f"out{ext}").exists()


def test_unknown_format(tmp_path):
    (tmp_path / "a.gif").write_bytes(b"GIF89a" + bytes(64))
    _raises(tmp_path / "a.gif", match="unsupported format")


def test_content_wins_over_extension(tmp_path, good_files):
    exr_as_png = tmp_path / "really_exr.png"
    exr_as_png.write_bytes(good_files[".exr"].read_bytes())
    np.testing.assert_array_equal(read_image(exr_as_png), read_hdr(good_files[".exr"]))
    assert is_hdr_path(exr_as_png)
    png_as_jpg = tmp_path / "really_png.jpg"
    png_as_jpg.write_bytes(good_files[".png"].read_bytes())
    np.testing.assert_array_equal(read_ldr(png_as_jpg)[0], read_ldr(good_files[".png"])[0])


@pytest.mark.parametrize("ext", [".exr", ".hdr"])
def test_read_ldr_refuses_hdr(good_files, ext):
    _raises(good_files[ext], read_ldr, match=r"is an HDR file .*, expected an 8/16-bit LDR image")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_read_hdr_refuses_ldr(good_files, ext):
    _raises(good_files[ext], read_hdr, match="expected an HDR file")


def test_float_tiff_is_not_an_ldr_image(tmp_path):
    cv2.imwrite(str(tmp_path / "f.tif"), np.ones((4, 4, 3), np.float32))
    _raises(tmp_path / "f.tif", read_ldr, match="expected 8- or 16-bit")


def test_is_hdr_path_by_name_when_unreadable(tmp_path):
    assert is_hdr_path(tmp_path / "x.exr") and is_hdr_path("x.HDR")
    assert not is_hdr_path(tmp_path / "x.png")


# --------------------------------------------------------------------------------------------- writers


def test_atomic_write_failure_leaves_nothing(tmp_path, monkeypatch, hdr_img):
    seen = []

    def broken(tmp, *args):
        seen.append(tmp)
        with open(tmp, "wb") as f:
            f.write(b"v/1\x01 half-written")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(io, "_encode_exr", broken)
    _raises(tmp_path / "out.exr", lambda p: write_exr(p, hdr_img), match="disk on fire")
    assert list(tmp_path.iterdir()) == []
    tmp = os.path.basename(seen[0])
    assert os.path.dirname(seen[0]) == str(tmp_path) and tmp.startswith(".out.tmp") and tmp.endswith(".exr")


def test_atomic_write_failure_keeps_existing_file(tmp_path, monkeypatch):
    dest = tmp_path / "out.png"
    write_ldr(dest, np.zeros((2, 2, 3)))
    before = dest.read_bytes()
    monkeypatch.setattr(cv2, "imwrite", lambda *a, **k: False)
    _raises(dest, lambda p: write_ldr(p, np.ones((2, 2, 3))), match="could not write")
    assert dest.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_overwrite_replaces(tmp_path):
    dest = tmp_path / "out.exr"
    write_exr(dest, np.zeros((2, 2, 3), np.float32))
    write_exr(dest, np.full((2, 2, 3), 5.0, np.float32))
    np.testing.assert_array_equal(read_hdr(dest), 5.0)
    assert [p.name for p in tmp_path.iterdir()] == ["out.exr"]


@pytest.mark.parametrize("ext", [".exr", ".hdr", ".png", ".jpg", ".tif"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_writers_refuse_non_finite(tmp_path, ext, bad):
    img = np.zeros((4, 4, 3), np.float32)
    img[1, 2, 0] = bad
    _raises(tmp_path / f"a{ext}", lambda p: write_image(p, img), match="1 NaN/Inf")
    assert list(tmp_path.iterdir()) == []


def test_writer_missing_parent_dir(tmp_path):
    _raises(tmp_path / "missing" / "a.exr", lambda p: write_exr(p, np.zeros((2, 2, 3))), match="parent directory")
    assert not (tmp_path / "missing").exists()


def test_writer_destination_is_directory(tmp_path):
    (tmp_path / "d.png").mkdir()
    _raises(tmp_path / "d.png", lambda p: write_image(p, np.zeros((2, 2, 3))), match="is a directory")


@pytest.mark.parametrize("shape", [(0, 4, 3), (4, 0), (4, 4, 2), (4, 4, 5), (4,), (2, 4, 4, 3)])
def test_writers_refuse_bad_shapes(tmp_path, shape):
    _raises(tmp_path / "a.exr", lambda p: write_exr(p, np.zeros(shape, np.float32)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("call, match", [
    (lambda p: write_exr(p.with_suffix(".png"), np.zeros((2, 2, 3))), "extension"),
    (lambda p: write_hdr(p.with_suffix(".exr"), np.zeros((2, 2, 3))), "extension"),
    (lambda p: write_ldr(p.with_suffix(".hdr"), np.zeros((2, 2, 3))), "extension"),
    (lambda p: write_image(p.with_suffix(".gif"), np.zeros((2, 2, 3))), "unsupported output format"),
    (lambda p: write_ldr(p.with_suffix(".png"), np.zeros((2, 2, 3), np.uint8)), "expected floats"),
    (lambda p: write_ldr(p.with_suffix(".jpg"), np.zeros((2, 2, 3)), bit_depth=16), "16-bit JPEG"),
    (lambda p: write_exr(p.with_suffix(".exr"), np.zeros((2, 2, 3)), compression="lzma"), "compression"),
])
def test_writers_refuse_bad_arguments(tmp_path, call, match):
    with pytest.raises(ImageError, match=match):
        call(tmp_path / "a")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------ a real-world EXR


def test_blender_studio_light_exr(blender_hdri_path):
    img = read_hdr(blender_hdri_path("forest"))
    h, w, c = img.shape
    assert c == 3 and w == 2 * h and img.dtype == np.float32
    assert np.isfinite(img).all() and img.min() >= 0 and img.max() > 1


# --- the OpenCV EXR backend (used inside Blender binaries, whose OpenEXR library clashes with the package's) -------


@pytest.fixture
def opencv_exr(monkeypatch):
    monkeypatch.setenv("HDR_CORE_EXR_BACKEND", "opencv")
    assert io.exr_backend() == "opencv"


@pytest.mark.parametrize("compression", ["none", "zip", "piz"])
def test_opencv_exr_backend_round_trip_and_interchange(tmp_path, hdr_img, compression, opencv_exr, monkeypatch):
    write_exr(tmp_path / "a.exr", hdr_img, compression=compression)
    np.testing.assert_array_equal(read_hdr(tmp_path / "a.exr"), hdr_img)
    write_exr(tmp_path / "h.exr", hdr_img, half=True)
    monkeypatch.setenv("HDR_CORE_EXR_BACKEND", "openexr")  # files of one backend read with the other
    assert OpenEXR.File(str(tmp_path / "h.exr"), separate_channels=True).channels()["R"].pixels.dtype == np.float16
    np.testing.assert_array_equal(read_hdr(tmp_path / "a.exr"), hdr_img)
    write_exr(tmp_path / "b.exr", hdr_img)
    monkeypatch.setenv("HDR_CORE_EXR_BACKEND", "opencv")
    np.testing.assert_array_equal(read_hdr(tmp_path / "b.exr"), hdr_img)
    np.testing.assert_allclose(read_hdr(tmp_path / "h.exr"), hdr_img, rtol=2**-11, atol=0)


def test_opencv_exr_backend_corrupt_file(tmp_path, opencv_exr):
    (tmp_path / "c.exr").write_bytes(b"v/1\x01" + b"\x02\x00\x00\x00garbage" * 4)
    _raises(tmp_path / "c.exr", match="corrupt")


def test_exr_backend_choice(monkeypatch):
    import sys
    import types

    monkeypatch.delenv("HDR_CORE_EXR_BACKEND", raising=False)
    monkeypatch.setitem(sys.modules, "bpy", types.SimpleNamespace(app=types.SimpleNamespace(binary_path="")))
    assert io.exr_backend() == "openexr"  # the bpy module (pip wheel): no clash
    monkeypatch.setitem(sys.modules, "bpy", types.SimpleNamespace(app=types.SimpleNamespace(binary_path="/b/blender")))
    assert io.exr_backend() == "opencv"  # inside a Blender binary
    monkeypatch.delitem(sys.modules, "bpy")
    has_openexr = io._has_openexr
    monkeypatch.setattr(io, "_has_openexr", lambda: False)
    assert io.exr_backend() == "opencv"  # a Python without the OpenEXR package (a GPU machine's image)
    monkeypatch.setattr(io, "_has_openexr", has_openexr)
    assert has_openexr() and io.exr_backend() == "openexr"  # this one has it
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.delitem(sys.modules, "OpenEXR")  # not imported yet, and not installed:
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "OpenEXR" else find_spec(n, *a))
    assert not io._has_openexr() and io.exr_backend() == "opencv"
    monkeypatch.setenv("HDR_CORE_EXR_BACKEND", "OpenEXR")
    assert io.exr_backend() == "openexr"
    monkeypatch.setenv("HDR_CORE_EXR_BACKEND", "imageio")
    with pytest.raises(ValueError, match="HDR_CORE_EXR_BACKEND"):
        io.exr_backend()
