"""The before/after picture of ``blender_addon/README.md``, rendered headless with bpy (Cycles, CPU).

    .venv/bin/python scripts/addon_pictures.py --out docs/addon_before_after.jpg

A small scene (a white sphere, a glossy sphere and a box on a grey floor) lit twice, same camera, samples and seed:
by the LDR photo itself as the world (*before*: what a user gets by using the JPEG directly) and by the world the
add-on makes from it (*after*: ``world.make_hdr_environment``, shipped model). The photo is made from Blender's
``sunrise`` studio HDRI by the virtual camera (fixed seed, sun clipped), as in ``benchmarks/bench_large_photos.py``.
The add-on's panel cannot be pictured this way: background bpy draws no user interface.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_scene(bpy) -> None:
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    scene = bpy.context.scene

    def material(name, color, roughness, metallic=0.0):
        mat = bpy.data.materials.new(name)
        if mat.node_tree is None:  # Blender < 5.0 creates node trees on demand
            mat.use_nodes = True
        bsdf = mat.node_tree.nodes["Principled BSDF"]
        bsdf.inputs["Base Color"].default_value = (*color, 1.0)
        bsdf.inputs["Roughness"].default_value = roughness
        bsdf.inputs["Metallic"].default_value = metallic
        return mat

    bpy.ops.mesh.primitive_plane_add(size=12)
    bpy.context.object.data.materials.append(material("floor", (0.5, 0.5, 0.5), 0.8))
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.8, location=(-1.0, 0.0, 0.8))
    bpy.ops.object.shade_smooth()
    bpy.context.object.data.materials.append(material("white", (0.8, 0.8, 0.8), 0.6))
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.8, location=(1.0, -0.4, 0.8))
    bpy.ops.object.shade_smooth()
    bpy.context.object.data.materials.append(material("chrome", (0.9, 0.9, 0.9), 0.08, 1.0))
    bpy.ops.mesh.primitive_cube_add(size=0.9, location=(0.2, 1.4, 0.45), rotation=(0, 0, 0.5))
    bpy.context.object.data.materials.append(material("box", (0.7, 0.3, 0.2), 0.5))
    cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    scene.collection.objects.link(cam)
    cam.location = (6.5, -6.0, 3.2)
    from mathutils import Vector

    cam.rotation_euler = (Vector((0, 0.2, 0.7)) - cam.location).to_track_quat("-Z", "Y").to_euler()
    scene.camera = cam
    scene.render.engine = "CYCLES"
    scene.cycles.device, scene.cycles.samples, scene.cycles.seed = "CPU", 64, 0
    scene.cycles.use_denoising = True
    scene.render.resolution_x, scene.render.resolution_y = 480, 300
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "PNG"


def ldr_world(bpy, photo: str):
    world = bpy.data.worlds.new("LDR photo")
    if world.node_tree is None:
        world.use_nodes = True
    nt = world.node_tree
    env = nt.nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(photo)
    bg = next(n for n in nt.nodes if n.bl_idname == "ShaderNodeBackground")
    nt.links.new(env.outputs["Color"], bg.inputs["Color"])
    return world


def render(bpy, path: str):
    import numpy as np

    bpy.context.scene.render.filepath = path
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(path)
    w, h = img.size
    px = np.array(img.pixels[:], np.float32).reshape(h, w, 4)[::-1, :, :3]
    bpy.data.images.remove(img)
    return px


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "addon_before_after.jpg"))
    args = ap.parse_args(argv)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender-user-"))
    import bpy
    import cv2
    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_large_photos import make_photo

    with tempfile.TemporaryDirectory(prefix="lanet-pictures-") as tmp:
        photo = str(make_photo(Path(tmp) / "sunrise.jpg", 2048, hdri="sunrise"))
        make_scene(bpy)
        import addon_utils

        addon_utils.enable("blender_addon", default_set=True)
        bpy.context.preferences.addons["blender_addon"].preferences.output_dir = tmp
        bpy.context.scene.world = ldr_world(bpy, photo)
        before = render(bpy, os.path.join(tmp, "before.png"))
        assert bpy.ops.world.make_hdr_environment(filepath=photo) == {"FINISHED"}
        after = render(bpy, os.path.join(tmp, "after.png"))
        pano = cv2.imread(photo)[..., ::-1].astype(np.float32) / 255
    h, w = before.shape[:2]
    pano = cv2.resize(pano, (2 * w, w), interpolation=cv2.INTER_AREA)
    top = np.concatenate([before, np.ones((h, 8, 3), np.float32), after], axis=1)
    canvas = np.ones((h + 8 + pano.shape[0] // 2, top.shape[1], 3), np.float32)
    canvas[:h] = top
    strip = cv2.resize(pano, (top.shape[1], pano.shape[0] // 2), interpolation=cv2.INTER_AREA)
    canvas[h + 8:] = strip
    img = np.clip(np.round(canvas * 255), 0, 255).astype(np.uint8)[..., ::-1].copy()
    for text, x, y in (("before: the JPEG as the world", 10, 24), ("after: Make HDR Environment", w + 18, 24),
                       ("the 360 photo (LDR JPEG)", 10, h + 30)):
        cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.imwrite(args.out, img, [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(args.out)
    sys.stdout.flush()
    os._exit(0)  # bpy 4.2/4.5 crash at interpreter exit


if __name__ == "__main__":
    main()
