"""UI: 3D Viewport > Sidebar > HDR, Properties > World, and File > Import (so F3 menu search finds it)."""

from __future__ import annotations

import os

import bpy

from .operators import WORLD_OT_lanet_hdr_select_panorama, WORLD_OT_make_hdr_environment
from .properties import get_settings


def draw_settings(layout: bpy.types.UILayout, context) -> None:
    settings = get_settings(context)
    if settings is None:
        return
    layout.use_property_split = False
    col = layout.column(align=True)
    col.label(text="LDR Panorama")
    row = col.row(align=True)
    row.prop(settings, "filepath", text="")
    row.operator(WORLD_OT_lanet_hdr_select_panorama.bl_idname, text="", icon="FILEBROWSER")
    if not settings.filepath:
        from .world import environment_image_path

        current = environment_image_path(context.scene.world)
        col.label(text=f"World image: {os.path.basename(current)}" if current else "No panorama chosen",
                  icon="IMAGE_DATA" if current else "INFO")
    col = layout.column()
    col.use_property_split = True
    col.use_property_decorate = False
    col.prop(settings, "model")
    col.prop(settings, "resolution")
    col.prop(settings, "exposure_boost")
    col.prop(settings, "rotation")
    col.prop(settings, "extract_sun")
    layout.operator(WORLD_OT_make_hdr_environment.bl_idname, icon="WORLD")


class VIEW3D_PT_lanet_hdr(bpy.types.Panel):
    bl_label = "HDR Environment"
    bl_idname = "VIEW3D_PT_lanet_hdr"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HDR"

    @classmethod
    def poll(cls, context):
        return context.scene is not None

    def draw(self, context):
        draw_settings(self.layout, context)


class WORLD_PT_lanet_hdr(bpy.types.Panel):
    bl_label = "HDR from LDR Panorama"
    bl_idname = "WORLD_PT_lanet_hdr"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "world"

    @classmethod
    def poll(cls, context):
        return context.scene is not None

    def draw(self, context):
        draw_settings(self.layout, context)


def menu_import(self, context):
    op = self.layout.operator(WORLD_OT_lanet_hdr_select_panorama.bl_idname,
                              text="LDR Panorama as HDR Environment", icon="WORLD")
    op.run = True
