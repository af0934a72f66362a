"""Time every LDR style of :mod:`hdr_core.looks` on one panorama.

    .venv/bin/python benchmarks/bench_looks.py [--hdr PANORAMA.hdr] [--size 1024x512] [--repeats 5]

Without ``--hdr`` a synthetic panorama (sky, sun, textured ground) is used. Each style runs once untimed, then
``--repeats`` times with different seeds; the median and the ratio to the ``virtual`` style are printed (the ratio is
the number to trust on a shared machine: all styles are timed side by side, interleaved). The last row times an
inserted light (:func:`hdr_core.augment.insert_light`, the ``insert_light`` augmentation made before a pair's LDR),
interleaved the same way. The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic_panorama(h: int, w: int) -> np.ndarray:
    r = np.random.default_rng(0)
    th = (np.arange(h)[:, None] + 0.5) / h * np.pi
    ph = (np.arange(w)[None, :] + 0.5) / w * 2 * np.pi
    sky = np.stack(np.broadcast_arrays(0.4 + 0.3 * np.cos(th), 0.6 + 0.3 * np.cos(th), 1.0 + 0.2 * np.cos(th)), -1)
    ground = 0.15 * (1 + 0.5 * r.random((h, w, 1))) * np.array([0.8, 0.6, 0.4])
    img = np.where((th < np.pi / 2)[..., None], sky, ground)
    d = np.arccos(np.clip(np.sin(th) * np.sin(0.6) * np.cos(ph - 1.0) + np.cos(th) * np.cos(0.6), -1, 1))
    return (img + (d < 0.02)[..., None] * 5e4).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hdr", default=None)
    ap.add_argument("--size", default="1024x512")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    from hdr_core.augment import draw_inserted_light, insert_light
    from hdr_core.looks import LDR_STYLES, make_ldr
    from hdr_core.resize import resize_to

    w, h = (int(v) for v in args.size.split("x"))
    if args.hdr:
        from hdr_core.io import read_hdr

        hdr = resize_to(np.maximum(read_hdr(args.hdr), 0), h, w).astype(np.float32)
    else:
        hdr = synthetic_panorama(h, w)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {w}x{h}, "
          f"{args.hdr or 'synthetic panorama'}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}")
    light = "inserted light (augment)"
    times: dict[str, list[float]] = {s: [] for s in (*LDR_STYLES, light)}
    for s in LDR_STYLES:
        make_ldr(hdr, s, 0)
    insert_light(hdr, draw_inserted_light(np.random.default_rng(0), (0.3, 0.75)))
    for k in range(args.repeats):
        for s in LDR_STYLES:
            t = time.perf_counter()
            make_ldr(hdr, s, k + 1)
            times[s].append(time.perf_counter() - t)
        t = time.perf_counter()
        insert_light(hdr, draw_inserted_light(np.random.default_rng(k + 1), (0.3, 0.75)))
        times[light].append(time.perf_counter() - t)
    ref = statistics.median(times["virtual"])
    print("| style | median ms | x virtual |\n|---|---|---|")
    for s in times:
        m = statistics.median(times[s])
        print(f"| {s} | {1000 * m:.0f} | {m / ref:.1f} |")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
