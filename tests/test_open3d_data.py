"""``fetch open3d``: the R11F_G11F_B10F decoder, the KTX cube-map reader, the cube-to-panorama resampling and the
fetch itself, on small cube maps built here (the real wheel is 105 MB and needs PyPI)."""

import hashlib
import json
import os
import struct
import zipfile

import numpy as np
import pytest

from hdr_core.data import open3d as o3d
from hdr_core.data.__main__ import main as data_main
from hdr_core.data.catalog import read_manifest
from hdr_core.data.splits import violations
from hdr_core.io import read_hdr
from hdr_core.lighting import pano_directions


def _encode(v: float, mbits: int) -> int:
    """One unsigned small float (5 exponent bits, ``mbits`` mantissa bits), for values it holds exactly."""
    if v == 0:
        return 0
    e = int(np.floor(np.log2(v)))
    if e < -14:  # denormal
        m = round(v / 2.0 ** -14 * (1 << mbits))
        assert m / (1 << mbits) * 2.0 ** -14 == v
        return m
    m = round((v / 2.0 ** e - 1) * (1 << mbits))
    assert (1 + m / (1 << mbits)) * 2.0 ** e == v and 1 <= e + 15 <= 30
    return ((e + 15) << mbits) | m


def _pack(rgb) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.float64)
    enc = np.vectorize(_encode)
    return (enc(rgb[..., 0], 6) | (enc(rgb[..., 1], 6) << 11) | (enc(rgb[..., 2], 5) << 22)).astype(np.uint32)


def _ktx(faces_rgb: np.ndarray, kv: bytes = b"") -> bytes:
    """A KTX 1 cube map (one level) of ``(6, n, n, 3)`` exactly representable values."""
    n = faces_rgb.shape[1]
    head = b"\xabKTX 11\xbb\r\n\x1a\n" + struct.pack("<13I", 0x04030201, 0x8C3A, 1, 0x8C3A, 0x8C3A, 0x8C3A, n, n, 0, 0,
                                                      6, 1, len(kv))
    return head + kv + struct.pack("<I", n * n * 4) + b"".join(_pack(f).astype("<u4").tobytes() for f in faces_rgb)


def _snap(x: np.ndarray) -> np.ndarray:
    """Round positive values to ones the 10-bit blue channel holds exactly (5 mantissa bits)."""
    e = np.floor(np.log2(x))
    return np.round(x / 2 ** e * 32) / 32 * 2 ** e


def test_r11g11b10f_known_codes_and_every_value_is_a_half_float():
    one = (15 << 6) | ((15 << 6) << 11) | ((15 << 5) << 22)
    np.testing.assert_array_equal(o3d.unpack_r11g11b10f(np.array([one, 0])), [[1, 1, 1], [0, 0, 0]])
    top = (30 << 6) | ((30 << 5 | 31) << 22)  # the largest red and blue values
    assert o3d.unpack_r11g11b10f(np.array([top | 63]))[0].tolist() == [65024.0, 0.0, 64512.0]
    assert o3d.unpack_r11g11b10f(np.array([1]))[0, 0] == 2.0 ** -14 / 64  # the smallest denormal
    assert np.isnan(o3d.unpack_r11g11b10f(np.array([31 << 6]))[0, 0])  # infinity/NaN codes
    # every finite code: increasing, and exactly a half float (so the half EXR the fetch writes loses nothing)
    codes = np.arange(31 << 6, dtype=np.uint32)
    red = o3d.unpack_r11g11b10f(codes)[:, 0].astype(np.float64)
    blue = o3d.unpack_r11g11b10f(np.arange(31 << 5, dtype=np.uint32) << 22)[:, 2].astype(np.float64)
    for vals in (red, blue):
        assert np.all(np.diff(vals) > 0)
        np.testing.assert_array_equal(vals.astype(np.float16).astype(np.float64), vals)
    # the channels sit where the format says: 1.0 in each alone
    for c, word in enumerate(((15 << 6), (15 << 6) << 11, (15 << 5) << 22)):
        np.testing.assert_array_equal(o3d.unpack_r11g11b10f(np.array([word]))[0], np.eye(3)[c])


def test_read_ktx_cubemap_round_trip_and_clear_errors():
    rng = np.random.default_rng(0)
    faces = _snap(rng.uniform(0.01, 5000, (6, 4, 4, 3)))
    got = o3d.read_ktx_cubemap(_ktx(faces, kv=b"\x08\x00\x00\x00abc\x00\x00\x00\x00\x00"), "x.ktx")
    assert got.shape == (6, 4, 4, 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got, faces)
    good = _ktx(faces)
    with pytest.raises(ValueError, match=r"^x\.ktx: not a KTX 1 file"):
        o3d.read_ktx_cubemap(b"\x89PNG" + good[4:], "x.ktx")
    other = bytearray(good)
    other[28:32] = struct.pack("<I", 0x881B)  # GL_RGB16F
    with pytest.raises(ValueError, match="x.ktx: pixel format 0x881B is not GL_R11F_G11F_B10F"):
        o3d.read_ktx_cubemap(bytes(other), "x.ktx")
    spec_type = bytearray(good)
    spec_type[16:20] = struct.pack("<I", 0x8C3B)  # the KTX spec's glType for this format (Filament writes 0x8C3A)
    np.testing.assert_array_equal(o3d.read_ktx_cubemap(bytes(spec_type)), faces)
    spec_type[16:20] = struct.pack("<I", 0x1406)  # GL_FLOAT
    with pytest.raises(ValueError, match="x.ktx: pixel type 0x1406 is not GL_UNSIGNED_INT_10F_11F_11F_REV"):
        o3d.read_ktx_cubemap(bytes(spec_type), "x.ktx")
    with pytest.raises(ValueError, match="x.ktx: truncated"):
        o3d.read_ktx_cubemap(good[:-10], "x.ktx")
    nan = bytearray(good)
    nan[-4:] = struct.pack("<I", 31 << 6)
    with pytest.raises(ValueError, match="infinite or NaN"):
        o3d.read_ktx_cubemap(bytes(nan), "x.ktx")


def _gl_texel_directions(n: int) -> np.ndarray:
    """Unit GL directions (X, Y, Z) of every texel centre of the 6 faces, from the OpenGL cube-map table."""
    u = (np.arange(n) + 0.5) / n * 2 - 1
    tc, sc = np.meshgrid(u, u, indexing="ij")  # row = t, column = s
    one = np.ones_like(sc)
    d = [np.stack(v, -1) for v in (
        (one, -tc, -sc), (-one, -tc, sc),   # +X, -X
        (sc, one, tc), (sc, -one, -tc),     # +Y, -Y
        (sc, -tc, one), (-sc, -tc, -one))]  # +Z, -Z
    d = np.stack(d)
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def test_cube_to_equirect_puts_every_direction_where_it_belongs():
    # A smooth function of the direction stored on the cube must come back as the same function of each panorama
    # pixel's direction: a face turned, mirrored or swapped would be off by O(1), not by interpolation error.
    n, h = 48, 32
    gl = _gl_texel_directions(n)
    f = lambda X, Y, Z: np.stack([2 + X + 0.5 * Y, 2 + Y - 0.5 * Z, 2 + Z + 0.5 * X], -1)  # noqa: E731
    faces = f(gl[..., 0], gl[..., 1], gl[..., 2]).astype(np.float32)
    pano = o3d.cube_to_equirect(faces, h)
    assert pano.shape == (h, 2 * h, 3)
    d = pano_directions(h)[0].numpy()
    want = f(-d[..., 1], d[..., 2], d[..., 0])  # GL (X, Y, Z) = (-y, z, x): cmgen's mirror undone
    assert np.abs(pano - want).max() < 0.03
    # and the faces land where the convention says: +Y (GL up) at the top row, -Y at the bottom, +Z at azimuth 0
    labels = np.broadcast_to(np.arange(1, 7, dtype=np.float32)[:, None, None, None], (6, n, n, 3))
    lab = o3d.cube_to_equirect(labels, h)[..., 0]
    assert np.all(lab[0] == 3) and np.all(lab[-1] == 4)
    assert lab[h // 2, 0] == 5 and lab[h // 2, h // 2] == 2 and lab[h // 2, h] == 6 and lab[h // 2, 3 * h // 2] == 1


def _wheel(tmp_path, skyboxes: dict[str, np.ndarray], name="open3d_cpu-0.20.0-py3-none-any.whl"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("open3d/__init__.py", "")
        for k, faces in skyboxes.items():
            z.writestr(f"open3d/resources/{k}_skybox.ktx", _ktx(faces))
    return path


@pytest.fixture
def two_skyboxes(monkeypatch):
    """Two small cube maps standing in for the wheel's nine, with their checksums in the module's table."""
    rng = np.random.default_rng(1)
    sky = {"sunny": _snap(rng.uniform(0.05, 2, (6, 8, 8, 3))), "lamp": _snap(rng.uniform(0.01, 1, (6, 8, 8, 3)))}
    sky["sunny"][2, 3, 4] = 61440.0  # a sun on the upward face (every channel holds 61440 exactly)
    table = {k: (hashlib.sha256(_ktx(v)).hexdigest(), {"class": c, **({"sun": True} if k == "sunny" else {}),
                                                       "notes": [f"a {k} test scene"]})
             for k, v, c in (("sunny", sky["sunny"], "outdoor"), ("lamp", sky["lamp"], "night"))}
    monkeypatch.setattr(o3d, "SKYBOXES", table)
    return sky


def test_fetch_writes_panoramas_and_a_manifest_and_is_idempotent(tmp_path, two_skyboxes):
    wheel = _wheel(tmp_path, two_skyboxes)
    out = tmp_path / "open3d"
    files = o3d.fetch_open3d(out, wheel=wheel, height=16)
    assert [f.name for f in files] == ["open3d_lamp.exr", "open3d_sunny.exr"]
    sunny = read_hdr(out / "open3d_sunny.exr")
    assert sunny.shape == (16, 32, 3)
    want = o3d.cube_to_equirect(two_skyboxes["sunny"], 16)
    np.testing.assert_array_equal(sunny, want.astype(np.float16).astype(np.float32))
    assert sunny[:8].max() > 1e4  # the sun is in the upper half
    entries = read_manifest(out)
    e = entries["open3d_sunny.exr"]
    assert (e["class"], e["site_group"], e["sun"], e["set"]) == ("outdoor", "open3d_sunny", True, "open3d")
    assert e["source_file"] == "open3d/resources/sunny_skybox.ktx" and "MIT" in e["licence"]
    assert entries["open3d_lamp.exr"]["class"] == "night" and "sun" not in entries["open3d_lamp.exr"]
    assert violations(files) == {}  # none is a test scene or a cousin of one
    # a second fetch keeps the files and needs no wheel at all
    before = {f: f.stat().st_mtime_ns for f in files}
    assert o3d.fetch_open3d(out, wheel=tmp_path / "no-such.whl", height=16) == files
    assert {f: f.stat().st_mtime_ns for f in files} == before


def test_fetch_into_a_folder_with_other_panoramas_keeps_their_entries(tmp_path, two_skyboxes):
    from hdr_core.io import write_hdr

    out = tmp_path / "mixed"
    out.mkdir()
    write_hdr(out / "studio_small_05.hdr", np.full((8, 16, 3), 0.5, np.float32))
    theirs = {"name": "studio_small_05", "file": "studio_small_05.hdr", "class": "indoor",
              "site_group": "studio_small", "polyhaven_slug": "studio_small_05", "licence": "CC0-1.0 (Poly Haven)"}
    (out / "manifest.json").write_text(json.dumps([theirs]))
    files = o3d.fetch_open3d(out, wheel=_wheel(tmp_path, two_skyboxes), height=16)
    rows = json.loads((out / "manifest.json").read_text())  # sorted by file, as fetch polyhaven writes it
    assert rows[-1] == theirs and [r["file"] for r in rows[:-1]] == ["open3d_lamp.exr", "open3d_sunny.exr"]
    bad = violations(sorted(out.glob("*.[eh][xd]r")))
    assert list(bad) == [out / "studio_small_05.hdr"]  # the slug rule still sees the test studio's series
    o3d.fetch_open3d(out, wheel=None, height=16)  # again: nothing is downloaded, the entries stay
    assert json.loads((out / "manifest.json").read_text()) == rows
    assert files == sorted(out.glob("open3d_*.exr"))


def test_fetch_refuses_other_files_and_says_which(tmp_path, two_skyboxes, capsys):
    changed = dict(two_skyboxes, lamp=two_skyboxes["lamp"] * 2)
    wheel = _wheel(tmp_path, changed)
    with pytest.raises(ValueError, match=r"open3d/resources/lamp_skybox\.ktx is not the file this project checked"):
        o3d.fetch_open3d(tmp_path / "a", wheel=wheel, height=16)
    assert not list((tmp_path / "a").glob("*.exr"))  # nothing half-written
    missing = _wheel(tmp_path, {"sunny": two_skyboxes["sunny"]}, name="partial.whl")
    with pytest.raises(ValueError, match=r"has no open3d/resources/lamp_skybox\.ktx"):
        o3d.fetch_open3d(tmp_path / "b", wheel=missing, height=16)
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"not a zip")
    assert data_main(["fetch", "open3d", "--out", str(tmp_path / "c"), "--wheel", str(junk)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "junk.whl: not a wheel (zip) file" in err and "\n" not in err


def test_cli_fetch_and_a_failed_download(tmp_path, two_skyboxes, capsys):
    wheel = _wheel(tmp_path, two_skyboxes)
    assert data_main(["fetch", "open3d", "--out", str(tmp_path / "o"), "--wheel", str(wheel)]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "o" / "open3d_lamp.exr"),
                                               str(tmp_path / "o" / "open3d_sunny.exr")]
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())[0]["height"] == 512
    with pytest.raises(RuntimeError, match=r"^pip download open3d-cpu==0\.20\.0 failed"):
        o3d.download_wheel(tmp_path, python="false")  # a pip that fails (no network needed)


def test_the_real_table_describes_nine_photographs():
    assert len(o3d.SKYBOXES) == 9 and "default" in o3d.LEFT_OUT and "default" not in o3d.SKYBOXES
    assert all(len(sha) == 64 and meta["class"] in ("indoor", "outdoor", "night") and meta["notes"]
               for sha, meta in o3d.SKYBOXES.values())
    assert sorted(k for k, (_, m) in o3d.SKYBOXES.items() if m.get("sun")) == ["brightday", "crossroads", "park"]


@pytest.mark.skipif(not os.environ.get("LANET_OPEN3D_WHEEL"), reason="set LANET_OPEN3D_WHEEL to an open3d wheel")
def test_a_real_wheel_holds_the_nine_checked_files(tmp_path):
    """Opt-in (the wheel is 105 MB): ``LANET_OPEN3D_WHEEL=FILE.whl pytest tests/test_open3d_data.py``."""
    sky = o3d.skyboxes_from_wheel(os.environ["LANET_OPEN3D_WHEEL"])
    assert sorted(sky) == sorted(o3d.SKYBOXES) and all(f.shape == (6, 256, 256, 3) for f in sky.values())
    pano = o3d.cube_to_equirect(sky["park"], 64)
    assert pano[:32].mean() > pano[32:].mean()  # the sky is up
