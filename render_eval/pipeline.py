"""The benchmark: panoramas x methods -> calibrated predictions -> renders -> metrics -> results rows.

Reads like a BlenderProc scenario: inputs -> calibration -> lighting -> render -> metrics -> writers
(:mod:`render_eval.report`). One *item* is one panorama: its ground truth, its LDR input and every method's
prediction. Each (item, method) result is stored as ``items/<stem>/<method>.json`` the moment it exists, and
every render is cached by content (:class:`render_eval.render.RenderCache`), so a killed run resumes where it
stopped and shards of a large benchmark merge into the same numbers as one run.
"""

from __future__ import annotations

import json
import math
import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdr_core.resize import resize_to
from render_eval.methods import HDR_SUFFIXES, Method, MethodRunner, find_file
from render_eval.report import HIGHER_IS_BETTER

LDR_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
NOISE_FLOOR = "noise floor"  #: the row comparing the GT render with a GT render of another seed


@dataclass(frozen=True)
class Item:
    stem: str
    gt: Path
    ldr: Path | None


@dataclass
class Options:
    out: Path
    settings: dict = field(default_factory=dict)  #: RenderSettings fields (render_eval.settings)
    vdp: bool = True
    flip: bool = False
    noise_floor: bool = True
    threads: int | None = None
    model_size: tuple[int, int] | None = None  #: working size (w, h) of hdr_core models; None = each model's own
    render: bool = True  #: False: panorama and light-accuracy metrics only (no Blender, seconds per panorama)
    cache_dir: Path | None = None  #: the render cache (default ``out/cache``; LDR styles share one)


def discover(gt_dir: str | Path, ldr_dir: str | Path) -> tuple[list[Item], list[dict]]:
    """Pair ``GT_DIR/<stem>.exr|.hdr`` with ``LDR_DIR/<stem>.png|.jpg|...``; a GT without LDR is a problem row."""
    gt_dir, ldr_dir = Path(gt_dir), Path(ldr_dir)
    for d in (gt_dir, ldr_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: no such folder")
    items, problems = [], []
    for gt in sorted(p for p in gt_dir.iterdir() if p.suffix.lower() in HDR_SUFFIXES):
        ldr = find_file(ldr_dir, gt.stem, LDR_SUFFIXES)
        if ldr is None:
            problems.append({"stem": gt.stem, "method": "*", "status": f"missing LDR input in {ldr_dir}"})
        items.append(Item(gt.stem, gt, ldr))
    return items, problems


def shard(items: list[Item], index: int, count: int) -> list[Item]:
    """Items ``index, index+count, ...`` of the sorted list (``--shard I/N``, I from 0)."""
    if not 0 <= index < count:
        raise ValueError(f"--shard {index}/{count}: need 0 <= I < N")
    return sorted(items, key=lambda it: it.stem)[index::count]


def _result_path(out: Path, stem: str, method: str) -> Path:
    return out / "items" / stem / f"{method}.json"


def _load_cached(path: Path, signature: str | None) -> dict | None:
    """A saved result row, if it exists and was computed for the same method definition (``signature``)."""
    if not path.is_file():
        return None
    row = json.loads(path.read_text())
    if signature is not None and row.get("signature") != signature:
        return None
    return row


def _lacks_light_metrics(row: dict) -> bool:
    """A scored row without every light metric of today (:data:`render_eval.report.LIGHT_METRICS`): one cached
    before a metric was added."""
    from render_eval.report import LIGHT_METRICS

    return row.get("status") == "ok" and row.get("method") != NOISE_FLOOR and any(k not in row for k in LIGHT_METRICS)


def _same_prediction(saved: Path, pred_cal: np.ndarray) -> bool:
    """Whether a saved prediction (float32 EXR, as :func:`evaluate_item` writes it) holds exactly ``pred_cal``."""
    from hdr_core.io import read_hdr

    if not saved.is_file():
        return False
    old = read_hdr(saved)
    return old.shape == pred_cal.shape and np.array_equal(old, np.asarray(pred_cal, np.float32))


def _add_light_metrics(row: dict, prediction: Path, gt_cal: np.ndarray) -> None:
    """Complete a cached row's light metrics from its saved calibrated prediction (cheap, no rendering; the render
    metrics stay as cached). Left as it is when the prediction is gone."""
    from hdr_core.io import read_hdr
    from render_eval.metrics import light_metrics

    if prediction.is_file():
        row.update(light_metrics(read_hdr(prediction), gt_cal))


def _save_json(path: Path, data: dict) -> None:
    from hdr_core.checkpoint import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))


def _write_visuals(out: Path, stem: str, name: str, render: np.ndarray | None = None,
                   gt_render: np.ndarray | None = None, pano: np.ndarray | None = None) -> None:
    """Display PNGs for the report: the render, its error heat map against GT, the tone-mapped panorama."""
    from hdr_core.io import write_ldr
    from hdr_core.predict import preview
    from render_eval.display import display_encode

    folder = out / "visuals" / stem
    folder.mkdir(parents=True, exist_ok=True)
    if render is not None:
        write_ldr(folder / f"{name}.render.png", display_encode(render))
    if render is not None and gt_render is not None:
        from matplotlib import colormaps

        err = np.abs(display_encode(render) - display_encode(gt_render)).mean(-1)
        write_ldr(folder / f"{name}.error.png", colormaps["magma"](np.clip(err / ERROR_MAP_MAX, 0, 1))[..., :3])
    if pano is not None:
        write_ldr(folder / f"{name}.pano.png", preview(pano))


#: Display-value difference shown as the top of the error heat maps' colour scale.
ERROR_MAP_MAX = 0.25


def calibrate_to(pano: np.ndarray, ldr_linear: np.ndarray) -> np.ndarray:
    """A panorama calibrated to the LDR input (Eq. 1) as float32 ``HxWx3``, ready to light the scene.

    The one path for the ground truth and every method alike, so the ``gt`` method's panorama is bit-identical to
    the ground truth's (and renders from the same cache entry): no clipping to a file format's range (a Radiance
    sun far above the half-float ceiling stays as it is; the world is handed to Blender as float32), only
    negatives (never physical) are set to 0. ``ldr_linear`` is resized to the panorama's size first.
    """
    from hdr_core.calibration import calibrate

    pano = np.asarray(pano)
    cal = calibrate(pano.astype(np.float64), resize_to(ldr_linear, *pano.shape[:2]).astype(np.float64))
    return np.ascontiguousarray(np.maximum(cal, 0.0), dtype=np.float32)


def camera_seed(stem: str, base: int) -> int:
    """The virtual camera's seed for a panorama: fixed per name, independent of sharding and order."""
    import hashlib

    return base + int(hashlib.sha256(stem.encode()).hexdigest()[:8], 16)


def evaluate_item(item: Item, methods: list[Method], opts: Options, runner: MethodRunner | None = None,
                  cache=None) -> list[dict]:
    """Render and score every method on one panorama; returns result rows (cached ones are read back).

    A cached row is reused only if it was computed with the same method definition (for a model, the same files:
    :meth:`render_eval.methods.Method.signature`), the same render settings and the same kind of run (rendered or
    ``render=False``); otherwise it is recomputed.
    """
    from hdr_core.color import ldr_to_linear
    from hdr_core.errors import ImageError
    from hdr_core.io import read_hdr, read_ldr, write_exr, write_ldr
    from render_eval.metrics import light_metrics, pano_metrics, render_metrics
    from render_eval.render import RenderCache
    from render_eval.settings import RenderSettings

    out = opts.out
    settings = RenderSettings.from_dict(opts.settings) if opts.settings else RenderSettings()
    names = [m.name for m in methods] + ([NOISE_FLOOR] if opts.noise_floor and opts.render else [])
    done = {n: _result_path(out, item.stem, n) for n in names}
    run_kind = f"|render:{settings.digest()[:16]}" if opts.render else "|no-render"
    signatures = {m.name: m.signature(opts.model_size) + run_kind for m in methods}
    signatures[NOISE_FLOOR] = "noise floor" + run_kind
    cached = {n: _load_cached(p, signatures.get(n)) for n, p in done.items()}
    stale = {n for n, r in cached.items() if r is not None and _lacks_light_metrics(r)}
    # a model's row cached before signatures had the weights' digest: kept only if the model predicts today what
    # the row's saved prediction holds, bit for bit (a prediction costs a second; a render minutes)
    unverified = {m.name: row for m in methods if m.kind == "model" and cached[m.name] is None
                  and (row := _load_cached(done[m.name], m.signature(opts.model_size, weights=False) + run_kind))}
    if all(r is not None for r in cached.values()) and not stale:
        return list(cached.values())
    if item.ldr is None:
        return [{"stem": item.stem, "method": n, "status": "missing LDR input"} for n in names]
    cache = cache or (RenderCache(opts.cache_dir or out / "cache") if opts.render else None)
    runner = runner or MethodRunner(opts.threads, opts.model_size)
    try:
        ldr, _ = read_ldr(item.ldr)
        gt = read_hdr(item.gt)
    except ImageError as e:
        return [{"stem": item.stem, "method": n, "status": f"bad input: {e}"} for n in names]
    lin = ldr_to_linear(ldr)
    gt_cal = calibrate_to(gt, lin)
    gt_render = cache.render(gt_cal, settings) if opts.render else None
    _write_visuals(out, item.stem, "_GT", gt_render, pano=gt_cal)
    write_ldr(out / "visuals" / item.stem / "_LDR.input.png", ldr)
    rows = []
    if NOISE_FLOOR in names:
        path = done[NOISE_FLOOR]
        if cached[NOISE_FLOOR] is not None:
            rows.append(cached[NOISE_FLOOR])
        else:
            other = cache.render(gt_cal, settings, seed=settings.seed + 1)
            row = {"stem": item.stem, "method": NOISE_FLOOR, "status": "ok",
                   **render_metrics(other, gt_render, vdp=opts.vdp, flip=opts.flip),
                   "signature": signatures[NOISE_FLOOR]}
            _save_json(path, row)
            rows.append(row)
    for m in methods:
        path = done[m.name]
        if cached[m.name] is not None:
            if m.name in stale:  # cached before a light metric existed: measured again on its saved prediction
                _add_light_metrics(cached[m.name], out / "predictions" / m.name / f"{item.stem}.exr", gt_cal)
                _save_json(path, cached[m.name])
            rows.append(cached[m.name])
            continue
        try:
            pred = runner.predict(m, item.stem, ldr, gt)
            pred_cal = calibrate_to(pred, lin)
            pdir = out / "predictions" / m.name
            saved = pdir / f"{item.stem}.exr"
            if m.name in unverified and _same_prediction(saved, pred_cal):
                row = unverified[m.name]  # the same weights: every metric of the row stands
                if _lacks_light_metrics(row):
                    row.update(light_metrics(pred_cal, gt_cal))
            else:
                pdir.mkdir(parents=True, exist_ok=True)
                write_exr(saved, pred_cal)
                row = {"stem": item.stem, "method": m.name, "status": "ok"}
                if opts.render:
                    pred_render = cache.render(pred_cal, settings)
                    row.update(render_metrics(pred_render, gt_render, vdp=opts.vdp, flip=opts.flip))
                _write_visuals(out, item.stem, m.name, pred_render if opts.render else None, gt_render, pred_cal)
                row.update(pano_metrics(resize_to(pred_cal, *gt_cal.shape[:2]), gt_cal))
                row.update(light_metrics(pred_cal, gt_cal))
        except (ImageError, ValueError, FileNotFoundError) as e:
            row = {"stem": item.stem, "method": m.name, "status": f"error: {e}"}
        row["signature"] = signatures[m.name]
        _save_json(path, row)
        rows.append(row)
    return rows


_WORKER: dict = {}


def _worker_init() -> None:
    """Spawned workers inherit the parent's ``sys.path``; once a parent has imported the ``bpy`` module that
    includes Blender's ``scripts/modules`` folders, whose pure-Python ``bpy`` package would shadow the real one
    (``No module named '_bpy'``). Drop those entries so ``import bpy`` in the worker finds the module again."""
    import sys

    marker = f"{os.sep}bpy{os.sep}"
    sys.path[:] = [p for p in sys.path if not (marker in p and f"{os.sep}scripts" in p)]


def _worker_evaluate(item: Item, methods: list[Method], opts: Options) -> list[dict]:
    """Process-pool entry: one MethodRunner and RenderCache per worker process."""
    from render_eval.render import RenderCache

    runner_key = (opts.threads, opts.model_size)
    if _WORKER.get("runner_key") != runner_key:
        _WORKER["runner"], _WORKER["runner_key"] = MethodRunner(opts.threads, opts.model_size), runner_key
    cache = None
    if opts.render:
        folder = Path(opts.cache_dir or opts.out / "cache").resolve()
        if _WORKER.get("cache_dir") != folder:
            _WORKER["cache"], _WORKER["cache_dir"] = RenderCache(folder), folder
        cache = _WORKER["cache"]
    try:
        return evaluate_item(item, methods, opts, _WORKER["runner"], cache)
    except Exception as e:  # a crash in one item must not lose the others; it is reported, never averaged
        tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
        return [{"stem": item.stem, "method": m.name, "status": f"crashed: {e!r} ({tb})"} for m in methods]


def run(items: list[Item], methods: list[Method], opts: Options, jobs: int = 1, progress: bool = True) -> list[dict]:
    """Evaluate all items (in ``jobs`` worker processes if > 1); returns every row, sorted by stem/method."""
    from tqdm import tqdm

    rows: list[dict] = []
    bar = tqdm(total=len(items), unit="pano", disable=not progress, desc="render_eval", dynamic_ncols=True)
    if jobs <= 1:
        for item in items:
            rows += _worker_evaluate(item, methods, opts)
            bar.update(1)
    else:
        import multiprocessing as mp

        if opts.threads is None:
            opts.threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init) as pool:
            futures = [pool.submit(_worker_evaluate, item, methods, opts) for item in items]
            for f in as_completed(futures):
                rows += f.result()
                bar.update(1)
    bar.close()
    return sorted(rows, key=lambda r: (r["stem"], r["method"]))


def summarize(rows: list[dict], metrics: list[str]) -> list[dict]:
    """Per method and metric: mean, std, 95 % confidence half-width (normal approx.), n ok / n total."""
    by_method: dict[str, list[dict]] = {}
    for r in rows:
        by_method.setdefault(r["method"], []).append(r)
    out = []
    for method, rs in by_method.items():
        ok = [r for r in rs if r.get("status") == "ok"]
        entry = {"method": method, "n": len(ok), "n_total": len(rs)}
        for k in metrics:
            vals = np.array([r[k] for r in ok if k in r and r[k] is not None], dtype=np.float64)
            finite = vals[np.isfinite(vals)]
            if len(vals) == 0:
                continue
            mean = float(vals.mean()) if len(finite) == len(vals) else float("inf")
            std = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
            entry[k] = {"mean": mean, "std": std, "ci95": 1.96 * std / math.sqrt(len(finite)) if len(finite) else 0.0,
                        "n": int(len(vals))}
        out.append(entry)
    return out


def wilcoxon_p(d: np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value of paired differences ``d`` (scipy; the exact distribution for small n,
    ties and zeros handled by scipy's defaults); None if it is undefined (no differences, or all zero)."""
    from scipy.stats import wilcoxon

    d = np.asarray(d, dtype=np.float64)
    if len(d) == 0 or not np.any(d != 0):
        return None
    return float(wilcoxon(d).pvalue)


def paired_differences(rows: list[dict], reference: str, metrics: list[str]) -> list[dict]:
    """Every other method minus ``reference``, panorama by panorama (the comparison a shared test set allows).

    Only panoramas where both are scored and finite count. Per metric: mean difference, 95 % confidence half-width
    (Student t, n - 1 degrees of freedom) and ``better`` = on how many panoramas the method beats the reference
    (in the metric's own direction, :data:`render_eval.report.HIGHER_IS_BETTER`), and ``wilcoxon_p``, the two-sided
    Wilcoxon signed-rank p-value (:func:`wilcoxon_p`). Much tighter than comparing two
    unpaired means when panoramas differ more than methods do. ``gt`` and the noise floor are left out.
    """
    from scipy.stats import t as student_t

    values: dict[str, dict[str, dict]] = {}
    for r in rows:
        if r.get("status") == "ok":
            values.setdefault(r["method"], {})[r["stem"]] = r
    ref = values.get(reference, {})
    out = []
    for method, by_stem in values.items():
        if method in (reference, "gt", NOISE_FLOOR):
            continue
        entry: dict = {"method": method, "reference": reference}
        for k in metrics:
            d = np.array([by_stem[s][k] - ref[s][k] for s in sorted(set(by_stem) & set(ref))
                          if by_stem[s].get(k) is not None and ref[s].get(k) is not None
                          and np.isfinite(by_stem[s][k]) and np.isfinite(ref[s][k])], dtype=np.float64)
            if len(d) == 0:
                continue
            ci = float(student_t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0
            better = int(np.sum(d > 0) if k in HIGHER_IS_BETTER else np.sum(d < 0))
            entry[k] = {"mean": float(d.mean()), "ci95": ci, "better": better, "n": int(len(d)),
                        "wilcoxon_p": wilcoxon_p(d)}
        out.append(entry)
    return out
