"""The one place that knows about Blender versions (Debian's 3.4, 4.x, the ``bpy`` 5.0 wheel).

Everything version-dependent that the evaluation scene touches is resolved here, by looking at what the running
Blender actually offers (socket names, enum items, attributes) rather than by comparing version numbers where
possible:

* Principled BSDF input names: 3.x ``Transmission``, ``Specular``, ``Clearcoat``, ``Subsurface``, ``Sheen``,
  ``Emission`` became ``Transmission Weight``, ``Specular IOR Level``, ``Coat Weight``, ``Subsurface Weight``,
  ``Sheen Weight``, ``Emission Color`` in 4.0. :func:`set_principled` takes version-neutral keys.
* Mix Shader factor: ``Fac`` (<= 4.x) vs ``Factor`` (5.0).
* The linear colour-space name: ``Linear`` (3.x) vs ``Linear Rec.709`` (4.0+).
* Denoisers: Debian's 3.4 is built without OpenImageDenoise.
* ``use_nodes`` on materials/worlds: required before 5.0, deprecated in 5.0 (node trees always exist).
* Smooth shading: ``Mesh.shade_smooth()`` (4.1+) vs ``polygon.use_smooth`` (3.x).
* Cycles properties that only some versions have (light tree, path guiding): set only when present.

``bpy`` is imported inside the functions, so importing this module needs no Blender; calling them does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

__all__ = [
    "PRINCIPLED_INPUTS", "available_denoisers", "blender_version", "color_space_names", "ensure_node_tree",
    "input_name", "linear_color_space", "mix_factor_name", "principled_input", "set_cycles_cpu", "set_if_present",
    "set_principled", "set_smooth", "set_socket",
]

#: Version-neutral Principled BSDF keys -> socket names, newest first (the first one the node has is used).
PRINCIPLED_INPUTS: dict[str, tuple[str, ...]] = {
    "base_color": ("Base Color",),
    "metallic": ("Metallic",),
    "roughness": ("Roughness",),
    "ior": ("IOR",),
    "alpha": ("Alpha",),
    "transmission": ("Transmission Weight", "Transmission"),
    "specular": ("Specular IOR Level", "Specular"),
    "specular_tint": ("Specular Tint",),
    "coat": ("Coat Weight", "Clearcoat"),
    "coat_roughness": ("Coat Roughness", "Clearcoat Roughness"),
    "sheen": ("Sheen Weight", "Sheen"),
    "subsurface": ("Subsurface Weight", "Subsurface"),
    "emission_color": ("Emission Color", "Emission"),
    "emission_strength": ("Emission Strength",),
}
#: Mix Shader factor socket, newest first.
MIX_FACTOR_NAMES = ("Factor", "Fac")
#: Linear Rec.709 (scene linear) colour space, newest name first.
LINEAR_COLOR_SPACES = ("Linear Rec.709", "Linear")


def blender_version() -> tuple[int, int, int]:
    """The running Blender's version, e.g. ``(5, 0, 1)``."""
    import bpy

    return tuple(bpy.app.version)


def input_name(node: Any, candidates: Iterable[str]) -> str:
    """The first of ``candidates`` that is an input socket of ``node``.

    Raises:
        KeyError: ``node`` has none of them.
    """
    candidates = tuple(candidates)
    for name in candidates:
        if name in node.inputs:
            return name
    raise KeyError(f"{node.bl_idname} has none of the inputs {candidates} (Blender {_version_string()})")


def principled_input(node: Any, key: str) -> str:
    """The socket name of the version-neutral Principled BSDF ``key`` (see :data:`PRINCIPLED_INPUTS`) on ``node``."""
    if key not in PRINCIPLED_INPUTS:
        raise KeyError(f"unknown Principled BSDF key {key!r} (known: {', '.join(PRINCIPLED_INPUTS)})")
    return input_name(node, PRINCIPLED_INPUTS[key])


def mix_factor_name(node: Any) -> str:
    """The factor input name of a Mix Shader node (``Factor`` in 5.0, ``Fac`` before)."""
    return input_name(node, MIX_FACTOR_NAMES)


def set_socket(socket: Any, value: float | Iterable[float]) -> None:
    """Set a socket's default value: a float, or a colour given as a grey float, RGB or RGBA.

    A colour socket (4 components) gets alpha 1 when given a grey level or RGB.
    """
    n = len(socket.default_value) if hasattr(socket.default_value, "__len__") else 0
    if n == 0:
        socket.default_value = float(value)
        return
    vals = [float(value)] * 3 if isinstance(value, int | float) else [float(v) for v in value]
    if n == 4 and len(vals) == 3:
        vals.append(1.0)
    if len(vals) != n:
        raise ValueError(f"socket {socket.name!r} needs {n} values, got {len(vals)}")
    socket.default_value = vals


def set_principled(node: Any, **values: float | Iterable[float]) -> None:
    """Set Principled BSDF inputs by version-neutral key, e.g. ``set_principled(n, transmission=1.0, ior=1.45)``.

    Args:
        node: A ``ShaderNodeBsdfPrincipled``.
        **values: Keys of :data:`PRINCIPLED_INPUTS`; colours as a grey float, RGB or RGBA.
    """
    for key, value in values.items():
        set_socket(node.inputs[principled_input(node, key)], value)


def color_space_names() -> list[str]:
    """The colour-space names the running Blender's OpenColorIO config offers for images."""
    import bpy

    img = bpy.data.images.new("__render_eval_cs_probe__", 1, 1, float_buffer=True)
    try:
        prop = img.colorspace_settings.bl_rna.properties["name"]
        return [item.identifier for item in prop.enum_items]
    finally:
        bpy.data.images.remove(img)


@functools.cache
def linear_color_space() -> str:
    """The name of the linear Rec.709 (scene linear) colour space: ``Linear Rec.709`` (4.0+) or ``Linear``."""
    names = color_space_names()
    for name in LINEAR_COLOR_SPACES:
        if name in names:
            return name
    raise KeyError(f"no linear colour space among {names} (Blender {_version_string()})")


def available_denoisers() -> tuple[str, ...]:
    """Denoisers usable on the CPU in this build: ``("OPENIMAGEDENOISE",)``, or ``()`` (e.g. Debian's 3.4)."""
    import _cycles  # Cycles' C module, present whenever Cycles is

    return ("OPENIMAGEDENOISE",) if getattr(_cycles, "with_openimagedenoise", False) else ()


def ensure_node_tree(idblock: Any) -> Any:
    """Make sure a material or world has a node tree and return it (``use_nodes`` only before 5.0)."""
    import bpy

    if bpy.app.version < (5, 0, 0) or idblock.node_tree is None:
        idblock.use_nodes = True
    return idblock.node_tree


def set_smooth(mesh: Any) -> None:
    """Smooth-shade every face of ``mesh``."""
    if hasattr(mesh, "shade_smooth"):  # 4.1+
        mesh.shade_smooth()
    else:
        mesh.polygons.foreach_set("use_smooth", [True] * len(mesh.polygons))
        mesh.update()


def set_if_present(owner: Any, **values: Any) -> dict[str, Any]:
    """Set the given RNA properties on ``owner`` where they exist; return those that were set."""
    done = {}
    for name, value in values.items():
        if hasattr(owner, name):
            setattr(owner, name, value)
            done[name] = value
    return done


def set_cycles_cpu(scene: Any, threads: int = 0) -> None:
    """Render ``scene`` with Cycles on the CPU, with ``threads`` threads (0 = one per logical core).

    Only the scene is changed: the compute-device preferences (which would be written to the user's config) are
    left alone; with factory settings they select no GPU, and ``device = 'CPU'`` ignores them anyway.
    """
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.render.threads_mode = "FIXED" if threads > 0 else "AUTO"
    if threads > 0:
        scene.render.threads = int(threads)


def _version_string() -> str:
    try:
        import bpy

        return bpy.app.version_string
    except ImportError:  # pragma: no cover
        return "?"
