"""Synthetic HDR panoramas: parameter sampling (pure Python) and tiny Cycles renders of both kinds (bpy).

Renders are tiny (64x32 pixels, 16 samples; the command line at 32x16, 4 samples): a few seconds each on 2 cores.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math

import numpy as np
import pytest

from hdr_core.data import synth
from hdr_core.data.synth import (
    SKY_TYPES,
    MaterialParams,
    ObjectParams,
    SkyParams,
    SynthParams,
    WindowParams,
    sample_params,
    sun_direction,
)

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


# --- parameters (no bpy) ----------------------------------------------------------------------------------------

def test_params_deterministic_and_serialisable():
    for i in (0, 1, 7, 123):
        p = sample_params(3, i)
        assert p == sample_params(3, i)  # same (seed, index): same scene
        assert (p.seed, p.index) == (3, i)
        d = json.loads(json.dumps(p.to_dict()))
        assert SynthParams.from_dict(d) == p
    assert sample_params(3, 1) != sample_params(3, 2)
    assert sample_params(3, 1) != sample_params(4, 1)
    with pytest.raises(ValueError):
        SynthParams.from_dict({**sample_params(0, 0).to_dict(), "no_such_field": 1})
    with pytest.raises(ValueError):
        sample_params(-1, 0)


def test_params_varied():
    ps = [sample_params(0, i) for i in range(300)]
    kinds = collections.Counter(p.kind for p in ps)
    assert 0.3 < kinds["indoor"] / len(ps) < 0.5  # indoor_fraction = 0.4
    assert {p.sky.sky_type for p in ps} == set(SKY_TYPES)
    scattering = [p.sky for p in ps if p.sky.has_sun_disc]
    assert any(s.sun_elevation < 0 for s in scattering)  # a little dusk
    assert sum(s.sun_elevation > math.radians(3) for s in scattering) > 0.7 * len(scattering)
    assert all(p.sky.sun_elevation > 0 for p in ps if not p.sky.has_sun_disc)
    indoor = [p for p in ps if p.kind == "indoor"]
    assert {len(p.windows) for p in indoor} == {0, 1, 2}
    assert {len(p.lamps) for p in indoor} == {1, 2, 3, 4}
    outdoor = [p for p in ps if p.kind == "outdoor"]
    assert {o.shape for p in outdoor for o in p.objects} == {"box", "cylinder", "sphere"}
    assert {o.material.kind for p in outdoor for o in p.objects} == {"diffuse", "glossy", "metal"}
    assert any(p.sky_only for p in outdoor) and not all(p.sky_only for p in outdoor)
    assert len({p.ground.color for p in ps if p.ground}) > 100
    assert all(p.kind == "outdoor" for p in (sample_params(1, i, indoor_fraction=0.0) for i in range(20)))
    assert all(p.kind == "indoor" for p in (sample_params(1, i, indoor_fraction=1.0) for i in range(20)))


def test_params_geometry_is_consistent():
    for i in range(200):
        p = sample_params(5, i)
        cx, cy, cz = p.camera
        assert 1.4 <= cz <= 1.8
        for o in p.objects:  # nothing encloses or touches the camera
            assert math.hypot(o.location[0] - cx, o.location[1] - cy) > 0.5 * math.hypot(*o.size[:2]) + 0.3
            assert o.location[2] == pytest.approx(o.size[2] / 2, abs=1e-3)  # standing on the ground / floor
        if p.kind != "indoor":
            continue
        sx, sy, h = p.room.size
        assert abs(cx) < sx / 2 - 0.5 and abs(cy) < sy / 2 - 0.5 and cz < h - 0.5
        for lamp in p.lamps:
            assert abs(lamp.location[0]) < sx / 2 and abs(lamp.location[1]) < sy / 2
            assert lamp.location[2] == pytest.approx(h - synth.LAMP_DEPTH, abs=1e-3)
            assert 1800 <= lamp.temperature <= 8000 and lamp.power > 0
        for w in p.windows:
            length = sy if w.wall in ("+x", "-x") else sx
            assert abs(w.offset) + w.width / 2 < length / 2
            assert 0 < w.sill and w.sill + w.height < h
        assert len({w.wall for w in p.windows}) == len(p.windows)
        for o in p.objects:
            assert abs(o.location[0]) < sx / 2 and abs(o.location[1]) < sy / 2


def test_sun_direction_convention():
    assert sun_direction(0.0, 0.0) == pytest.approx((0.0, 1.0, 0.0), abs=1e-12)  # rotation 0: towards +Y
    assert sun_direction(0.0, math.pi / 2) == pytest.approx((1.0, 0.0, 0.0), abs=1e-12)  # clockwise from above
    assert sun_direction(math.pi / 2, 1.0) == pytest.approx((0.0, 0.0, 1.0), abs=1e-12)


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert synth.main(["--n", "1", "--out", str(tmp_path), "--width", "33"]) == 1
    assert "--width" in capsys.readouterr().err
    assert synth.main(["--n", "1", "--out", str(tmp_path), "--samples", "0"]) == 1
    assert not list(tmp_path.glob("*.exr"))
    # hdr_core has no renderer of its own: it says where the Blender scene builder is
    capsys.readouterr()
    assert synth.main(["--n", "1", "--out", str(tmp_path), "--width", "32", "--samples", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scenes/synth_panorama.py" in err[0]


def test_hdr_core_imports_no_blender_or_render_eval_code():
    """Issue #14 part 4: hdr_core (synth included) never imports bpy, render_eval or the scenes/ builders."""
    import pkgutil
    import subprocess
    import sys
    from pathlib import Path

    import hdr_core

    names = [m.name for m in pkgutil.walk_packages(hdr_core.__path__, "hdr_core.") if not m.name.endswith("__main__")]
    code = ("import importlib, sys\n"
            f"for n in {names!r}: importlib.import_module(n)\n"
            "bad = sorted(m for m in sys.modules\n"
            "             if m.split('.')[0] in ('bpy', 'render_eval', 'scenes', 'synth_panorama'))\n"
            "print(len(bad)); print(bad)")
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.splitlines()[0] == "0", res.stdout
    assert "hdr_core.data.synth" in names and "hdr_core.looks" in names


# --- renders (bpy) ----------------------------------------------------------------------------------------------

def _seam_ratio(img: np.ndarray) -> float:
    """Mean log-luminance step across the left/right seam over the mean step between neighbouring columns."""
    lum = np.log(img @ LUMA + 1e-3)
    return float(np.mean(np.abs(lum[:, 0] - lum[:, -1])) / np.mean(np.abs(np.diff(lum, axis=1))))


def _sunny_outdoor() -> SynthParams:
    sky = SkyParams("MULTIPLE_SCATTERING", sun_elevation=math.radians(35), sun_rotation=math.radians(60))
    objects = (ObjectParams("box", (4.0, 2.0, 0.75), (1.5, 1.0, 1.5), 0.3, MaterialParams("diffuse", (0.6, 0.3, 0.2))),
               ObjectParams("sphere", (-3.0, -2.0, 0.5), (1.0, 1.0, 1.0), 0.0,
                            MaterialParams("metal", (0.9, 0.9, 0.9), roughness=0.2, metallic=1.0)))
    return SynthParams(0, 0, "outdoor", sky, (0.0, 0.0, 1.6), MaterialParams("diffuse", (0.2, 0.3, 0.1)), objects)


@pytest.fixture(scope="module")
def ss():
    pytest.importorskip("bpy")  # conftest.py has pointed BLENDER_USER_RESOURCES at a temp dir by now
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scenes" / "synth_panorama.py"
    spec = importlib.util.spec_from_file_location("synth_panorama", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.bpy
def test_render_outdoor_sunny(ss):
    p = _sunny_outdoor()
    info = {}
    img = ss.render_synth(p, width=64, samples=16, info=info)
    assert img.shape == (32, 64, 3) and img.dtype == np.float32
    assert np.isfinite(img).all() and img.min() >= 0 and np.median(img) > 0
    assert info["world_sampling"] == "MANUAL" and info["sun_refined_px"] > 0
    assert info["denoiser_used"] == ("OPENIMAGEDENOISE" if "OPENIMAGEDENOISE" in ss.bc.available_denoisers() else None)
    lum = img @ LUMA
    assert lum.max() / np.median(lum) > 100  # the sun
    row, col = np.unravel_index(np.argmax(lum), lum.shape)
    exp_col, exp_row = ss.sun_pixel(p.sky.sun_direction, 64, 32)
    assert abs(row - exp_row) <= 1.5 and abs(col - exp_col) <= 1.5  # the camera renders the world mapping
    assert _seam_ratio(img) < 3.0


@pytest.mark.bpy
def test_render_sky_only(ss):
    p = _sunny_outdoor().replace(ground=None, objects=())
    info = {}
    img = ss.render_synth(p, width=64, samples=16, info=info)
    assert info["world_sampling"] == "NONE" and info["denoiser_used"] is None and info["sun_refined_px"] > 0
    lum = img @ LUMA
    assert np.isfinite(img).all() and lum[:14].min() > 0  # the sky
    assert lum.max() / np.median(lum[:14]) > 100
    assert lum[18:].max() < 1e-3 * np.median(lum[:14])  # the scattering models are black below the horizon


@pytest.mark.bpy
def test_render_indoor(ss):
    p = next(q for q in (sample_params(0, i, indoor_fraction=1.0) for i in range(50)) if q.windows)
    info = {}
    img = ss.render_synth(p, width=64, samples=16, info=info)
    assert img.shape == (32, 64, 3) and np.isfinite(img).all() and img.min() >= 0
    assert np.median(img) > 0
    lum = img @ LUMA
    assert lum.max() / np.median(lum) > 10  # the lamps
    assert info["denoiser_used"] == ("OPENIMAGEDENOISE" if "OPENIMAGEDENOISE" in ss.bc.available_denoisers()
                                     else None)
    assert _seam_ratio(img) < 3.0


@pytest.mark.bpy
def test_world_sampling_choice(ss):
    outdoor = sample_params(0, 0, indoor_fraction=0.0)
    assert ss.world_sampling_method(outdoor.replace(ground=None, objects=())) == "NONE"  # sky only
    assert ss.world_sampling_method(outdoor) == "MANUAL"
    room = next(q for q in (sample_params(0, i, indoor_fraction=1.0) for i in range(50)) if not q.windows)
    assert ss.world_sampling_method(room) == "NONE"  # closed room: no ray reaches the world
    assert ss.world_sampling_method(room.replace(windows=(WindowParams("+x", 0.0, 0.8, 1.0, 1.0),))) == "MANUAL"


@pytest.mark.bpy
def test_seam_helpers(ss):
    width, pad, h = 32, 4, 3
    cols = np.arange(-pad, width + pad) % width
    base = np.sin(2 * np.pi * cols / width).astype(np.float32) + 2.0
    img = np.repeat(np.repeat(base[None, :, None], h, 0), 3, 2)
    out = ss.crop_seam(img, pad)
    assert out.shape == (h, width, 3)
    np.testing.assert_allclose(out, img[:, pad:pad + width], rtol=1e-6)  # equal copies: unchanged
    noisy = img.copy()
    noisy[:, :pad] += 1.0  # the left padding (a copy of the last columns) differs
    out = ss.crop_seam(noisy, pad)
    assert out[0, -1, 0] == pytest.approx(img[0, -1 + pad + width, 0] + 0.5 * (1 - 0.5 / pad))
    np.testing.assert_allclose(out[:, :width - pad], img[:, pad:width], rtol=1e-6)
    sky = SkyParams("SINGLE_SCATTERING", sun_elevation=0.3, sun_rotation=-math.pi / 2)  # towards -X: the seam
    boxes = ss.sun_boxes(sky, 512, 256)
    assert len(boxes) == 2 and {b[0] for b in boxes} | {b[1] for b in boxes} >= {0, 512}
    assert ss.sun_boxes(dataclasses.replace(sky, sky_type="PREETHAM"), 512, 256) == []  # no sun disc
    assert ss.sun_boxes(dataclasses.replace(sky, sun_elevation=-0.1), 512, 256) == []  # below the horizon
    (x0, x1, y0, y1), = ss.sun_boxes(dataclasses.replace(sky, sun_rotation=0.0), 512, 256)
    col, row = ss.sun_pixel(sun_direction(0.3, 0.0), 512, 256)
    assert x0 < col < x1 and y0 < row < y1 and x1 - x0 < 10 and y1 - y0 < 10


@pytest.mark.bpy
def test_cli_end_to_end_and_resume(tmp_path, ss, capsys):
    out = tmp_path / "synth"
    args = ["--n", "2", "--out", str(out), "--seed", "11", "--width", "32", "--samples", "4"]
    assert ss.main(args) == 0
    assert "rendered 2, skipped 0" in capsys.readouterr().out
    exrs = sorted(p.name for p in out.glob("*.exr"))
    assert exrs == ["synth_00000.exr", "synth_00001.exr"]
    from hdr_core.io import read_hdr

    for name in exrs:
        img = read_hdr(out / name)
        assert img.shape == (16, 32, 3) and np.isfinite(img).all()
        side = json.loads((out / name.replace(".exr", ".json")).read_text())
        assert SynthParams.from_dict(side["params"]) == sample_params(11, int(name[6:11]))
        assert side["render"]["width"] == 32 and side["render"]["samples"] == 4
    manifest = json.loads((out / "manifest.json").read_text())["panoramas"]
    assert [e["file"] for e in manifest] == exrs
    assert all(e["source"] == "synthetic" and e["split"] == "synthetic" and "CC0" in e["licence"] for e in manifest)
    assert not list(out.glob(".*"))  # no temp files left
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.exr")}
    assert ss.main(args) == 0  # resume: nothing to do
    assert "rendered 0, skipped 2" in capsys.readouterr().out
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in out.glob("*.exr")}
    assert ss.main([*args[:4], "--seed", "12", *args[6:]]) == 1  # another data set in the same folder
    assert "other parameters" in capsys.readouterr().err
