"""The Blender extension (``blender_addon``): pure-numpy helpers, the operator in headless ``bpy``, a Cycles render,
and the built, installed extension zip.

Models: a seeded random-weights ``panolanet_small`` exported to ONNX at 128x64 (its skip connection keeps the
output close to the linearised input, so it stands for "a network" without expanding highlights), and a tiny
hand-written ONNX graph with the same interface that multiplies saturated pixels by e^6 (a "bright" model, so
the sun tests have a real sun to find).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hdr_core.color import srgb_to_linear

bpy = pytest.importorskip("bpy")

import addon_utils  # noqa: E402  (ships with bpy)
from mathutils import Vector  # noqa: E402

from blender_addon import engine, imaging, sun  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ADDON = "blender_addon"
H, W = 64, 128
#: Ends every script a test runs in a subprocess: the bpy 4.2/4.5 LTS wheels segfault at interpreter exit.
SCRIPT_EXIT = "\nimport os as _os, sys as _sys\n_sys.stdout.flush(); _sys.stderr.flush(); _os._exit(0)\n"
SUN_DIR = np.array([1.0, 0.0, 0.6]) / np.linalg.norm([1.0, 0.0, 0.6])  # texture frame: centre column, 31 deg up


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def random_onnx(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    from hdr_core.export import export_onnx
    from hdr_core.models import create_model

    torch.manual_seed(0)
    return export_onnx(create_model("panolanet_small").eval(), tmp_path_factory.mktemp("model") / "model.onnx", (H, W))


@pytest.fixture(scope="module")
def bright_onnx(tmp_path_factory) -> Path:
    """``log_hdr = log(lin) + 6 * clip(10 (lin - 0.9), 0, 1)`` per channel, with hdr_core's metadata."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    def const(name, value):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.FLOAT, [], [value]))

    nodes = [const("one", 1.0), const("half", 0.5), const("eps", 1e-4), const("knee", 0.9), const("ten", 10.0),
             const("six", 6.0), const("zero", 0.0),
             helper.make_node("Add", ["x", "one"], ["xp"]), helper.make_node("Mul", ["xp", "half"], ["lin"]),
             helper.make_node("Max", ["lin", "eps"], ["linc"]), helper.make_node("Log", ["linc"], ["logl"]),
             helper.make_node("Sub", ["lin", "knee"], ["over"]), helper.make_node("Mul", ["over", "ten"], ["ramp"]),
             helper.make_node("Clip", ["ramp", "zero", "one"], ["sat"]), helper.make_node("Mul", ["sat", "six"], ["b"]),
             helper.make_node("Add", ["logl", "b"], ["log_hdr"]),
             helper.make_node("ReduceMean", ["lin"], ["m"], axes=[1], keepdims=1),
             helper.make_node("Mul", ["m", "zero"], ["merge_mask"])]
    graph = helper.make_graph(nodes, "bright", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, H, W])],
                              [helper.make_tensor_value_info("log_hdr", TensorProto.FLOAT, ["b", 3, H, W]),
                               helper.make_tensor_value_info("merge_mask", TensorProto.FLOAT, ["b", 1, H, W])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    for k, v in {"model": "panolanet_small", "config": "{}", "input_size": f"{W}x{H}"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    path = tmp_path_factory.mktemp("bright") / "model.onnx"
    onnx.save(model, str(path))
    return path


def write_png(path: Path, rgb01: np.ndarray) -> Path:
    import cv2

    cv2.imwrite(str(path), np.round(np.clip(rgb01, 0, 1) * 255).astype(np.uint8)[..., ::-1])
    return path


def sunny_ldr(h: int = H, direction=SUN_DIR, radius_deg: float = 7.0) -> np.ndarray:
    """Display-referred 2:1 panorama: blue-ish sky, darker textured ground, a saturated sun disk."""
    dirs = sun.pixel_directions(h, 2 * h)
    z = dirs[..., 2:3]
    sky = np.where(z > 0, np.array([0.45, 0.55, 0.75]) + 0.1 * z, np.array([0.25, 0.22, 0.18]))
    sky = sky + 0.03 * np.random.default_rng(0).random(sky.shape) * (z <= 0)
    disk = np.degrees(np.arccos(np.clip(dirs @ direction, -1, 1))) < radius_deg
    sky[disk] = 1.0
    return sky


@pytest.fixture(scope="module")
def sunny_png(tmp_path_factory) -> Path:
    return write_png(tmp_path_factory.mktemp("ldr") / "sunny.png", sunny_ldr())


@pytest.fixture(scope="module")
def addon():
    mod = addon_utils.enable(ADDON, default_set=True)
    assert mod is not None, "addon_utils could not enable blender_addon"
    yield mod
    addon_utils.disable(ADDON, default_set=True)


@pytest.fixture
def prefs(addon, tmp_path, random_onnx):
    """Factory-startup scene (cube, camera, light, world "World"); model = the random one; output in tmp."""
    bpy.ops.wm.read_homefile(use_empty=False, use_factory_startup=True)
    p = bpy.context.preferences.addons[ADDON].preferences
    p.model_path, p.output_dir, p.threads = str(random_onnx), str(tmp_path / "out"), 1
    yield p
    p.model_path = p.output_dir = ""


def exr_channel_types(path: Path) -> dict:
    import OpenEXR

    return {k: v.pixels.dtype.type for k, v in OpenEXR.File(str(path), separate_channels=True).channels().items()}


def world_snapshot(world) -> dict:
    nodes = {n.name: (n.bl_idname, [tuple(i.default_value) if hasattr(i.default_value, "__len__") else
                                    i.default_value for i in n.inputs if hasattr(i, "default_value")])
             for n in world.node_tree.nodes}
    return {"name": world.name, "nodes": nodes, "links": sorted((lk.from_node.name, lk.to_node.name)
                                                                for lk in world.node_tree.links),
            "color": tuple(world.color)}


# ------------------------------------------------------------------------------------------------ numpy parts
def test_numpy_resize_matches_opencv(rng):
    cv2 = pytest.importorskip("cv2")
    from hdr_core.resize import resize_numpy

    img = rng.random((40, 90, 3)).astype(np.float32)
    for size, interp in [((45, 20), "area"), ((27, 13), "area"), ((90, 40), "area"), ((200, 100), "linear"),
                         ((31, 17), "linear")]:
        ours = resize_numpy(img, size, interp)
        flag = cv2.INTER_AREA if interp == "area" else cv2.INTER_LINEAR
        theirs = cv2.resize(img, size, interpolation=flag)
        assert ours.shape == theirs.shape and ours.dtype == np.float32
        assert np.abs(ours - theirs).max() < 1e-4, (size, interp)
    mask = rng.random((40, 90)).astype(np.float32)
    assert np.abs(resize_numpy(mask, (180, 80), "linear") - cv2.resize(mask, (180, 80))).max() < 1e-4


def test_predictor_without_opencv_matches(monkeypatch, random_onnx):
    """Inside Blender there is no cv2: hdr_core.predict then resizes in numpy, with the same result."""
    import hdr_core.predict

    ldr = sunny_ldr(96)  # 96x192 -> resized to the graph's 64x128 and back: both resize paths
    expected = hdr_core.predict.Predictor(random_onnx).predict(ldr).hdr
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    got = engine.predictor_class()(random_onnx).predict(ldr).hdr
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-5)


def test_input_checks(tmp_path):
    assert imaging.check_panorama_size(128, 64) is None
    assert imaging.check_panorama_size(129, 64) is None  # within 2 %: stretched
    assert "2:1" in imaging.check_panorama_size(120, 90)
    assert "too small" in imaging.check_panorama_size(1, 1)
    assert imaging.check_ldr_file(tmp_path / "nope.png") == "file not found"
    (tmp_path / "e.png").write_bytes(b"")
    assert "empty" in imaging.check_ldr_file(tmp_path / "e.png")
    assert imaging.unique_path(tmp_path, "e", ".png").name == "e_001.png"
    assert imaging.unique_path(tmp_path, "a/b c", ".exr").name == "a_b_c.exr"


def test_shrink_display_image_averages_light(rng):
    ldr = np.zeros((64, 128, 3), np.float32)
    ldr[:, ::2] = 1.0  # alternate white and black columns: half the light
    small = imaging.shrink_display_image(ldr, 64)
    assert small.shape == (32, 64, 3)
    np.testing.assert_allclose(srgb_to_linear(small), 0.5, atol=1e-5)
    assert imaging.shrink_display_image(ldr, 4096) is ldr
    # integer factors (block means in bands, float32) agree with area resizing in float64; 8-bit input = v / 255
    from hdr_core.color import linear_to_srgb
    from hdr_core.resize import resize

    u8 = (rng.random((600, 1200, 3)) * 255).astype(np.uint8)
    for width in (300, 400, 600, 500):  # factors 4, 3, 2, and 2.4 (the general path)
        expected = linear_to_srgb(resize(srgb_to_linear(u8 / 255.0), (width, width // 2), "area"))
        for src in (u8, (u8 / np.float32(255)).astype(np.float32)):
            got = imaging.shrink_display_image(src, width)
            assert got.dtype == np.float32 and got.shape == (width // 2, width, 3)
            np.testing.assert_allclose(got, expected, atol=2e-6, err_msg=str((width, src.dtype)))


def test_read_ldr_8_16_bit_and_gray(tmp_path, rng):
    import cv2

    from blender_addon import images

    n_images = len(bpy.data.images)
    a8 = (rng.random((32, 64, 3)) * 255).astype(np.uint8)
    a16 = (rng.random((32, 64, 3)) * 65535).astype(np.uint16)
    gray = (rng.random((32, 64)) * 255).astype(np.uint8)
    cases = [("a8.png", a8[..., ::-1], a8 / 255), ("a16.png", a16[..., ::-1], a16 / 65535),
             ("g.png", gray, np.repeat(gray[..., None], 3, 2) / 255), ("a8.jpg", a8[..., ::-1], None)]
    for name, arr, expected in cases:
        cv2.imwrite(str(tmp_path / name), arr)
        if name.endswith(".jpg"):
            expected = cv2.imread(str(tmp_path / name))[..., ::-1] / 255
        got = images.read_ldr(tmp_path / name)
        assert got.shape == (32, 64, 3) and got.dtype == (np.float32 if name == "a16.png" else np.uint8), name
        if got.dtype == np.uint8:  # 8-bit files: the file's values (JPEG decoders may differ by one level)
            diff = np.abs(got.astype(int) - np.round(expected * 255).astype(int)).max()
            assert diff <= (1 if name.endswith(".jpg") else 0), (name, diff)
        else:
            np.testing.assert_allclose(got, expected, atol=1e-6, err_msg=name)
    assert len(bpy.data.images) == n_images  # the temporary data-blocks are gone


def test_a_partial_photo_sphere_is_placed_on_its_whole_panorama(prefs, tmp_path):
    """A phone's photo sphere without its top and bottom (GPano metadata in the JPEG): read placed on the whole 2:1
    panorama, the operator makes a world of that size and says what it did; metadata for another image is refused
    with one line naming the problem, and changes nothing."""
    import cv2
    from conftest import gpano_props, gpano_xmp, write_jpeg_with_xmp

    from blender_addon import images
    from hdr_core.gpano import SphereCrop, place_on_sphere

    part = (np.round(sunny_ldr()[16:48] * 255)).astype(np.uint8)  # 128x32: rows 16..47 of a 128x64 sphere
    write_jpeg_with_xmp(tmp_path / "sphere.jpg", part, gpano_xmp(gpano_props(4096, 2048, 4096, 1024, 0, 512)),
                        quality=100)
    ldr, note = images.read_ldr_noted(tmp_path / "sphere.jpg")
    decoded = cv2.imread(str(tmp_path / "sphere.jpg"))[..., ::-1]
    assert ldr.shape == (H, W, 3) and "partial photo sphere (71% of the sphere)" in note
    assert np.abs(ldr.astype(int) - place_on_sphere(decoded, SphereCrop(4096, 2048, 4096, 1024, 0, 512))).max() <= 1
    assert bpy.ops.world.make_hdr_environment(filepath=str(tmp_path / "sphere.jpg")) == {"FINISHED"}
    img = {n.bl_idname: n for n in bpy.context.scene.world.node_tree.nodes}["ShaderNodeTexEnvironment"].image
    assert tuple(img.size) == (W, H)
    write_jpeg_with_xmp(tmp_path / "other.jpg", part, gpano_xmp(gpano_props(4096, 2048, 4096, 1500, 0, 0)))
    world = bpy.context.scene.world
    with pytest.raises(RuntimeError, match="other.jpg: photo-sphere metadata describes a 4096x1500 image"):
        bpy.ops.world.make_hdr_environment(filepath=str(tmp_path / "other.jpg"))
    assert bpy.context.scene.world == world


def test_equirect_convention_round_trip():
    """u = 0.5 looks along +X, u = 0.25 along +Y (Blender's direction_to_equirectangular)."""
    h, w = 32, 64
    d = sun.pixel_directions(h, w)
    assert np.allclose(d[h // 2, w // 2], [1, 0, 0], atol=0.1)
    assert np.allclose(d[h // 2, w // 4], [0, 1, 0], atol=0.1)
    assert np.allclose(d[h // 2, 3 * w // 4], [0, -1, 0], atol=0.1)
    assert d[0, 0, 2] > 0.99
    for r, c in [(3, 5), (16, 40), (30, 63)]:
        assert np.allclose(sun.direction_to_pixel(d[r, c], h, w), (r, c), atol=1e-6)
    assert math.isclose(sun.pixel_solid_angles(h, w).sum() * w, 4 * math.pi)
    assert np.allclose(sun.world_direction((1, 0, 0), math.pi / 2), (0, -1, 0), atol=1e-9)


@pytest.mark.parametrize("direction", [(0.3, -0.8, 0.5), (-1.0, 0.01, 0.1), (0.0, 0.05, 1.0)])
def test_find_sun(direction):
    """Direction within 1 deg (also across the seam and at the zenith), exact energy bookkeeping, size, colour."""
    h, w = 128, 256
    d = np.array(direction) / np.linalg.norm(direction)
    img = np.full((h, w, 3), 0.5, np.float32)
    img[h // 2:] *= 0.4
    dirs = sun.pixel_directions(h, w)
    disk = np.arccos(np.clip(dirs @ d, -1, 1)) < math.radians(3.0)
    img[disk] = (5000.0, 4000.0, 3000.0)
    out, found = sun.extract_sun(img)
    assert found is not None
    assert math.degrees(math.acos(min(1.0, float(np.dot(found.direction, d))))) < 1.0
    omega = sun.pixel_solid_angles(h, w)[:, None]
    for c in range(3):  # what left the texture is exactly what the Sun sends
        before, after = (img[..., c] * omega).sum(), (out[..., c] * omega).sum()
        assert math.isclose(before, after + found.irradiance[c], rel_tol=1e-5)
    expected = (disk * omega).sum() * (5000.0 - found.fill[0])
    assert math.isclose(found.strength, expected, rel_tol=0.02)
    assert np.allclose(found.color, (1.0, 0.8, 0.6), atol=0.01)
    assert 5.0 < math.degrees(found.angle) < 7.5  # a 6 deg disk, pixelated
    assert out.max() < 1.0 and found.fraction > 0.8


def test_find_sun_none_when_nothing_stands_out(rng):
    assert sun.find_sun(rng.random((32, 64, 3)).astype(np.float32) + 0.5) is None


def test_model_lookup(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "model_search_dirs", lambda: [tmp_path / "shipped"])
    with pytest.raises(engine.ModelNotFoundError, match="Preferences"):
        engine.find_model("PANOLANET")
    (tmp_path / "shipped" / "lanet_small").mkdir(parents=True)
    (tmp_path / "shipped" / "lanet_small" / "model.onnx").write_bytes(b"x")
    assert engine.find_model("LANET").parent.name == "lanet_small"
    with pytest.raises(engine.ModelNotFoundError):
        engine.find_model("PANOLANET")
    assert engine.find_model("PANOLANET", str(tmp_path / "shipped" / "lanet_small")).name == "model.onnx"
    with pytest.raises(engine.ModelNotFoundError, match="does not exist"):
        engine.find_model("PANOLANET", str(tmp_path / "missing.onnx"))


def test_job_runs_and_cancels(random_onnx):
    predictor = engine.get_predictor(random_onnx, 1)
    job = engine.Job(predictor, sunny_ldr(), 1.0, False).start()
    assert job.wait(60) and job.error is None and job.result.hdr.shape == (H, W, 3)
    assert job.progress() == 1.0
    job = engine.Job(predictor, sunny_ldr(), 1.0, False)
    job.cancel()  # terminated before it starts: ONNX Runtime refuses to run
    job.start().wait(60)
    assert isinstance(job.error, engine.Cancelled) and job.result is None
    assert engine.Job(predictor, sunny_ldr(), 1.0, False).start().wait(60)  # the shared session still works


# ------------------------------------------------------------------------------------------------ bpy
def test_register_unregister_twice_without_heavy_imports():
    code = ("import sys, bpy, blender_addon as a\n"
            "for _ in range(2):\n"
            "    a.register(); assert hasattr(bpy.types, 'WORLD_OT_make_hdr_environment')\n"
            "    assert hasattr(bpy.types.Scene, 'lanet_hdr')\n"
            "    a.unregister(); assert not hasattr(bpy.types, 'WORLD_OT_make_hdr_environment')\n"
            "    assert not hasattr(bpy.types.Scene, 'lanet_hdr')\n"
            "a.register()\n"
            "heavy = [m for m in ('onnxruntime', 'hdr_core', 'torch', 'cv2', 'blender_addon.engine',"
            " 'blender_addon.sun') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "print('ok')\n") + SCRIPT_EXIT
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout[-2000:] + res.stderr[-2000:]


def test_make_hdr_environment(prefs, tmp_path, random_onnx, sunny_png):
    from hdr_core.io import read_hdr, read_ldr
    from hdr_core.predict import Predictor

    scene = bpy.context.scene
    old = scene.world
    before = world_snapshot(old)
    bpy.ops.ed.undo_push(message="before")
    # ("EXEC_DEFAULT", True): push an undo step as the UI does (scripts' operator calls skip it by default)
    assert bpy.ops.world.make_hdr_environment("EXEC_DEFAULT", True, filepath=str(sunny_png)) == {"FINISHED"}
    new = scene.world
    assert new != old and new.name == "HDR Environment"
    nodes = {n.bl_idname: n for n in new.node_tree.nodes}
    assert sorted(nodes) == sorted(["ShaderNodeTexCoord", "ShaderNodeMapping", "ShaderNodeTexEnvironment",
                                    "ShaderNodeBackground", "ShaderNodeOutputWorld"])
    links = sorted((lk.from_node.bl_idname, lk.from_socket.identifier, lk.to_node.bl_idname, lk.to_socket.identifier)
                   for lk in new.node_tree.links)
    assert links == sorted([("ShaderNodeTexCoord", "Generated", "ShaderNodeMapping", "Vector"),
                            ("ShaderNodeMapping", "Vector", "ShaderNodeTexEnvironment", "Vector"),
                            ("ShaderNodeTexEnvironment", "Color", "ShaderNodeBackground", "Color"),
                            ("ShaderNodeBackground", "Background", "ShaderNodeOutputWorld", "Surface")])
    assert nodes["ShaderNodeBackground"].inputs["Strength"].default_value == 1.0
    assert nodes["ShaderNodeMapping"].vector_type == "POINT"
    img = nodes["ShaderNodeTexEnvironment"].image
    assert img.is_float and img.colorspace_settings.name == "Linear Rec.709"
    assert img.packed_file is None  # a folder was configured: the file stays on disk
    expected = Predictor(random_onnx).predict(read_ldr(sunny_png)[0]).hdr
    pixels = np.array(img.pixels[:], np.float32).reshape(H, W, 4)[::-1, :, :3]
    np.testing.assert_array_equal(pixels, pixels.astype(np.float16))  # half floats ...
    np.testing.assert_allclose(pixels, expected, rtol=2.0**-10, atol=1e-6)  # ... within one half-float step
    exrs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in exrs] == ["sunny_hdr.exr"]  # and no temporary file is left
    assert exr_channel_types(exrs[0]) == {"R": np.float16, "G": np.float16, "B": np.float16}
    np.testing.assert_allclose(read_hdr(exrs[0]), pixels, rtol=0, atol=0)  # the file is what the world shows
    assert old.name in bpy.data.worlds and world_snapshot(bpy.data.worlds[old.name]) == before
    assert bpy.data.worlds[old.name].use_fake_user  # kept in the file although no scene uses it now
    # a second run never overwrites: a new file name and a new world
    assert bpy.ops.world.make_hdr_environment("EXEC_DEFAULT", True, filepath=str(sunny_png),
                                              rotation=0.5) == {"FINISHED"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sunny_hdr.exr", "sunny_hdr_001.exr"]
    assert scene.world.name == "HDR Environment.001"
    assert math.isclose(scene.lanet_hdr.rotation, 0.5, rel_tol=1e-6)
    assert "UNDO" in bpy.types.WORLD_OT_make_hdr_environment.bl_options
    bpy.ops.ed.undo()
    assert bpy.context.scene.world.name == "HDR Environment"
    bpy.ops.ed.undo()
    assert bpy.context.scene.world.name == before["name"]
    assert world_snapshot(bpy.context.scene.world) == before


def test_float32_exr_preference(prefs, tmp_path, random_onnx, sunny_png):
    """Preferences > EXR Precision = Float: 32-bit files with the predictor's exact values."""
    from hdr_core.io import read_hdr, read_ldr
    from hdr_core.predict import Predictor

    prefs.exr_precision = "FLOAT"
    try:
        assert bpy.ops.world.make_hdr_environment(filepath=str(sunny_png)) == {"FINISHED"}
    finally:
        prefs.exr_precision = "HALF"
    exr = tmp_path / "out" / "sunny_hdr.exr"
    assert exr_channel_types(exr) == {"R": np.float32, "G": np.float32, "B": np.float32}
    expected = Predictor(random_onnx).predict(read_ldr(sunny_png)[0]).hdr
    np.testing.assert_allclose(read_hdr(exr), expected, rtol=1e-5, atol=1e-6)


def test_defaults_to_world_image_and_packs_when_unsaved(prefs, sunny_png):
    """No filepath: the image the world uses; unsaved .blend + no folder: temp folder, image packed."""
    prefs.output_dir = ""
    world = bpy.context.scene.world
    env = world.node_tree.nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(str(sunny_png))
    assert bpy.ops.world.make_hdr_environment() == {"FINISHED"}
    img = next(n.image for n in bpy.context.scene.world.node_tree.nodes if n.bl_idname == "ShaderNodeTexEnvironment")
    assert img.packed_file is not None and Path(img.filepath).is_file()
    Path(img.filepath).unlink()


def test_saved_blend_writes_next_to_it(prefs, tmp_path, sunny_png):
    prefs.output_dir = ""
    blend = tmp_path / "scene" / "shot.blend"
    blend.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    assert bpy.ops.world.make_hdr_environment(filepath=str(sunny_png)) == {"FINISHED"}
    assert (blend.parent / "sunny_hdr.exr").is_file()


def _bad_inputs(tmp_path: Path, sunny_png: Path) -> dict:
    rng = np.random.default_rng(0)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(sunny_png.read_bytes()[:8] + rng.bytes(200))
    from hdr_core.io import write_exr

    exr = tmp_path / "ldr.exr"
    write_exr(exr, np.ones((H, W, 3), np.float32))
    return {"missing": (tmp_path / "missing.png", "file not found"),
            "corrupt": (corrupt, "not a readable image"),
            "4:3": (write_png(tmp_path / "four_three.png", rng.random((48, 64, 3))), "not a 2:1"),
            "1x1": (write_png(tmp_path / "one.png", rng.random((1, 1, 3))), "too small"),
            "exr": (exr, "already an HDR image")}


@pytest.mark.parametrize("case", ["missing", "corrupt", "4:3", "1x1", "exr", "no model"])
def test_bad_inputs_change_nothing(prefs, tmp_path, sunny_png, case, monkeypatch):
    inputs = tmp_path / "in"
    inputs.mkdir()
    if case == "no model":
        prefs.model_path = ""
        monkeypatch.setattr(engine, "model_search_dirs", lambda: [tmp_path / "none"])
        path, reason = sunny_png, "Preferences"
    else:
        path, reason = _bad_inputs(inputs, sunny_png)[case]
    scene = bpy.context.scene
    world, snapshot = scene.world, world_snapshot(scene.world)
    counts = {k: len(getattr(bpy.data, k)) for k in ("images", "worlds", "objects", "lights", "scenes")}
    n_ops = len(bpy.context.window_manager.operators)
    with pytest.raises(RuntimeError, match=reason):
        bpy.ops.world.make_hdr_environment(filepath=str(path))
    assert scene.world == world and world_snapshot(world) == snapshot
    assert {k: len(getattr(bpy.data, k)) for k in counts} == counts
    assert len(bpy.context.window_manager.operators) == n_ops  # CANCELLED: not registered as done
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ modal path
@pytest.fixture(scope="module")
def big_png(tmp_path_factory) -> Path:
    """A 2048x1024 panorama: its full-resolution prediction keeps the worker busy for a good fraction of a second."""
    return write_png(tmp_path_factory.mktemp("big") / "big.png", sunny_ldr(1024))


def data_snapshot() -> dict:
    """What Esc must leave as it was: the scene's world (nodes included), and every world, image, object, light."""
    scene = bpy.context.scene
    return {"world": world_snapshot(scene.world), "scene_world": scene.world.name,
            "worlds": sorted((w.name, w.users, w.use_fake_user) for w in bpy.data.worlds),
            "images": sorted((i.name, i.filepath) for i in bpy.data.images),
            **{k: sorted(x.name for x in getattr(bpy.data, k)) for k in ("objects", "lights", "scenes")}}


def drive_modal(run, context, poll_s: float = 0.02, limit: int = 5000) -> tuple[set, list]:
    """Send timer events to a started :class:`ModalRun` until it ends, as Blender's event loop does; returns the
    final result and the ``(progress, job done)`` seen after each event."""
    seen = []
    for _ in range(limit):
        result = run.step(context, "TIMER")
        seen.append((run.progress, run.job.done))
        if result != {"RUNNING_MODAL"}:
            return result, seen
        time.sleep(poll_s)
    raise AssertionError(f"the modal run did not end after {limit} timer events")


def test_modal_run_progress_then_same_world_as_sync(prefs, tmp_path, big_png):
    from blender_addon.operators import ModalRun, Options

    context = bpy.context
    reports = []
    run = ModalRun(Options(str(big_png), resolution="FULL"), lambda level, msg: reports.append((level, msg)))
    before = data_snapshot()
    assert run.start(context) == {"RUNNING_MODAL"}
    assert run.job._thread.is_alive() or run.job.done  # the prediction runs in its worker thread
    assert run.step(context, "MOUSEMOVE") == {"PASS_THROUGH"}
    assert data_snapshot() == before  # nothing changes while it runs
    result, seen = drive_modal(run, context)
    assert result == {"FINISHED"}, reports
    progress = [p for p, _ in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert seen[0] == (progress[0], False) and 0.0 <= progress[0] < 1.0  # the first timer event found it running
    assert all(p < 0.96 for p, done in seen[:-1]) and seen[-1][1]
    assert reports[-1][0] == {"INFO"} and "big_hdr.exr" in reports[-1][1]
    modal_world = context.scene.world
    assert modal_world.name == "HDR Environment" and modal_world.name not in before["worlds"]

    assert bpy.ops.world.make_hdr_environment(filepath=str(big_png), resolution="FULL") == {"FINISHED"}
    sync_world = context.scene.world
    a, b = world_snapshot(modal_world), world_snapshot(sync_world)
    assert (a["nodes"], a["links"], a["color"]) == (b["nodes"], b["links"], b["color"])

    def env_pixels(world):
        img = next(n.image for n in world.node_tree.nodes if n.bl_idname == "ShaderNodeTexEnvironment")
        return np.array(img.pixels[:], np.float32)

    np.testing.assert_array_equal(env_pixels(modal_world), env_pixels(sync_world))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["big_hdr.exr", "big_hdr_001.exr"]


def test_modal_run_esc_cancels_and_changes_nothing(prefs, tmp_path, big_png):
    from blender_addon.operators import ModalRun, Options

    context = bpy.context
    before = data_snapshot()
    reports = []
    run = ModalRun(Options(str(big_png), resolution="FULL", extract_sun=True),
                   lambda level, msg: reports.append((level, msg)))
    assert run.start(context) == {"RUNNING_MODAL"}
    assert run.step(context, "TIMER") == {"RUNNING_MODAL"}
    assert 0.0 <= run.progress < 1.0
    assert run.step(context, "ESC", "PRESS") == {"CANCELLED"}
    assert run.job.wait(120)
    assert isinstance(run.job.error, engine.Cancelled) and run.job.result is None  # the worker stopped
    assert reports == [({"WARNING"}, "Make HDR Environment cancelled; nothing was changed")]
    assert data_snapshot() == before
    assert not (tmp_path / "out").exists()
    # a bad input is reported at start, and nothing runs
    bad = ModalRun(Options(str(tmp_path / "missing.png")), lambda level, msg: reports.append((level, msg)))
    assert bad.start(context) == {"CANCELLED"} and bad.job is None
    assert reports[-1] == ({"ERROR"}, "missing.png: file not found") and data_snapshot() == before


def _render_face(tmp_path: Path, name: str, direction) -> float:
    """Mean value of the default cube's face seen from ``direction`` (orthographic camera filling the frame)."""
    scene = bpy.context.scene
    cam = scene.camera
    cam.data.type, cam.data.ortho_scale = "ORTHO", 1.2
    d = Vector(direction).normalized()
    cam.location = 6 * d
    cam.rotation_euler = (-d).to_track_quat("-Z", "Y").to_euler()
    out = tmp_path / f"{name}.exr"
    scene.render.filepath = str(out)
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(str(out))
    value = float(np.array(img.pixels[:]).reshape(-1, 4)[:, :3].mean())
    bpy.data.images.remove(img)
    return value


@pytest.mark.slow
def test_cycles_render_lit_from_the_sun(prefs, tmp_path, sunny_png, bright_onnx):
    """World only (random net, then the bright model), world + extracted Sun, and rotated: the lit face follows
    the sun, and the Sun lamp carries the light it took out of the texture."""
    scene = bpy.context.scene
    bpy.data.objects.remove(bpy.data.objects["Light"])
    scene.render.engine = "CYCLES"
    scene.cycles.device, scene.cycles.samples, scene.cycles.use_denoising = "CPU", 16, False
    scene.cycles.seed = 0
    scene.render.resolution_x = scene.render.resolution_y = 12
    scene.render.image_settings.file_format, scene.render.image_settings.color_depth = "OPEN_EXR", "32"
    scene.view_settings.view_transform = "Standard"

    assert bpy.ops.world.make_hdr_environment(filepath=str(sunny_png)) == {"FINISHED"}
    lit, dark = _render_face(tmp_path, "a_lit", (1, 0, 0)), _render_face(tmp_path, "a_dark", (-1, 0, 0))
    # an LDR-like world (the random net keeps the photo's values): lit, but the clipped sun adds only ~3 %
    assert 0.05 < dark < 1.0 and 0.05 < lit < 1.0, (lit, dark)

    prefs.model_path = str(bright_onnx)
    assert bpy.ops.world.make_hdr_environment(filepath=str(sunny_png)) == {"FINISHED"}
    world_lit, world_dark = _render_face(tmp_path, "b_world", (1, 0, 0)), _render_face(tmp_path, "b_wdark", (-1, 0, 0))
    assert world_lit > 3 * world_dark > 0 and world_lit > 3 * lit  # the bright model restored the sun's energy
    assert bpy.ops.world.make_hdr_environment(filepath=str(sunny_png), extract_sun=True) == {"FINISHED"}
    lamp = bpy.data.objects[scene.world["lanet_hdr_sun"]]
    assert lamp.type == "LIGHT" and lamp.data.type == "SUN" and lamp.data.energy > 1.0
    light_dir = lamp.rotation_euler.to_matrix() @ Vector((0.0, 0.0, 1.0))
    assert np.degrees(np.arccos(np.clip(np.dot(light_dir, SUN_DIR), -1, 1))) < 3.0
    sun_lit, sun_dark = _render_face(tmp_path, "b_lit", (1, 0, 0)), _render_face(tmp_path, "b_dark", (-1, 0, 0))
    assert sun_lit > 3 * sun_dark > 0
    assert abs(sun_lit / world_lit - 1.0) < 0.1, (sun_lit, world_lit)  # the Sun replaces the light it took

    assert bpy.ops.world.make_hdr_environment(filepath=str(sunny_png), extract_sun=True,
                                              rotation=math.pi / 2) == {"FINISHED"}
    east, west = _render_face(tmp_path, "c_lit", (0, -1, 0)), _render_face(tmp_path, "c_dark", (0, 1, 0))
    assert east > 3 * west > 0, (east, west)


def test_panel_settings_and_live_rotation(prefs, sunny_png, bright_onnx):
    """Without arguments the operator uses the scene settings; the rotation setting then turns world and Sun."""
    prefs.model_path = str(bright_onnx)
    settings = bpy.context.scene.lanet_hdr
    settings.filepath, settings.extract_sun = str(sunny_png), True
    assert bpy.ops.world.make_hdr_environment() == {"FINISHED"}
    world = bpy.context.scene.world
    lamp = bpy.data.objects[world["lanet_hdr_sun"]]
    bpy.context.scene.lanet_hdr.rotation = math.pi / 2
    mapping = next(n for n in world.node_tree.nodes if n.bl_idname == "ShaderNodeMapping")
    assert math.isclose(mapping.inputs["Rotation"].default_value[2], math.pi / 2, rel_tol=1e-6)
    light_dir = np.array(lamp.rotation_euler.to_matrix() @ Vector((0.0, 0.0, 1.0)))
    assert np.allclose(light_dir, [0, -SUN_DIR[0], SUN_DIR[2]], atol=0.05)


# ------------------------------------------------------------------------------------------------ packaging
def test_manifest_has_onnxruntime_for_every_blender_python():
    """The shipped manifest covers every (platform, Python) of Blender 4.2..5.3; a gap is a one-line error."""
    from blender_addon import build

    ext = build._blender_ext_module(build.find_blender_ext())
    manifest = tomllib.loads(build.MANIFEST.read_text())
    build.check_python_coverage(manifest, ext)  # no error
    assert set(build.BLENDER_PYTHONS.values()) == {"3.11", "3.13"}
    assert build.blender_python("4.2.23") == "3.11" and build.blender_python("5.3.0") == "3.13"
    assert build.wheel_python("onnxruntime-1.31.1-cp313-cp313-win_amd64.whl") == "3.13"
    assert build.wheel_python("lanet_hdr_core-0.1.0-py3-none-any.whl") is None
    gap = dict(manifest, wheels=[w for w in manifest["wheels"] if not w.endswith("cp313-win_amd64.whl")])
    with pytest.raises(SystemExit, match=r"blender_manifest.toml: no onnxruntime wheel for windows-x64 / Python 3.13"):
        build.check_python_coverage(gap, ext)
    with pytest.raises(SystemExit, match="unknown Python"):
        build.blender_python("3.6.0")


@pytest.mark.slow
def test_build_zip_install_and_run(tmp_path, random_onnx, sunny_png):
    """Build for linux-x64 with the random model, install the zip in a fresh Blender user folder, run from it."""
    from blender_addon import build

    # validated by this bpy's own tool (each Blender of the `make test` matrix); `make addon` adds 4.2.23 and 5.3.0
    zips = build.build(tmp_path / "dist", ["linux-x64"], [random_onnx], shipped_models=False, validate_with=())
    assert len(zips) == 1
    with zipfile.ZipFile(zips[0]) as zf:
        names = set(zf.namelist())
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    assert {"blender_manifest.toml", "__init__.py", "operators.py", "models/panolanet_small/model.onnx",
            "models/panolanet_small/model.json"} <= names
    assert "build.py" not in names
    assert manifest["platforms"] == ["linux-x64"] and manifest["license"] == ["SPDX:MIT"]
    assert "files" in manifest["permissions"]
    wheels = [w.removeprefix("./") for w in manifest["wheels"]]
    assert wheels and set(wheels) <= names
    ort = sorted(w.split("-")[2] for w in wheels if w.startswith("wheels/onnxruntime-"))
    assert ort == ["cp311", "cp313"]  # Blender 4.2 LTS to 5.0, and 5.1 and later
    assert any(w.startswith("wheels/lanet_hdr_core-") for w in wheels)

    user = tmp_path / "user"
    script = f"""
import os, sys, json
sys.modules['cv2'] = None; sys.modules['torch'] = None   # as inside Blender: no OpenCV, no torch
import bpy
assert bpy.ops.extensions.package_install_files(filepath={str(zips[0])!r}, repo='user_default',
                                                enable_on_install=True) == {{'FINISHED'}}
mod = sys.modules['bl_ext.user_default.lanet_hdr']
bpy.context.preferences.addons[mod.__name__].preferences.output_dir = {str(tmp_path / 'out')!r}
result = bpy.ops.world.make_hdr_environment(filepath={str(sunny_png)!r})
import hdr_core
engine = sys.modules[mod.__name__ + '.engine']
print(json.dumps({{'result': sorted(result), 'addon': mod.__file__, 'hdr_core': hdr_core.__file__,
                  'models': [k[0] for k in engine._PREDICTORS], 'world': bpy.context.scene.world.name}}))
""" + SCRIPT_EXIT
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "BLENDER_USER_RESOURCES": str(user)})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["result"] == ["FINISHED"] and info["world"] == "HDR Environment"
    assert info["addon"].startswith(str(user)) and info["hdr_core"].startswith(str(user))  # from the zip's wheel
    assert info["models"][0].startswith(str(user / "extensions" / "user_default" / "lanet_hdr" / "models"))
    assert (tmp_path / "out" / "sunny_hdr.exr").is_file()
    py = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert list(user.glob(f"extensions/.local/lib/{py}/site-packages/onnxruntime/__init__.py"))
    # Blender installed the wheel of its own Python only
    installed = [p.name for p in user.glob(f"extensions/.local/lib/{py}/site-packages/onnxruntime-*.dist-info")]
    assert len(installed) == 1, installed
