"""Fit a trained model's highlight gain on the validation panoramas (beyond the paper; docs/models.md).

    .venv/bin/python scripts/fit_highlight_gain.py runs/RUN/model --config configs/real50_panolanet_w24_stage2.yaml

A network trained with log-domain losses predicts about the median of what a clipped sun or lamp may hold, while the
light a panorama casts is its energy; on panoramas it has not seen, its highlights come out too dark (on its own
training panoramas they do not, so no training loss sees the gap). ``hdr_core.masks.highlight_gain`` raises the
prediction by G stops where the input is saturated (nothing changes where Eq. 1 calibrates). This script runs the
model once over the validation pairs of ``--config`` (the same pairs as ``hdr_core.train``'s validation: every style,
``--eval-batches`` batches of ``batch_size``), applies every gain of ``--gains`` to the same outputs, prints per gain
the siMSE and light figures (means over the styles, then the irradiance error per style) and picks:

    the smallest gain whose mean irradiance error is within --tolerance stops (default 0.04, the run-to-run spread of
    the shipped recipe's irradiance error) of the lowest on the grid, among the gains whose mean siMSE is at most
    --max-simse-rise (default 5 %) above the model's own at gain 0.

The smallest such gain, not the lowest error: on seven validation panoramas the curve is flat near its minimum, and
a smaller gain risks less on panoramas unlike them. It also prints the irradiance error per validation panorama,
and per LDR style the gain the rule would choose without that style and what it does to it (how a gain fits an LDR
look it was not fitted on). ``--by-image`` also asks whether a gain chosen per image, from the LDR's mean or its
saturated fraction, would beat one gain (:func:`per_image_gains`). ``--json FILE`` writes every figure, and every
pair's irradiance error at each gain. The gain is not written into
the model: ``scripts/ship_model.py RUN/model NAME --highlight-gain G`` ships it. A model that already carries a gain
(the shipped weights) is refused, unless ``--without-gain`` scores its network without it (gain 0 is then the
network's own output, and the grid's row at the carried gain is the model as shipped).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_grid(text: str) -> list[float]:
    """``"0:3:0.25"`` (start:stop:step, stop included) or ``"0,1,1.5"``."""
    if ":" in text:
        start, stop, step = (float(v) for v in text.split(":"))
        if step <= 0 or stop < start:
            raise argparse.ArgumentTypeError(f"bad grid {text!r}: want START:STOP:STEP with STEP > 0")
        n = int(round((stop - start) / step))
        return [round(start + i * step, 10) for i in range(n + 1)]
    return [float(v) for v in text.split(",")]


def choose_gain(table: dict[float, dict[str, float]], tolerance: float, max_simse_rise: float) -> float:
    """The rule of the module docstring over ``{gain: {"si_mse": ..., "irr_err": ...}}`` (gain 0 must be there)."""
    if 0.0 not in table:
        raise ValueError("the grid must include gain 0 (the model's own siMSE is the reference)")
    allowed = [g for g, f in table.items() if f["si_mse"] <= table[0.0]["si_mse"] * (1.0 + max_simse_rise)]
    best = min(table[g]["irr_err"] for g in allowed)
    return min(g for g in allowed if table[g]["irr_err"] <= best + tolerance)


def evaluate_gains(model, val_sets: dict, gains: list[float], batch_size: int, names: list[str] = (),
                   pairs: list | None = None
                   ) -> tuple[dict[float, dict[str, float]], dict[float, dict[str, list[float]]]]:
    """Per gain: ``si_mse`` and every light figure of ``hdr_core.train`` validation, per style (``STYLE/KEY``) and
    as means over the styles (``KEY``; ``key_angle`` over the panoramas with a key light, as in training); and per
    gain and panorama (``names[scene]``) the irradiance errors of its pairs, all styles together. ``pairs`` (a
    list) gets one record per pair: style, panorama, the LDR's mean linear value, its saturated fraction (the mean
    of the gain's ramp) and the irradiance error at each gain."""
    import torch

    from hdr_core.losses import si_mse
    from hdr_core.masks import highlight_gain, saturation_ramp
    from hdr_core.train import add_light_figures, calibrated_light_errors, light_figures_of

    per: dict[float, dict[str, list[float]]] = {g: collections.defaultdict(list) for g in gains}
    by_pano: dict[float, dict[str, list[float]]] = {g: collections.defaultdict(list) for g in gains}
    model.eval()
    for style, ds in val_sets.items():
        for batch in torch.utils.data.DataLoader(ds, batch_size=batch_size):
            with torch.no_grad():
                out = model(2.0 * batch["ldr"] - 1.0)
            gt_log = batch["hdr"].clamp(1e-8, 1e4).log()
            first = pairs is not None and len(pairs)
            if pairs is not None:
                sat = saturation_ramp(batch["ldr"]).flatten(1).mean(1)
                pairs += [{"style": style, "panorama": names[sc] if names else str(sc), "ldr_mean": float(m),
                           "saturated": float(f), "irr_err": []}
                          for sc, m, f in zip(batch["scene"].tolist(), batch["ldr"].flatten(1).mean(1).tolist(),
                                              sat.tolist())]
            for g in gains:
                pred = highlight_gain(out.log_hdr, batch["ldr"], g)
                per[g][f"{style}/si_mse"].append(si_mse(pred, gt_log).item())
                errors = calibrated_light_errors(pred.clamp(max=20).exp(), batch)
                add_light_figures(per[g], f"{style}/", light_figures_of(errors))
                for scene, err in zip(batch["scene"].tolist(), errors["irr_err"].tolist()):
                    by_pano[g][names[scene] if names else str(scene)].append(err)
                if pairs is not None:
                    for rec, err in zip(pairs[first:], errors["irr_err"].tolist()):
                        rec["irr_err"].append(err)
    table: dict[float, dict[str, float]] = {}
    for g, lists in per.items():
        row = {k: sum(v) / len(v) for k, v in lists.items() if v}
        keys = {k.split("/", 1)[1] for k in row}
        for k in sorted(keys):
            vals = [row[f"{s}/{k}"] for s in val_sets if f"{s}/{k}" in row]
            row[k] = sum(vals) / len(vals)
        table[g] = row
    return table, {g: dict(sorted(v.items())) for g, v in by_pano.items()}


def leave_one_style_out(table: dict[float, dict[str, float]], styles: list[str], tolerance: float,
                        max_simse_rise: float) -> dict[str, tuple[float, float, float]]:
    """Per style: the gain the rule chooses on the other styles' means, and the style's own irradiance error at gain
    0 and at that gain (how a gain fitted without an LDR look does on it)."""
    out = {}
    for held in styles:
        rest = [s for s in styles if s != held]
        sub = {g: {k: sum(f[f"{s}/{k}"] for s in rest) / len(rest) for k in ("si_mse", "irr_err")}
               for g, f in table.items()}
        g = choose_gain(sub, tolerance, max_simse_rise)
        out[held] = (g, table[0.0][f"{held}/irr_err"], table[g][f"{held}/irr_err"])
    return out


def markdown_panoramas(by_pano: dict[float, dict[str, list[float]]], gains: list[float]) -> str:
    """Mean irradiance error per panorama (its pairs in every style) at ``gains``."""
    lines = ["| panorama | pairs | " + " | ".join(f"irr error at {g:g}" for g in gains) + " |",
             "|" + "---|" * (2 + len(gains))]
    for name, errs in by_pano[gains[0]].items():
        cells = [f"{sum(by_pano[g][name]) / len(by_pano[g][name]):.3f}" for g in gains]
        lines.append(f"| {name} | {len(errs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_image_gains(pairs: list[dict], gains: list[float], chosen: float, bins: int = 5) -> str:
    """Would a gain chosen per image do better than one gain? For two things a rule could read from the input (the
    LDR's mean linear value, its saturated fraction), the pairs in ``bins`` quantile bins: each bin's gain with the
    lowest mean irradiance error, that error and the error at ``chosen``. The mean over the bins is the best a rule
    on that feature reaches on these pairs, fitted on them (so an upper bound); beside it, every pair at its own
    best gain."""
    import numpy as np

    err = np.array([p["irr_err"] for p in pairs])
    at = gains.index(chosen)
    lines = ["| feature | bin (range) | pairs | best gain in the bin | irr error at it | at the chosen gain |",
             "|---|---|---|---|---|---|"]
    summary = []
    for feature in ("ldr_mean", "saturated"):
        x = np.array([p[feature] for p in pairs])
        edges = np.quantile(x, np.linspace(0, 1, bins + 1))
        which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
        total = 0.0
        for b in range(bins):
            m = which == b
            if not m.any():
                continue
            k = int(err[m].mean(0).argmin())
            total += err[m, k].sum()
            lines.append(f"| {feature} | {b + 1} ({x[m].min():.3g}-{x[m].max():.3g}) | {int(m.sum())} | {gains[k]:g} | "
                         f"{err[m, k].mean():.3f} | {err[m, at].mean():.3f} |")
        summary.append(f"{feature} {total / len(err):.4f}")
    best = int(err.mean(0).argmin())
    lines.append(f"\nirradiance error with a gain per {', per '.join(summary)} bin (fitted on these pairs); "
                 f"the chosen gain ({chosen:g}): {err[:, at].mean():.4f}; the best single gain ({gains[best]:g}): "
                 f"{err[:, best].mean():.4f}; each pair at its own best gain: {err.min(1).mean():.4f}")
    return "\n".join(lines)


def markdown(table: dict[float, dict[str, float]], styles: list[str], chosen: float) -> str:
    head = ("| gain (stops) | siMSE | irradiance error | irr bias | peak bias | key-light direction | "
            + " | ".join(f"{s} irr" for s in styles) + " |")
    lines = [head, "|" + "---|" * (6 + len(styles))]
    for g, f in table.items():
        mark = "**" if g == chosen else ""
        cells = [f"{mark}{g:g}{mark}", f"{f['si_mse']:.4f}", f"{mark}{f['irr_err']:.4f}{mark}", f"{f['irr_bias']:+.3f}",
                 f"{f['peak_bias']:+.3f}", f"{f['key_angle']:.1f}°" if "key_angle" in f else "–"]
        lines.append("| " + " | ".join(cells + [f"{f[f'{s}/irr_err']:.3f}" for s in styles]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path, help="a trained model folder (RUN/model or hdr_core/weights/NAME)")
    ap.add_argument("--config", required=True, help="the training config whose validation pairs to use")
    ap.add_argument("--data", nargs="+", help="override the config's data folders")
    ap.add_argument("--gains", type=parse_grid, default=parse_grid("0:3:0.25"), help="grid (default 0:3:0.25)")
    ap.add_argument("--eval-batches", type=int, default=8, help="validation batches per style (default 8)")
    ap.add_argument("--tolerance", type=float, default=0.04, help="stops of irradiance error (default 0.04)")
    ap.add_argument("--max-simse-rise", type=float, default=0.05, help="relative (default 0.05)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("--balanced", type=lambda s: s.lower() in ("1", "true", "yes", "on"), nargs="?", const=True,
                    default=None, metavar="BOOL",
                    help="validation pairs that cycle through the panoramas, each counting equally (default: the "
                         "config's val_balanced; give an --eval-batches whose pairs are a multiple of the panoramas)")
    ap.add_argument("--exposure-ev", type=float, default=None,
                    help="score photos exposed this many stops brighter (> 0) or darker than metered (default: the "
                         "config's val_exposure_ev, normally 0: as metered). A gain is still chosen, on those pairs")
    ap.add_argument("--json", type=Path, help="write every figure here (and every pair's)")
    ap.add_argument("--without-gain", action="store_true",
                    help="score a model that carries a highlight gain (the shipped weights) without it: the grid's "
                         "gains replace it, and its own gain is the row of that value")
    ap.add_argument("--by-image", action="store_true",
                    help="also print whether a gain chosen per image (by the LDR's mean or saturated fraction) would "
                         "do better than one gain")
    ap.add_argument("--panoramas", choices=("validation", "training"), default="validation",
                    help="score pairs of the validation panoramas (default) or, made the same way, of the training "
                         "panoramas (to see what the model does on panoramas it was trained on; not for choosing)")
    args = ap.parse_args(argv)

    import torch

    from hdr_core.checkpoint import atomic_write_text, load_model
    from hdr_core.train import parse_config, split_files, unbalanced_note, validation_sets

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = ["--eval-batches", str(args.eval_batches)] + (["--data", *args.data] if args.data else []) \
        + ([f"--val-balanced={args.balanced}"] if args.balanced is not None else []) \
        + ([f"--val-exposure-ev={args.exposure_ev!r}"] if args.exposure_ev is not None else [])
    cfg = parse_config(["--config", args.config, *overrides])
    if cfg.stage != "pano":
        raise SystemExit(f"{args.config}: a stage-2 (pano) config is needed, got stage {cfg.stage!r}")
    try:
        model = load_model(args.model)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"{args.model}: {e}") from e
    if not hasattr(model.config, "highlight_gain"):
        raise SystemExit(f"{args.model}: {type(model).__name__} has no highlight gain")
    carried = float(model.config.highlight_gain)
    if carried and not args.without_gain:
        raise SystemExit(f"{args.model}: already has a highlight gain ({carried:g} stops); fit the run's own model, or "
                         "give --without-gain to score its network without it")
    if carried:
        model.config = dataclasses.replace(model.config, highlight_gain=0.0)
        print(f"note: {args.model} carries a highlight gain of {carried:g} stops; scored without it "
              f"(--without-gain): gain {carried:g} on the grid is the model as it is", file=sys.stderr)
    split = split_files(cfg, log=None)
    files = split.val if args.panoramas == "validation" else split.train
    val_sets = validation_sets(cfg, files)
    if not val_sets:
        raise SystemExit(f"{args.config}: no {args.panoramas} panoramas")
    gains = sorted(set(args.gains) | {0.0, carried})  # with --without-gain, the model as it is is on the grid
    note = unbalanced_note(cfg, files)
    if note:
        print(f"note: {note}", file=sys.stderr)
    pairs: list[dict] = []
    table, by_pano = evaluate_gains(model, val_sets, gains, cfg.batch_size, [f.stem for f in files], pairs)
    chosen = choose_gain(table, args.tolerance, args.max_simse_rise)
    print(markdown(table, list(val_sets), chosen))
    print()
    print(markdown_panoramas(by_pano, sorted({0.0, chosen})))
    held_out = leave_one_style_out(table, list(val_sets), args.tolerance, args.max_simse_rise) \
        if len(val_sets) > 1 else {}
    if held_out:
        print("\n| style left out | gain chosen on the others | its irr error at 0 | at that gain |\n|---|---|---|---|")
        for style, (g, e0, eg) in held_out.items():
            print(f"| {style} | {g:g} | {e0:.3f} | {eg:.3f} |")
    if args.by_image:
        print("\n" + per_image_gains(pairs, gains, chosen))
    print(f"\nchosen highlight gain: {chosen:g} stops (irradiance error {table[chosen]['irr_err']:.4f} against "
          f"{table[0.0]['irr_err']:.4f} at 0; siMSE {table[chosen]['si_mse']:.4f} against {table[0.0]['si_mse']:.4f})")
    if args.json:
        atomic_write_text(args.json, json.dumps({"model": str(args.model), "config": args.config,
                                                 "panoramas": args.panoramas, "balanced": cfg.val_balanced,
                                                 "carried_gain": carried,
                                                 "exposure_ev": cfg.val_exposure_ev,
                                                 "eval_batches": cfg.eval_batches, "tolerance": args.tolerance,
                                                 "max_simse_rise": args.max_simse_rise, "chosen": chosen,
                                                 "table": {f"{g:g}": f for g, f in table.items()},
                                                 "panoramas_irr_err": {f"{g:g}": v for g, v in by_pano.items()},
                                                 "leave_one_style_out": held_out, "gains": gains,
                                                 "pairs": pairs},
                                                indent=1))
    return chosen


if __name__ == "__main__":
    main()
