"""Install a built extension zip into a fresh Blender user folder and light a scene with it, in any ``bpy``.

    PYTHON_WITH_BPY scripts/addon_smoke.py dist/lanet_hdr-0.1.0-linux_x64.zip [--out DIR]

For Blender releases outside the `make test` matrix, e.g. bpy 5.3.0 in a Python 3.13 venv (``pip install
bpy==5.3.0``; nothing else is needed: the zip brings ONNX Runtime and hdr_core). It makes a 2048x1024 test
panorama with Blender itself (sky gradient, clipped sun; larger than the network's working size, so the
full-resolution step runs too), installs the zip with ``bpy.ops.extensions.package_install_files``, runs
``world.make_hdr_environment`` on it at full resolution and checks the new world, its EXR and that ONNX Runtime and
hdr_core came from the zip (one ONNX Runtime wheel installed: the one of this Python). Prints one JSON line; exit
code 1 on any failure. Needs only ``bpy`` (and its numpy).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile


def make_panorama(path: str, w: int = 2048) -> str:
    import bpy
    import numpy as np

    h = w // 2
    theta = (np.arange(h) + 0.5) / h * np.pi  # 0 at the top
    phi = (np.arange(w) + 0.5) / w * 2 * np.pi
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    sky = np.where((th < np.pi / 2)[..., None], [0.45, 0.55, 0.8], [0.3, 0.25, 0.2])
    sky = sky * (0.8 + 0.2 * np.cos(th))[..., None]
    sky[np.hypot(th - 0.9, ph - np.pi) < 0.08] = 1.0  # a clipped sun
    img = bpy.data.images.new("smoke_pano", w, h, alpha=True)
    rgba = np.ones((h, w, 4), np.float32)
    rgba[..., :3] = sky[::-1]
    img.pixels.foreach_set(rgba.ravel())
    img.filepath_raw, img.file_format = path, "PNG"
    img.save()
    bpy.data.images.remove(img)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("zip", help="the extension zip for this platform")
    ap.add_argument("--out", help="folder for the HDR files (default: a temporary folder)")
    args = ap.parse_args(argv)
    user = tempfile.mkdtemp(prefix="blender-user-")
    os.environ["BLENDER_USER_RESOURCES"] = user  # read when bpy is imported: a fresh, empty Blender user folder
    out = args.out or tempfile.mkdtemp(prefix="lanet-smoke-")
    import bpy

    info: dict = {"blender": bpy.app.version_string, "python": sys.version.split()[0]}
    try:
        photo = make_panorama(os.path.join(out, "smoke_pano.png"))
        assert bpy.ops.extensions.package_install_files(filepath=os.path.abspath(args.zip), repo="user_default",
                                                        enable_on_install=True) == {"FINISHED"}
        mod = sys.modules["bl_ext.user_default.lanet_hdr"]
        bpy.context.preferences.addons[mod.__name__].preferences.output_dir = out
        result = bpy.ops.world.make_hdr_environment(filepath=photo, resolution="FULL")
        import onnxruntime

        import hdr_core  # from the zip's lanet_hdr_core wheel

        world = bpy.context.scene.world
        site = glob.glob(os.path.join(user, "extensions", ".local", "lib", "*", "site-packages"))
        info.update(result=sorted(result), world=world.name, exr=os.path.basename(world["lanet_hdr_exr"]),
                    onnxruntime=onnxruntime.__version__,
                    wheels=sorted(os.path.basename(p) for s in site for p in glob.glob(s + "/onnxruntime-*")))
        assert result == {"FINISHED"} and world.name == "HDR Environment", info
        assert os.path.isfile(world["lanet_hdr_exr"]), info
        assert onnxruntime.__file__.startswith(user) and hdr_core.__file__.startswith(user), info
        assert len(info["wheels"]) == 1, info
        info["ok"] = True
    except Exception as e:  # noqa: BLE001  (reported as the JSON line)
        info.update(ok=False, error=f"{type(e).__name__}: {' '.join(str(e).split())[:500]}")
    print(json.dumps(info))
    sys.stdout.flush()
    os._exit(0 if info["ok"] else 1)  # bpy 4.2/4.5 crash at interpreter exit


if __name__ == "__main__":
    main()
