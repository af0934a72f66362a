"""Scene settings shown in the panels (the operator falls back to them for options a caller did not set)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty

MODEL_ITEMS = (
    ("PANOLANET", "panoLANet", "Panorama network with a ceiling branch for the sky and lamps (recommended)"),
    ("LANET", "LANet", "Single-image network run on the whole panorama"),
)
RESOLUTION_ITEMS = (
    ("FULL", "Full", "Keep the panorama's resolution"),
    ("8192", "8K", "At most 8192 pixels wide"),
    ("4096", "4K", "At most 4096 pixels wide"),
    ("2048", "2K", "At most 2048 pixels wide"),
    ("1024", "1K", "At most 1024 pixels wide (fastest; enough for lighting)"),
)
#: Options shared by the scene settings and the operator.
OPTION_NAMES = ("filepath", "model", "resolution", "exposure_boost", "rotation", "extract_sun")


def _rotation_update(self, context):
    from . import world

    world.set_rotation(context.scene, self.rotation)


def option_props(operator: bool = False) -> dict:
    """The shared option properties: annotations for the settings PropertyGroup, or (``operator``) for the
    operator, where they are not remembered between calls (unset options then come from the scene settings)."""
    opts = {"options": {"SKIP_SAVE"}} if operator else {}
    update = {} if operator else {"update": _rotation_update}
    return {
        "model": EnumProperty(name="Model", items=MODEL_ITEMS, default="PANOLANET",
                              description="Network that reconstructs the HDR", **opts),
        "resolution": EnumProperty(name="Resolution", items=RESOLUTION_ITEMS, default="4096",
                                   description="Width of the HDR that is computed and saved (the network itself "
                                               "runs at its model's size; detail comes from the photo)", **opts),
        "exposure_boost": FloatProperty(
            name="Exposure Boost", default=1.0, min=0.25, max=4.0, soft_min=1.0, soft_max=3.0, precision=2,
            description="HDRCNN's gamma trick: expands the reconstructed highlights (1.0 = off)", **opts),
        "rotation": FloatProperty(name="Rotation", subtype="ANGLE", unit="ROTATION", default=0.0,
                                  description="Rotation of the environment about the vertical axis",
                                  **update, **opts),
        "extract_sun": BoolProperty(
            name="Extract Sun", default=False,
            description="Replace the brightest light in the HDR with a Sun lamp of the same direction, strength, "
                        "colour and size: crisp shadows, less noise", **opts),
    }


class LANETHDR_PG_settings(bpy.types.PropertyGroup):
    __annotations__ = {
        "filepath": StringProperty(
            name="Panorama", default="",
            description="LDR 360° panorama (equirectangular 2:1 JPEG/PNG, or a partial photo sphere with its "
                        "metadata). Empty: the image the world uses"),
        **option_props(),
    }


def get_settings(context):
    return getattr(context.scene, "lanet_hdr", None) if context.scene is not None else None
