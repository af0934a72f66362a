"""Build the four-ball evaluation scene with the default settings and save it as a ``.blend``.

Usage (from the repository root)::

    python scenes/four_balls.py --out scenes/four_balls.blend
    blender -b --factory-startup --python scenes/four_balls.py -- --out scenes/four_balls.blend

Options: ``--hdri PATH`` (world panorama; default: Blender's bundled ``forest.exr`` if found), ``--rotation DEG``
(world rotation about Z), ``--settings JSON`` (a :meth:`RenderSettings.to_dict` file overriding the defaults) and
``--render OUT.exr`` (also render the scene; writes the linear EXR, plus a display PNG next to it when the project's
``hdr_core.io`` can be imported). The scene itself is deterministic: see ``scenes/README.md`` and
``render_eval/settings.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
# Keep the first `import bpy` (bpy module) from writing to the user's Blender config. No effect inside a Blender
# binary, which has started already: run it with --factory-startup and this variable set.
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender-user-"))


def _argv() -> list[str]:
    """Script arguments: after ``--`` inside Blender, else ``sys.argv[1:]``."""
    return sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]


def default_hdri() -> str | None:
    """Blender's bundled ``studiolights/world/forest.exr``, if this Blender has it."""
    import bpy

    folder = bpy.utils.system_resource("DATAFILES", path=os.path.join("studiolights", "world"))  # folders only
    path = os.path.join(folder, "forest.exr") if folder else ""
    return path if os.path.isfile(path) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the .blend file to write")
    parser.add_argument("--hdri", help="world panorama (EXR/HDR); default: Blender's forest.exr")
    parser.add_argument("--rotation", type=float, default=None, help="world rotation about Z, degrees")
    parser.add_argument("--settings", help="JSON file of RenderSettings overrides")
    parser.add_argument("--render", metavar="OUT.exr", help="also render to this EXR (and a PNG next to it)")
    args = parser.parse_args(_argv() if argv is None else argv)

    import bpy

    from render_eval.scene import build_four_ball_scene, save_blend, set_world_hdr
    from render_eval.settings import RenderSettings

    settings = RenderSettings()
    if args.settings:
        with open(args.settings) as f:
            settings = RenderSettings.from_dict({**settings.to_dict(), **json.load(f)})
    if args.rotation is not None:
        settings = settings.replace(world_rotation_deg=args.rotation)
    names = build_four_ball_scene(settings)
    hdri = args.hdri or default_hdri()
    if hdri:
        set_world_hdr(hdri, settings)
    else:
        print("four_balls: no --hdri and no bundled forest.exr: the world has no image", file=sys.stderr)
    out = save_blend(args.out)
    print(f"four_balls: Blender {bpy.app.version_string}, settings {settings.digest()[:12]}, world {hdri}")
    print(f"four_balls: {', '.join(names['balls'])} + {names['plane']} + {names['camera']} -> {out}")
    if args.render:
        from render_eval.render import render_to_file

        if not hdri:
            parser.error("--render needs --hdri (no bundled forest.exr found)")

        exr = render_to_file(hdri, settings, args.render)
        print(f"four_balls: rendered {exr}")
        try:
            from hdr_core.io import read_hdr, write_ldr
            from render_eval.display import display_encode
        except ImportError as e:  # e.g. a Blender binary without numpy/OpenCV/OpenEXR
            print(f"four_balls: no display PNG ({e})", file=sys.stderr)
        else:
            png = os.path.splitext(exr)[0] + ".png"
            write_ldr(png, display_encode(read_hdr(exr)))
            print(f"four_balls: wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
