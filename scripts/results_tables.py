"""Compact markdown tables for docs/results.md from render_eval outputs (one or several LDR styles).

    .venv/bin/python scripts/results_tables.py out/results out/results_light > tables.md

Each OUT is a ``python -m render_eval`` output folder (``summary.json`` at its top; a several-style run keeps one
benchmark per style). Per style it prints the render table (when the run rendered), a compact panorama + light
table, and the paired differences against the run's ``--paired-ref`` for the headline metrics. Numbers are the
runs' own; nothing is recomputed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from render_eval.report import RENDER_METRICS, _fmt, _md_table, metric_name, paired_rows  # noqa: E402

COMPACT = ["pu21_psnr", "si_mse_log", "irr_err", "irr_bias", "light_angle", "peak_bias"]
PAIRED = ["psnr", "ssim", "vdp_jod", "mse_1e3", "pu21_psnr", "irr_err", "peak_err"]


def styles(out: Path) -> dict[str, dict]:
    if not (out / "summary.json").is_file():
        raise SystemExit(f"{out}: no summary.json (not a finished python -m render_eval output folder)")
    data = json.loads((out / "summary.json").read_text())
    if "styles" in data:
        return data["styles"]
    return {data["context"].get("ldr_style") or "virtual": data}


def table(summary: list[dict], order: list[str], keys: list[str]) -> list[str]:
    by = {e["method"]: e for e in summary}
    keys = [k for k in keys if any(k in e for e in summary)]
    rows = [[m, f"{by[m]['n']}/{by[m]['n_total']}"] + [_fmt(by[m], k) for k in keys]
            for m in order if m in by and any(k in by[m] for k in keys)]
    return _md_table(keys, rows) if rows else []


def paired(entries: list[dict], order: list[str]) -> list[str]:
    if not entries:
        return []
    keys, rows = paired_rows(entries, order, PAIRED)
    return ([f"Paired against `{entries[0]['reference']}` (method minus it: mean ± 95 % CI (wins/n, Wilcoxon p)):", "",
             "| method | " + " | ".join(metric_name(k) for k in keys) + " |", "|---|" + "---|" * len(keys)]
            + ["| " + " | ".join(r) + " |" for r in rows])


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for out in map(Path, argv):
        for style, res in styles(out).items():
            order, summary = res["order"], res["summary"]
            rendered = any(k in e for e in summary for k in RENDER_METRICS)
            print(f"### `{style}` ({'renders' if rendered else 'panoramas and light, no rendering'}; `{out}`)\n")
            lines = table(summary, order, RENDER_METRICS) if rendered else []
            lines += ([""] if lines else []) + table(summary, order, COMPACT)
            lines += [""] + paired(res.get("paired") or [], order)
            print("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
