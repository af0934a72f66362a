"""The four-ball evaluation scene (method.md §4), built from scratch by small single-purpose setters.

Left to right as seen by the camera: glass, glossy (metal), diffuse and mixed diffuse+glossy balls resting on a
diffuse plane, lit only by the world: Environment Texture -> Background -> World Output, with Blender's default
(view-vector) mapping. Every value comes from :class:`~render_eval.settings.RenderSettings`; the build starts from
factory settings with an empty scene, so neither the user's preferences nor a startup file can change a render.

World rotation: the lookup vector gets a Texture Coordinate (Generated) -> Mapping node pair, as in BlenderProc's
``set_world_background_hdr_img``, only when the rotation is not 0. For the world, Cycles' Generated coordinate is
the ray direction, so with rotation 0 that path renders bit-identically to the default mapping (checked in
``tests/test_render.py`` and on Blender 3.4); without a rotation the node graph is exactly the default one.

Needs ``bpy`` (the wheel or a Blender binary). ``numpy`` is needed only to pass panoramas as arrays; inside a
Blender binary without OpenCV/OpenEXR (Debian's 3.4), EXR files are written and read through ``bpy``.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import tempfile
import uuid
from typing import Any

import bpy

from render_eval import blender_compat as bc
from render_eval.settings import RenderSettings

__all__ = [
    "BALL_KINDS", "SCENE_KEY_PROP", "add_ball", "add_camera", "add_plane", "apply_render_settings",
    "build_four_ball_scene", "make_materials", "mesh_object", "new_material", "read_exr", "reset_blender",
    "save_blend", "set_world_hdr",
    "set_world_rotation", "setup_world", "temp_dir", "write_exr",
]

#: Material kinds of the balls, left to right.
BALL_KINDS = ("glass", "glossy", "diffuse", "mixed")
#: Scene custom property holding the settings key the scene was built for.
SCENE_KEY_PROP = "render_eval_scene_key"
#: Object-level custom property naming the material kind.
KIND_PROP = "material_kind"

_WORLD = "EvalWorld"
_ENV_NODE = "Environment Texture"
_BG_NODE = "Background"
_OUT_NODE = "World Output"
_MAP_NODE = "Mapping"
_TEXCO_NODE = "Texture Coordinate"
_WORLD_IMAGE_PROP = "render_eval_temp"
_tmp_dir: str | None = None


# --- reset and render settings ----------------------------------------------------------------------------------

def reset_blender() -> None:
    """Factory settings with an empty scene: no user preferences, no startup file, no default cube/light/camera."""
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _scene() -> Any:
    return bpy.context.scene


def apply_render_settings(settings: RenderSettings, scene: Any = None) -> None:
    """Set Cycles (CPU), sampling, seed, denoiser, light paths, clamping, film, colour management and output.

    Every Cycles option the result depends on is set explicitly here, so the factory defaults of different Blender
    versions do not leak into the render.

    Raises:
        RuntimeError: The requested denoiser is not available in this Blender build.
    """
    s = scene or _scene()
    bc.set_cycles_cpu(s, settings.threads)
    c = s.cycles
    r = s.render
    r.resolution_x, r.resolution_y = (int(v) for v in settings.resolution)
    r.resolution_percentage = 100
    r.pixel_aspect_x = r.pixel_aspect_y = 1.0
    r.use_border = False
    r.use_persistent_data = False  # fresh Cycles session per render: a swapped world image is always re-read
    r.film_transparent = settings.film_transparent
    r.use_motion_blur = False
    c.samples = int(settings.samples)
    c.seed = int(settings.seed)
    c.use_animated_seed = False
    c.use_adaptive_sampling = settings.adaptive_threshold > 0
    if c.use_adaptive_sampling:
        c.adaptive_threshold = float(settings.adaptive_threshold)
        c.adaptive_min_samples = int(settings.adaptive_min_samples)
    c.sample_offset = 0
    bc.set_if_present(c, use_sample_subset=False, use_light_tree=True)
    if settings.path_guiding and not hasattr(c, "use_guiding"):
        raise RuntimeError(f"path guiding is not available in Blender {bpy.app.version_string} (needs 3.4+)")
    bc.set_if_present(c, use_guiding=settings.path_guiding, use_surface_guiding=True, use_volume_guiding=False,
                      use_deterministic_guiding=True, guiding_training_samples=int(settings.guiding_training_samples))
    if settings.denoiser is None:
        c.use_denoising = False
    else:
        if settings.denoiser not in bc.available_denoisers():
            raise RuntimeError(f"denoiser {settings.denoiser} is not available in Blender {bpy.app.version_string} "
                               f"(available: {', '.join(bc.available_denoisers()) or 'none'})")
        c.use_denoising = True
        c.denoiser = settings.denoiser
        c.denoising_input_passes = "RGB_ALBEDO_NORMAL"
        c.denoising_prefilter = "ACCURATE"
        bc.set_if_present(c, denoising_quality="HIGH", denoising_use_gpu=False)
    c.max_bounces = settings.max_bounces
    c.diffuse_bounces = settings.diffuse_bounces
    c.glossy_bounces = settings.glossy_bounces
    c.transmission_bounces = settings.transmission_bounces
    c.transparent_max_bounces = settings.transparent_bounces
    c.volume_bounces = 0
    c.min_light_bounces = 0
    c.min_transparent_bounces = 0
    c.caustics_reflective = settings.caustics_reflective
    c.caustics_refractive = settings.caustics_refractive
    c.blur_glossy = settings.blur_glossy
    c.sample_clamp_direct = settings.sample_clamp_direct
    c.sample_clamp_indirect = settings.sample_clamp_indirect
    c.light_sampling_threshold = 0.01
    c.pixel_filter_type = settings.pixel_filter
    c.filter_width = settings.filter_width
    c.film_exposure = settings.film_exposure
    s.view_settings.view_transform = settings.view_transform
    s.view_settings.look = "None"
    s.view_settings.exposure = settings.view_exposure
    s.view_settings.gamma = 1.0
    s.view_settings.use_curve_mapping = False
    img = r.image_settings
    img.file_format = "OPEN_EXR"
    img.color_mode = "RGB"
    img.color_depth = "32"
    img.exr_codec = "ZIP"
    bc.set_if_present(img, color_management="FOLLOW_SCENE")
    r.use_file_extension = True
    r.use_compositing = False
    r.use_sequencer = False
    if s.world is not None:
        s.world.cycles.sampling_method = settings.world_sampling_method
        s.world.cycles.sample_map_resolution = int(settings.world_map_resolution)


# --- camera and geometry ----------------------------------------------------------------------------------------

def _link(obj: Any) -> Any:
    _scene().collection.objects.link(obj)
    return obj


def add_camera(settings: RenderSettings, name: str = "Camera") -> Any:
    """Add the camera at ``settings.camera_location`` looking at ``settings.camera_target`` (up = +Z)."""
    from mathutils import Vector

    cam = bpy.data.cameras.new(name)
    cam.type = "PERSP"
    cam.lens_unit = "MILLIMETERS"
    cam.lens = settings.camera_lens_mm
    cam.sensor_fit = "HORIZONTAL"
    cam.sensor_width = settings.camera_sensor_mm
    cam.shift_x = cam.shift_y = 0.0
    cam.clip_start, cam.clip_end = 0.05, 1000.0
    cam.dof.use_dof = False
    obj = _link(bpy.data.objects.new(name, cam))
    loc = Vector(settings.camera_location)
    obj.location = loc
    obj.rotation_euler = (Vector(settings.camera_target) - loc).to_track_quat("-Z", "Y").to_euler()
    _scene().camera = obj
    return obj


def mesh_object(name: str, build: Any, *materials: Any) -> Any:
    """A new mesh object linked to the scene: ``build(bm)`` fills a bmesh; ``materials`` become its slots."""
    import bmesh

    mesh = bpy.data.meshes.new(name)
    bm = bmesh.new()
    try:
        build(bm)
        bm.to_mesh(mesh)
    finally:
        bm.free()
    for material in materials:
        mesh.materials.append(material)
    obj = _link(bpy.data.objects.new(name, mesh))
    return obj


def add_plane(settings: RenderSettings, material: Any, name: str = "Plane") -> Any:
    """Add the square ground plane (``settings.plane_size`` on a side) at z = 0, normal +Z, flat shaded."""
    import bmesh

    h = settings.plane_size / 2.0

    def build(bm: Any) -> None:
        verts = [bm.verts.new(v) for v in ((-h, -h, 0.0), (h, -h, 0.0), (h, h, 0.0), (-h, h, 0.0))]
        bm.faces.new(verts)
        bmesh.ops.recalc_face_normals(bm, faces=bm.faces[:])

    return mesh_object(name, build, material)


def add_ball(settings: RenderSettings, name: str, x: float, material: Any, kind: str) -> Any:
    """Add a smooth-shaded UV sphere of ``settings.sphere_radius`` resting on the plane at ``(x, 0)``."""
    import bmesh

    segments, rings = settings.sphere_segments

    def build(bm: Any) -> None:
        bmesh.ops.create_uvsphere(bm, u_segments=int(segments), v_segments=int(rings),
                                  radius=float(settings.sphere_radius))

    obj = mesh_object(name, build, material)
    bc.set_smooth(obj.data)
    obj.location = (float(x), 0.0, float(settings.sphere_radius))
    obj[KIND_PROP] = kind
    return obj


# --- materials --------------------------------------------------------------------------------------------------

def new_material(name: str) -> tuple[Any, Any, Any]:
    """A new material with an empty node tree; returns ``(material, node_tree, output_node)``."""
    mat = bpy.data.materials.new(name)
    nt = bc.ensure_node_tree(mat)
    nt.nodes.clear()
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    out.target = "ALL"
    return mat, nt, out


def _diffuse_node(nt: Any, albedo: float) -> Any:
    node = nt.nodes.new("ShaderNodeBsdfDiffuse")
    bc.set_socket(node.inputs["Color"], albedo)
    node.inputs["Roughness"].default_value = 0.0  # Lambertian
    return node


def _glossy_node(nt: Any, color: float, roughness: float) -> Any:
    node = nt.nodes.new("ShaderNodeBsdfGlossy")
    node.distribution = "MULTI_GGX"
    bc.set_socket(node.inputs["Color"], color)
    node.inputs["Roughness"].default_value = roughness
    return node


def _principled_node(nt: Any, **values: float) -> Any:
    node = nt.nodes.new("ShaderNodeBsdfPrincipled")
    node.distribution = "MULTI_GGX"
    bc.set_principled(node, **values)
    return node


def make_materials(settings: RenderSettings) -> dict[str, Any]:
    """Create the five materials: ``glass``, ``glossy``, ``diffuse``, ``mixed`` (balls) and ``plane``."""
    mats = {}
    mat, nt, out = new_material("glass")
    bsdf = _principled_node(nt, base_color=settings.glass_color, metallic=0.0, roughness=settings.glass_roughness,
                            ior=settings.glass_ior, transmission=1.0)
    nt.links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    mats["glass"] = mat

    mat, nt, out = new_material("glossy")
    bsdf = _principled_node(nt, base_color=settings.metal_color, metallic=1.0, roughness=settings.metal_roughness,
                            transmission=0.0)
    nt.links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    mats["glossy"] = mat

    mat, nt, out = new_material("diffuse")
    nt.links.new(_diffuse_node(nt, settings.diffuse_albedo).outputs["BSDF"], out.inputs["Surface"])
    mats["diffuse"] = mat

    mat, nt, out = new_material("mixed")
    mix = nt.nodes.new("ShaderNodeMixShader")
    mix.inputs[bc.mix_factor_name(mix)].default_value = settings.mixed_factor
    nt.links.new(_diffuse_node(nt, settings.mixed_diffuse_albedo).outputs["BSDF"], mix.inputs[1])
    glossy = _glossy_node(nt, settings.mixed_glossy_color, settings.mixed_glossy_roughness)
    nt.links.new(glossy.outputs["BSDF"], mix.inputs[2])
    nt.links.new(mix.outputs["Shader"], out.inputs["Surface"])
    mats["mixed"] = mat

    mat, nt, out = new_material("plane")
    nt.links.new(_diffuse_node(nt, settings.plane_albedo).outputs["BSDF"], out.inputs["Surface"])
    mats["plane"] = mat
    return mats


# --- world ------------------------------------------------------------------------------------------------------

def setup_world(settings: RenderSettings, name: str = _WORLD) -> Any:
    """Create the world: Environment Texture (no image yet) -> Background -> World Output, and make it the scene's."""
    world = bpy.data.worlds.new(name)
    nt = bc.ensure_node_tree(world)
    nt.nodes.clear()
    env = nt.nodes.new("ShaderNodeTexEnvironment")
    env.name = _ENV_NODE
    env.projection = "EQUIRECTANGULAR"
    env.interpolation = "Linear"
    bg = nt.nodes.new("ShaderNodeBackground")
    bg.name = _BG_NODE
    bg.inputs["Strength"].default_value = settings.world_strength
    out = nt.nodes.new("ShaderNodeOutputWorld")
    out.name = _OUT_NODE
    out.target = "ALL"
    nt.links.new(env.outputs["Color"], bg.inputs["Color"])
    nt.links.new(bg.outputs["Background"], out.inputs["Surface"])
    _scene().world = world
    world.cycles.sampling_method = settings.world_sampling_method
    world.cycles.sample_map_resolution = int(settings.world_map_resolution)
    return world


def _world_tree() -> Any:
    world = _scene().world
    if world is None or world.node_tree is None or _ENV_NODE not in world.node_tree.nodes:
        raise RuntimeError("the scene has no evaluation world: call build_four_ball_scene() first")
    return world.node_tree


def set_world_rotation(rotation_deg: float, always_map: bool = False) -> None:
    """Rotate the panorama about Z by ``rotation_deg`` degrees (Blender's Mapping-node convention).

    +90 renders like the panorama rolled a quarter turn to the right at 0 (``np.roll(pano, W // 4, axis=1)``).

    Args:
        rotation_deg: The rotation; 0 removes the Mapping path and restores the default (view-vector) mapping.
        always_map: Keep the Texture Coordinate (Generated) -> Mapping path even for 0 (used to test that the two
            paths agree).
    """
    nt = _world_tree()
    env = nt.nodes[_ENV_NODE]
    for name in (_MAP_NODE, _TEXCO_NODE):
        if name in nt.nodes:
            nt.nodes.remove(nt.nodes[name])
    if rotation_deg == 0 and not always_map:
        return
    texco = nt.nodes.new("ShaderNodeTexCoord")
    texco.name = _TEXCO_NODE
    mapping = nt.nodes.new("ShaderNodeMapping")
    mapping.name = _MAP_NODE
    mapping.vector_type = "POINT"
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, math.radians(rotation_deg))
    nt.links.new(texco.outputs["Generated"], mapping.inputs["Vector"])
    nt.links.new(mapping.outputs["Vector"], env.inputs["Vector"])


def temp_dir() -> str:
    """This process's temp folder for world images and renders (removed at exit)."""
    global _tmp_dir
    if _tmp_dir is None or not os.path.isdir(_tmp_dir):
        _tmp_dir = tempfile.mkdtemp(prefix="render_eval-world-")
        atexit.register(shutil.rmtree, _tmp_dir, True)
    return _tmp_dir


def set_world_hdr(hdr: Any, settings: RenderSettings | None = None) -> Any:
    """Light the scene with a panorama: load it into the world's Environment Texture and apply the rotation.

    The previous world image is removed from ``bpy.data`` and the new one is loaded as a new datablock (never a
    cached one), so swapping panoramas between renders always renders the new pixels.

    Args:
        hdr: An equirectangular panorama: a path to an EXR/HDR file, or a float ``HxWx3`` linear RGB array (written
            to a temporary float32 EXR first).
        settings: Gives ``world_rotation_deg`` and ``world_strength``; defaults if None.

    Returns:
        The new ``bpy.types.Image``.

    Raises:
        FileNotFoundError: ``hdr`` is a path that does not exist.
    """
    settings = settings or RenderSettings()
    nt = _world_tree()
    env = nt.nodes[_ENV_NODE]
    old = env.image
    temp_path = None
    if isinstance(hdr, str | os.PathLike):
        path = os.path.abspath(os.fspath(hdr))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: panorama file not found")
    else:
        temp_path = path = os.path.join(temp_dir(), f"world-{uuid.uuid4().hex}.exr")
        write_exr(path, hdr)
    image = bpy.data.images.load(path, check_existing=False)
    image.colorspace_settings.name = bc.linear_color_space()
    image.alpha_mode = "NONE"  # an EXR's alpha channel must not darken the world
    if temp_path:
        image[_WORLD_IMAGE_PROP] = temp_path
    env.image = image
    if old is not None:
        old_temp = old.get(_WORLD_IMAGE_PROP)
        bpy.data.images.remove(old)
        if old_temp and os.path.isfile(old_temp):
            os.remove(old_temp)
    nt.nodes[_BG_NODE].inputs["Strength"].default_value = settings.world_strength
    set_world_rotation(settings.world_rotation_deg)
    return image


# --- the scene --------------------------------------------------------------------------------------------------

def build_four_ball_scene(settings: RenderSettings | None = None, key: str | None = None) -> dict[str, Any]:
    """Reset Blender to factory settings and build the four-ball scene.

    Args:
        settings: The configuration; defaults if None.
        key: Stored in the scene's ``render_eval_scene_key`` property (render.py uses it to reuse the scene).

    Returns:
        Names of what was created: ``scene``, ``camera``, ``plane``, ``world``, ``balls`` (left to right) and
        ``materials`` (kind -> material name).
    """
    settings = settings or RenderSettings()
    reset_blender()
    scene = _scene()
    mats = make_materials(settings)
    camera = add_camera(settings)
    plane = add_plane(settings, mats["plane"])
    balls = [add_ball(settings, f"Ball_{kind}", x, mats[kind], kind) for kind, x in zip(BALL_KINDS, settings.sphere_x)]
    world = setup_world(settings)
    apply_render_settings(settings, scene)
    set_world_rotation(settings.world_rotation_deg)
    scene[SCENE_KEY_PROP] = key or settings.digest()
    bpy.context.view_layer.update()  # evaluated world matrices (e.g. for world_to_camera_view)
    return {"scene": scene.name, "camera": camera.name, "plane": plane.name, "world": world.name,
            "balls": [b.name for b in balls], "materials": {k: m.name for k, m in mats.items()}}


def save_blend(path: str | os.PathLike) -> str:
    """Save the current scene as a ``.blend`` (world images from arrays are packed into it); return the path."""
    path = os.path.abspath(os.fspath(path))
    for image in bpy.data.images:
        if image.get(_WORLD_IMAGE_PROP) and image.packed_file is None:
            image.pack()
    if os.path.isfile(path):
        os.remove(path)  # overwrite without leaving Blender's ``.blend1`` backup
    bpy.ops.wm.save_as_mainfile(filepath=path, check_existing=False, compress=True)
    return path


# --- EXR I/O that works without OpenCV/OpenEXR (inside a Blender binary) ----------------------------------------

def write_exr(path: str | os.PathLike, img: Any) -> None:
    """Write a float ``HxWx3`` array as a float32 EXR: :func:`hdr_core.io.write_exr`, else through ``bpy``."""
    try:
        from hdr_core.io import write_exr as _write
    except ImportError:  # a Blender binary without cv2/OpenEXR
        _write = _write_exr_bpy
    _write(path, img)


def read_exr(path: str | os.PathLike) -> Any:
    """Read an EXR as a float32 ``HxWx3`` array: :func:`hdr_core.io.read_hdr`, else through ``bpy``."""
    try:
        from hdr_core.io import read_hdr as _read
    except ImportError:  # a Blender binary without cv2/OpenEXR
        _read = _read_exr_bpy
    return _read(path)


def _write_exr_bpy(path: str | os.PathLike, img: Any) -> None:
    import numpy as np

    a = np.asarray(img, np.float32)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or not np.isfinite(a).all():
        raise ValueError(f"{os.fspath(path)}: expected a finite HxWx3 float image, got shape {a.shape}")
    h, w = a.shape[:2]
    rgba = np.ones((h, w, 4), np.float32)
    rgba[..., :3] = a[..., :3] if a.shape[2] >= 3 else a[..., :1]
    image = bpy.data.images.new("__render_eval_write__", w, h, float_buffer=True, alpha=False)
    try:
        image.colorspace_settings.name = bc.linear_color_space()
        image.pixels.foreach_set(np.ascontiguousarray(rgba[::-1]).ravel())  # Blender stores rows bottom-up
        image.filepath_raw = os.path.abspath(os.fspath(path))
        image.file_format = "OPEN_EXR"
        tmp_scene = _scene()
        settings = tmp_scene.render.image_settings
        old = (settings.file_format, settings.color_depth, settings.color_mode)
        settings.file_format, settings.color_depth, settings.color_mode = "OPEN_EXR", "32", "RGB"
        try:
            image.save_render(os.path.abspath(os.fspath(path)), scene=tmp_scene)
        finally:
            settings.file_format, settings.color_depth, settings.color_mode = old
    finally:
        bpy.data.images.remove(image)


def _read_exr_bpy(path: str | os.PathLike) -> Any:
    import numpy as np

    p = os.path.abspath(os.fspath(path))
    if not os.path.isfile(p):
        raise FileNotFoundError(f"{p}: file not found")
    image = bpy.data.images.load(p, check_existing=False)
    try:
        image.colorspace_settings.name = bc.linear_color_space()
        w, h = image.size
        buf = np.empty(w * h * image.channels, np.float32)
        image.pixels.foreach_get(buf)
        return np.ascontiguousarray(buf.reshape(h, w, image.channels)[::-1, :, :3])
    finally:
        bpy.data.images.remove(image)
