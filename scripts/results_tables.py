"""Compact markdown tables for docs/results.md from render_eval outputs (one or several LDR styles).

    .venv/bin/python scripts/results_tables.py out/results out/results_light > tables.md

Each OUT is a ``python -m render_eval`` output folder (``summary.json`` at its top; a several-style run keeps one
benchmark per style). Per style it prints the render table (when the run rendered), a compact panorama + light
table, and the paired differences against the run's ``--paired-ref`` for the headline metrics. Numbers are the
runs' own; nothing is recomputed (but the means of ``--earlier`` rows).

    .venv/bin/python scripts/results_tables.py out/results --earlier 'docs/results/2026-12-03/renders_{style}.csv' \
        panolanet_small,lanet_small

``--earlier CSV METHODS`` adds, per style, those of METHODS that the run lacks: their rows of an earlier run's
``results.csv`` (``{style}`` in the path is the style) join the mean tables (marked †; their means by
``render_eval.pipeline.summarize``, as the run computes its own) and one more paired table: the run's reference
against their per-panorama rows. ``--earlier`` may be given several times (marked †, ‡, ...), and a METHODS item
``NAME=SHOWN`` shows the earlier run's ``NAME`` rows as ``SHOWN`` (a model this run scores under the same name, e.g.
the previous weights of a retrained default; its rows are not part of the agreement check). Renders are
deterministic to float rounding, so an earlier run with the same settings scored the same ground-truth renders;
that is checked, not assumed: every method the two runs share must agree on every panorama within
``EARLIER_TOLERANCE`` in every paired metric, else the script stops and says which.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from render_eval.pipeline import paired_differences, summarize  # noqa: E402
from render_eval.report import RENDER_METRICS, _fmt, _md_table, metric_name, paired_rows  # noqa: E402

COMPACT = ["pu21_psnr", "si_mse_log", "irr_err", "irr_bias", "light_angle", "key_angle", "peak_bias"]
PAIRED = ["psnr", "ssim", "vdp_jod", "mse_1e3", "pu21_psnr", "irr_err", "peak_err"]
#: Largest difference allowed between the two runs' rows of a shared method (same panorama, same metric).
EARLIER_TOLERANCE = 1e-3
#: How each earlier run's methods are marked in the mean tables (first --earlier, second, ...).
EARLIER_MARKS = "†‡§¶"


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


def read_rows(path: Path) -> list[dict]:
    """A ``results.csv`` (stem, method, metric, value, status) as one row dict per (method, panorama)."""
    rows: dict[tuple[str, str], dict] = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            row = rows.setdefault((r["method"], r["stem"]), {"method": r["method"], "stem": r["stem"], "status": "ok"})
            if r["status"] != "ok":
                row["status"] = r["status"]
            elif r["value"] not in ("", "None"):
                row[r["metric"]] = float(r["value"])
    return list(rows.values())


def earlier_rows(out: Path, style: str, csv_pattern: str, methods: list[str],
                 shown: dict[str, str] | None = None) -> tuple[list[dict], list[dict], dict]:
    """This run's rows, the earlier run's rows of ``methods`` (once every method both share agrees: module doc) and
    how they agreed (the shared methods, how many values were compared, the largest difference). ``shown`` renames
    earlier methods (earlier name -> shown name) before anything is compared; ``methods`` are shown names."""
    now = read_rows(out / style / "results.csv" if (out / style).is_dir() else out / "results.csv")
    before_path = Path(csv_pattern.format(style=style))
    before = [{**r, "method": (shown or {}).get(r["method"], r["method"])} for r in read_rows(before_path)]
    now_by = {(r["method"], r["stem"]): r for r in now}
    shared = sorted({r["method"] for r in before} & {r["method"] for r in now} - {"noise floor"})
    if not shared:
        raise SystemExit(f"{before_path}: shares no method with {out} ({style}): cannot check it scored the same "
                         "renders")
    largest, compared = 0.0, 0
    for r in before:
        mine = now_by.get((r["method"], r["stem"]))
        if r["method"] not in shared or mine is None:
            continue
        for k in PAIRED:
            a, b = r.get(k), mine.get(k)
            if a is not None and b is not None and math.isfinite(a):
                if abs(a - b) > EARLIER_TOLERANCE:
                    raise SystemExit(f"{before_path}: {r['method']} on {r['stem']} has {k} {a} there and {b} in "
                                     f"{out} ({style}): not the same renders, so its rows cannot be paired with this "
                                     "run's")
                largest, compared = max(largest, abs(a - b)), compared + 1
    missing = sorted(set(methods) - {r["method"] for r in before})
    if missing:
        names = {v: k for k, v in (shown or {}).items()}
        raise SystemExit(f"{before_path}: no rows of {sorted(names.get(m, m) for m in missing)}")
    agreement = {"shared": shared, "compared": compared, "largest_difference": largest}
    return now, [r for r in before if r["method"] in methods], agreement


def paired(entries: list[dict], order: list[str], title: str | None = None) -> list[str]:
    if not entries:
        return []
    keys, rows = paired_rows(entries, order, PAIRED)
    title = title or (f"Paired against `{entries[0]['reference']}` (method minus it: mean ± 95 % CI (wins/n, "
                      "Wilcoxon p)):")
    return ([title, "",
             "| method | " + " | ".join(metric_name(k) for k in keys) + " |", "|---|" + "---|" * len(keys)]
            + ["| " + " | ".join(r) + " |" for r in rows])


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outs", nargs="+", type=Path, help="python -m render_eval output folders")
    ap.add_argument("--earlier", nargs=2, action="append", default=[], metavar=("CSV", "METHODS"),
                    help="an earlier run's results.csv ({style} = the style) and the comma-separated methods to pair "
                         "(NAME=SHOWN shows its NAME rows as SHOWN); may be given several times")
    args = ap.parse_args(argv)
    if len(args.earlier) > len(EARLIER_MARKS):
        ap.error(f"at most {len(EARLIER_MARKS)} --earlier")
    specs = []  # per --earlier: its CSV pattern, its mark, earlier name -> shown name, the shown names
    for (csv_pattern, names), mark in zip(args.earlier, EARLIER_MARKS):
        pairs = [(a, b or a) for a, _, b in (n.partition("=") for n in names.split(","))]
        specs.append((csv_pattern, mark, {a: b for a, b in pairs if a != b}, [b for _, b in pairs]))
    for out in args.outs:
        for style, res in styles(out).items():
            order, summary = res["order"], res["summary"]
            rendered = any(k in e for e in summary for k in RENDER_METRICS)
            # each earlier run's methods that this run lacks join the mean tables, marked with a dagger (its own)
            earlier = []
            for csv_pattern, mark, shown, all_methods in specs:
                methods = [m for m in all_methods if m not in res["order"]]
                if methods and res.get("paired"):
                    now, before, agreement = earlier_rows(out, style, csv_pattern, methods, shown)
                    summary = summary + [{**e, "method": f"{e['method']} {mark}"}
                                         for e in summarize(before, RENDER_METRICS + COMPACT)]
                    order = order + [f"{m} {mark}" for m in methods]
                    earlier.append((csv_pattern, mark, methods, now, before, agreement))
            print(f"### `{style}` ({'renders' if rendered else 'panoramas and light, no rendering'}; `{out}`)\n")
            lines = table(summary, order, RENDER_METRICS) if rendered else []
            lines += ([""] if lines else []) + table(summary, order, COMPACT)
            lines += [""] + paired(res.get("paired") or [], res["order"])
            for csv_pattern, mark, methods, now, before, agreement in earlier:
                ref = res["paired"][0]["reference"]
                title = (f"Paired against `{ref}`, an earlier run's rows ({mark} in the tables above: "
                         f"`{csv_pattern.format(style=style)}`; its rows of "
                         f"{', '.join(f'`{m}`' for m in agreement['shared'])} reproduce this run's: "
                         f"{agreement['compared']} values, largest difference {agreement['largest_difference']:.1e}):")
                entries = paired_differences([r for r in now if r["method"] == ref] + before, ref, PAIRED)
                lines += [""] + paired(entries, methods, title)
            print("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
