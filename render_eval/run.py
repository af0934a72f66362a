"""Run render_eval inside a Blender binary: ``blender -b --python render_eval/run.py -- ARGS``.

ARGS are those of ``python -m render_eval``. Blender's Python must be able to import this project's
dependencies: with a Blender whose Python has the project venv's minor version (3.11: Blender 4.2-5.0, and
Debian 12's Blender 3.4, which runs the system Python 3.11), the venv's site-packages are found automatically
when ``.venv/`` exists in the repo; elsewhere set ``RENDER_EVAL_SITE=/path/to/site-packages``. Inside a Blender
binary EXR files are read and written with OpenCV's codec (see :mod:`hdr_core.io`). The exit status is
``python -m render_eval``'s.

Checked with Debian 12's Blender 3.4.1 (``apt-get install blender``): ``tests/test_render_eval_cli.py``
runs a tiny benchmark through it when a ``blender`` binary is on the PATH.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
site = os.environ.get("RENDER_EVAL_SITE") or next(
    (str(p) for p in sorted(ROOT.glob(f".venv/lib/python{sys.version_info.major}.{sys.version_info.minor}/"
                                      "site-packages"))), None)
if site and site not in sys.path:
    # Before the system's dist-packages (a Linux distribution's Blender may see an older numpy there); Blender's
    # own bpy/mathutils are built in and already imported, so the venv's bpy wheel cannot shadow them.
    sys.path.insert(0, site)

from render_eval.__main__ import main  # noqa: E402

argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
code = main(argv)
sys.stdout.flush()
sys.stderr.flush()
# Leave without Blender's shutdown: Debian's Blender 3.4 segfaults while unloading add-ons after the venv's
# extension modules have been loaded (exit status 139 after a complete, correct run). Every output is written
# atomically before this point, so nothing is lost by skipping it; under plain Python this is a normal exit.
os._exit(int(code or 0))
