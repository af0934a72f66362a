"""Training-step benchmark: where a step's time goes, and the speed-ups measured side by side, as ratios.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_train.py [--stages crop pano] [--rounds 5]
        [--threads 2] [--data ../shared/data/hdri] [--variants eager channels_last compile_cl amp_cl]

The recipe is the shipped model's (``configs/ship_panolanet_small_stage{1,2}.yaml``): panoLANet (small); stage
``crop``: batch 8 of 128x128 crops from 256x512 panoramas, stage ``pano``: batch 4 of 256x512 panoramas, Eq. 9.

1. **Breakdown** of one step: pair synthesis per pair and LDR style (augmentation, projection, the LDR style itself,
   calibration and tensors), collation, forward + loss, backward, optimizer step, and a validation pass.
2. **Variants**, interleaved round by round (each round times one step of every variant, so a load change on a
   shared machine hits all of them alike): median seconds per step, the ratio to eager fp32, achieved GFLOP/s
   (``torch.utils.flop_counter``, forward + backward, 2 per multiply-add) and its share of the fp32 and bf16 matmul
   peaks measured in the same run (at the start and once per round, the best kept: on a shared machine a single
   measurement can catch a busy moment). ``compile_*`` print their compile time (the first two steps).
3. **Steps/hour of the loop**, from the measured parts: a step costs its compute, plus the pair synthesis of a batch
   (divided by the reuse factor of ``--pair-pool``), plus a validation every ``eval_every`` steps (its pairs made
   again each time before, kept since).
4. ``--end-to-end`` (or ``--end-to-end-only``): ``hdr_core.train`` itself, each of ``--e2e-variants`` in a fresh
   process, interleaved over ``--e2e-rounds``: the config as it is, channels-last with a pair pool, and the same on
   two DDP processes of ``threads / 2`` threads each (``torchrun``, gloo; the global batch split between them). On a
   CPU whose small convolutions do not scale over threads, two processes of one thread beat one of two.

Paste the printed tables into docs/benchmarks.md with the date, the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_models import matmul_peak, median_time  # noqa: E402
from hdr_core.calibration import calibrate  # noqa: E402
from hdr_core.camera import virtual_camera  # noqa: E402
from hdr_core.color import ldr_to_linear  # noqa: E402
from hdr_core.data.pairs import PairConfig, PairDataset, find_hdr_files, load_panoramas  # noqa: E402
from hdr_core.data.splits import filter_training_files  # noqa: E402
from hdr_core.looks import make_ldr  # noqa: E402
from hdr_core.models import create_model  # noqa: E402
from hdr_core.projections import perspective_crop  # noqa: E402
from hdr_core.train import (  # noqa: E402
    TrainConfig,
    autocast_context,
    compute_loss,
    make_optimizer,
    to_device,
    trained_module,
)

#: stage -> (batch, pairs, eval_every, eval_batches per style) of the shipped recipe
RECIPES = {"crop": (8, PairConfig(mode="crop", crop_size=128, store_height=256), 100, 4),
           "pano": (4, PairConfig(mode="pano", pano_height=256, store_height=256), 60, 2)}
VARIANTS = {"eager": {}, "channels_last": {"channels_last": True}, "compile": {"compile": True},
            "compile_cl": {"compile": True, "channels_last": True}, "amp_cl": {"amp": True, "channels_last": True},
            "compile_cl_amp": {"compile": True, "channels_last": True, "amp": True},
            "amp_cl_fused": {"amp": True, "channels_last": True, "fused_adam": True}}
STYLES = ("virtual", "mdk08", "phone_hdr", "phone_local", "filmic", "camera360")


def timed(fn, runs: int = 3) -> float:
    return median_time(fn, runs, warmup=False)


def synthesis_parts(ds: PairDataset, style: str, n: int) -> dict[str, float]:
    """Seconds per pair of each part of ``PairDataset.__getitem__`` (the same calls, timed one by one)."""
    from hdr_core.augment import random_pano_augment

    parts = {"augment": 0.0, "projection": 0.0, "ldr style": 0.0, "calibration + tensors": 0.0}
    for i in range(n):
        rng = np.random.default_rng([ds.seed, i])
        t0 = time.perf_counter()
        hdr = random_pano_augment(ds.panoramas[int(rng.integers(len(ds.panoramas)))], rng)
        t1 = time.perf_counter()
        if ds.config.mode == "crop":
            yaw, pitch, fov = ds._view(rng, i)
            t = torch.from_numpy(np.ascontiguousarray(hdr)).permute(2, 0, 1)[None]
            hdr = perspective_crop(t, yaw, pitch, fov, ds.config.crop_size)[0].permute(1, 2, 0).numpy()
        hdr = np.maximum(hdr, 0.0).astype(np.float32)
        t2 = time.perf_counter()
        ldr = virtual_camera(hdr, rng, ds.config.camera)[0] if style == "virtual" else make_ldr(hdr, style, rng)[0]
        t3 = time.perf_counter()
        lin = ldr_to_linear(ldr.astype(np.float32) / 255.0)
        torch.from_numpy(np.ascontiguousarray(calibrate(hdr, lin).transpose(2, 0, 1)))
        torch.from_numpy(np.ascontiguousarray(lin.transpose(2, 0, 1)))
        t4 = time.perf_counter()
        for k, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            parts[k] += dt / n
    return parts


def device_pairs_ratio(ds: PairDataset, batch_size: int, rounds: int) -> None:
    """A batch of virtual-camera pairs: numpy item by item (``PairDataset``) vs batched torch ops
    (``DevicePairs`` on the CPU; on a GPU it runs there), interleaved."""
    from hdr_core.data.pairs import DevicePairs

    dev = DevicePairs(ds)
    times = {"numpy": [], "torch": []}
    for r in range(rounds):
        idx = list(range(r * batch_size, (r + 1) * batch_size))
        t = time.perf_counter()
        [ds[i] for i in idx]
        times["numpy"].append(time.perf_counter() - t)
        t = time.perf_counter()
        dev.batch(idx)
        times["torch"].append(time.perf_counter() - t)
    m = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nvirtual-camera pairs, one batch: numpy {m['numpy']:.3f} s, DevicePairs on the CPU {m['torch']:.3f} s "
          f"({m['numpy'] / m['torch']:.2f}x)")


def make_step(stage: str, batch: dict, opts: dict):
    """One training step of panoLANet (small) with the options of ``hdr_core.train``; returns ``step()``."""
    cfg = TrainConfig(data=["x"], stage=stage, **opts)
    torch.manual_seed(0)
    module = trained_module(create_model("panolanet_small"), stage)
    if cfg.channels_last:
        module = module.to(memory_format=torch.channels_last)
    opt = make_optimizer(cfg, module)
    model = torch.compile(module) if cfg.compile else module
    ctx, _ = autocast_context(cfg, torch.device("cpu"))
    b = to_device(batch, torch.device("cpu"), cfg.channels_last)

    def step(parts: dict | None = None) -> None:
        t0 = time.perf_counter()
        with ctx:
            loss, _ = compute_loss(cfg, model, b)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if parts is not None:
            for k, dt in zip(("forward + loss", "backward", "optimizer"), (t1 - t0, t2 - t1, t3 - t2)):
                parts.setdefault(k, []).append(dt)

    return step, cfg, module


def step_flops(stage: str, batch: dict) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    step, _, _ = make_step(stage, batch, {})
    with FlopCounterMode(display=False) as fc:
        step()
    return fc.get_total_flops()


def bench_stage(stage: str, panos: list[np.ndarray], args, peaks: dict[str, float]) -> None:
    batch_size, pair_cfg, eval_every, eval_batches = RECIPES[stage]
    ds = PairDataset(panos, pair_cfg, 10**6, seed=0, extras=False)
    what = f"{pair_cfg.crop_size}x{pair_cfg.crop_size} crops" if stage == "crop" else "512x256 panoramas"
    print(f"\n## stage {stage}: batch {batch_size}, {what}\n")

    # --- 1. breakdown ---------------------------------------------------------------------------
    print("| pair synthesis, per pair | " + " | ".join(STYLES) + " |\n|---|" + "---|" * len(STYLES))
    per_style = {s: synthesis_parts(ds, s, args.pairs) for s in STYLES}
    for part in next(iter(per_style.values())):
        print(f"| {part} (ms) | " + " | ".join(f"{1e3 * per_style[s][part]:.1f}" for s in STYLES) + " |")
    totals = {s: sum(p.values()) for s, p in per_style.items()}
    print("| **pair (ms)** | " + " | ".join(f"**{1e3 * totals[s]:.1f}**" for s in STYLES) + " |")
    mix = TrainConfig(data=["x"]).ldr_styles if args.mix == "virtual" else \
        {"virtual": 0.3, "mdk08": 0.15, "phone_hdr": 0.15, "phone_local": 0.15, "filmic": 0.1, "camera360": 0.15}
    pair_s = sum(w * totals[s] for s, w in mix.items()) / sum(mix.values())
    items = [ds[i] for i in range(batch_size)]
    collate_s = timed(lambda: torch.utils.data.default_collate(items))
    batch = torch.utils.data.default_collate(items)
    step, _, module = make_step(stage, batch, {})
    parts: dict[str, list[float]] = {}
    step()
    for _ in range(args.rounds):
        step(parts)
    compute = {k: statistics.median(v) for k, v in parts.items()}
    val_styles = len(mix)
    val_pairs = eval_batches * batch_size * val_styles  # the pairs of one evaluation

    def val_forward() -> None:
        with torch.no_grad():
            module.eval()
            compute_loss(TrainConfig(data=["x"], stage=stage), module, batch)
            module.train()

    val_fwd_s = timed(val_forward) * eval_batches * val_styles
    rows = [(f"pair synthesis ({args.mix} mix), {batch_size} pairs", pair_s * batch_size), ("collate", collate_s),
            *[(k, v) for k, v in compute.items()],
            (f"validation pairs ({val_pairs}) / {eval_every} steps", pair_s * val_pairs / eval_every),
            (f"validation forward / {eval_every} steps", val_fwd_s / eval_every)]
    total = sum(v for _, v in rows)
    print("\n| part of a step (eager fp32, fresh pairs) | s | share |\n|---|---|---|")
    for k, v in rows:
        print(f"| {k} | {v:.3f} | {100 * v / total:.0f} % |")
    print(f"| **step** | **{total:.3f}** | |")
    device_pairs_ratio(ds, batch_size, args.rounds)

    # --- 2. variants, interleaved ---------------------------------------------------------------
    flops = step_flops(stage, batch)
    steps, compile_s = {}, {}
    for name in args.variants:
        t = time.perf_counter()
        steps[name] = make_step(stage, batch, VARIANTS[name])[0]
        steps[name]()
        steps[name]()
        if VARIANTS[name].get("compile"):
            compile_s[name] = time.perf_counter() - t
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, fn in steps.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
        for k, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):  # the peak in this round, best kept
            peaks[k] = max(peaks[k], matmul_peak(dtype, runs=1))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med.get("eager", next(iter(med.values())))
    print(f"\n{flops / 1e9:.1f} GFLOP per step (forward + backward); matmul peak, best of this run so far: fp32 "
          f"{peaks['fp32']:.0f}, bf16 {peaks['bf16']:.0f} GFLOP/s\n")
    print("| variant | s / step | vs eager | GFLOP/s | % fp32 peak | % bf16 peak | compile (s) |\n"
          "|---|---|---|---|---|---|---|")
    # a bf16 matmul slower than fp32 is emulated (no AVX512-BF16 / AMX): a share of that "peak" means nothing
    emulated = peaks["bf16"] < peaks["fp32"]
    for k, v in med.items():
        g = flops / v / 1e9
        bf16_share = "–" if emulated else f"{100 * g / peaks['bf16']:.0f}"
        print(f"| {k} | {v:.3f} | {base / v:.2f}x | {g:.0f} | {100 * g / peaks['fp32']:.0f} | "
              f"{bf16_share} | {compile_s.get(k, 0):.0f} |")
    if emulated:
        print("\n(bf16 is emulated on this CPU, slower than fp32: hdr_core.train's amp is a slowdown here)")

    # --- 3. steps/hour of the loop --------------------------------------------------------------
    best = min((k for k in med if k in args.variants), key=med.get)
    old = pair_s * batch_size + collate_s + base + (pair_s * val_pairs + val_fwd_s) / eval_every
    print("\n| loop | s / step | steps / hour | vs before |\n|---|---|---|---|")
    print(f"| before: eager, fresh pairs, validation pairs made at each evaluation | {old:.3f} | {3600 / old:.0f} | "
          f"1.00x |")
    for k in dict.fromkeys(["eager", best]):
        if k not in med:
            continue
        for reuse in (1, args.reuse):
            new = pair_s * batch_size / reuse + collate_s + med[k] + val_fwd_s / eval_every
            print(f"| {k}, pair pool reused {reuse}x, validation pairs kept | {new:.3f} | {3600 / new:.0f} | "
                  f"{old / new:.2f}x |")


#: end-to-end variants: name -> (processes, extra ``hdr_core.train`` arguments); ``{pool}`` = the pool size. Several
#: processes run under torchrun (DDP, gloo), each with ``threads / processes`` threads and its share of the batch.
_CL = ["--channels-last", "true", "--workers", "0"]
_POOL = [*_CL, "--pair-pool", "{pool}"]
E2E_VARIANTS = {
    "before": (1, []),  # the config as it is (eager fp32, fresh pairs, its one loader worker)
    "cl_pool": (1, _POOL),
    "ddp2": (2, _CL),
    "ddp2_pool": (2, _POOL),
    "cl_pool_amp": (1, [*_POOL, "--amp", "true"]),
    "ddp2_pool_amp": (2, [*_POOL, "--amp", "true"]),
    "ddp2_pool_amp_fused": (2, [*_POOL, "--amp", "true", "--fused-adam", "true"]),
    "ddp2_amp_fused": (2, [*_CL, "--amp", "true", "--fused-adam", "true"]),  # fresh pairs: no pool
    # the gradients all-reduced by gloo (TCP) instead of through shared memory (the default since 2026-12-06)
    "ddp2_pool_amp_fused_gloo": (2, [*_POOL, "--amp", "true", "--fused-adam", "true", "--ddp-shared-memory", "false"]),
    # batch norm over the global batch (the one-process training; the ddp2 variants normalise per rank)
    "ddp2_pool_syncbn": (2, [*_POOL, "--sync-bn", "true"]),
    # the shipped stage 2's way (fp32, global batch norm, the fused Adam, fresh pairs)
    "ddp2_syncbn_fused": (2, [*_CL, "--sync-bn", "true", "--fused-adam", "true"]),
}
E2E_CONFIGS = {"crop": ("ship_panolanet_small_stage1.yaml", []),
               # from random weights (no stage-1 run needed; the weights do not change the step's cost)
               "pano": ("ship_panolanet_small_stage2.yaml", ["--init-from", ""])}


def profile_steps(stage: str, panos: list[np.ndarray], args) -> None:
    """``torch.profiler`` over ``--profile-steps`` training steps of ``--profile`` (after 3 warm-up steps): the
    operators with the most self CPU time, per step. ``--profile-batch`` is the batch one process computes (a DDP
    rank of 2 computes half the recipe's)."""
    from torch.profiler import ProfilerActivity, profile

    batch_size, pair_cfg = RECIPES[stage][:2]
    n = args.profile_batch or batch_size
    ds = PairDataset(panos, pair_cfg, 10**6, seed=0, extras=False)
    batch = torch.utils.data.default_collate([ds[i] for i in range(n)])
    step, _, _ = make_step(stage, batch, VARIANTS[args.profile])
    for _ in range(3):
        step()
    t = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.profile_steps):
            step()
    wall = (time.perf_counter() - t) / args.profile_steps
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in rows)
    print(f"\n| stage {stage}, {args.profile}, batch {n}, {args.threads} thread(s): operator | self ms / step | "
          f"share | calls / step |\n|---|---|---|---|")
    for e in rows[:args.profile_rows]:
        print(f"| `{e.key}` | {e.self_cpu_time_total / 1e3 / args.profile_steps:.1f} | "
              f"{100 * e.self_cpu_time_total / total:.0f} % | {e.count / args.profile_steps:.0f} |")
    print(f"| all ({len(rows)} operators) | {total / 1e3 / args.profile_steps:.1f} | 100 % | |")
    print(f"\nwall time per step under the profiler: {wall:.3f} s")


def end_to_end(args) -> None:
    """``hdr_core.train`` itself, each variant in a fresh process (or torchrun), interleaved run by run.

    Loop steps/s is the run's own figure (``final.json``; it includes the validations, not the start-up); a pair
    pool is made before the loop, so the steps/hour a long run gets with the same reuse is
    ``steps / (steps / loop_steps_per_s + pool_seconds)``: the figure compared.
    """
    import json
    import re
    import subprocess

    for stage in args.stages:
        config, extra_cfg = E2E_CONFIGS[stage]
        batch = RECIPES[stage][0]
        pool = str(max(batch, args.e2e_steps * batch // args.reuse))
        runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in args.e2e_variants}
        for r in range(args.e2e_rounds):
            for name in args.e2e_variants:
                # ref_<variant>: the variant run by the code of another checkout (--e2e-reference), e.g. the commit
                # before a change, interleaved with this one's runs
                ref = name.startswith("ref_")
                procs, extra = E2E_VARIANTS[name.removeprefix("ref_")]
                code = Path(args.e2e_reference) if ref else ROOT
                out = Path(args.e2e_out) / f"{stage}_{name}_{r}"
                train_args = ["-m", "hdr_core.train", "--config", str(ROOT / "configs" / config), *extra_cfg,
                              "--data", *args.data, "--val-scenes", "lab", "workshop", "--out-dir", str(out),
                              "--steps", str(args.e2e_steps),
                              "--eval-every", str(args.e2e_eval_every or args.e2e_steps // 2),
                              "--ckpt-every", str(args.e2e_steps), "--log-every", "1", "--progress", "false",
                              *[a.format(pool=pool) for a in extra]]
                launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
                          if procs > 1 else [sys.executable])
                env = {**os.environ, "OMP_NUM_THREADS": str(max(1, args.threads // procs)), "PYTHONPATH": str(code)}
                t = time.perf_counter()
                res = subprocess.run([*launch, *train_args], cwd=code, env=env, capture_output=True, text=True)
                wall = time.perf_counter() - t
                if res.returncode:
                    raise SystemExit(f"{stage}/{name} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
                loop = json.loads((out / "final.json").read_text())["steps_per_s"]
                m = re.search(r"pair pool: .* made in ([0-9.]+) s", res.stdout + res.stderr)
                runs[name].append((loop, float(m.group(1)) if m else 0.0, wall))
        print(f"\n| hdr_core.train, stage {stage}, {args.e2e_steps} steps | processes x threads | loop steps/s (runs) "
              f"| pool s (runs) | wall s (runs) | steps/hour | vs before |\n|---|---|---|---|---|---|---|")
        rate = {k: statistics.median(args.e2e_steps / (args.e2e_steps / a + p) for a, p, _ in v)
                for k, v in runs.items()}
        for k, v in runs.items():
            procs = E2E_VARIANTS[k.removeprefix("ref_")][0]
            print(f"| {k} | {procs} x {max(1, args.threads // procs)} | {', '.join(f'{a:.3f}' for a, _, _ in v)} | "
                  f"{', '.join(f'{p:.1f}' for _, p, _ in v)} | {', '.join(f'{w:.0f}' for _, _, w in v)} | "
                  f"{3600 * rate[k]:.0f} | {rate[k] / rate[args.e2e_variants[0]]:.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stages", nargs="*", default=["crop", "pano"], choices=list(RECIPES))
    ap.add_argument("--variants", nargs="+", default=["eager", "channels_last", "compile_cl", "amp_cl"],
                    choices=list(VARIANTS))
    ap.add_argument("--data", nargs="+", default=[str(ROOT.parent / "shared" / "data" / "hdri")])
    ap.add_argument("--mix", default="real50", choices=["virtual", "real50"],
                    help="LDR-style mix of the pairs: the virtual camera alone, or the real50 configs' mix")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=8, help="pairs timed per style")
    ap.add_argument("--reuse", type=int, default=8, help="reuse factor of the pair pool in the loop estimate")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--end-to-end", action="store_true",
                    help="also time hdr_core.train itself in each --e2e-variants (fresh processes; DDP via torchrun)")
    ap.add_argument("--end-to-end-only", action="store_true", help="only the end-to-end runs")
    ap.add_argument("--e2e-variants", nargs="+", default=["before", "cl_pool", "ddp2", "ddp2_pool"],
                    choices=[*E2E_VARIANTS, *(f"ref_{k}" for k in E2E_VARIANTS)],
                    help="the first is the reference of the ratios; ref_<variant> runs the code of --e2e-reference")
    ap.add_argument("--e2e-reference", default=None,
                    help="another checkout of this repository (e.g. `git worktree add /tmp/ref COMMIT`) whose code the "
                         "ref_ variants run, with this checkout's configs and data")
    ap.add_argument("--e2e-rounds", type=int, default=2)
    ap.add_argument("--e2e-steps", type=int, default=24)
    ap.add_argument("--e2e-eval-every", type=int, default=0,
                    help="validation every N steps of the end-to-end runs (default: twice per run; the shipped "
                         "recipe validates every 100 steps, so 100 with --e2e-steps 100 weighs validation as it does)")
    ap.add_argument("--e2e-out", default="/tmp/bench_train_runs")
    ap.add_argument("--profile", default=None, choices=list(VARIANTS),
                    help="only profile this variant's training step (torch.profiler), each of --stages")
    ap.add_argument("--profile-batch", type=int, default=0, help="batch of the profiled step (default: the recipe's)")
    ap.add_argument("--profile-steps", type=int, default=3)
    ap.add_argument("--profile-rows", type=int, default=15)
    args = ap.parse_args()
    if any(v.startswith("ref_") for v in args.e2e_variants) and not args.e2e_reference:
        ap.error("ref_ variants need --e2e-reference (a checkout of the code to compare with)")
    torch.set_num_threads(args.threads)
    files = [f for f in filter_training_files(find_hdr_files(args.data)) if f.stem not in ("lab", "workshop")][:8]
    panos = load_panoramas(files, 256)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if args.profile:  # no matmul peaks: the profile reads none
        for stage in args.stages:
            profile_steps(stage, panos, args)
        return
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"matmul peak (2048^3): fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s; "
          f"data: {len(files)} panoramas of {', '.join(args.data)}")
    for stage in [] if args.end_to_end_only else args.stages:
        bench_stage(stage, panos, args, peaks)
    if args.end_to_end or args.end_to_end_only:
        end_to_end(args)
    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
