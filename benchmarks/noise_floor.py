"""Measure the seed-to-seed noise floor and the cost of render settings on a set of panoramas.

    .venv/bin/python benchmarks/noise_floor.py --hdr data/blender_test --variant default \\
        --variant 'oidn32={"samples": 32, "denoiser": "OPENIMAGEDENOISE"}' --md out/noise_floor.md

Each panorama is prepared exactly as ``python -m render_eval --from-hdr`` prepares its ground truth (virtual camera
LDR with the panorama's fixed seed, GT calibrated to it: :func:`render_eval.pipeline.prepare_item_arrays`), then
rendered twice per variant, with seeds 0 and 1, and the two renders are scored against each other with the
benchmark's own render metrics (PSNR / SSIM on display-encoded renders, MSE on the clipped display-referred linear
render, the unbounded linear MSE). A variant is ``NAME`` (``default`` = :class:`RenderSettings` as it is) or
``NAME=JSON`` with RenderSettings overrides. One untimed warm-up render comes first (the first Cycles render of a
process loads its kernels). Seconds are per render: wall time and the process's CPU time (all threads), plus the
load average before and after, since on a shared machine wall times are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def parse_variant(spec: str) -> tuple[str, dict]:
    name, _, js = spec.partition("=")
    return name, (json.loads(js) if js else {})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hdr", default="data/blender_test", help="folder of HDR panoramas (default: the public "
                    "test set, `python -m hdr_core.data fetch blender --out data/blender_test`)")
    ap.add_argument("--stems", help="comma-separated subset of panorama names")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME[=JSON]")
    ap.add_argument("--camera-seed", type=int, default=0, help="render_eval's --camera-seed")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--json", help="write every row to this file")
    ap.add_argument("--md", help="write the markdown table to this file")
    args = ap.parse_args(argv)

    import numpy as np

    from hdr_core.camera import virtual_camera
    from hdr_core.color import ldr_to_linear
    from hdr_core.io import read_hdr
    from render_eval.methods import HDR_SUFFIXES
    from render_eval.metrics import render_metrics
    from render_eval.pipeline import calibrate_to, camera_seed
    from render_eval.render import render_panorama
    from render_eval.settings import RenderSettings

    folder = Path(args.hdr)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in HDR_SUFFIXES)
    if args.stems:
        want = args.stems.split(",")
        files = [p for p in files if p.stem in want]
    if not files:
        ap.error(f"{folder}: no panoramas")
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = [parse_variant(v) for v in (args.variant or ["default"])]
    panos = {}
    for f in files:
        gt = read_hdr(f)
        ldr, _ = virtual_camera(gt, camera_seed(f.stem, args.camera_seed))
        panos[f.stem] = calibrate_to(gt, ldr_to_linear(ldr.astype(np.float32) / 255.0))
    print(f"load before: {_load()}", flush=True)
    render_panorama(panos[files[0].stem], RenderSettings().replace(resolution=(64, 36), samples=4))  # warm-up
    rows = []
    for name, over in variants:
        settings = RenderSettings().replace(**over)
        for stem, pano in panos.items():
            renders, walls, cpus = [], [], []
            for seed in seeds:
                t0, c0 = time.perf_counter(), time.process_time()
                renders.append(render_panorama(pano, settings, seed=seed))
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
            m = render_metrics(renders[1], renders[0], vdp=True)
            row = {"variant": name, "overrides": over, "stem": stem, **m, "wall_s": float(np.mean(walls)),
                   "cpu_s": float(np.mean(cpus)), "load": _load()}
            rows.append(row)
            print(f"{name:28s} {stem:10s} psnr {m['psnr']:6.2f} ssim {m['ssim']:.4f} "
                  f"mse {m['mse_1e3']:.4f} hdr-mse {m['mse_hdr_1e3']:.3g} jod {m['vdp_jod']:.3f} "
                  f"wall {row['wall_s']:5.1f} s cpu {row['cpu_s']:5.1f} s  load {row['load']}", flush=True)
    print(f"load after: {_load()}", flush=True)
    lines = ["| variant | settings | min PSNR (dB) | mean PSNR | min SSIM | mean SSIM | max MSE (1e-3) | "
             "min JOD | wall s/render | CPU s/render |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, over in variants:
        rs = [r for r in rows if r["variant"] == name]
        p, s = [r["psnr"] for r in rs], [r["ssim"] for r in rs]
        lines.append(f"| {name} | `{json.dumps(over) if over else 'defaults'}` | {min(p):.1f} | {np.mean(p):.1f} | "
                     f"{min(s):.3f} | {np.mean(s):.3f} | {max(r['mse_1e3'] for r in rs):.3f} | "
                     f"{min(r['vdp_jod'] for r in rs):.2f} | {np.mean([r['wall_s'] for r in rs]):.1f} | "
                     f"{np.mean([r['cpu_s'] for r in rs]):.1f} |")
    lines += ["", "| variant | " + " | ".join(panos) + " |", "|---|" + "---|" * len(panos)]
    for name, _ in variants:
        by = {r["stem"]: r for r in rows if r["variant"] == name}
        lines.append(f"| {name} | " + " | ".join(f"{by[s]['psnr']:.1f} / {by[s]['ssim']:.3f}" for s in panos) + " |")
    table = "\n".join(lines)
    print(table)
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(table + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
