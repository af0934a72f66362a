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
from render_eval.metrics import HIGHER_IS_BETTER as _HIGHER
from render_eval.metrics import METRIC_NAMES, SIGNED_METRICS

RENDER_METRICS = ["psnr", "ssim", "vdp_jod", "mse_1e3", "mse_hdr_1e3", "flip"]
PANO_METRICS = ["si_mse_lin", "si_mse_log", "pu21_psnr", "pu21_ssim"]
#: Light accuracy (no rendering): :func:`render_eval.metrics.light_metrics`.
LIGHT_METRICS = ["irr_err", "irr_bias", "light_angle", "key_angle", "peak_err", "peak_bias"]
ALL_METRICS = RENDER_METRICS + PANO_METRICS + LIGHT_METRICS
#: Metrics a paired comparison counts wins on (the signed biases have no "better" direction).
PAIRED_METRICS = [k for k in ALL_METRICS if k not in SIGNED_METRICS]
HIGHER_IS_BETTER = {k for k, higher in _HIGHER.items() if higher}


def metric_name(key: str) -> str:
    return METRIC_NAMES.get(key, key)


def light_sentence(row: dict) -> str:
    """A panorama's light accuracy as a user reads it: "irradiance 2.3x too bright (1.2 stops mean error);
    brightest light 20 deg off, 0.8 stops too weak"."""
    if "irr_bias" not in row:
        return ""

    def factor(stops: float, more: str, less: str) -> str:
        if abs(stops) < 0.05:
            return "about right"
        return f"{2 ** abs(stops):.1f}x too {more if stops > 0 else less}"

    return (f"irradiance {factor(row['irr_bias'], 'bright', 'dark')} ({row['irr_err']:.2f} stops mean error over "
            f"26 normals); brightest light {row['light_angle']:.0f}° off, "
            f"{factor(row['peak_bias'], 'strong', 'weak')} ({row['peak_bias']:+.2f} stops)")


def write_results_csv(rows: list[dict], path: Path) -> None:
    """Long format: one line per panorama x method x metric (status lines for failed items)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["stem", "method", "metric", "value", "status"])
    for r in rows:
        keys = [k for k in ALL_METRICS if r.get(k) is not None]  # None: undefined here (key_angle)
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
    return {"ssim": 3, "pu21_ssim": 3, "light_angle": 1, "key_angle": 1}.get(key, 2)


def _fmt(entry: dict | None, key: str) -> str:
    if not entry or key not in entry:
        return "–"
    m, ci = entry[key]["mean"], entry[key]["ci95"]
    digits = _digits(key)
    return f"{m:.{digits}f} ± {ci:.{digits}f}" if m != float("inf") else "inf"


def _table(summary: list[dict], order: list[str], metrics: list[str]) -> tuple[list[str], list[list[str]]]:
    """The metrics of ``metrics`` that some method has, and one row per method that has any of them."""
    by = {e["method"]: e for e in summary}
    keys = [k for k in metrics if any(k in e for e in summary)]
    rows = []
    for m in order:
        e = by.get(m)
        if e is not None and any(k in e for k in keys):
            rows.append([m, f"{e['n']}/{e['n_total']}"] + [_fmt(e, k) for k in keys])
    return keys, rows


def _md_table(keys: list[str], rows: list[list[str]]) -> list[str]:
    return (["| method | n | " + " | ".join(metric_name(k) for k in keys) + " |", "|---|---|" + "---|" * len(keys)]
            + ["| " + " | ".join(r) + " |" for r in rows])


#: Text above the light-accuracy table (summary.md, docs/results.md).
LIGHT_NOTE = ("Light accuracy (no rendering): the light each calibrated panorama casts, against the calibrated "
              "ground truth's (`hdr_core.lighting`). Irradiance on white surfaces facing 26 directions (cube faces, "
              "edges and corners; cosine-weighted over the sphere): error = mean |log2 ratio| in stops "
              "(1 = a factor 2), bias = signed mean (+1 = twice too bright); the brightest light (a "
              "10° cap around the luminance peak: the sun, a lamp, a window): the angle between its directions "
              "and its energy ratio in stops; the key-light angle is that angle on the panoramas whose ground "
              "truth has one clear brightest light (at least twice the energy of any other light 20° or more "
              "away), where a prediction that calls another, equally bright light the brightest is not wrong.")


def paired_rows(paired: list[dict], order: list[str],
                keys: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """The cells of a paired table (:func:`render_eval.pipeline.paired_differences`): the metrics present (of
    ``keys``, default :data:`PAIRED_METRICS`) and per method ``[name, "mean ± ci (wins/n, p=...)", ...]``."""
    keys = [k for k in (keys or PAIRED_METRICS) if any(k in e for e in paired)]
    by = {e["method"]: e for e in paired}
    rows = []
    for m in order:
        e = by.get(m)
        if e is None:
            continue
        cells = [m]
        for k in keys:
            if k not in e:
                cells.append("–")
                continue
            digits = _digits(k)
            v = e[k]
            p = v.get("wilcoxon_p")
            p_txt = f", p={p:.2g}" if p is not None else ""
            cells.append(f"{v['mean']:+.{digits}f} ± {v['ci95']:.{digits}f} ({v['better']}/{v['n']}{p_txt})")
        rows.append(cells)
    return keys, rows


def paired_note(ref: str) -> str:
    """What the paired table's cells mean."""
    return (f"Paired differences against `{ref}` (method minus `{ref}`, panorama by panorama): mean ± 95 % "
            "confidence half-width (Student t), on how many panoramas the method is better than "
            f"`{ref}` (lower is better for MSE, FLIP, siMSE and the light errors), and the two-sided Wilcoxon "
            "signed-rank p-value (exact for small n; no normality assumed). A difference whose interval contains 0 "
            "or whose p is large is not established by this test set.")


def paired_lines(paired: list[dict], order: list[str], keys: list[str] | None = None) -> list[str]:
    """Markdown table of :func:`render_eval.pipeline.paired_differences` (empty list if there is nothing)."""
    if not paired:
        return []
    keys, rows = paired_rows(paired, order, keys)
    return (["", paired_note(paired[0]["reference"]), "",
             "| method | " + " | ".join(metric_name(k) for k in keys) + " |", "|---|" + "---|" * len(keys)]
            + ["| " + " | ".join(r) + " |" for r in rows])


def summary_sections(summary: list[dict], order: list[str], paired: list[dict] | None = None,
                     level: str = "##") -> list[str]:
    """The markdown tables of one benchmark: renders (Table-4 shaped), panoramas, light accuracy, paired."""
    lines = []
    keys, rows = _table(summary, order, RENDER_METRICS)
    if rows:
        lines += [f"{level} Renders", "",
                  "Renders of the four-ball scene lit by each method's calibrated panorama, compared with the render "
                  "lit by the calibrated ground truth (same settings, same seed). Mean ± 95 % confidence half-width; "
                  "n = panoramas scored / panoramas attempted. MSE (1e-3) is the paper's: on the display-referred "
                  "linear render clipped to [0, 1] (1 = the LDR input's white), times 1e3; HDR-MSE is the unbounded "
                  "linear render's. The `noise floor` row compares the ground-truth render with one of another seed: "
                  "differences smaller than that are render noise, not method differences.", ""] + _md_table(keys, rows)
    keys, rows = _table(summary, order, PANO_METRICS)
    if rows:
        lines += ["", f"{level} Panoramas", "",
                  "Panorama-domain metrics (no rendering), calibrated prediction vs calibrated ground truth:", ""]
        lines += _md_table(keys, rows)
    keys, rows = _table(summary, order, LIGHT_METRICS)
    if rows:
        lines += ["", f"{level} Light accuracy", "", LIGHT_NOTE, ""] + _md_table(keys, rows)
    return lines + paired_lines(paired or [], order)


def write_summary(summary: list[dict], order: list[str], out: Path, context: dict,
                  paired: list[dict] | None = None) -> None:
    """``summary.csv`` (one row per method x metric) and ``summary.md`` (the Table-4-shaped tables, light accuracy,
    and the paired differences against a reference method if ``paired`` is given)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["method", "metric", "mean", "std", "ci95", "n", "n_total"])
    for e in summary:
        for k in ALL_METRICS:
            if k in e:
                w.writerow([e["method"], k, e[k]["mean"], e[k]["std"], e[k]["ci95"], e[k]["n"], e["n_total"]])
    atomic_write_text(out / "summary.csv", buf.getvalue())
    lines = ["# render_eval summary", ""] + summary_sections(summary, order, paired)
    lines += ["", "## Run", "", "```", json.dumps(context, indent=2), "```", ""]
    atomic_write_text(out / "summary.md", "\n".join(lines))


def write_styles_summary(per_style: dict[str, dict], order: list[str], out: Path, context: dict,
                         report: bool = True) -> None:
    """``out/summary.md`` (one set of tables per LDR style), ``out/summary.json`` and an index ``report.html``
    linking each style's own report. ``per_style`` maps a style to its benchmark's summary.json content."""
    lines = ["# render_eval summary: one benchmark per LDR style", "",
             "Every method scored on LDR inputs made from the same HDR panoramas in each style "
             f"(`hdr_core.looks`): {', '.join(f'`{s}`' for s in per_style)}. Each style's full outputs (results.csv, "
             "report.html, visuals) are in `<style>/`; the renders share one cache.", ""]
    for style, res in per_style.items():
        lines += [f"## LDR style: {style}", ""]
        lines += summary_sections(res["summary"], order, res["paired"], level="###") + [""]
    lines += ["## Run", "", "```", json.dumps(context, indent=2), "```", ""]
    atomic_write_text(out / "summary.md", "\n".join(lines))
    atomic_write_text(out / "summary.json", json.dumps({"order": order, "styles": per_style, "context": context},
                                                       indent=1, default=str))
    if report:
        esc = html.escape
        items = "".join(f"<li><a href='{esc(s)}/report.html'>{esc(s)}</a></li>" for s in per_style)
        doc = (f"<!doctype html><html><head><meta charset=utf-8><title>render_eval report</title></head><body>"
               f"<h1>render_eval: one benchmark per LDR style</h1><ul>{items}</ul>"
               f"<pre>{esc(json.dumps(context, indent=2))}</pre>{_CHECK_SCRIPT}</body></html>")
        atomic_write_text(out / "report.html", doc)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def bar_plots(summary: list[dict], order: list[str], folder: Path) -> list[Path]:
    """One bar plot (mean with 95 % CI) per metric, as PNGs in ``folder``."""
    plt = _plt()
    folder.mkdir(parents=True, exist_ok=True)
    by = {e["method"]: e for e in summary}
    paths = []
    for k in ALL_METRICS:
        methods = [m for m in order if m in by and k in by[m] and by[m][k]["mean"] != float("inf")]
        if not methods:
            continue
        fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(methods), 3.0), dpi=100)
        ax.bar(methods, [by[m][k]["mean"] for m in methods], yerr=[by[m][k]["ci95"] for m in methods],
               color=["#888" if m == "noise floor" else "#4a7ab5" for m in methods], capsize=3)
        better = ("0 is best" if k in SIGNED_METRICS else "higher is better" if k in HIGHER_IS_BETTER
                  else "lower is better")
        ax.set_title(f"{metric_name(k)} ({better})", fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        paths.append(_save(plt, fig, folder / f"{k}.png"))
    return paths


def light_plots(rows: list[dict], order: list[str], folder: Path) -> list[Path]:
    """Per-panorama grouped bar plots (one bar per method) of the irradiance bias and the brightest light's energy
    bias, in stops: what is too bright or too dark where."""
    plt = _plt()
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    ok = [r for r in rows if r.get("status") == "ok" and "irr_bias" in r and r["method"] != "gt"]
    stems = sorted({r["stem"] for r in ok})
    methods = [m for m in order if any(r["method"] == m for r in ok)]
    paths = []
    if not stems or not methods:
        return paths
    val = {(r["stem"], r["method"]): r for r in ok}
    for k in ("irr_bias", "peak_bias"):
        fig, ax = plt.subplots(figsize=(2.0 + 0.35 * len(stems) * len(methods), 3.2), dpi=100)
        width = 0.8 / len(methods)
        x = np.arange(len(stems))
        for i, m in enumerate(methods):
            ax.bar(x + i * width, [val[(s, m)][k] if (s, m) in val else np.nan for s in stems], width, label=m)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x + 0.4 - width / 2, stems, fontsize=8)
        ax.set_ylabel("stops (+ = too bright)", fontsize=8)
        ax.set_title(f"{metric_name(k)} per panorama (0 is best)", fontsize=9)
        ax.legend(fontsize=7, ncol=min(len(methods), 6))
        paths.append(_save(plt, fig, folder / f"per_panorama_{k}.png"))
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


def write_report(rows: list[dict], summary: list[dict], order: list[str], out: Path, context: dict,
                 paired: list[dict] | None = None) -> Path:
    """``out/report.html``: summary tables, the paired differences (if ``paired``), bar plots, and per panorama the
    LDR input, each method's tone-mapped panorama, its render beside the GT render, and an error heat map."""
    esc = html.escape
    plots = bar_plots(summary, order, out / "plots")
    per_pano = light_plots(rows, order, out / "plots")
    rk, r_rows = _table(summary, order, RENDER_METRICS)
    pk, p_rows = _table(summary, order, PANO_METRICS)
    lk, l_rows = _table(summary, order, LIGHT_METRICS)

    def table(keys, trs):
        head = "".join(f"<th>{esc(metric_name(k))}</th>" for k in keys)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in trs)
        return f"<table><tr><th>method</th><th>n</th>{head}</tr>{body}</table>"

    def img(rel: str, caption: str, cls: str = "") -> str:
        if not (out / rel).is_file():
            return f"<figure class=missing><figcaption>{esc(caption)}: missing</figcaption></figure>"
        return (f"<figure{' class=' + cls if cls else ''}><img src='{esc(rel)}' loading=lazy>"
                f"<figcaption>{esc(caption)}</figcaption></figure>")

    parts = [f"<h1>render_eval report</h1><p>{esc(context.get('date', ''))} · {esc(context.get('machine', ''))}</p>"]
    if r_rows:
        parts += ["<h2>Renders (four-ball scene)</h2>", table(rk, r_rows)]
    if p_rows:
        parts += ["<h2>Panoramas</h2>", table(pk, p_rows)]
    if l_rows:
        parts += ["<h2>Light accuracy</h2>", f"<p>{esc(LIGHT_NOTE)}</p>", table(lk, l_rows), "<div class=row>"]
        parts += [img(f"plots/{p.name}", p.stem, "wide") for p in per_pano] + ["</div>"]
    if paired:
        keys, trs = paired_rows(paired, order)
        head = "".join(f"<th>{esc(metric_name(k))}</th>" for k in keys)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in trs)
        parts += ["<h2>Paired differences</h2>", f"<p>{esc(paired_note(paired[0]['reference']))}</p>",
                  f"<table class=paired><tr><th>method</th>{head}</tr>{body}</table>"]
    parts += ["<h2>Plots</h2><div class=row>"] + [img(f"plots/{p.name}", p.stem) for p in plots] + ["</div>"]
    by_stem: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_stem.setdefault(r["stem"], {})[r["method"]] = r
    methods = [m for m in order if m != "noise floor"]
    for stem in sorted(by_stem):
        v = f"visuals/{stem}"
        parts.append(f"<h2 id='{esc(stem)}'>{esc(stem)}</h2><div class=row>"
                     + img(f"{v}/_LDR.input.png", "LDR input") + img(f"{v}/_GT.pano.png", "ground truth (tone-mapped)")
                     + (img(f"{v}/_GT.render.png", "lit by ground truth") if (out / f"{v}/_GT.render.png").is_file()
                        else "") + "</div>")
        for m in methods:
            r = by_stem[stem].get(m)
            if r is None:
                continue
            if r.get("status") != "ok":
                parts.append(f"<p class=err>{esc(m)}: {esc(r.get('status', ''))}</p>")
                continue
            scores = " · ".join(f"{metric_name(k)} {r[k]:.3g}" for k in RENDER_METRICS + PANO_METRICS if k in r)
            figs = img(f"{v}/{m}.pano.png", f"{m} (tone-mapped)")
            if (out / f"{v}/{m}.render.png").is_file():
                figs += (img(f"{v}/{m}.render.png", f"lit by {m}") + img(f"{v}/_GT.render.png", "lit by ground truth")
                         + img(f"{v}/{m}.error.png", "|error|"))
            parts.append(f"<h3>{esc(m)}</h3><p>{esc(scores)}</p><p class=light>Light: {esc(light_sentence(r))}</p>"
                         f"<div class=row>{figs}</div>")
    style = ("<style>body{font-family:sans-serif;max-width:1400px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}.row{display:flex;flex-wrap:wrap;gap:8px}"
             "figure{margin:0}img{max-width:320px;display:block}.wide img{max-width:100%}figcaption{font-size:12px}"
             ".err{color:#b00}</style>")
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
