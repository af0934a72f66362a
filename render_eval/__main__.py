"""``python -m render_eval``: the four-ball render evaluation (method.md §4, the paper's Table 4).

Predictions on disk::

    python -m render_eval --gt GT_DIR --ldr LDR_DIR --method NAME=PRED_DIR ... --out OUT

The whole benchmark from HDR panoramas alone (LDR inputs made by the virtual camera with a fixed seed; baselines
and hdr_core models run here)::

    python -m render_eval --from-hdr HDR_DIR --method gt --method ldr --method koeo \\
        --method panolanet_small=model:WEIGHTS --out OUT

Scale-out: ``--jobs N`` evaluates panoramas in N processes; ``--shard I/N`` (I from 0) evaluates every N-th
panorama, e.g. one per cluster array task, all writing the same ``--out`` (or separate ones), and
``python -m render_eval merge OUT [SHARD_OUT ...]`` writes the tables and report of the union. A killed run
resumes from its per-item results and render cache.

LDR styles (from-HDR mode): ``--ldr-style virtual,mdk08,...`` scores every method on the LDR inputs of each style
of :mod:`hdr_core.looks` (the paper's virtual camera, the display-adaptive TMO, phone-like looks): each style is a
complete benchmark in ``OUT/<style>/`` (one style: ``OUT`` itself), all sharing one render cache, and
``OUT/summary.md`` has one table set per style. ``--no-render`` computes only the panorama and light-accuracy tables
(no Blender; seconds for the whole set). The same arguments work inside Blender:
``blender -b --python render_eval/run.py -- ARGS``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

import yaml

from render_eval.methods import HDR_SUFFIXES, Method, parse_method
from render_eval.pipeline import (
    NOISE_FLOOR,
    Item,
    Options,
    camera_seed,
    discover,
    paired_differences,
    run,
    shard,
    summarize,
)
from render_eval.report import (
    ALL_METRICS,
    PAIRED_METRICS,
    read_results_csv,
    run_context,
    write_report,
    write_results_csv,
    write_styles_summary,
    write_summary,
)


def make_inputs(hdr_dir: Path, out: Path, base_seed: int, style: str = "virtual") -> tuple[Path, Path]:
    """From-HDR mode: write ``out/inputs/ldr/<stem>.png`` in LDR ``style`` (:func:`hdr_core.looks.make_ldr`; the
    default is the virtual camera) for every panorama in ``hdr_dir``, with the drawn parameters beside it."""
    import numpy as np

    from hdr_core.errors import ImageError
    from hdr_core.io import read_hdr, write_ldr
    from hdr_core.looks import make_ldr

    if not hdr_dir.is_dir():
        raise FileNotFoundError(f"{hdr_dir}: no such folder")
    ldr_dir = out / "inputs" / "ldr"
    ldr_dir.mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in hdr_dir.iterdir() if p.suffix.lower() in HDR_SUFFIXES):
        dest = ldr_dir / f"{f.stem}.png"
        if dest.exists():
            continue
        try:
            ldr, params = make_ldr(read_hdr(f), style, camera_seed(f.stem, base_seed))
        except (ImageError, ValueError) as e:
            print(f"skipped {e}", file=sys.stderr)
            continue
        write_ldr(dest, ldr.astype(np.float32) / 255.0)
        (ldr_dir / f"{f.stem}.camera.json").write_text(json.dumps(params, indent=1, default=float))
    return hdr_dir, ldr_dir


def settings_from_args(args) -> dict:
    from render_eval.settings import RenderSettings

    s = RenderSettings()
    over: dict = {}
    if args.resolution:
        w, h = (int(v) for v in args.resolution.lower().split("x"))
        over["resolution"] = (w, h)
    if args.samples is not None:
        over["samples"] = args.samples
    if args.seed is not None:
        over["seed"] = args.seed
    for kv in args.set or []:
        k, _, v = kv.partition("=")
        over[k] = yaml.safe_load(v)
    return s.replace(**over).to_dict() if over else s.to_dict()


def method_order(methods: list[Method]) -> list[str]:
    names = [m.name for m in methods]
    return (["gt"] if "gt" in names else []) + [NOISE_FLOOR] + [n for n in names if n != "gt"]


def finish(rows: list[dict], order: list[str], out: Path, context: dict, report: bool = True,
           paired_ref: str | None = None) -> dict:
    """Write results.csv, the summaries (and report.html); return what summary.json holds."""
    write_results_csv(rows, out / "results.csv")
    summary = summarize(rows, ALL_METRICS)
    paired = paired_differences(rows, paired_ref, PAIRED_METRICS) if paired_ref else []
    write_summary(summary, order, out, context, paired)
    if report:
        write_report(rows, summary, order, out, context, paired)
    result = {"order": order, "summary": summary, "paired": paired, "context": context}
    (out / "summary.json").write_text(json.dumps(result, indent=1, default=str))
    return result


def merge(out: Path, others: list[Path]) -> int:
    """Union of shard outputs: copy their per-item results and visuals into ``out``, then write the tables."""
    out.mkdir(parents=True, exist_ok=True)
    for o in others:
        for sub in ("items", "visuals", "predictions"):
            if (o / sub).is_dir():
                shutil.copytree(o / sub, out / sub, dirs_exist_ok=True)
    metas = [json.loads(p.read_text()) for p in [out / "run.json", *[o / "run.json" for o in others]] if p.is_file()]
    if not metas:
        print(f"error: no run.json in {out} or the shard folders", file=sys.stderr)
        return 2
    if len({json.dumps(m["settings"], sort_keys=True) for m in metas}) > 1:
        print("error: the shards used different render settings", file=sys.stderr)
        return 2
    rows = [json.loads(p.read_text()) for p in sorted((out / "items").glob("*/*.json"))]
    order = metas[0]["order"]
    for m in metas[1:]:
        order += [n for n in m["order"] if n not in order]
    finish(rows, order, out, {**run_context(metas[0]["settings"], " ".join(sys.argv)), "merged_from": len(others)},
           paired_ref=metas[0].get("paired_ref"))
    print(f"merged {len(rows)} results into {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m render_eval", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    src = ap.add_argument_group("inputs")
    src.add_argument("--gt", help="folder of ground-truth HDR panoramas (<stem>.exr|.hdr)")
    src.add_argument("--ldr", help="folder of the LDR inputs (<stem>.png|.jpg)")
    src.add_argument("--from-hdr", help="make the LDR inputs from these HDR panoramas with the virtual camera")
    src.add_argument("--camera-seed", type=int, default=0, help="base seed of the virtual camera (from-HDR mode)")
    src.add_argument("--ldr-style", default="virtual", metavar="NAME[,NAME...]",
                     help="from-HDR mode: LDR style(s) of hdr_core.looks to make the inputs in (default: virtual); "
                     "several: one benchmark per style in OUT/<style>/ and one table set per style in OUT/summary.md")
    src.add_argument("--method", action="append", default=[], metavar="SPEC",
                     help="NAME=DIR | baseline NAME (ldr, akyuz, masia, koeo) | NAME=model[:WEIGHTS] | gt")
    ap.add_argument("--out", required=True, help="output folder")
    r = ap.add_argument_group("rendering (defaults: render_eval.settings.RenderSettings)")
    r.add_argument("--resolution", help="WxH")
    r.add_argument("--samples", type=int)
    r.add_argument("--seed", type=int, help="render seed (GT and predictions share it)")
    r.add_argument("--set", action="append", metavar="FIELD=VALUE", help="any RenderSettings field")
    m = ap.add_argument_group("metrics")
    m.add_argument("--no-vdp", action="store_true", help="skip ColorVideoVDP (the slowest metric)")
    m.add_argument("--flip", action="store_true", help="also HDR-FLIP (slow on CPU)")
    m.add_argument("--no-noise-floor", action="store_true", help="skip the second-seed GT render")
    m.add_argument("--noise-floor-every-style", action="store_true", help="with several --ldr-style: the noise "
                   "floor row in every style (default: the first style only; it measures the render settings on the "
                   "ground truth, which the styles change only by its calibration scale)")
    m.add_argument("--no-render", action="store_true", help="no Blender: only the panorama and light-accuracy "
                   "tables (seconds for the whole set)")
    x = ap.add_argument_group("execution")
    x.add_argument("--jobs", type=int, default=1, help="worker processes")
    x.add_argument("--shard", help="I/N: evaluate only shard I (0-based) of N")
    x.add_argument("--threads", type=int, default=None, help="threads per process for predictors")
    x.add_argument("--model-size", metavar="WxH", help="working size of every hdr_core model (default: each model's "
                   "own; a panoLANet graph always runs at its fixed size)")
    x.add_argument("--no-report", action="store_true")
    x.add_argument("--paired-ref", metavar="NAME", help="also tabulate every method minus this one, panorama by "
                   "panorama (mean, 95 %% CI, wins): the sharper comparison on a shared test set")
    x.add_argument("--no-progress", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "merge":
        mp = argparse.ArgumentParser(prog="python -m render_eval merge")
        mp.add_argument("out")
        mp.add_argument("shards", nargs="*")
        a = mp.parse_args(argv[1:])
        return merge(Path(a.out), [Path(s) for s in a.shards])
    ap = build_parser()
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        ap.error(f"--out {out}: is a file, not a folder")
    try:
        methods = [parse_method(s) for s in args.method]
        if not methods:
            ap.error("give at least one --method")
        if len({m.name for m in methods}) != len(methods):
            ap.error("two --method entries share a name")
        if args.paired_ref and args.paired_ref not in {m.name for m in methods}:
            ap.error(f"--paired-ref {args.paired_ref}: not one of the --method names")
        styles = parse_styles(args.ldr_style)
        if not args.from_hdr and not (args.gt and args.ldr):
            ap.error("give --gt and --ldr, or --from-hdr")
        if not args.from_hdr and args.ldr_style != "virtual":
            ap.error("--ldr-style needs --from-hdr (with --gt/--ldr the LDR inputs are given)")
        settings = settings_from_args(args)
        model_size = None
        if args.model_size:
            from hdr_core.predict import parse_size

            model_size = parse_size(args.model_size)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.no_render:
        from render_eval.render import check_supported
        from render_eval.settings import RenderSettings

        try:
            check_supported(RenderSettings.from_dict(settings))
        except RuntimeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    order = method_order(methods)
    command = "python -m render_eval " + " ".join(shlex.quote(a) for a in argv)
    failed, per_style = [], {}
    for k, style in enumerate(styles if args.from_hdr else [None]):
        style_out = out / style if style is not None and len(styles) > 1 else out
        try:
            if args.from_hdr:
                gt_dir, ldr_dir = make_inputs(Path(args.from_hdr), style_out, args.camera_seed, style)
            else:
                gt_dir, ldr_dir = Path(args.gt), Path(args.ldr)
            items, problems = discover(gt_dir, ldr_dir)
            if args.shard:
                index, count = (int(v) for v in args.shard.split("/"))
                items = shard(items, index, count)
        except (ValueError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for p in problems:
            print(f"warning: {p['stem']}: {p['status']}", file=sys.stderr)
        style_out.mkdir(parents=True, exist_ok=True)
        (style_out / "run.json").write_text(json.dumps({"settings": settings, "order": order, "command": command,
                                                        "paired_ref": args.paired_ref, "ldr_style": style,
                                                        "methods": [m.__dict__ for m in methods]}, indent=1))
        opts = Options(out=style_out, settings=settings, vdp=not args.no_vdp, flip=args.flip,
                       noise_floor=not args.no_noise_floor and (k == 0 or args.noise_floor_every_style),
                       threads=args.threads, model_size=model_size, render=not args.no_render,
                       cache_dir=out / "cache")
        rows = run(items, methods, opts, jobs=args.jobs, progress=not args.no_progress)
        context = {**run_context(settings, command), "ldr_style": style}
        per_style[style] = finish(rows, order, style_out, context, report=not args.no_report,
                                  paired_ref=args.paired_ref)
        failed += [r for r in rows if r.get("status") != "ok"]
    if len(per_style) > 1:
        write_styles_summary(per_style, order, out, {**run_context(settings, command), "ldr_styles": styles},
                             report=not args.no_report)
    for r in failed:
        print(f"failed: {r['stem']} / {r['method']}: {r['status']}", file=sys.stderr)
    print((out / "summary.md").read_text())
    return 1 if failed else 0


def parse_styles(spec: str) -> list[str]:
    """``--ldr-style a,b``: the style names, checked against :data:`hdr_core.looks.LDR_STYLES`."""
    from hdr_core.looks import LDR_STYLES

    styles = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in styles if s not in LDR_STYLES]
    if not styles or bad or len(set(styles)) != len(styles):
        raise ValueError(f"--ldr-style {spec!r}: give distinct names among {', '.join(LDR_STYLES)}")
    return styles


__all__ = ["main", "Item", "read_results_csv"]

if __name__ == "__main__":
    sys.exit(main())
