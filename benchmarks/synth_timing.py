"""Time the synthetic panorama generator (``hdr_core.data.synth``) on this machine.

    .venv/bin/python benchmarks/synth_timing.py --n 8 --width 512 --samples 32

Renders panoramas ``0 .. n-1`` of data set ``--seed`` exactly as the command line does (sun region re-rendered,
``--denoiser auto``), after one untimed warm-up render (the first Cycles render of a process loads its kernels),
and prints one row per panorama plus the mean per kind. ``--world-only R`` also times R sky-only renders with
world importance sampling ``NONE`` and ``MANUAL`` (the render call alone, scene built beforehand). The load average
is printed before and after: on a shared machine the numbers are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--world-only", type=int, default=2, metavar="R", help="sky-only NONE/MANUAL renders (0: skip)")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args(argv)

    import importlib.util

    from hdr_core.data.synth import _quiet_stdout, sample_params

    spec = importlib.util.spec_from_file_location("synth_panorama", ROOT / "scenes" / "synth_panorama.py")
    ss = importlib.util.module_from_spec(spec)  # the bpy scene builder (imports bpy)
    spec.loader.exec_module(ss)
    from render_eval.render import render_current_scene

    print(f"cpus {os.cpu_count()}, load average before: {_load()}")
    with _quiet_stdout():
        ss.render_synth(sample_params(args.seed, 0), width=64, samples=4)  # warm-up: kernels
    rows = []
    for i in range(args.n):
        p = sample_params(args.seed, i)
        info: dict = {}
        t0 = time.perf_counter()
        with _quiet_stdout():
            ss.render_synth(p, width=args.width, samples=args.samples, threads=args.threads, info=info)
        dt = time.perf_counter() - t0
        row = {"index": i, "kind": p.kind, "sky": p.sky.sky_type, "objects": len(p.objects), "lamps": len(p.lamps),
               "windows": len(p.windows), "sky_only": p.sky_only, "world_sampling": info["world_sampling"],
               "denoiser": info["denoiser_used"], "sun_px": info["sun_refined_px"], "seconds": round(dt, 2)}
        rows.append(row)
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    for kind in ("outdoor", "indoor"):
        secs = [r["seconds"] for r in rows if r["kind"] == kind]
        if secs:
            print(f"{kind}: n={len(secs)} mean {statistics.mean(secs):.1f} s, median {statistics.median(secs):.1f} s, "
                  f"min {min(secs):.1f} s, max {max(secs):.1f} s")
    if args.world_only:
        sky = next(q for q in (sample_params(args.seed, i, indoor_fraction=0.0) for i in range(100))
                   if q.sky.has_sun_disc and q.sky.sun_elevation > 0.1)
        sky = sky.replace(ground=None, objects=())
        out = os.path.join(ss.sc.temp_dir(), "world-only.exr")
        for method in ("NONE", "MANUAL"):
            times = []
            for rep in range(args.world_only):
                settings = ss.synth_render_settings(sky.replace(index=sky.index + rep), args.width, args.samples,
                                                    args.threads).replace(world_sampling_method=method)
                ss.build_synth_scene(sky, settings)
                t0 = time.perf_counter()
                with _quiet_stdout():
                    render_current_scene(out)
                times.append(time.perf_counter() - t0)
            print(f"world only ({sky.sky.sky_type}, sun at {math.degrees(sky.sky.sun_elevation):.0f} deg), "
                  f"{method}: " + ", ".join(f"{t:.2f}" for t in times) + " s per render")
    print(f"load average after: {_load()}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
