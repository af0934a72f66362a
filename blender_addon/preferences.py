"""Add-on preferences: model file, CPU threads, output folder, EXR precision."""

from __future__ import annotations

from types import SimpleNamespace

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

#: ``bl_idname`` of the preferences: the add-on's package (``blender_addon``, or ``bl_ext.<repo>.lanet_hdr``).
ADDON_ID = __package__

DEFAULTS = SimpleNamespace(model_path="", threads=0, output_dir="", exr_precision="HALF")


class LANETHDR_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    model_path: StringProperty(
        name="Model",
        description="An .onnx model exported by hdr_core (python -m hdr_core.export), or a folder holding "
                    "model.onnx. Empty: use the model shipped with the extension",
        subtype="FILE_PATH",
        default="",
    )
    threads: IntProperty(
        name="CPU Threads",
        description="Threads ONNX Runtime uses for the network (0 = automatic, one per physical core)",
        default=0, min=0, max=256,
    )
    output_dir: StringProperty(
        name="HDR Folder",
        description="Where the HDR EXR files are written ('//' = relative to the .blend). Empty: next to the "
                    ".blend file, or a temporary folder for unsaved files (the image is then packed)",
        subtype="DIR_PATH",
        default="",
    )
    exr_precision: EnumProperty(
        name="EXR Precision",
        description="Number format of the HDR files the world uses",
        items=(("HALF", "Half Float (16-bit)", "Half the size of 32-bit, 3 significant digits (plenty for lighting); "
                                               "values above 65504 are clipped"),
               ("FLOAT", "Float (32-bit)", "Exact values, twice the file size and memory")),
        default="HALF",
    )

    def draw(self, context):
        from . import engine

        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "model_path")
        if self.model_path:
            try:
                engine.find_model("PANOLANET", bpy.path.abspath(self.model_path))
            except engine.ModelNotFoundError as e:
                layout.label(text=str(e), icon="ERROR")
        else:
            found = engine.available_models()
            if found:
                layout.label(text="Shipped models: " + ", ".join(found), icon="CHECKMARK")
            else:
                col = layout.column(align=True)
                col.label(text="No model is shipped with this build.", icon="ERROR")
                col.label(text="Export one with: python -m hdr_core.export --weights CKPT -o model.onnx")
                col.label(text="and choose that model.onnx above (one-time step).")
        layout.prop(self, "threads")
        layout.prop(self, "output_dir")
        layout.prop(self, "exr_precision")


def get_prefs(context=None):
    """The add-on preferences, or :data:`DEFAULTS` when the add-on was registered without ``addon_utils``."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    prefs = getattr(addon, "preferences", None) if addon is not None else None
    return prefs if prefs is not None else DEFAULTS
