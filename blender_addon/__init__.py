"""LANet HDR Environment: one button turns an LDR 360° photo into a calibrated HDR world.

Blender extension (``blender_manifest.toml``, Blender >= 4.2) that also loads as a legacy add-on (``bl_info``)
wherever ``onnxruntime`` and ``hdr_core`` are importable. Registration imports only ``bpy`` and this package's UI
modules; ONNX Runtime and ``hdr_core`` are imported when the operator first runs.
"""

import importlib
import sys

import bpy

from . import operators, panels, preferences, properties

bl_info = {
    "name": "LANet HDR Environment",
    "author": "lanet-hdr project",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "3D Viewport > Sidebar > HDR; Properties > World; File > Import",
    "description": "Light the scene with a calibrated HDR reconstructed from an LDR 360° panorama",
    "category": "Lighting",
}

_SUBMODULES = ("imaging", "sun", "engine", "preferences", "properties", "images", "world", "operators", "panels")
if "_LOADED" in globals():  # "Reload Scripts" re-runs this file: reload the submodules too, in dependency order
    for _name in _SUBMODULES:
        if f"{__name__}.{_name}" in sys.modules:
            importlib.reload(sys.modules[f"{__name__}.{_name}"])
_LOADED = True

classes = (
    preferences.LANETHDR_AddonPreferences,
    properties.LANETHDR_PG_settings,
    operators.WORLD_OT_make_hdr_environment,
    operators.WORLD_OT_lanet_hdr_select_panorama,
    panels.VIEW3D_PT_lanet_hdr,
    panels.WORLD_PT_lanet_hdr,
)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.lanet_hdr = bpy.props.PointerProperty(type=properties.LANETHDR_PG_settings)
    bpy.types.TOPBAR_MT_file_import.append(panels.menu_import)


def unregister():
    bpy.types.TOPBAR_MT_file_import.remove(panels.menu_import)
    del bpy.types.Scene.lanet_hdr
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
