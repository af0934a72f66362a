"""The four-ball Cycles evaluation scene (render_eval.scene / render / settings / blender_compat). Needs bpy.

Renders are tiny (64x36 pixels, 16 samples, small panoramas): a render takes well under a second on 2 cores.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from render_eval.settings import RenderSettings

bpy = pytest.importorskip("bpy")  # conftest.py has pointed BLENDER_USER_RESOURCES at a temp dir by now

from render_eval import blender_compat as bc  # noqa: E402
from render_eval import render as rr  # noqa: E402
from render_eval import scene as sc  # noqa: E402

pytestmark = pytest.mark.bpy

#: Tiny renders for the physics and bookkeeping checks, without the denoiser (it would blur the identities under
#: test); the default settings' denoiser has its own test below.
TINY = RenderSettings(resolution=(64, 36), samples=16, denoiser=None)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to Cycles' float-summation order (same seed: ~1e-7 relative)."""
    return np.allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def pano() -> np.ndarray:
    """An asymmetric 32x64 HDR panorama: sky, a sun, a red quarter at the left edge (float32)."""
    from conftest import synthetic_panorama

    p = synthetic_panorama(32, 3)
    p[:, :16] *= np.array([3.0, 0.2, 0.2], np.float32)
    return p


def _project(point: tuple[float, float, float]) -> tuple[int, int]:
    """(row, col) of a world point in the current render (image rows top-down)."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    scene = bpy.context.scene
    x, y, _ = world_to_camera_view(scene, scene.camera, Vector(point))
    w, h = scene.render.resolution_x, scene.render.resolution_y
    return int((1.0 - y) * h), int(x * w)


# --- settings and compat (cheap) --------------------------------------------------------------------------------

def test_settings_roundtrip_and_digest():
    s = RenderSettings()
    assert RenderSettings.from_dict(s.to_dict()) == s
    assert s.digest() == RenderSettings().digest() and len(s.digest()) == 64
    assert s.replace(seed=1).digest() != s.digest()
    assert s.replace(samples=64).samples == 64 and s.samples == 384
    assert s.world_sampling_method == "MANUAL" and s.denoiser == "OPENIMAGEDENOISE"
    assert not s.caustics_reflective and not s.caustics_refractive and s.adaptive_threshold == 0
    assert not s.path_guiding
    assert s.sample_clamp_direct == 0 and s.sample_clamp_indirect == 0
    with pytest.raises(ValueError):
        RenderSettings.from_dict({"no_such_setting": 1})
    with pytest.raises(ValueError):
        RenderSettings(denoiser="OPTIX")


def test_compat_names_exist_on_this_blender():
    sc.reset_blender()
    mat = bpy.data.materials.new("probe")
    nt = bc.ensure_node_tree(mat)
    principled = nt.nodes.new("ShaderNodeBsdfPrincipled")
    for key in bc.PRINCIPLED_INPUTS:
        if key == "coat_roughness" and bpy.app.version < (3, 0, 0):
            continue
        assert bc.principled_input(principled, key) in principled.inputs
    mix = nt.nodes.new("ShaderNodeMixShader")
    assert bc.mix_factor_name(mix) in mix.inputs
    assert bc.linear_color_space() in bc.color_space_names()
    assert set(bc.available_denoisers()) <= {"OPENIMAGEDENOISE"}
    bc.set_principled(principled, transmission=1.0, base_color=0.5, ior=1.45)
    assert principled.inputs[bc.principled_input(principled, "transmission")].default_value == 1.0
    assert tuple(principled.inputs["Base Color"].default_value) == (0.5, 0.5, 0.5, 1.0)
    with pytest.raises(KeyError):
        bc.principled_input(principled, "sparkle")


# --- scene content ----------------------------------------------------------------------------------------------

def test_scene_content():
    s = RenderSettings()
    names = sc.build_four_ball_scene(s)
    scene = bpy.context.scene
    assert scene.render.engine == "CYCLES" and scene.cycles.device == "CPU"
    assert scene.cycles.seed == 0 and not scene.cycles.use_animated_seed
    assert scene.cycles.samples == 384 and not scene.cycles.use_adaptive_sampling
    assert scene.cycles.use_denoising == ("OPENIMAGEDENOISE" in bc.available_denoisers())
    assert scene.cycles.denoising_input_passes == "RGB_ALBEDO_NORMAL"
    assert not scene.cycles.caustics_reflective and not scene.cycles.caustics_refractive
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage) == (320, 180, 100)
    assert scene.camera is not None and scene.camera.name == names["camera"]
    assert scene.world.cycles.sampling_method == "MANUAL"
    assert scene.world.cycles.sample_map_resolution == s.world_map_resolution

    # four balls, left to right in the image: glass, glossy, diffuse, mixed
    balls = [bpy.data.objects[n] for n in names["balls"]]
    assert [b[sc.KIND_PROP] for b in balls] == list(sc.BALL_KINDS)
    cols = [_project(tuple(b.location))[1] for b in balls]
    assert cols == sorted(cols) and all(0 < c < 320 for c in cols)
    assert all(abs(b.location.z - s.sphere_radius) < 1e-6 for b in balls)
    assert all(p.use_smooth for b in balls for p in b.data.polygons)

    def node_types(obj):
        return {n.bl_idname for n in obj.active_material.node_tree.nodes}

    glass, glossy, diffuse, mixed = balls
    p = glass.active_material.node_tree.nodes["Principled BSDF"]
    assert p.inputs[bc.principled_input(p, "transmission")].default_value == 1.0
    assert abs(p.inputs["IOR"].default_value - 1.45) < 1e-6
    p = glossy.active_material.node_tree.nodes["Principled BSDF"]
    assert p.inputs["Metallic"].default_value == 1.0 and abs(p.inputs["Roughness"].default_value - 0.15) < 1e-6
    assert "ShaderNodeBsdfDiffuse" in node_types(diffuse) and "ShaderNodeBsdfPrincipled" not in node_types(diffuse)
    assert {"ShaderNodeMixShader", "ShaderNodeBsdfDiffuse"} <= node_types(mixed)
    mix = mixed.active_material.node_tree.nodes["Mix Shader"]
    assert mix.inputs[bc.mix_factor_name(mix)].default_value == 0.5

    plane = bpy.data.objects[names["plane"]]
    assert plane.type == "MESH" and len(plane.data.polygons) == 1 and max(v.co.z for v in plane.data.vertices) == 0
    assert node_types(plane) == {"ShaderNodeBsdfDiffuse", "ShaderNodeOutputMaterial"}
    assert {o.type for o in scene.objects} == {"MESH", "CAMERA"}  # lit by the world only

    # world: Environment Texture (default vector) -> Background -> World Output
    nt = scene.world.node_tree
    env, bg, out = nt.nodes["Environment Texture"], nt.nodes["Background"], nt.nodes["World Output"]
    assert env.inputs["Vector"].is_linked is False
    assert bg.inputs["Color"].links[0].from_node == env
    assert out.inputs["Surface"].links[0].from_node == bg
    assert bg.inputs["Strength"].default_value == 1.0
    sc.set_world_rotation(30.0)
    assert env.inputs["Vector"].links[0].from_node.bl_idname == "ShaderNodeMapping"
    sc.set_world_rotation(0.0)
    assert not env.inputs["Vector"].is_linked


def test_save_blend(tmp_path, pano):
    sc.build_four_ball_scene(TINY)
    sc.set_world_hdr(pano, TINY)
    path = sc.save_blend(tmp_path / "four_balls.blend")
    assert os.path.getsize(path) > 10_000
    assert all(img.packed_file is not None for img in bpy.data.images if img.get("render_eval_temp"))


# --- renders ----------------------------------------------------------------------------------------------------

def _plane_values(img: np.ndarray) -> list[float]:
    """Mean of 3x3 pixels around three plane points in front of the balls (>= 3.6 units from any ball centre)."""
    values = []
    for point in [(-2.3, -3.5, 0.0), (0.0, -4.0, 0.0), (2.3, -3.5, 0.0)]:
        r, c = _project(point)
        assert 2 <= r < img.shape[0] - 2 and 2 <= c < img.shape[1] - 2, (point, r, c)
        values.append(float(img[r - 1:r + 2, c - 1:c + 2].mean()))
    return values


@pytest.mark.parametrize("radius, tol", [(0.01, 0.01), (1.0, 0.025)])
def test_uniform_white_world_renders_plane_albedo(radius, tol):
    """Under a uniform radiance-1 world a Lambertian plane of albedo a has radiance a; the background is 1.

    With the default balls their occlusion darkens these points by about 1 % (0.494-0.496 at 256 samples); with
    tiny balls the plane renders 0.500 +- 0.0003 at 256 samples.
    """
    s = TINY.replace(plane_albedo=0.5, sphere_radius=radius, samples=64)
    img = rr.render_panorama(np.ones((16, 32, 3), np.float32), s)
    assert img.shape == (36, 64, 3) and img.dtype == np.float32
    values = _plane_values(img)
    assert np.allclose(values, 0.5, atol=tol), values
    r, c = _project((0.0, 100.0, 60.0))  # sky above the plane's far edge
    assert np.allclose(img[r, c], 1.0, atol=1e-3)


def test_same_seed_same_render_and_seeds_differ(pano):
    a = rr.render_panorama(pano, TINY)
    b = rr.render_panorama(pano, TINY)
    c = rr.render_panorama(pano, TINY, seed=1)
    assert _close(a, b)
    assert np.abs(a - c).mean() > 1e-3


def test_scene_is_reused_and_swapped_world_is_reloaded(tmp_path):
    builds = rr.render_stats()["builds"]
    one = rr.render_panorama(np.ones((16, 32, 3), np.float32), TINY)
    two = rr.render_panorama(np.full((16, 32, 3), 2.0, np.float32), TINY)
    assert _close(two, 2 * one)
    # the same file path with new content is re-read too
    from hdr_core.io import write_exr, write_hdr

    path = tmp_path / "world.exr"
    write_exr(path, np.ones((16, 32, 3), np.float32))
    assert _close(rr.render_panorama(path, TINY), one)
    write_exr(path, np.full((16, 32, 3), 2.0, np.float32))
    assert _close(rr.render_panorama(path, TINY), two)
    write_hdr(tmp_path / "world.hdr", np.full((16, 32, 3), 2.0, np.float32))
    assert _close(rr.render_panorama(tmp_path / "world.hdr", TINY), two)
    assert rr.render_stats()["builds"] - builds <= 1
    assert len([i for i in bpy.data.images if i.type == "IMAGE"]) == 1  # old world images were removed


def test_rotation_zero_mapping_equals_default(tmp_path, pano):
    default = rr.render_panorama(pano, TINY)
    sc.set_world_rotation(0.0, always_map=True)
    assert bpy.context.scene.world.node_tree.nodes["Environment Texture"].inputs["Vector"].is_linked
    mapped = sc.read_exr(rr.render_current_scene(tmp_path / "mapped.exr"))
    assert _close(mapped, default)


def test_world_rotation(pano):
    """Rotating by 180 deg changes the render; +90 deg equals rolling the panorama a quarter turn to the right."""
    base = rr.render_panorama(pano, TINY)
    r180 = rr.render_panorama(pano, TINY.replace(world_rotation_deg=180.0))
    assert np.abs(r180 - base).mean() > 0.1 * np.abs(base).mean()
    assert np.abs(r180 - rr.render_panorama(np.roll(pano, 32, axis=1), TINY)).mean() < 1e-3
    r90 = rr.render_panorama(pano, TINY.replace(world_rotation_deg=90.0))
    assert np.abs(r90 - rr.render_panorama(np.roll(pano, 16, axis=1), TINY)).mean() < 1e-3


def test_render_cache(tmp_path, pano):
    cache = rr.RenderCache(tmp_path / "cache")
    n0 = rr.render_stats()["renders"]
    a = cache.render(pano, TINY)
    b = cache.render(pano.copy(), TINY)
    assert rr.render_stats()["renders"] - n0 == 1 and (cache.misses, cache.hits) == (1, 1)
    assert np.array_equal(a, b)
    key = cache.key(pano, TINY)
    assert key in cache and cache.key(pano, TINY, seed=1) != key and cache.key(pano, TINY.replace(seed=1)) != key
    assert cache.key(pano * 2, TINY) != key
    exr, png = cache.paths(key)
    from hdr_core.io import read_ldr

    ldr, bits = read_ldr(png)
    assert bits == 8 and ldr.shape == (36, 64, 3)
    assert sorted(os.listdir(cache.folder)) == sorted([os.path.basename(exr), os.path.basename(png)])


def test_render_cache_ignores_half_written_entries(tmp_path, pano, monkeypatch):
    cache = rr.RenderCache(tmp_path)
    key = cache.key(pano, TINY)
    exr, png = cache.paths(key)

    def killed(*args, **kwargs):  # a run killed during the render: a temp file and no entry
        open(os.path.join(cache.folder, f".{key}.tmpdead.exr"), "wb").close()
        raise KeyboardInterrupt

    monkeypatch.setattr(rr, "render_panorama", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.render(pano, TINY)
    assert key not in cache and not os.path.exists(exr)
    monkeypatch.undo()
    open(png, "wb").close()  # a PNG without its EXR is not an entry either
    assert key not in cache
    img = cache.render(pano, TINY)
    assert cache.misses == 1 and key in cache and img.shape == (36, 64, 3)
    assert glob.glob(os.path.join(cache.folder, ".*")) == []


def test_noise_floor(pano):
    nf = rr.noise_floor(pano, TINY)
    assert nf["samples"] == 16 and nf["seeds"] == (0, 1)
    assert 5.0 < nf["psnr"] < 60.0 and nf["mse"] > 0


def test_default_denoiser_is_deterministic_and_lowers_the_seed_to_seed_noise(pano):
    if "OPENIMAGEDENOISE" not in bc.available_denoisers():
        pytest.skip("this Blender has no OpenImageDenoise")
    den = TINY.replace(denoiser=RenderSettings().denoiser, resolution=(96, 54))
    a, b, c = (rr.render_panorama(pano, den, seed=s) for s in (0, 0, 1))
    assert _close(a, b)  # same seed: the same denoised image
    raw = [rr.render_panorama(pano, den.replace(denoiser=None), seed=s) for s in (0, 1)]
    assert np.abs(a - c).mean() < 0.5 * np.abs(raw[0] - raw[1]).mean()  # the denoiser removes most seed noise
    assert abs(a.mean() - raw[0].mean()) < 0.05 * raw[0].mean()  # ... and keeps the image's level


def test_denoiser_unavailable_is_an_error(pano):
    if "OPENIMAGEDENOISE" in bc.available_denoisers():
        img = rr.render_panorama(pano, TINY.replace(denoiser="OPENIMAGEDENOISE", samples=2))
        assert np.isfinite(img).all()
    else:
        with pytest.raises(RuntimeError, match="not available"):
            rr.render_panorama(pano, TINY.replace(denoiser="OPENIMAGEDENOISE"))


def test_bpy_exr_fallback_roundtrip(tmp_path):
    """The EXR writer/reader used inside a Blender binary without OpenCV/OpenEXR is exact and matches hdr_core.io."""
    from hdr_core.io import read_hdr

    a = (np.random.default_rng(1).random((7, 11, 3)) * 100).astype(np.float32)
    sc._write_exr_bpy(tmp_path / "a.exr", a)
    assert np.array_equal(read_hdr(tmp_path / "a.exr"), a)
    assert np.array_equal(sc._read_exr_bpy(tmp_path / "a.exr"), a)


def test_four_balls_script(tmp_path, blender_hdri_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("four_balls", os.path.join(os.path.dirname(__file__), "..",
                                                                             "scenes", "four_balls.py"))
    four_balls = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(four_balls)
    out = tmp_path / "four_balls.blend"
    assert four_balls.main(["--out", str(out), "--hdri", str(blender_hdri_path("forest")), "--rotation", "45"]) == 0
    assert out.stat().st_size > 10_000 and not (tmp_path / "four_balls.blend1").exists()
    nt = bpy.context.scene.world.node_tree
    assert nt.nodes["Environment Texture"].image.filepath.endswith("forest.exr")
    assert abs(nt.nodes["Mapping"].inputs["Rotation"].default_value[2] - np.radians(45)) < 1e-6
