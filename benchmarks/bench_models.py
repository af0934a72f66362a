"""Model benchmark: FLOPs, parameters, torch eager vs ONNX Runtime latency, achieved GFLOP/s, training steps/s.

    .venv/bin/python benchmarks/bench_models.py [--models lanet_small panolanet_small ...] [--runs 5] [--threads 2]

``--models`` takes registered names and checkpoint folders (``model.json`` + weights, e.g. a training run's
``RUN/model``: its own architecture, with its trained weights).

The default models are the shipped one, the ablation and the compute-matched ported baselines (issue #7); their
training step uses siMSE as a stand-in for each method's own loss (the loss costs little next to the network).

Prints a Markdown table (paste it into docs/benchmarks.md with the date and machine). The ratio is measured in
the same run, on the same inputs. The machine's fp32 matmul peak is measured first (2048^3 GEMMs), so achieved
GFLOP/s can be read against it. FLOPs count multiply-adds as 2 (torch.utils.flop_counter).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode


def matmul_peak(dtype: torch.dtype = torch.float32, n: int = 2048, runs: int = 5) -> float:
    """GFLOP/s of the best of ``runs`` ``n x n`` matmuls in ``dtype`` (after one untimed)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / min(times) / 1e9


def median_time(fn, runs: int, warmup: bool = True) -> float:
    """Median seconds of ``runs`` calls of ``fn`` (after one untimed call if ``warmup``)."""
    if warmup:
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def build(name: str) -> torch.nn.Module:
    """The registered model ``name`` (random weights), or the model of the checkpoint folder ``name``."""
    from hdr_core.checkpoint import load_model
    from hdr_core.models import create_model

    return load_model(name) if (Path(name) / "model.json").is_file() else create_model(name)


def bench(name: str, w: int, h: int, runs: int, threads: int) -> dict:
    import onnxruntime as ort

    from hdr_core.export import export_onnx

    model = build(name).eval()
    x = torch.rand(1, 3, h, w) * 2 - 1
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    flops = fc.get_total_flops()
    with torch.inference_mode():
        t_torch = median_time(lambda: model(x), runs)
    with tempfile.TemporaryDirectory() as d:
        path = export_onnx(model, Path(d) / "m.onnx", (h, w))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        xn = x.numpy()
        t_ort = median_time(lambda: sess.run(None, {"x": xn}), runs)
    return {"model": name, "size": f"{w}x{h}", "params_M": model.num_params() / 1e6, "gflops": flops / 1e9,
            "torch_s": t_torch, "ort_s": t_ort, "ratio": t_torch / t_ort, "ort_gflops_s": flops / 1e9 / t_ort}


def train_steps_per_s(name: str, stage: str, batch: int, steps: int = 5) -> float:
    from hdr_core.losses import pano_masked_loss, si_mse
    from hdr_core.train import trained_module

    net = build(name)
    module = trained_module(net, stage)
    opt = torch.optim.Adam(module.parameters(), lr=4e-5, betas=(0.5, 0.999))
    shape = (batch, 3, 256, 256) if stage == "crop" else (batch, 3, 256, 512)
    x, gt = torch.rand(shape) * 2 - 1, torch.randn(shape)

    def step():
        out = module(x)
        loss = si_mse(out.log_hdr, gt) if stage == "crop" else pano_masked_loss(out.log_hdr, gt, out.merge_mask)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return 1.0 / median_time(step, steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["lanet_small", "panolanet_small", "lanet_w24", "panolanet_w24",
                                                    "hdrcnn_small", "singlehdr_small", "fhdr_small"])
    ap.add_argument("--sizes", nargs="+", default=["512x256", "1024x512"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--no-train", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} threads; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"fp32 matmul peak (2048^3): {matmul_peak():.0f} GFLOP/s\n")
    print("| model | size | params (M) | GFLOPs | torch eager (s) | ONNX Runtime (s) | eager/ORT | ORT GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        for size in args.sizes:
            w, h = (int(v) for v in size.split("x"))
            r = bench(name, w, h, args.runs, args.threads)
            print(f"| {r['model']} | {r['size']} | {r['params_M']:.2f} | {r['gflops']:.1f} | {r['torch_s']:.3f} | "
                  f"{r['ort_s']:.3f} | {r['ratio']:.2f} | {r['ort_gflops_s']:.0f} |", flush=True)
    if not args.no_train:
        from hdr_core.export import is_panorama_model

        print("\n| model | stage | batch | training steps/s |\n|---|---|---|---|")
        for name in args.models:
            stages = [("crop", 16)] + ([("pano", 4)] if is_panorama_model(build(name)) else [])
            for stage, batch in stages:
                print(f"| {name} | {stage} | {batch} | {train_steps_per_s(name, stage, batch):.3f} |", flush=True)


if __name__ == "__main__":
    main()
