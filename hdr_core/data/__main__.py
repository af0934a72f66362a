"""``python -m hdr_core.data fetch pmndrs|blender --out DIR`` and ``python -m hdr_core.data manifest DIR``."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from hdr_core.data.sources import blender_test_set, fetch_pmndrs, write_manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hdr_core.data", description="HDR panorama data sets")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="fetch a data set into a folder")
    f.add_argument("source", choices=["pmndrs", "blender"])
    f.add_argument("--out", required=True)
    m = sub.add_parser("manifest", help="(re)write manifest.json for a folder of panoramas")
    m.add_argument("folder")
    m.add_argument("--source", default="user folder")
    m.add_argument("--licence", default="unknown")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "manifest":
            print(write_manifest(args.folder, args.source, args.licence))
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
