"""Writers: ``results.csv``, ``summary.csv``, ``summary.md`` (Table-4 shaped) and a self-contained ``report.html``.

Rendering returns arrays and rows; these functions only write (BlenderProc's split). The report folder is
self-contained: ``report.html`` refers to images under ``visuals/`` and ``plots/`` by relative paths. It
carries a small script that, on load, counts images that loaded and failed (``body[data-images-ok]`` /
``[data-images-failed]``), which :func:`check_in_chromium` reads back from headless Chromium.
"""

from __future__ import annotations

import csv
import html
import io
import json
import platform
import shutil
import subprocess
import time
from pathlib import Path

from hdr_core.checkpoint import atomic_write_text

RENDER_METRICS = ["psnr", "ssim", "vdp_jod", "mse_1e3", "flip"]
PANO_METRICS = ["si_mse_lin", "si_mse_log", "pu21_psnr", "pu21_ssim"]
DEFAULT_NAMES = {"psnr": "PSNR (dB)", "ssim": "SSIM", "vdp_jod": "VDP (ColorVideoVDP JOD)", "mse_1e3": "MSE (1e-3)",
                 "flip": "HDR-FLIP", "si_mse_lin": "siMSE (linear)", "si_mse_log": "siMSE (log)",
                 "pu21_psnr": "PU21-PSNR (dB)", "pu21_ssim": "PU21-SSIM"}
HIGHER_IS_BETTER = {"psnr", "ssim", "vdp_jod", "pu21_psnr", "pu21_ssim"}


def metric_name(key: str) -> str:
    try:
        from render_eval.metrics import METRIC_NAMES

        return METRIC_NAMES.get(key, DEFAULT_NAMES.get(key, key))
    except ImportError:  # pragma: no cover - metrics needs the eval extra
        return DEFAULT_NAMES.get(key, key)


def write_results_csv(rows: list[dict], path: Path) -> None:
    """Long format: one line per panorama x method x metric (status lines for failed items)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["stem", "method", "metric", "value", "status"])
    for r in rows:
        keys = [k for k in RENDER_METRICS + PANO_METRICS if k in r]
        if r.get("status") != "ok" or not keys:
            w.writerow([r["stem"], r["method"], "", "", r.get("status", "")])
        for k in keys:
            w.writerow([r["stem"], r["method"], k, repr(float(r[k])), "ok"])
    atomic_write_text(path, buf.getvalue())


def read_results_csv(path: Path) -> list[dict]:
    """Inverse of :func:`write_results_csv` (used to merge shards)."""
    rows: dict[tuple[str, str], dict] = {}
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            row = rows.setdefault((rec["stem"], rec["method"]), {"stem": rec["stem"], "method": rec["method"],
                                                                 "status": rec["status"]})
            if rec["metric"]:
                row[rec["metric"]] = float(rec["value"])
                row["status"] = "ok"
    return list(rows.values())


def _digits(key: str) -> int:
    """Decimals a metric's mean and interval are printed with."""
    return 3 if key in ("ssim", "pu21_ssim") else 2


def _fmt(entry: dict | None, key: str) -> str:
    if not entry or key not in entry:
        return "–"
    m, ci = entry[key]["mean"], entry[key]["ci95"]
    digits = _digits(key)
    return f"{m:.{digits}f} ± {ci:.{digits}f}" if m != float("inf") else "inf"


def _tables(summary: list[dict], order: list[str]) -> tuple[list[str], list[str], list[list[str]], list[list[str]]]:
    by = {e["method"]: e for e in summary}
    rk = [k for k in RENDER_METRICS if any(k in e for e in summary)]
    pk = [k for k in PANO_METRICS if any(k in e for e in summary)]
    r_rows, p_rows = [], []
    for m in order:
        e = by.get(m)
        if e is None:
            continue
        n = f"{e['n']}/{e['n_total']}"
        r_rows.append([m, n] + [_fmt(e, k) for k in rk])
        if any(k in e for k in pk):
            p_rows.append([m, n] + [_fmt(e, k) for k in pk])
    return rk, pk, r_rows, p_rows


def paired_lines(paired: list[dict], order: list[str]) -> list[str]:
    """Markdown table of :func:`render_eval.pipeline.paired_differences` (empty list if there is nothing)."""
    if not paired:
        return []
    ref = paired[0]["reference"]
    keys = [k for k in RENDER_METRICS + PANO_METRICS if any(k in e for e in paired)]
    by = {e["method"]: e for e in paired}
    lines = ["", f"Paired differences against `{ref}` (method minus `{ref}`, panorama by panorama): mean ± 95 % "
             "confidence half-width (Student t), and on how many panoramas the method is better than "
             f"`{ref}` (lower is better for MSE, FLIP and siMSE). A difference whose interval contains 0 is not "
             "established by this test set.", "",
             "| method | " + " | ".join(metric_name(k) for k in keys) + " |", "|---|" + "---|" * len(keys)]
    for m in order:
        e = by.get(m)
        if e is None:
            continue
        cells = []
        for k in keys:
            if k not in e:
                cells.append("–")
                continue
            digits = _digits(k)
            v = e[k]
            cells.append(f"{v['mean']:+.{digits}f} ± {v['ci95']:.{digits}f} ({v['better']}/{v['n']})")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def write_summary(summary: list[dict], order: list[str], out: Path, context: dict,
                  paired: list[dict] | None = None) -> None:
    """``summary.csv`` (one row per method x metric) and ``summary.md`` (the Table-4-shaped tables, and the paired
    differences against a reference method if ``paired`` is given)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["method", "metric", "mean", "std", "ci95", "n", "n_total"])
    for e in summary:
        for k in RENDER_METRICS + PANO_METRICS:
            if k in e:
                w.writerow([e["method"], k, e[k]["mean"], e[k]["std"], e[k]["ci95"], e[k]["n"], e["n_total"]])
    atomic_write_text(out / "summary.csv", buf.getvalue())
    rk, pk, r_rows, p_rows = _tables(summary, order)
    lines = ["# render_eval summary", "",
             "Renders of the four-ball scene lit by each method's calibrated panorama, compared with the render lit "
             "by the calibrated ground truth (same settings, same seed). Mean ± 95 % confidence half-width; "
             "n = panoramas scored / panoramas attempted. The `noise floor` row compares the ground-truth render "
             "with one of another seed: differences smaller than that are render noise, not method differences.",
             "", "| method | n | " + " | ".join(metric_name(k) for k in rk) + " |",
             "|---|---|" + "---|" * len(rk)]
    lines += ["| " + " | ".join(r) + " |" for r in r_rows]
    if p_rows:
        lines += ["", "Panorama-domain metrics (no rendering), calibrated prediction vs calibrated ground truth:", "",
                  "| method | n | " + " | ".join(metric_name(k) for k in pk) + " |", "|---|---|" + "---|" * len(pk)]
        lines += ["| " + " | ".join(r) + " |" for r in p_rows]
    lines += paired_lines(paired or [], order)
    lines += ["", "## Run", "", "```", json.dumps(context, indent=2), "```", ""]
    atomic_write_text(out / "summary.md", "\n".join(lines))


def bar_plots(summary: list[dict], order: list[str], folder: Path) -> list[Path]:
    """One bar plot (mean with 95 % CI) per metric, as PNGs in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    by = {e["method"]: e for e in summary}
    paths = []
    for k in RENDER_METRICS + PANO_METRICS:
        methods = [m for m in order if m in by and k in by[m] and by[m][k]["mean"] != float("inf")]
        if not methods:
            continue
        fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(methods), 3.0), dpi=100)
        ax.bar(methods, [by[m][k]["mean"] for m in methods], yerr=[by[m][k]["ci95"] for m in methods],
               color=["#888" if m == "noise floor" else "#4a7ab5" for m in methods], capsize=3)
        better = "higher is better" if k in HIGHER_IS_BETTER else "lower is better"
        ax.set_title(f"{metric_name(k)} ({better})", fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        fig.tight_layout()
        path = folder / f"{k}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


_CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var ok = 0, bad = 0;
  Array.prototype.forEach.call(document.images, function (im) {
    if (im.complete && im.naturalWidth > 0) ok++; else bad++;
  });
  document.body.setAttribute('data-images-ok', ok); document.body.setAttribute('data-images-failed', bad);
});
</script>"""


def write_report(rows: list[dict], summary: list[dict], order: list[str], out: Path, context: dict) -> Path:
    """``out/report.html``: summary tables, bar plots, and per panorama the LDR input, each method's tone-mapped
    panorama, its render beside the GT render, and an error heat map."""
    esc = html.escape
    plots = bar_plots(summary, order, out / "plots")
    rk, pk, r_rows, p_rows = _tables(summary, order)

    def table(keys, trs):
        head = "".join(f"<th>{esc(metric_name(k))}</th>" for k in keys)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in trs)
        return f"<table><tr><th>method</th><th>n</th>{head}</tr>{body}</table>"

    def img(rel: str, caption: str) -> str:
        if not (out / rel).is_file():
            return f"<figure class=missing><figcaption>{esc(caption)}: missing</figcaption></figure>"
        return f"<figure><img src='{esc(rel)}' loading=lazy><figcaption>{esc(caption)}</figcaption></figure>"

    parts = [f"<h1>render_eval report</h1><p>{esc(context.get('date', ''))} · {esc(context.get('machine', ''))}</p>",
             "<h2>Renders (four-ball scene)</h2>", table(rk, r_rows)]
    if p_rows:
        parts += ["<h2>Panoramas</h2>", table(pk, p_rows)]
    parts += ["<h2>Plots</h2><div class=row>"] + [img(f"plots/{p.name}", p.stem) for p in plots] + ["</div>"]
    by_stem: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_stem.setdefault(r["stem"], {})[r["method"]] = r
    methods = [m for m in order if m != "noise floor"]
    for stem in sorted(by_stem):
        v = f"visuals/{stem}"
        parts.append(f"<h2 id='{esc(stem)}'>{esc(stem)}</h2><div class=row>"
                     + img(f"{v}/_LDR.input.png", "LDR input") + img(f"{v}/_GT.pano.png", "ground truth (tone-mapped)")
                     + img(f"{v}/_GT.render.png", "lit by ground truth") + "</div>")
        for m in methods:
            r = by_stem[stem].get(m)
            if r is None:
                continue
            if r.get("status") != "ok":
                parts.append(f"<p class=err>{esc(m)}: {esc(r.get('status', ''))}</p>")
                continue
            scores = " · ".join(f"{metric_name(k)} {r[k]:.3g}" for k in RENDER_METRICS if k in r)
            parts.append(f"<h3>{esc(m)}</h3><p>{esc(scores)}</p><div class=row>"
                         + img(f"{v}/{m}.pano.png", f"{m} (tone-mapped)") + img(f"{v}/{m}.render.png", f"lit by {m}")
                         + img(f"{v}/_GT.render.png", "lit by ground truth") + img(f"{v}/{m}.error.png", "|error|")
                         + "</div>")
    style = ("<style>body{font-family:sans-serif;max-width:1400px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}.row{display:flex;flex-wrap:wrap;gap:8px}"
             "figure{margin:0}img{max-width:320px;display:block}figcaption{font-size:12px}.err{color:#b00}</style>")
    doc = (f"<!doctype html><html><head><meta charset=utf-8><title>render_eval report</title>{style}</head>"
           f"<body>{''.join(parts)}<h2>Run</h2><pre>{esc(json.dumps(context, indent=2))}</pre>{_CHECK_SCRIPT}"
           "</body></html>")
    path = out / "report.html"
    atomic_write_text(path, doc)
    return path


def run_context(settings: dict, command: str) -> dict:
    import numpy as np

    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": command,
            "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}"
                       f", numpy {np.__version__}", "render_settings": settings}


def check_in_chromium(report: Path, chromium: str | None = None, timeout: float = 60.0) -> tuple[int, int]:
    """Open ``report`` in headless Chromium; return (images loaded, images failed). Raises if no Chromium."""
    exe = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise FileNotFoundError("chromium not found (apt-get install chromium)")
    import re
    import tempfile

    with tempfile.TemporaryDirectory() as profile:
        res = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", "--disable-component-update", "--disable-sync",
                              f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom",
                              Path(report).resolve().as_uri()], capture_output=True, text=True, timeout=timeout)
    ok = re.search(r'data-images-ok="(\d+)"', res.stdout)
    bad = re.search(r'data-images-failed="(\d+)"', res.stdout)
    if not ok or not bad:
        raise RuntimeError(f"chromium did not run the report's load check: {res.stderr.strip()[-300:]}")
    return int(ok.group(1)), int(bad.group(1))
