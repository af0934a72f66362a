"""The "HDR Environment" world and the Sun lamp.

Node graph: Texture Coordinate (Generated) -> Mapping (Point, Z rotation) -> Environment Texture
(equirectangular, the EXR) -> Background (strength 1.0) -> World Output. Strength stays 1.0: the HDR is
calibrated to the photo, so diffuse brightness matches the LDR and only the missing light is added.
"""

from __future__ import annotations

import math

import bpy

WORLD_NAME = "HDR Environment"
SUN_NAME = "HDR Sun"
#: Custom properties on worlds made by the add-on.
KEY_SOURCE, KEY_EXR, KEY_SUN, KEY_SUN_DIR = "lanet_hdr_source", "lanet_hdr_exr", "lanet_hdr_sun", "lanet_hdr_sun_dir"


def environment_image_path(world: bpy.types.World | None) -> str:
    """Absolute file path of the image of ``world``'s first Environment Texture node, or ``""``."""
    if world is None or world.node_tree is None:
        return ""
    for node in world.node_tree.nodes:
        if node.bl_idname == "ShaderNodeTexEnvironment" and node.image is not None and node.image.filepath:
            return bpy.path.abspath(node.image.filepath, library=node.image.library)
    return ""


def build_world(image: bpy.types.Image, rotation: float = 0.0, name: str = WORLD_NAME) -> bpy.types.World:
    """A new world lit by ``image`` (an equirectangular HDR), rotated by ``rotation`` radians about Z."""
    world = bpy.data.worlds.new(name)
    if world.node_tree is None:  # Blender < 5.0 creates node trees on demand
        world.use_nodes = True
    nt = world.node_tree
    nt.nodes.clear()
    coords = nt.nodes.new("ShaderNodeTexCoord")
    mapping = nt.nodes.new("ShaderNodeMapping")
    mapping.vector_type = "POINT"
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, rotation)
    env = nt.nodes.new("ShaderNodeTexEnvironment")
    env.image = image
    env.projection = "EQUIRECTANGULAR"
    env.interpolation = "Linear"
    background = nt.nodes.new("ShaderNodeBackground")
    background.inputs["Strength"].default_value = 1.0
    output = nt.nodes.new("ShaderNodeOutputWorld")
    for i, node in enumerate((coords, mapping, env, background, output)):
        node.location = (-900 + 260 * i, 300)
    nt.links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
    nt.links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    nt.links.new(env.outputs["Color"], background.inputs["Color"])
    nt.links.new(background.outputs["Background"], output.inputs["Surface"])
    return world


def sun_rotation(direction, rotation: float):
    """Euler rotation that points a Sun lamp's light (its local -Z) away from texture direction ``direction``."""
    from mathutils import Vector

    from .sun import world_direction

    return Vector(world_direction(direction, rotation)).to_track_quat("Z", "Y").to_euler()


def add_sun_lamp(scene: bpy.types.Scene, sun, rotation: float, name: str = SUN_NAME) -> bpy.types.Object:
    """Add a Sun lamp for ``sun`` (a :class:`.sun.Sun`) to ``scene``'s master collection."""
    from .sun import world_direction

    light = bpy.data.lights.new(name, "SUN")
    light.energy = sun.strength
    light.color = sun.color
    light.angle = min(max(sun.angle, 1e-4), math.pi)
    obj = bpy.data.objects.new(name, light)
    d = world_direction(sun.direction, rotation)
    obj.location = tuple(5.0 * v for v in d)
    obj.rotation_euler = sun_rotation(sun.direction, rotation)
    scene.collection.objects.link(obj)
    return obj


def set_rotation(scene: bpy.types.Scene, rotation: float) -> None:
    """Rotate ``scene``'s world (if the add-on made it) and its Sun lamp to ``rotation`` radians about Z."""
    world = scene.world if scene is not None else None
    if world is None or KEY_EXR not in world or world.node_tree is None:
        return
    for node in world.node_tree.nodes:
        if node.bl_idname == "ShaderNodeMapping":
            node.inputs["Rotation"].default_value[2] = rotation
    sun = bpy.data.objects.get(world.get(KEY_SUN, ""))
    if sun is not None and KEY_SUN_DIR in world:
        from .sun import world_direction

        d = tuple(world[KEY_SUN_DIR])
        sun.rotation_euler = sun_rotation(d, rotation)
        sun.location = tuple(5.0 * v for v in world_direction(d, rotation))
