"""The bpy scene builder of the synthetic panoramas: :class:`hdr_core.data.synth.SynthParams` -> Cycles render.

Command line (the generator of :mod:`hdr_core.data.synth` with this module as its renderer; resumable)::

    python scenes/synth_panorama.py --n 1000 --out data/synth --seed 0 --width 512 --samples 32 --progress

It lives in ``scenes/`` beside the evaluation scene (``four_balls.py``): ``hdr_core`` holds the scene parameters
and the generator loop and imports no Blender code; this module builds and renders the scene with the one copy of
the Blender helpers, ``render_eval.scene`` / ``render_eval.render`` / ``render_eval.blender_compat``.

Reads like a BlenderProc scenario: reset -> world (Sky Texture) -> geometry (ground, objects, room, lamps,
window portals) -> panoramic camera -> render settings -> render -> read back. Every render setting is set
explicitly through :func:`render_eval.scene.apply_render_settings` (a :class:`~render_eval.settings.RenderSettings`
made by :func:`synth_render_settings`), so Blender's factory defaults never leak into the data.

Camera: ``PANO`` / equirectangular, full sphere, at ``params.camera`` rotated (pi/2, 0, -pi/2): it looks along +X
with +Z up, which renders a world texture exactly like Blender's own equirectangular world mapping (the
panorama's centre column is +X, its left/right edges -X, azimuth increasing towards +Y to the left).

Render choices (measured on bpy 5.0.1, 2-core CPU shared with training jobs; details in ``docs/synth.md``):

* World importance sampling: ``NONE`` only where no surface can receive world light (a sky-only panorama, or a
  room without windows); otherwise ``MANUAL`` with a :data:`WORLD_MAP_RESOLUTION` map. With ``NONE`` the
  geometry of a sunny scene gets no sunlight at all at 32 samples (12.8 dB against a reference, 39.8 dB with the
  map). The map's size does not change the noise (256 to 4096 gave the same images' noise): Cycles samples the
  Sky Texture's sun disc on its own, so no extra sun lamp is needed.
* Window openings get Cycles light portals (area lights with ``is_portal``): about +0.1 dB, free.
* The sun region is re-rendered at :data:`SUN_REFINE_SAMPLES` samples and pasted (:func:`render_sun_patches`):
  at 32 samples the disc's energy varies by 5-13 % between seeds (28 % and dimmed with a denoiser), after it 0.3 %.
* Denoiser: OpenImageDenoise for every scene with geometry (:func:`resolve_denoiser`). At 512x256 and 32 samples,
  two seeds differ by 16-28 dB indoors and 36-43 dB outdoors without it, 45-56 dB with it. A denoised render gets
  :func:`seam_pad` extra columns of longitude on each side, so the denoiser sees across the seam, and
  :func:`crop_seam` feathers the edges (without that the seam step was 4.5x a neighbouring-column step; after, 1.0).
* No clamping (the sun's pixels reach ~5e5 at 512x256), no caustics, film not transparent, one seed per panorama.

Area lights and sun lamps are invisible to camera rays in Cycles 5.0 (measured), so the ceiling lamps are
emissive meshes: the panorama must show every light source.

``bpy`` is imported at module import (after pointing ``BLENDER_USER_RESOURCES`` at a temp folder, as
:mod:`render_eval.render` does); import this module lazily from code that must work without Blender.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, ROOT)

from render_eval.render import _import_bpy, render_current_scene_array  # noqa: E402

bpy = _import_bpy()

import numpy as np  # noqa: E402

from hdr_core.data import synth  # noqa: E402
from hdr_core.data.synth import (  # noqa: E402
    LAMP_DEPTH,
    LampParams,
    MaterialParams,
    ObjectParams,
    RoomParams,
    SkyParams,
    SynthParams,
    WindowParams,
    sun_direction,
)
from render_eval import blender_compat as bc  # noqa: E402
from render_eval import scene as sc  # noqa: E402
from render_eval.settings import RenderSettings  # noqa: E402

__all__ = [
    "CAMERA_ROTATION", "GROUND_SIZE", "SEAM_PAD_FRACTION", "SUN_REFINE_SAMPLES", "WORLD_MAP_RESOLUTION", "add_ground",
    "add_lamp", "add_object", "add_pano_camera", "add_room", "add_window_portal", "build_synth_scene", "crop_seam",
    "make_material", "render_sun_patches", "render_synth", "resolve_denoiser", "seam_pad", "set_sky_world",
    "sun_boxes", "sun_pixel", "synth_render_settings", "world_sampling_method",
]

#: Euler XYZ rotation of the panoramic camera: looks along +X, +Z up (renders the world mapping exactly).
CAMERA_ROTATION = (math.pi / 2.0, 0.0, -math.pi / 2.0)
#: Edge length of the ground plane (m): its edge is 0.05 degrees below the horizon seen from 1.7 m.
GROUND_SIZE = 4000.0
#: Width of the world importance map when the world lights geometry. Its size barely matters for the Sky Texture
#: (Cycles samples the sun disc separately): 256, 1024 and 4096 gave the same noise; 4096 costs ~2 s per render.
WORLD_MAP_RESOLUTION = 512
#: Samples per pixel of the re-rendered sun region (:func:`render_sun_patches`).
SUN_REFINE_SAMPLES = 2048
#: Columns rendered beyond each side of the 360 degrees when denoising, as a fraction of the width (:func:`seam_pad`).
SEAM_PAD_FRACTION = 1 / 16
#: Pixels added around the sun disc's bounding box (the 1.5 px pixel filter spreads the disc by ~1 px).
_SUN_MARGIN_PX = 2
#: Walls, floor and ceiling overlap by this much at the room's edges (no light leaks along shared edges).
_ROOM_OVERLAP = 0.05
_GROUND_BELOW_FLOOR = 0.02

# --- Blender version differences (the Sky Texture and the panoramic camera) ------------------------------------
# Everything else comes from render_eval.blender_compat.

#: Sky models by their 5.0 name -> names in older Blenders (4.x and 3.x have one scattering model, NISHITA).
_SKY_TYPE_ALIASES = {"SINGLE_SCATTERING": ("SINGLE_SCATTERING", "NISHITA"),
                     "MULTIPLE_SCATTERING": ("MULTIPLE_SCATTERING", "NISHITA"),
                     "PREETHAM": ("PREETHAM",), "HOSEK_WILKIE": ("HOSEK_WILKIE",)}
#: Sky Texture properties by their 5.0 name -> older names.
_SKY_PROP_ALIASES = {"aerosol_density": ("aerosol_density", "dust_density")}


def _enum_items(owner: Any, prop: str) -> list[str]:
    return [item.identifier for item in owner.bl_rna.properties[prop].enum_items]


def _set_sky_type(node: Any, sky_type: str) -> str:
    """Set the Sky Texture's model by its Blender 5.0 name; return the name actually used."""
    items = _enum_items(node, "sky_type")
    for name in _SKY_TYPE_ALIASES[sky_type]:
        if name in items:
            node.sky_type = name
            return name
    raise KeyError(f"sky type {sky_type} is not available in Blender {bpy.app.version_string} (has {items})")


def _set_sky_prop(node: Any, name: str, value: Any) -> None:
    for alias in _SKY_PROP_ALIASES.get(name, (name,)):
        if hasattr(node, alias):
            setattr(node, alias, value)
            return
    raise AttributeError(f"the Sky Texture has no {name} in Blender {bpy.app.version_string}")


def _panorama_settings(cam: Any) -> Any:
    """Where the panorama camera's settings live: the camera (4.0+) or ``camera.cycles`` (3.x)."""
    return cam if hasattr(cam, "panorama_type") else cam.cycles


# --- world ------------------------------------------------------------------------------------------------------

def set_sky_world(sky: SkyParams, name: str = "SynthSky") -> Any:
    """Create the world: Sky Texture -> Background -> World Output, and make it the scene's."""
    world = bpy.data.worlds.new(name)
    nt = bc.ensure_node_tree(world)
    nt.nodes.clear()
    tex = nt.nodes.new("ShaderNodeTexSky")
    _set_sky_type(tex, sky.sky_type)
    if sky.has_sun_disc:
        tex.sun_disc = True
        tex.sun_size = sky.sun_size
        tex.sun_intensity = sky.sun_intensity
        tex.sun_elevation = sky.sun_elevation
        tex.sun_rotation = sky.sun_rotation
        tex.altitude = sky.altitude
        tex.air_density = sky.air_density
        _set_sky_prop(tex, "aerosol_density", sky.aerosol_density)
        tex.ozone_density = sky.ozone_density
    else:
        tex.sun_direction = sky.sun_direction
        tex.turbidity = sky.turbidity
        tex.ground_albedo = sky.ground_albedo
    bg = nt.nodes.new("ShaderNodeBackground")
    bg.inputs["Strength"].default_value = sky.strength
    out = nt.nodes.new("ShaderNodeOutputWorld")
    out.target = "ALL"
    nt.links.new(tex.outputs["Color"], bg.inputs["Color"])
    nt.links.new(bg.outputs["Background"], out.inputs["Surface"])
    bpy.context.scene.world = world
    return world


# --- camera -----------------------------------------------------------------------------------------------------

def add_pano_camera(location: tuple[float, float, float], extra_longitude: float = 0.0,
                    name: str = "PanoCamera") -> Any:
    """Add the full-sphere equirectangular camera at ``location`` (looking along +X, +Z up).

    Args:
        location: Camera position.
        extra_longitude: Longitude rendered beyond +-pi on each side (radians): the image then repeats that much of
            its other edge, the context a denoiser needs to keep the left/right seam continuous.
        name: Object and camera name.
    """
    cam = bpy.data.cameras.new(name)
    cam.type = "PANO"
    pano = _panorama_settings(cam)
    pano.panorama_type = "EQUIRECTANGULAR"
    bc.set_if_present(pano, latitude_min=-math.pi / 2, latitude_max=math.pi / 2,
                      longitude_min=-math.pi - extra_longitude, longitude_max=math.pi + extra_longitude)
    cam.clip_start, cam.clip_end = 0.01, 10 * GROUND_SIZE
    obj = bpy.data.objects.new(name, cam)
    bpy.context.scene.collection.objects.link(obj)
    obj.location = location
    obj.rotation_euler = CAMERA_ROTATION
    bpy.context.scene.camera = obj
    return obj


# --- materials --------------------------------------------------------------------------------------------------

def make_material(m: MaterialParams, name: str = "Material") -> Any:
    """A Principled BSDF material (multiscatter GGX) from :class:`MaterialParams`."""
    mat, nt, out = sc.new_material(name)
    bsdf = nt.nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.distribution = "MULTI_GGX"
    bc.set_principled(bsdf, base_color=m.color, roughness=m.roughness, metallic=m.metallic, transmission=0.0,
                      coat=0.0, sheen=0.0, subsurface=0.0, emission_strength=0.0)
    nt.links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    return mat


def _emission_material(temperature: float, strength: float, name: str) -> Any:
    """Emission of black-body colour (luminance 1 per unit strength) that Cycles samples on its front side."""
    mat, nt, out = sc.new_material(name)
    bb = nt.nodes.new("ShaderNodeBlackbody")
    bb.inputs["Temperature"].default_value = temperature
    em = nt.nodes.new("ShaderNodeEmission")
    em.inputs["Strength"].default_value = strength
    nt.links.new(bb.outputs["Color"], em.inputs["Color"])
    nt.links.new(em.outputs["Emission"], out.inputs["Surface"])
    bc.set_if_present(mat.cycles, emission_sampling="FRONT", sample_as_light=True)  # 4.0+ / 3.x
    return mat


# --- geometry ---------------------------------------------------------------------------------------------------

def _quad(bm: Any, corners: list[tuple[float, float, float]], normal: tuple[float, float, float]) -> Any:
    """A quad facing ``normal`` (the corner order is flipped if needed)."""
    face = bm.faces.new([bm.verts.new(c) for c in corners])
    face.normal_update()
    if sum(a * b for a, b in zip(face.normal, normal)) < 0:
        face.normal_flip()
    return face


def add_ground(material: Any, z: float = 0.0, center: tuple[float, float] = (0.0, 0.0), name: str = "Ground") -> Any:
    """A horizontal square of :data:`GROUND_SIZE` at height ``z`` (normal +Z)."""
    h = GROUND_SIZE / 2.0
    cx, cy = center

    def build(bm: Any) -> None:
        _quad(bm, [(cx - h, cy - h, z), (cx + h, cy - h, z), (cx + h, cy + h, z), (cx - h, cy + h, z)], (0, 0, 1))

    return sc.mesh_object(name, build, material)


def add_object(o: ObjectParams, name: str = "Object") -> Any:
    """A box, cylinder (32 sides, flat shaded) or smooth sphere scaled to ``o.size`` at ``o.location``."""
    import bmesh

    def build(bm: Any) -> None:
        if o.shape == "box":
            bmesh.ops.create_cube(bm, size=1.0)
        elif o.shape == "cylinder":
            bmesh.ops.create_cone(bm, cap_ends=True, cap_tris=False, segments=32, radius1=0.5, radius2=0.5,
                                  depth=1.0)
        else:
            bmesh.ops.create_uvsphere(bm, u_segments=48, v_segments=24, radius=0.5)

    obj = sc.mesh_object(name, build, make_material(o.material, f"{name}_mat"))
    if o.shape == "sphere":
        bc.set_smooth(obj.data)
    obj.location = o.location
    obj.scale = o.size
    obj.rotation_euler = (0.0, 0.0, o.rotation_z)
    return obj


def _wall_frame(wall: str, room: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(origin, tangent, outward normal, length)`` of a wall: points are origin + u * tangent + z * up."""
    sx, sy, _ = room
    if wall in ("+x", "-x"):
        sgn = 1.0 if wall == "+x" else -1.0
        return np.array([sgn * sx / 2, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]), np.array([sgn, 0.0, 0.0]), sy
    sgn = 1.0 if wall == "+y" else -1.0
    return np.array([0.0, sgn * sy / 2, 0.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, sgn, 0.0]), sx


def add_room(room: RoomParams, windows: tuple[WindowParams, ...] = (), name: str = "Room") -> list[Any]:
    """The room: four walls (with the window openings cut out), floor and ceiling, all facing inwards.

    Each wall is a grid of quads split at its opening's edges, minus the opening's cell, so a wall stays one
    connected surface; walls, floor and ceiling overlap by a few centimetres at the edges.
    """
    sx, sy, height = room.size
    e = _ROOM_OVERLAP
    by_wall = {w.wall: w for w in windows}

    def build_walls(bm: Any) -> None:
        for wall in ("+x", "-x", "+y", "-y"):
            origin, tangent, outward, length = _wall_frame(wall, room.size)
            us = [-length / 2 - e, length / 2 + e]
            zs = [-e, height + e]
            hole = None
            if wall in by_wall:
                w = by_wall[wall]
                us = [us[0], w.offset - w.width / 2, w.offset + w.width / 2, us[1]]
                zs = [zs[0], w.sill, w.sill + w.height, zs[1]]
                hole = (1, 1)
            verts = [[bm.verts.new(tuple(origin + u * tangent + np.array([0.0, 0.0, z]))) for z in zs] for u in us]
            for i in range(len(us) - 1):
                for j in range(len(zs) - 1):
                    if (i, j) == hole:
                        continue
                    face = bm.faces.new([verts[i][j], verts[i + 1][j], verts[i + 1][j + 1], verts[i][j + 1]])
                    face.normal_update()
                    if float(np.dot(face.normal, outward)) > 0:  # face inwards
                        face.normal_flip()

    def build_plane(z: float, normal: tuple[float, float, float]) -> Any:
        def build(bm: Any) -> None:
            hx, hy = sx / 2 + e, sy / 2 + e
            _quad(bm, [(-hx, -hy, z), (hx, -hy, z), (hx, hy, z), (-hx, hy, z)], normal)
        return build

    walls = sc.mesh_object(f"{name}_walls", build_walls, make_material(room.walls, f"{name}_walls_mat"))
    floor = sc.mesh_object(f"{name}_floor", build_plane(0.0, (0, 0, 1)), make_material(room.floor, f"{name}_floor_mat"))
    ceiling = sc.mesh_object(f"{name}_ceiling", build_plane(height, (0, 0, -1)),
                             make_material(room.ceiling, f"{name}_ceiling_mat"))
    return [walls, floor, ceiling]


def add_window_portal(window: WindowParams, room: tuple[float, float, float], name: str = "Portal") -> Any:
    """A Cycles light portal filling a window opening, facing into the room."""
    from mathutils import Matrix, Vector

    origin, tangent, outward, _ = _wall_frame(window.wall, room)
    centre = origin + window.offset * tangent + np.array([0.0, 0.0, window.sill + window.height / 2])
    light = bpy.data.lights.new(name, "AREA")
    light.shape = "RECTANGLE"
    light.size, light.size_y = window.height, window.width  # local x = up, local y along the wall
    light.cycles.is_portal = True
    obj = bpy.data.objects.new(name, light)
    bpy.context.scene.collection.objects.link(obj)
    up = np.array([0.0, 0.0, 1.0])
    x_axis, z_axis = up, outward  # the light shines along its local -Z: into the room
    y_axis = np.cross(z_axis, x_axis)
    rot = Matrix([list(x_axis), list(y_axis), list(z_axis)]).transposed()  # columns = local axes
    obj.matrix_world = Matrix.Translation(Vector(tuple(centre))) @ rot.to_4x4()
    return obj


def add_lamp(lamp: LampParams, housing: Any, name: str = "Lamp") -> Any:
    """A ceiling fixture: a thin box or disc whose underside emits ``lamp.power`` watts of black-body light.

    The underside's radiance (its pixel value seen by the camera, luminance) is ``power / (pi * area)``.
    """
    import bmesh

    depth = LAMP_DEPTH
    w, d = lamp.size

    def build(bm: Any) -> None:
        if lamp.shape == "panel":
            bmesh.ops.create_cube(bm, size=1.0, matrix=_scale_matrix(w, d, depth))
        else:
            bmesh.ops.create_cone(bm, cap_ends=True, cap_tris=False, segments=32, radius1=w / 2, radius2=w / 2,
                                  depth=depth)
        for face in bm.faces:
            face.normal_update()
            face.material_index = 1 if face.normal.z < -0.99 else 0

    strength = lamp.power / (math.pi * lamp.area)
    emitter = _emission_material(lamp.temperature, strength, f"{name}_emit")
    obj = sc.mesh_object(name, build, housing, emitter)
    x, y, z = lamp.location
    obj.location = (x, y, z + depth / 2)  # the underside at lamp.location
    return obj


def _scale_matrix(sx: float, sy: float, sz: float) -> Any:
    from mathutils import Matrix

    return Matrix.Diagonal((sx, sy, sz, 1.0))


# --- the scene and the render -----------------------------------------------------------------------------------

def world_sampling_method(params: SynthParams) -> str:
    """``NONE`` where world light can reach no surface (sky only, or a closed room), else ``MANUAL``."""
    return "NONE" if params.sky_only or not params.world_visible else "MANUAL"


def seam_pad(width: int, denoiser: str | None) -> int:
    """Columns rendered beyond each side of the panorama: enough context for the denoiser, none without one."""
    return 0 if denoiser is None else min(max(8, round(width * SEAM_PAD_FRACTION)), width // 2)


def synth_render_settings(params: SynthParams, width: int = 512, samples: int = 32, threads: int = 0,
                          denoiser: str | None = None) -> RenderSettings:
    """The render settings of one panorama: ``width x width/2`` (plus :func:`seam_pad` columns on each side when
    denoising), one seed per ``(seed, index)``."""
    seed = (int(params.seed) * 1_000_003 + int(params.index)) % (2**31 - 1)
    pad = seam_pad(width, denoiser)
    return RenderSettings(resolution=(int(width) + 2 * pad, int(width) // 2), samples=int(samples), seed=seed,
                          denoiser=denoiser, threads=int(threads), caustics_reflective=False,
                          caustics_refractive=False, world_sampling_method=world_sampling_method(params),
                          world_map_resolution=WORLD_MAP_RESOLUTION)


def build_synth_scene(params: SynthParams, settings: RenderSettings | None = None, pad: int = 0) -> dict[str, Any]:
    """Reset Blender to factory settings and build the scene of ``params``.

    Args:
        params: The scene.
        settings: Render settings (:func:`synth_render_settings` if None); their width includes ``2 * pad``.
        pad: Columns rendered beyond each side of the 360 degrees (:func:`seam_pad`).

    Returns:
        Names of what was created: ``camera``, ``world``, ``objects`` (meshes) and ``lights`` (portals).
    """
    settings = settings or synth_render_settings(params)
    sc.reset_blender()
    scene = bpy.context.scene
    world = set_sky_world(params.sky)
    meshes, lights = [], []
    if params.room is not None:
        meshes += add_room(params.room, params.windows)
        housing = make_material(MaterialParams("diffuse", (0.8, 0.8, 0.8), 0.6), "lamp_housing")
        meshes += [add_lamp(lamp, housing, f"Lamp_{k}") for k, lamp in enumerate(params.lamps)]
        lights += [add_window_portal(w, params.room.size, f"Portal_{k}") for k, w in enumerate(params.windows)]
    if params.ground is not None:
        z = -_GROUND_BELOW_FLOOR if params.room is not None else 0.0
        meshes.append(add_ground(make_material(params.ground, "ground_mat"), z, params.camera[:2]))
    meshes += [add_object(o, f"Object_{k}") for k, o in enumerate(params.objects)]
    width = settings.resolution[0] - 2 * pad
    camera = add_pano_camera(params.camera, extra_longitude=2.0 * math.pi * pad / width)
    sc.apply_render_settings(settings, scene)
    bpy.context.view_layer.update()
    return {"camera": camera.name, "world": world.name, "objects": [m.name for m in meshes],
            "lights": [light.name for light in lights]}


def sun_pixel(direction: tuple[float, float, float], width: int, height: int) -> tuple[float, float]:
    """``(column, row)`` (continuous, rows top-down) of a direction in the equirectangular panorama."""
    x, y, z = direction
    col = (math.pi - math.atan2(y, x)) / (2.0 * math.pi) * width
    row = (math.pi / 2.0 - math.asin(max(-1.0, min(1.0, z)))) / math.pi * height
    return col % width, row


def sun_boxes(sky: SkyParams, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Pixel boxes ``(x0, x1, y0, y1)`` (end-exclusive, rows top-down) covering the sun disc and the pixel filter's
    reach: one box, or two when the disc straddles the left/right seam. Empty when the sky has no visible disc."""
    radius = sky.sun_size / 2.0
    if not sky.has_sun_disc or sky.sun_elevation < -radius:
        return []
    col, row = sun_pixel(sky.sun_direction, width, height)
    hy = radius / (math.pi / height) + _SUN_MARGIN_PX
    cos_el = math.cos(min(abs(sky.sun_elevation) + radius, math.pi / 2))  # columns narrow towards the poles
    hx = radius / (2.0 * math.pi / width * max(cos_el, 1e-6)) + _SUN_MARGIN_PX
    y0, y1 = max(0, math.floor(row - hy)), min(height, math.ceil(row + hy))
    if 2 * hx >= width:
        return [(0, width, y0, y1)]
    x0, x1 = math.floor(col - hx), math.ceil(col + hx)
    if x0 < 0:
        return [(0, x1, y0, y1), (width + x0, width, y0, y1)]
    if x1 > width:
        return [(x0, width, y0, y1), (0, x1 - width, y0, y1)]
    return [(x0, x1, y0, y1)]


def _sun_visible(params: SynthParams) -> bool:
    """Whether any of the disc's centre and 8 rim directions reaches the sky from the camera (``scene.ray_cast``)."""
    from mathutils import Vector

    sky = params.sky
    scene = bpy.context.scene
    depsgraph = bpy.context.evaluated_depsgraph_get()
    origin = Vector(params.camera)
    r = sky.sun_size / 2.0
    offsets = [(0.0, 0.0)] + [(r * math.cos(a), r * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 8, False)]
    for d_el, d_rot in offsets:
        el = sky.sun_elevation + d_el
        rot = sky.sun_rotation + d_rot / max(math.cos(sky.sun_elevation), 1e-3)
        if el < 0.0 and params.ground is not None:
            continue  # below the horizon: the ground hides it
        hit = scene.ray_cast(depsgraph, origin, Vector(sun_direction(el, rot)))[0]
        if not hit:
            return True
    return False


def render_sun_patches(params: SynthParams, width: int, pad: int = 0,
                       samples: int = SUN_REFINE_SAMPLES) -> list[tuple[int, int, np.ndarray]]:
    """Re-render the pixels around the sun disc with ``samples`` samples and no denoiser.

    At 512x256 the disc covers about half a pixel, so at 32 samples per pixel its energy (the irradiance it
    gives) varies by ~10 % from seed to seed, and a denoiser dims it; re-rendering the few pixels around it
    (a border render of the same camera, hence the same pixel grid) fixes both for about one extra scene sync.
    The current scene must be the one built for ``params`` with ``pad`` extra columns on each side.

    Returns:
        ``(x0, y0, patch)`` per :func:`sun_boxes` box, in the coordinates of the unpadded panorama: paste as
        ``img[y0:y0 + h, x0:x0 + w] = patch``. Empty when the sun is not visible from the camera.
    """
    scene = bpy.context.scene
    r, c = scene.render, scene.cycles
    full_width, height = r.resolution_x, r.resolution_y
    if full_width != width + 2 * pad:
        raise ValueError(f"the scene renders {full_width} columns, expected {width} + 2 x {pad}")
    boxes = sun_boxes(params.sky, width, height)
    if not boxes or not _sun_visible(params):
        return []
    saved = (r.use_border, r.use_crop_to_border, c.samples, c.use_denoising)
    patches = []
    try:
        r.use_border, r.use_crop_to_border = True, True
        c.samples, c.use_denoising = int(samples), False
        for x0, x1, y0, y1 in boxes:
            eps = 0.01  # Blender truncates border * size to whole pixels
            r.border_min_x, r.border_max_x = (x0 + pad + eps) / full_width, (x1 + pad + eps) / full_width
            r.border_min_y, r.border_max_y = (height - y1 + eps) / height, (height - y0 + eps) / height
            patch = render_current_scene_array()
            if patch.shape[:2] != (y1 - y0, x1 - x0):
                raise RuntimeError(f"the sun region render is {patch.shape[1]}x{patch.shape[0]}, expected "
                                   f"{x1 - x0}x{y1 - y0}")
            patches.append((x0, y0, patch))
    finally:
        r.use_border, r.use_crop_to_border, c.samples, c.use_denoising = saved
    return patches


def crop_seam(img: np.ndarray, pad: int) -> np.ndarray:
    """Crop a render with ``pad`` extra columns on each side to 360 degrees, feathering the seam.

    The padding holds a second, independent render of the columns at the other edge. Within ``pad`` columns of
    each edge the result fades from an even mix of the two renders at the edge to the main render alone, so the
    left and right edges are mixed from neighbouring pixels of the denoised image and meet without a step.
    """
    if pad == 0:
        return img
    width = img.shape[1] - 2 * pad
    if width < 2 * pad:
        raise ValueError(f"padding {pad} is too wide for a {width}-column panorama")
    out = img[:, pad:pad + width].copy()
    w = (0.5 * (1.0 - (np.arange(pad) + 0.5) / pad)).astype(np.float32)[None, :, None]
    out[:, :pad] = (1.0 - w) * out[:, :pad] + w * img[:, width + pad:]  # copy of columns 0 .. pad-1
    right = out[:, width - pad:][:, ::-1]  # columns width-1 down to width-pad
    copy = img[:, :pad][:, ::-1]  # their copies: padded columns pad-1 down to 0
    out[:, width - pad:] = ((1.0 - w) * right + w * copy)[:, ::-1]
    return out


def resolve_denoiser(params: SynthParams, denoiser: str | None = "auto") -> str | None:
    """The denoiser of a panorama: ``"auto"`` means OpenImageDenoise (when this Blender has it) for every scene with
    geometry, none for a sky-only panorama, whose only noise is the sun's (re-rendered anyway)."""
    if denoiser != "auto":
        return denoiser
    return "OPENIMAGEDENOISE" if not params.sky_only and "OPENIMAGEDENOISE" in bc.available_denoisers() else None


def render_synth(params: SynthParams, width: int = 512, samples: int = 32, threads: int = 0,
                 denoiser: str | None = "auto", sun_samples: int = SUN_REFINE_SAMPLES,
                 info: dict[str, Any] | None = None) -> np.ndarray:
    """Build and render one synthetic panorama.

    Args:
        params: The scene.
        width: Panorama width; the height is ``width // 2``.
        samples: Cycles samples per pixel.
        threads: CPU threads (0: all).
        denoiser: ``"auto"`` (:func:`resolve_denoiser`), None or ``"OPENIMAGEDENOISE"``.
        sun_samples: Samples per pixel of the sun region, re-rendered after the main render
            (:func:`render_sun_patches`);
            0 keeps the main render's sun.
        info: If given, filled with what the render used (``blender``, ``world_sampling``, ``cycles_seed``,
            ``denoiser_used``, ``seam_pad``, ``sun_refined_px``).

    Returns:
        float32 ``(width // 2) x width x 3`` linear RGB, read back from the EXR Cycles wrote.

    Raises:
        RuntimeError: The render is not finite.
    """
    denoiser = resolve_denoiser(params, denoiser)
    settings = synth_render_settings(params, width, samples, threads, denoiser)
    pad = seam_pad(width, denoiser)
    build_synth_scene(params, settings, pad)
    img = crop_seam(render_current_scene_array(), pad)
    refined = 0
    for x0, y0, patch in render_sun_patches(params, width, pad, sun_samples) if sun_samples > 0 else ():
        img[y0:y0 + patch.shape[0], x0:x0 + patch.shape[1]] = patch
        refined += patch.shape[0] * patch.shape[1]
    if not np.isfinite(img).all():
        raise RuntimeError(f"synthetic panorama {params.seed}/{params.index}: the render has non-finite values")
    if info is not None:
        info.update(blender=bpy.app.version_string, world_sampling=settings.world_sampling_method,
                    cycles_seed=settings.seed, denoiser_used=denoiser, seam_pad=pad, sun_refined_px=refined)
    return img


def main(argv: list[str] | None = None) -> int:
    """``python scenes/synth_panorama.py --n N --out DIR ...``: :func:`hdr_core.data.synth.main` rendering with
    :func:`render_synth`."""
    return synth.main(argv, renderer=render_synth, prog="python scenes/synth_panorama.py")


if __name__ == "__main__":
    sys.exit(main())
