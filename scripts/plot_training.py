"""Plot training curves of one or more runs (TensorBoard logs in ``RUN/tb``) into one PNG.

    .venv/bin/python scripts/plot_training.py runs/ship_panolanet_small_stage1 runs/ship_panolanet_small_stage2 \
        --label "panolanet_small" --out docs/training_panolanet_small.png

Consecutive runs given together (stage 1 then stage 2) are drawn end to end on one step axis, with a dashed line
at each stage boundary. ``--label`` may be repeated with ``--group`` sizes to put several models on one figure::

    scripts/plot_training.py runs/a1 runs/a2 runs/b1 runs/b2 --group 2 2 --label a --label b --out curves.png

Left: the training loss (each model's own loss, smoothed); middle: the validation loss; right: the validation
siMSE, which every model reports whatever its loss, so that panel compares models.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def read_scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` of a run's TensorBoard log; a resumed run keeps the last value per step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    ea.Reload()
    out = {}
    for tag in ea.Tags()["scalars"]:
        by_step = {e.step: e.value for e in ea.Scalars(tag)}
        out[tag] = sorted(by_step.items())
    return out


def smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """TensorBoard's exponential moving average (debiased)."""
    out, last, norm = [], 0.0, 0.0
    for v in values:
        last, norm = weight * last + (1 - weight) * v, weight * norm + (1 - weight)
        out.append(last / norm)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--group", nargs="+", type=int, help="runs per model (default: all runs are one model)")
    ap.add_argument("--label", action="append", help="one label per group")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    groups = args.group or [len(args.runs)]
    if sum(groups) != len(args.runs):
        ap.error(f"--group sizes {groups} do not add up to {len(args.runs)} runs")
    labels = args.label or [r.name for r in args.runs[:1]]
    if len(labels) != len(groups):
        ap.error("give one --label per group")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = [("train/loss", "training loss (own loss, smoothed)"), ("val/loss", "validation loss (own loss)"),
              ("val/si_mse", "validation siMSE (comparable)")]
    i = 0
    for label, n in zip(labels, groups):
        offset, color = 0, None
        for k, run in enumerate(args.runs[i:i + n]):
            data = read_scalars(run)
            for ax, (tag, _) in zip(axes, panels):
                pts = data.get(tag, [])
                if not pts:
                    continue
                steps = [offset + s for s, _ in pts]
                vals = [v for _, v in pts]
                if tag == "train/loss":
                    vals = smooth(vals)
                (line,) = ax.plot(steps, vals, color=color, label=label if k == 0 and ax is axes[0] else None)
                color = line.get_color()
            last = max((s for pts in data.values() for s, _ in pts), default=0)
            offset += last
            if k < n - 1:
                for ax in axes:
                    ax.axvline(offset, color=color, ls="--", lw=0.8)
        i += n
    for ax, (_, title) in zip(axes, panels):
        ax.set_title(title)
        ax.set_xlabel("step (stages end to end)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    tmp.replace(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
