"""Click-to-lit time and peak memory of the Blender add-on, and of ``hdr_core.predict``, on 4K and 8K JPEG photos.

    .venv/bin/python benchmarks/bench_large_photos.py [--sizes 4096 8192] [--runs 3] [--json out.json]

The photos are made here from Blender's ``forest`` HDRI (1024x512, shipped in the bpy wheel): photographed by
hdr_core's virtual camera (fixed seed), upsampled to the size, given a little sensor grain and saved as 8-bit JPEG
(quality 92), about what a 360 camera writes.

Each measurement runs in a fresh process with the shipped default model (``hdr_core.predict.DEFAULT_MODEL``) and
2 ONNX Runtime threads:

* ``addon``: bpy with the add-on enabled, one untimed warm-up run on a 1K copy of the photo (loads the model, as
  the first click of a session does), then the timed ``bpy.ops.world.make_hdr_environment`` on the photo: Blender
  reads the JPEG, the network runs, the full-resolution HDR is made, written as an EXR (half float unless
  ``--precision float``) and the new world is built and assigned. The modal UI runs the same steps in its worker
  thread and polls every 0.1 s, so a click takes at most one timer step more.
* ``predict``: ``hdr_core.predict``'s work (``Predictor.predict_file`` + ``write_exr``, what the CLI does per
  file: half floats with PIZ unless ``--precision FLOAT``), model loaded before the clock starts.

Peak memory is the process's peak resident set (``VmHWM``), reset (``/proc/self/clear_refs``) after the warm-up, so
it covers the timed run and everything the process already holds (Blender, the model). ``CPU`` is the process's
user + system time during the timed run (all threads): on a busy machine the wall time grows, this does not. The
load average is printed before and after: on a shared machine the times are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_CHILD_COMMON = r"""
import json, os, sys, time
sys.path.insert(0, {root!r})

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

import resource

def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def peak_gb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
"""

_ADDON_CHILD = _CHILD_COMMON + r"""
import bpy
import addon_utils
bpy.ops.wm.read_homefile(use_empty=False, use_factory_startup=True)
addon_utils.enable("blender_addon", default_set=True)
prefs = bpy.context.preferences.addons["blender_addon"].preferences
prefs.output_dir, prefs.threads, prefs.exr_precision = {out!r}, 2, {precision!r}
assert bpy.ops.world.make_hdr_environment(filepath={warm!r}, resolution="FULL") == {{"FINISHED"}}
reset_peak()
base = peak_gb()
t0, c0 = time.perf_counter(), cpu_s()
assert bpy.ops.world.make_hdr_environment(filepath={photo!r}, resolution={resolution!r}) == {{"FINISHED"}}
seconds, cpu = time.perf_counter() - t0, cpu_s() - c0
exr = bpy.context.scene.world["lanet_hdr_exr"]
print(json.dumps({{"seconds": seconds, "cpu_s": cpu, "peak_gb": peak_gb(), "base_gb": base,
                  "exr_mb": os.path.getsize(exr) / 2**20}}))
sys.stdout.flush()
os._exit(0)
"""

_PREDICT_CHILD = _CHILD_COMMON + r"""
from hdr_core.io import write_exr
from hdr_core.predict import Predictor
p = Predictor(threads=2)
reset_peak()
base = peak_gb()
t0, c0 = time.perf_counter(), cpu_s()
pred = p.predict_file({photo!r})
half = {precision!r} == "HALF"
write_exr(os.path.join({out!r}, "photo.exr"), pred.hdr, half=half, compression="piz" if half else "zip")
seconds, cpu = time.perf_counter() - t0, cpu_s() - c0
print(json.dumps({{"seconds": seconds, "cpu_s": cpu, "peak_gb": peak_gb(), "base_gb": base,
                  "exr_mb": os.path.getsize(os.path.join({out!r}, "photo.exr")) / 2**20}}))
"""


def make_photo(path: Path, width: int, seed: int = 0, hdri: str = "forest") -> Path:
    """An 8-bit JPEG panorama ``width x width/2`` from one of Blender's studio-light HDRIs (virtual camera,
    upsampled, grain)."""
    import cv2
    import numpy as np

    from hdr_core.camera import virtual_camera
    from hdr_core.data.sources import blender_studiolights_dir
    from hdr_core.io import read_hdr

    folder = blender_studiolights_dir()
    if folder is None:
        raise SystemExit("error: the bpy wheel is not installed (its forest.exr makes the photos)")
    ldr, _ = virtual_camera(read_hdr(folder / f"{hdri}.exr"), np.random.default_rng(seed), jpeg_quality=None)
    big = cv2.resize(ldr.astype(np.float32) / 255, (width, width // 2), interpolation=cv2.INTER_CUBIC)
    big += np.random.default_rng(seed).normal(0.0, 1.5 / 255, big.shape).astype(np.float32)
    img = np.clip(np.round(big * 255), 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def _run_child(code: str) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    env.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender-user-"))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    if res.returncode != 0:
        raise SystemExit(f"error: benchmark process failed ({res.returncode}):\n"
                         f"{res.stdout[-2000:]}{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192], help="photo widths")
    ap.add_argument("--runs", type=int, default=3, help="processes per case (the median is reported)")
    ap.add_argument("--precision", choices=["HALF", "FLOAT"], default="HALF")
    ap.add_argument("--cases", nargs="+", default=["addon-full", "addon-4k", "predict"],
                    choices=["addon-full", "addon-4k", "predict"],
                    help="addon-full: the add-on at the photo's resolution; addon-4k: at the default 4K setting; "
                         "predict: hdr_core.predict")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args(argv)
    print(f"load average before: {_load()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="lanet-bench-") as tmp:
        tmp = Path(tmp)
        warm = make_photo(tmp / "warm.jpg", 1024)
        for width in args.sizes:
            photo = make_photo(tmp / f"photo_{width}.jpg", width)
            for case in args.cases:
                if case == "addon-4k" and width <= 4096:
                    continue  # the same as addon-full
                results = []
                for i in range(args.runs):
                    out = tmp / f"out_{width}_{case}_{i}"
                    out.mkdir()
                    if case == "predict":
                        code = _PREDICT_CHILD.format(root=str(ROOT), photo=str(photo), out=str(out),
                                                     precision=args.precision)
                    else:
                        code = _ADDON_CHILD.format(root=str(ROOT), photo=str(photo), out=str(out), warm=str(warm),
                                                   precision=args.precision,
                                                   resolution="FULL" if case == "addon-full" else "4096")
                    results.append(_run_child(code))
                row = {"photo": f"{width}x{width // 2}", "case": case, "precision": args.precision,
                       "runs": len(results), **{k: statistics.median(r[k] for r in results) for k in results[0]},
                       "seconds_all": [round(r["seconds"], 2) for r in results]}
                rows.append(row)
                print(f"{row['photo']:>10} {case:>10} {row['seconds']:6.2f} s (runs {row['seconds_all']}; "
                      f"CPU {row['cpu_s']:.2f} s)  "
                      f"peak {row['peak_gb']:.2f} GB (before the run {row['base_gb']:.2f} GB)  "
                      f"EXR {row['exr_mb']:.0f} MB", flush=True)
    print(f"load average after: {_load()}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
