"""``python -m hdr_core.data fetch pmndrs|blender|polyhaven|open3d --out DIR``, ``python -m hdr_core.data manifest
DIR``, ``python -m hdr_core.data pack SOURCE... --out DIR [--height 256]`` (:mod:`hdr_core.data.pack`) and
``python -m hdr_core.data similar NEW... --against REF... [--blender]`` (:mod:`hdr_core.data.similarity`).

``fetch polyhaven`` takes ``--slugs a,b`` or ``--slugs-from MANIFEST`` (every ``polyhaven_slug`` in it) or ``--all``,
and ``--res`` (default 1k) and ``--format`` (hdr or exr); see :mod:`hdr_core.data.polyhaven`. ``fetch open3d`` takes
``--wheel FILE`` (an open3d-cpu 0.20.0 wheel already on disk; default: ``pip download`` it); see
:mod:`hdr_core.data.open3d`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from hdr_core.data.sources import blender_test_set, fetch_pmndrs, write_manifest


def _similar(args) -> None:
    from hdr_core.data.pairs import find_hdr_files
    from hdr_core.data.similarity import SAME_IMAGE, nearest

    refs = find_hdr_files(args.against) + (blender_test_set() if args.blender else [])
    new = find_hdr_files(args.new)
    if not new or not refs:
        raise ValueError("similar: give panoramas to check and some to compare them with (--against, --blender)")
    for f, best in nearest(new, refs + new, top=args.top):
        flag = "  SAME IMAGE?" if best and best[0][0] > SAME_IMAGE else ""
        print(f"{f}: " + ", ".join(f"{r} {s:.3f}" for s, r in best) + flag)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hdr_core.data", description="HDR panorama data sets")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="fetch a data set into a folder")
    f.add_argument("source", choices=["pmndrs", "blender", "polyhaven", "open3d"])
    f.add_argument("--out", required=True)
    ph = f.add_argument_group("polyhaven")
    which = ph.add_mutually_exclusive_group()
    which.add_argument("--slugs", default=None, help="comma-separated Poly Haven slugs")
    which.add_argument("--slugs-from", default=None, metavar="MANIFEST", help="every polyhaven_slug of a manifest")
    which.add_argument("--all", action="store_true", help="every HDRI on Poly Haven")
    ph.add_argument("--res", default="1k", help="resolution (1k, 2k, 4k, ...)")
    ph.add_argument("--format", default="hdr", choices=["hdr", "exr"])
    ph.add_argument("--api", default=None, help="API base URL (default https://api.polyhaven.com)")
    ph.add_argument("--delay", type=float, default=0.5, help="seconds between requests")
    ph.add_argument("--retries", type=int, default=4)
    ph.add_argument("--no-progress", action="store_true")
    f.add_argument_group("open3d").add_argument("--wheel", default=None, metavar="FILE",
                                                help="an open3d-cpu wheel already on disk (default: pip download it)")
    m = sub.add_parser("manifest", help="(re)write manifest.json for a folder of panoramas")
    m.add_argument("folder")
    m.add_argument("--source", default="user folder")
    m.add_argument("--licence", default="unknown")
    s = sub.add_parser("similar", help="the most similar known panoramas of each new one (copies, test scenes)")
    s.add_argument("new", nargs="+", help="folders (or files) of panoramas to check")
    s.add_argument("--against", nargs="*", default=[], help="folders (or files) of panoramas to compare with")
    s.add_argument("--blender", action="store_true", help="also compare with the public test set (installed bpy)")
    s.add_argument("--top", type=int, default=3)
    k = sub.add_parser("pack", help="a compact half-float EXR copy of what training may use (split rules applied)")
    k.add_argument("sources", nargs="+", help="folders (or files) of HDR panoramas")
    k.add_argument("--out", required=True)
    k.add_argument("--height", type=int, default=256, help="panorama height (width 2x)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "similar":
            _similar(args)
        elif args.cmd == "pack":
            from hdr_core.data.pack import pack_panoramas

            files = pack_panoramas(args.sources, args.out, args.height)
            size = sum(f.stat().st_size for f in files)
            print(f"{len(files)} panoramas, {size / 2**20:.1f} MiB in {args.out}")
        elif args.cmd == "manifest":
            print(write_manifest(args.folder, args.source, args.licence))
        elif args.source == "polyhaven":
            from hdr_core.data.polyhaven import API, fetch_polyhaven, slugs_from_manifest

            if args.slugs_from:
                slugs = slugs_from_manifest(args.slugs_from)
            elif args.slugs:
                slugs = [s.strip() for s in args.slugs.split(",") if s.strip()]
            elif not args.all:
                ap.error("fetch polyhaven: give --slugs, --slugs-from or --all")
            else:
                slugs = None
            for p in fetch_polyhaven(args.out, slugs, all_hdris=args.all, res=args.res, fmt=args.format,
                                     api=args.api or API, delay=args.delay, retries=args.retries,
                                     progress=not args.no_progress):
                print(p)
        elif args.source == "open3d":
            from hdr_core.data.open3d import fetch_open3d

            for p in fetch_open3d(args.out, wheel=args.wheel):
                print(p)
        elif args.source == "pmndrs":
            for p in fetch_pmndrs(args.out):
                print(p)
        else:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            for p in blender_test_set():
                shutil.copy2(p, out / p.name)
            print(write_manifest(out, "Blender 5.0 studio-light worlds (Poly Haven)", "CC0-1.0",
                                 split=lambda stem: "test"))
    except (RuntimeError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
