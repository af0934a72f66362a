"""The README's main job on the embedded default: ``python -m hdr_core.demo --out out/demo``.

Takes one of the HDR panoramas that ship inside the ``bpy`` wheel (the public test set; default ``forest``),
makes an 8-bit LDR panorama from it with the virtual camera (fixed seed), and runs the data pipeline:
linearisation, HDR calibration (Eq. 1), segmentation labels (Eq. 6), the ceiling view (P2C) and the merge mask
(Eq. 8), writing every intermediate to ``--out``. Then, with the shipped model (``hdr_core/weights/<model>``),
it predicts the HDR and runs the render evaluation on that panorama: the four-ball scene lit by the LDR, a
classical operator (KOEO), the prediction and the ground truth, with ``eval/summary.md`` and
``eval/report.html``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from hdr_core.calibration import calibrate
from hdr_core.camera import virtual_camera
from hdr_core.color import display_encode, ldr_to_linear
from hdr_core.data.pairs import resize_pano
from hdr_core.data.sources import blender_hdri
from hdr_core.io import read_hdr, write_exr, write_ldr
from hdr_core.predict import DEFAULT_MODEL


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m hdr_core.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="out/demo", help="output folder")
    ap.add_argument("--scene", default="forest", help="Blender studio-light HDRI to use (default: forest)")
    ap.add_argument("--hdr", default=None, help="use this HDR panorama instead of a Blender one")
    ap.add_argument("--height", type=int, default=512, help="working height (panorama is height x 2*height)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=DEFAULT_MODEL, help="shipped model to predict with")
    ap.add_argument("--no-render", action="store_true", help="stop after the data pipeline")
    args = ap.parse_args(argv)

    import torch

    from hdr_core.masks import OVER, UNDER, merge_mask, segmentation_labels
    from hdr_core.projections import pano_to_ceiling

    t0 = time.time()
    try:
        src = Path(args.hdr) if args.hdr else blender_hdri(args.scene)
    except RuntimeError as e:
        raise SystemExit(f"error: {e} (pass --hdr FILE to use another panorama)") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hdr = resize_pano(read_hdr(src), args.height)
    ldr, params = virtual_camera(hdr, args.seed)
    lin = ldr_to_linear(ldr.astype(np.float32) / 255.0)
    hdr_cal = calibrate(hdr, lin).astype(np.float32)

    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]  # noqa: E731
    labels = segmentation_labels(to_t(hdr_cal))[0].numpy()
    mask = merge_mask(to_t(lin))[0, 0].numpy()
    ceiling = pano_to_ceiling(to_t(hdr_cal))[0].permute(1, 2, 0).numpy()

    write_ldr(out / "input_ldr.png", ldr.astype(np.float32) / 255.0)
    write_exr(out / "gt_hdr_calibrated.exr", hdr_cal)
    write_ldr(out / "gt_hdr_minus4ev.png", display_encode(hdr_cal, -4.0))
    write_exr(out / "gt_ceiling.exr", ceiling)
    write_ldr(out / "gt_ceiling_minus4ev.png", display_encode(ceiling, -4.0))
    seg = np.zeros(ldr.shape, np.float32)
    seg[..., 0], seg[..., 1], seg[..., 2] = labels == OVER, labels == 1, labels == UNDER
    write_ldr(out / "labels_over_correct_under.png", seg)
    write_ldr(out / "merge_mask.png", np.repeat(mask[..., None], 3, -1))

    summary = {
        "source": str(src),
        "size": f"{hdr.shape[1]}x{hdr.shape[0]}",
        "camera": params.to_dict(),
        "hdr_peak_calibrated": float(hdr_cal.max()),
        "dynamic_range_stops": float(np.log2(hdr_cal.max() / max(float(np.percentile(hdr_cal, 1)), 1e-8))),
        "label_fractions": {"over": float((labels == OVER).mean()), "correct": float((labels == 1).mean()),
                            "under": float((labels == UNDER).mean())},
        "merge_mask_mean": float(mask.mean()),
        "seconds": round(time.time() - t0, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    if not args.no_render:
        summary["eval"] = evaluate(out, src.stem, hdr, ldr, args.model)
    print(f"wrote {out}/", file=sys.stderr)
    return summary


def evaluate(out: Path, name: str, hdr: np.ndarray, ldr: np.ndarray, model: str) -> str | None:
    """Predict with the shipped model and render/score LDR, KOEO, prediction and GT (render_eval)."""
    from hdr_core.predict import WEIGHTS_DIR

    if not (WEIGHTS_DIR / model / "model.json").is_file():
        print(f"no shipped weights for {model} in {WEIGHTS_DIR}: skipping prediction and rendering", file=sys.stderr)
        return None
    from render_eval.__main__ import main as render_eval

    gt_dir, ldr_dir = out / "eval_inputs" / "gt", out / "eval_inputs" / "ldr"
    gt_dir.mkdir(parents=True, exist_ok=True)
    ldr_dir.mkdir(parents=True, exist_ok=True)
    write_exr(gt_dir / f"{name}.exr", hdr)
    write_ldr(ldr_dir / f"{name}.png", ldr.astype(np.float32) / 255.0)
    code = render_eval(["--gt", str(gt_dir), "--ldr", str(ldr_dir), "--method", "gt", "--method", "ldr",
                        "--method", "koeo", "--method", f"{model}=model", "--out", str(out / "eval")])
    if code:
        raise SystemExit(f"render evaluation failed (exit {code}); see {out / 'eval'}")
    return str(out / "eval" / "summary.md")


if __name__ == "__main__":
    main()
