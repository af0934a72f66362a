"""Partial photo spheres: GPano XMP read from JPEG/PNG files, the image placed on its whole panorama."""

import cv2
import numpy as np
import pytest
from conftest import gpano_props as _props
from conftest import gpano_xmp as _xmp
from conftest import write_jpeg_with_xmp

from hdr_core import gpano


def _panorama(h=64):
    """A 2:1 test panorama with distinct rows and columns (uint8 RGB)."""
    y, x = np.mgrid[0:h, 0: 2 * h]
    return np.stack([(x * 2) % 256, (y * 4) % 256, (x + y) % 256], -1).astype(np.uint8)


def test_xmp_from_jpeg_and_png_in_every_spelling(tmp_path):
    from PIL import Image, PngImagePlugin

    props = _props(4000, 2000, 4000, 1200, 0, 300)
    img = _panorama()[:38]
    write_jpeg_with_xmp(tmp_path / "a.jpg", img, _xmp(props))
    write_jpeg_with_xmp(tmp_path / "b.jpg", img, _xmp(props, prefix="pano", elements=True))
    for name, zipped in (("c.png", True), ("d.png", False)):
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", _xmp(props), zip=zipped)
        Image.fromarray(img).save(tmp_path / name, pnginfo=info)
    for name in ("a.jpg", "b.jpg", "c.png", "d.png"):
        assert gpano.read_sphere_crop(tmp_path / name) == gpano.SphereCrop(4000, 2000, 4000, 1200, 0, 300), name
    assert cv2.imread(str(tmp_path / "a.jpg")).shape == (38, 128, 3)  # still a valid JPEG
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "fill.jpg").write_bytes(data[:2] + b"\xff\xff" + data[2:])  # fill bytes before the first marker
    assert gpano.read_sphere_crop(tmp_path / "fill.jpg") == gpano.read_sphere_crop(tmp_path / "a.jpg")
    cv2.imwrite(str(tmp_path / "plain.jpg"), img)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe1\x00")  # truncated: no metadata, not an error here
    for name in ("plain.jpg", "broken.jpg"):
        assert gpano.read_xmp(tmp_path / name) is None and gpano.read_sphere_crop(tmp_path / name) is None


def test_what_the_metadata_may_say():
    full = gpano.parse_sphere_crop(_xmp({"FullPanoWidthPixels": 8000}))
    assert full == gpano.SphereCrop(8000, 4000, 8000, 4000, 0, 0) and full.whole_sphere and full.coverage() == 1.0
    assert gpano.parse_sphere_crop(_xmp(_props(8000, 4000, 6000, 3000, 0, 0, "cylindrical"))) is None
    assert gpano.parse_sphere_crop('<x:xmpmeta><rdf:Description tiff:Make="x"/></x:xmpmeta>') is None
    upper = gpano.parse_sphere_crop(_xmp(_props(800, 400, 800, 200, 0, 0)))
    assert upper.coverage() == pytest.approx(0.5) and not upper.whole_sphere
    band = gpano.parse_sphere_crop(_xmp(_props(800, 400, 400, 400, 100, 0)))
    assert band.coverage() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="CroppedAreaTopPixels is 'abc', not a number"):
        gpano.parse_sphere_crop(_xmp({**_props(800, 400, 800, 200, 0, 0), "CroppedAreaTopPixels": "abc"}))
    with pytest.raises(ValueError, match="does not fit"):
        gpano.parse_sphere_crop(_xmp(_props(800, 400, 800, 300, 0, 200)))
    with pytest.raises(ValueError, match="positive"):
        gpano.parse_sphere_crop(_xmp(_props(800, 400, 0, 300, 0, 0)))


def test_placed_where_the_metadata_says_and_the_rest_extended_from_the_edges():
    pano = _panorama(64)  # 128x64: the whole sphere
    top, h, left, w = 10, 40, 100, 96  # wraps round the seam: columns 100..127 then 0..67
    cols = (left + np.arange(w)) % 128
    part = pano[top: top + h][:, cols]
    crop = gpano.SphereCrop(128, 64, w, h, left, top)
    out = gpano.place_on_sphere(part, crop)
    assert out.shape == pano.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[top: top + h][:, cols], part)  # exactly where it was
    np.testing.assert_array_equal(out[:top][:, cols], np.repeat(part[:1], top, 0))  # each column's nearest row
    np.testing.assert_array_equal(out[top + h:][:, cols], np.repeat(part[-1:], 64 - top - h, 0))
    gap = [c for c in range(128) if c not in set(cols.tolist())]  # 68..99, from the right edge to the left one
    assert gap == list(range(68, 100))
    right, first = out[:, 67].astype(float), out[:, 100].astype(float)
    for k, c in enumerate(gap):
        t = (k + 1) / (len(gap) + 1)
        np.testing.assert_allclose(out[:, c], (1 - t) * right + t * first, atol=0.5 + 1e-9)
    # a downscaled copy (metadata of the original's pixels): the same placement at its scale
    half = gpano.place_on_sphere(part[::2, ::2].astype(np.float32), crop)
    assert half.shape == (32, 64, 3) and half.dtype == np.float32
    np.testing.assert_array_equal(half[5: 25][:, (50 + np.arange(48)) % 64], part[::2, ::2])


def test_metadata_that_does_not_describe_the_image_is_an_error():
    with pytest.raises(ValueError, match="describes a 96x40 image, this one is 96x60"):
        gpano.place_on_sphere(np.zeros((60, 96, 3), np.uint8), gpano.SphereCrop(128, 64, 96, 40, 0, 10))
    with pytest.raises(ValueError, match="not 2:1"):
        gpano.place_on_sphere(np.zeros((40, 96, 3), np.uint8), gpano.SphereCrop(128, 100, 96, 40, 0, 10))


def test_predict_places_a_partial_sphere_and_says_so(tmp_path, capsys):
    """The CLI on a phone's partial photo sphere (no top, no bottom): a whole 2:1 HDR, the input's own pixels where
    it covered the sphere; the same image without its metadata is refused as not 2:1."""
    from hdr_core.io import read_hdr
    from hdr_core.predict import main

    pano = (np.clip(np.random.default_rng(1).normal(0.45, 0.2, (128, 256, 3)), 0, 1) * 255).astype(np.uint8)
    part = pano[24:104]  # 256x80
    write_jpeg_with_xmp(tmp_path / "sphere.jpg", part, _xmp(_props(2048, 1024, 2048, 640, 0, 192)))
    cv2.imwrite(str(tmp_path / "plain.jpg"), part[..., ::-1])
    out = tmp_path / "out"
    assert main([str(tmp_path / "sphere.jpg"), "-o", str(out), "--size", "256x128"]) == 0
    said = capsys.readouterr().out
    assert "a partial photo sphere (83% of the sphere) placed by its metadata" in said
    hdr = read_hdr(out / "sphere.exr")
    assert hdr.shape == (128, 256, 3) and np.isfinite(hdr).all()
    assert main([str(tmp_path / "plain.jpg"), "-o", str(out), "--size", "256x128"]) == 1
    assert "needs a 2:1" in capsys.readouterr().err and not (out / "plain.exr").exists()
    write_jpeg_with_xmp(tmp_path / "wrong.jpg", part, _xmp(_props(2048, 1024, 2048, 1000, 0, 0)))
    assert main([str(tmp_path / "wrong.jpg"), "-o", str(out), "--size", "256x128"]) == 1
    assert "wrong.jpg: photo-sphere metadata describes a 2048x1000 image" in capsys.readouterr().err
