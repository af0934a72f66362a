"""Train LANet / panoLANet: ``python -m hdr_core.train --config configs/<name>.yaml [--field value ...]``.

Reads top to bottom like nanoGPT's ``train.py``: config -> distributed/device setup -> data -> model (scratch,
``init_from`` or resume) -> helpers -> loop. Stage ``crop`` (paper stage 1) trains LANet, or panoLANet's
panorama branch, on 256x256 perspective crops; stage ``pano`` (stage 2) fine-tunes the whole panoLANet on
512x256 panoramas, its ceiling encoder initialised from the panorama encoder.

Distributed: ``torchrun --nproc_per_node=N -m hdr_core.train ...`` (DDP; nccl on GPU, gloo on CPU); only rank 0
writes. Exact resume: data item ``i`` is a pure function of ``(seed, i)``, the learning rate a pure function of
the step, and checkpoints carry the optimizer and RNG state, so ``--resume`` after a kill at any moment ends
with the same weights as an uninterrupted run.

Outputs in ``out_dir``: ``config.yaml`` (resolved), ``tb/`` (TensorBoard), ``checkpoints/step_N/`` +
``checkpoints/latest``, and ``model/`` (the final weights: ``model.safetensors`` + ``model.json``).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import json
import math
import os
import platform
import shlex
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from hdr_core.calibration import calibrate
from hdr_core.camera import CameraConfig
from hdr_core.checkpoint import atomic_write_bytes, atomic_write_text, load_state, save_model
from hdr_core.data.catalog import ManifestError, entries_for, load_validation_groups, prefer_originals, split_by_groups
from hdr_core.data.pairs import (
    DevicePairs,
    PairConfig,
    PairDataset,
    PairPool,
    check_styles,
    find_hdr_files,
    load_panoramas,
    scene_light_weights,
)
from hdr_core.data.splits import (
    SplitViolation,
    check_site_groups,
    check_training_files,
    filter_training_files,
    violations,
)
from hdr_core.distributed import all_reduce_means, shared_memory_all_reduce, sync_batchnorm
from hdr_core.lighting import LIGHT_METRICS, light_errors
from hdr_core.losses import lanet_loss, light_loss, log_mse, pano_masked_loss, si_mse
from hdr_core.masks import segmentation_labels
from hdr_core.models import create_model


@dataclass
class TrainConfig:
    """Every training option; YAML files and ``--field value`` flags override these defaults."""

    # run
    out_dir: str = "runs/default"
    seed: int = 0
    device: str = "auto"  #: auto | cpu | cuda | cuda:N
    resume: bool = False  #: continue from out_dir/checkpoints/latest if it exists
    # data
    data: list[str] = field(default_factory=list)  #: folders or files of HDR panoramas (.hdr/.exr)
    val_scenes: list[str] = field(default_factory=list)  #: file stems held out for validation
    #: a validation groups file (``configs/data/validation_groups.yaml``): its whole site groups are the validation set
    #: (replaces ``val_scenes``)
    val_groups_file: str = ""
    stage: str = "crop"  #: crop (stage 1) | pano (stage 2)
    crop_size: int = 256
    pano_height: int = 256
    store_height: int = 512
    jpeg_prob: float = 0.0
    #: LDR styles (``hdr_core.looks.LDR_STYLES``) and their mixing weights, one style drawn per training pair
    ldr_styles: dict = field(default_factory=lambda: {"virtual": 1.0})
    #: styles validation reports one by one (``val/<style>/loss``); empty = the styles of ``ldr_styles``
    val_styles: list[str] = field(default_factory=list)
    #: validation pairs cycle through the validation panoramas (each counts equally) instead of drawing one at random
    #: per pair (the default, which every validation figure in the docs until 2026-12-07 used)
    val_balanced: bool = False
    #: exposure error of the training pairs' LDRs, ``[lo, hi]`` stops drawn uniformly per pair (beyond the paper: real
    #: photos are not always exposed as a meter would; ``[0, 0]`` = as metered, the paper's pairs)
    exposure_ev: list = field(default_factory=lambda: [0.0, 0.0])
    #: one fixed exposure error (stops) for every validation pair (0 = as metered); scores how a model holds up on
    #: photos exposed brighter or darker than metered
    val_exposure_ev: float = 0.0
    #: draw training panoramas with weights ``1 + scene_light_weight * s``, ``s`` the share of a panorama's light in
    #: its brightest light (``data.pairs.scene_light_weights``): > 0 trains more often on panoramas with a sun or a
    #: lamp (beyond the paper; 0 = every panorama equally often, the paper's pairs)
    scene_light_weight: float = 0.0
    #: probability that a training pair's panorama gets an inserted sun or lamp holding ``insert_light_share`` of its
    #: light (``hdr_core.augment.insert_light``; beyond the paper: new lights, not the training panoramas' own ones
    #: seen more often; never in validation; 0 = the paper's pairs)
    insert_light: float = 0.0
    #: ``[lo, hi]``: an inserted light's share of its panorama's light is drawn uniformly in it (0 <= lo <= hi < 1)
    insert_light_share: list = field(default_factory=lambda: [0.3, 0.75])
    workers: int = 0
    # model
    model: str = "lanet_small"
    model_args: dict = field(default_factory=dict)  #: overrides of the registered config's fields
    init_from: str = ""  #: checkpoint folder to initialise weights from (e.g. stage 1 -> stage 2)
    # optimiser (paper: Adam 4e-5, beta1 0.5, x0.8 every 5000 steps, batch 16)
    batch_size: int = 16  #: global batch (split over DDP ranks)
    steps: int = 1000
    lr: float = 4e-5
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay_steps: int = 5000
    lr_decay_rate: float = 0.8
    lr_staircase: bool = False  #: the reference code decays continuously
    grad_clip: float = 0.0
    # speed (docs/benchmarks.md); each changes the numbers of a run a little, none is on by default
    #: autocast mixed precision: bf16 on CPU (oneDNN) and on bf16-capable GPUs, else fp16 with a GradScaler
    amp: bool = False
    channels_last: bool = False  #: NHWC weights and batches (oneDNN / cuDNN kernels); fp32 sums in another order
    compile: bool = False  #: ``torch.compile`` the trained network (inductor; its compile time is part of the run)
    #: Adam as one fused kernel per parameter (``fused=True``) instead of the multi-tensor ops; the same update to
    #: float rounding (~1e-8), ~3x faster optimizer step
    fused_adam: bool = False
    #: 0 = a fresh pair for every item (the paper's on-the-fly pairs); N = items 0..N-1 are made once, before the
    #: loop, and item i reuses pair i % N (the virtual camera and projections cost once per N, not per item)
    pair_pool: int = 0
    #: make the training pairs on the training device as batched torch ops (``data.pairs.DevicePairs``: the virtual
    #: camera without JPEG only; the same draws as the CPU pairs, the same pixels to float rounding)
    pair_device: bool = False
    #: DDP: batch norm statistics over the global batch, so N ranks train as one process does
    #: (``hdr_core.distributed``; one all-reduce per layer and pass: ~30 % of a 2-rank CPU step). False (PyTorch's
    #: DDP default): each rank normalises with its own share of the batch
    sync_bn: bool = False
    #: DDP on CPU processes of one machine: all-reduce the gradients through shared memory (``/dev/shm``;
    #: ``hdr_core.distributed.SharedMemoryAllReduce``) instead of gloo's TCP: the same bits on 2 ranks, ~3x faster
    #: all-reduce. Falls back to gloo (and says why) where it does not apply
    ddp_shared_memory: bool = True
    # losses
    seg_weight: float = 0.05
    mask_beta1: float = 0.2
    mask_beta2: float = 0.01
    pano_si_weight: float = 0.0  #: panoLANet stage 2: add this x whole-panorama siMSE to Eq. 9 (0 = the paper)
    #: Lighting loss on whole panoramas (``losses.light_loss``; beyond the paper, 0 = off): weights of the diffuse
    #: irradiance, glossy-lobe and brightest-light terms, added to the stage's own loss in stage "pano".
    light_irradiance_weight: float = 0.0
    light_glossy_weight: float = 0.0
    light_peak_weight: float = 0.0
    #: The lighting loss applies from this step on (0-based, so steps ``light_from_step + 1`` ... counted from 1):
    #: the shipped ``panolanet_w24`` has it in the second half of stage 2 (800 of 1600). The same as training to this
    #: step with the lighting weights at 0 and resuming with them set (tested).
    light_from_step: int = 0
    # logging / checkpoints
    log_every: int = 10
    eval_every: int = 200
    eval_batches: int = 4
    ckpt_every: int = 200
    keep_checkpoints: int = 2
    progress: bool = True
    #: 0 = the whole schedule; else stop after the first step that ends this many seconds into the loop (validation,
    #: checkpoint and model as at the end; ``--resume`` continues the schedule): a wall-clock budget
    time_limit_s: float = 0.0
    max_shard_mib: int = 0  #: 0 = one model.safetensors; else the final model in shards of at most this many MiB


# ---------------------------------------------------------------------------------------------------- config


def _parse_bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {s!r}")


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """``--config FILE`` (YAML) sets defaults; every TrainConfig field is also a ``--flag``."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, rest = pre.parse_known_args(argv)
    parser = argparse.ArgumentParser(prog="python -m hdr_core.train", description=__doc__.split("\n")[0],
                                     parents=[pre])
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if isinstance(default, bool):
            parser.add_argument(flag, type=_parse_bool, default=None, metavar="BOOL")
        elif isinstance(default, list):
            parser.add_argument(flag, nargs="*", default=None)
        elif isinstance(default, dict):
            parser.add_argument(flag, type=yaml.safe_load, default=None, metavar="YAML")
        else:
            parser.add_argument(flag, type=type(default), default=None)
    args = parser.parse_args(rest)
    values = {}
    if known.config:
        loaded = yaml.safe_load(Path(known.config).read_text()) or {}
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = set(loaded) - names
        if unknown:
            parser.error(f"{known.config}: unknown option(s) {sorted(unknown)}")
        values.update(loaded)
    values.update({k: v for k, v in vars(args).items() if v is not None and k != "config"})
    cfg = TrainConfig(**values)
    if cfg.stage not in ("crop", "pano"):
        parser.error(f"--stage must be crop or pano, got {cfg.stage!r}")
    if not cfg.data:
        parser.error("no training data: give --data FOLDER ... (or `data:` in the config)")
    try:
        check_styles(cfg.ldr_styles)
        check_styles({s: 1.0 for s in cfg.val_styles} or {"virtual": 1.0})
    except ValueError as e:
        parser.error(str(e))
    if cfg.val_groups_file and cfg.val_scenes:
        parser.error("give val_groups_file or val_scenes, not both")
    try:
        cfg.exposure_ev = [float(v) for v in cfg.exposure_ev]
        cfg.val_exposure_ev = float(cfg.val_exposure_ev)
    except (TypeError, ValueError):
        parser.error(f"exposure_ev / val_exposure_ev: expected numbers (stops), got {cfg.exposure_ev!r} / "
                     f"{cfg.val_exposure_ev!r}")
    if len(cfg.exposure_ev) != 2 or not all(math.isfinite(v) for v in cfg.exposure_ev) \
            or cfg.exposure_ev[0] > cfg.exposure_ev[1]:
        parser.error(f"exposure_ev: expected two finite numbers [lo, hi] with lo <= hi (stops), got {cfg.exposure_ev}")
    if not (isinstance(cfg.scene_light_weight, (int, float)) and math.isfinite(cfg.scene_light_weight)
            and cfg.scene_light_weight >= 0):
        parser.error(f"scene_light_weight: expected a number >= 0, got {cfg.scene_light_weight!r}")
    try:
        cfg.insert_light, cfg.insert_light_share = float(cfg.insert_light), [float(v) for v in cfg.insert_light_share]
    except (TypeError, ValueError):
        parser.error(f"insert_light / insert_light_share: expected a probability and two numbers [lo, hi], got "
                     f"{cfg.insert_light!r} / {cfg.insert_light_share!r}")
    try:
        pair_config(cfg)
    except ValueError as e:
        parser.error(str(e))
    if not math.isfinite(cfg.val_exposure_ev):
        parser.error(f"val_exposure_ev: expected a finite number of stops, got {cfg.val_exposure_ev}")
    if cfg.pair_device and (cfg.pair_pool or {s for s, w in cfg.ldr_styles.items() if float(w) > 0} != {"virtual"}
                            or cfg.jpeg_prob or any(cfg.exposure_ev)):
        parser.error("pair_device: only the virtual camera (ldr_styles {virtual: 1}, jpeg_prob 0, exposure_ev [0, 0]),"
                     " without pair_pool")
    return cfg


# ---------------------------------------------------------------------------------------------------- helpers


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Exponential decay as ``tf.train.exponential_decay`` (continuous unless ``lr_staircase``)."""
    p = step / cfg.lr_decay_steps
    return cfg.lr * cfg.lr_decay_rate ** (math.floor(p) if cfg.lr_staircase else p)


def compute_loss(cfg: TrainConfig, model, batch: dict, step: int | None = None) -> tuple[torch.Tensor, dict]:
    """The paper's loss for the stage: LANet siMSE + 0.05 CE (also LANet on whole panoramas); U-Net log-MSE;
    panoLANet stage 2 Eq. 9; a model with a ``training_loss(out, batch)`` method (the ported baselines) uses its own.
    Stage "pano" adds the lighting loss if any ``light_*_weight`` is set (and ``step``, the 0-based index of the
    step whose loss this is, is at least ``light_from_step``; None = always), and reports the light-accuracy figures
    (``irr_err`` ... of :func:`hdr_core.lighting.light_errors`, the prediction calibrated to its input as
    render_eval does). Always also reports the siMSE, so every model's curves compare."""
    x = 2.0 * batch["ldr"] - 1.0
    gt_log = batch["hdr"].clamp(1e-8, 1e4).log()
    out = model(x)
    si = None
    net = getattr(model, "module", model)  # unwrap DDP
    if hasattr(net, "training_loss"):  # a ported baseline brings its own published loss
        loss, _ = net.training_loss(out, batch)
    elif cfg.stage == "pano" and out.merge_mask is not None:
        loss = pano_masked_loss(out.log_hdr, gt_log, out.merge_mask, cfg.mask_beta1, cfg.mask_beta2)
        if cfg.pano_si_weight:
            loss = loss + cfg.pano_si_weight * si_mse(out.log_hdr, gt_log)
    elif out.seg_logits is not None:
        loss, terms = lanet_loss(out, gt_log, segmentation_labels(batch["hdr"]), cfg.seg_weight, return_parts=True)
        si = terms["si_mse"]  # the loss's own siMSE: the very value the line below would compute again
    else:
        loss = log_mse(out.log_hdr, gt_log)
    parts = {"si_mse": (si if si is not None else si_mse(out.log_hdr.detach(), gt_log)).item()}
    if cfg.stage == "pano":
        weights = (cfg.light_irradiance_weight, cfg.light_glossy_weight, cfg.light_peak_weight)
        if any(weights) and (step is None or step >= cfg.light_from_step):
            with torch.autocast(out.log_hdr.device.type, enabled=False):  # fp32 (see light_figures)
                light, terms = light_loss(out.log_hdr.float(), batch["hdr"], batch["ldr"], *weights,
                                          return_parts=True)
            loss = loss + light
            parts.update({f"light_{k}": v.item() for k, v in terms.items()})
        parts.update(light_figures(out.log_hdr.detach().float().clamp(max=20).exp(), batch))
    return loss, parts


@torch.no_grad()
def calibrated_light_errors(pred: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
    """:func:`hdr_core.lighting.light_errors` per panorama (``B``-tensors) of linear panoramas ``pred`` calibrated
    to the batch's LDR input (Eq. 1, as render_eval does it) against its calibrated HDR, in fp32 (:func:`light_figures`
    says why)."""
    with torch.autocast(pred.device.type, enabled=False):
        pred = calibrate(pred.float(), batch["ldr"].float(), channel_axis=1)
        return light_errors(pred, batch["hdr"].float())


@torch.no_grad()
def light_figures(pred: torch.Tensor, batch: dict) -> dict[str, float]:
    """Batch means of :func:`hdr_core.lighting.light_errors` for linear panoramas ``pred``, calibrated to the
    batch's LDR input (Eq. 1, as render_eval does it) against its calibrated HDR. In fp32 even under autocast, like
    the lighting loss: a calibrated sun (up to ~1e5) overflows fp16, and bf16 matrix products would round its
    energy to 3 significant digits."""
    return light_figures_of(calibrated_light_errors(pred, batch))


def light_figures_of(errors: dict[str, torch.Tensor]) -> dict[str, float]:
    """:func:`light_figures` from per-panorama :func:`calibrated_light_errors` (computed once, reduced here)."""
    errors = dict(errors)
    key = errors.pop("key_angle")  # NaN where the panorama has no key light: the mean of the others, and their count
    out = {k: v.mean().item() for k, v in errors.items()}
    out["key_lights"] = float(torch.isfinite(key).sum())
    if out["key_lights"]:
        out["key_angle"] = key.nanmean().item()
    return out


def add_light_figures(store: dict[str, list[float]], prefix: str, figures: dict[str, float]) -> None:
    """Append a batch's :func:`light_figures` to per-batch lists (:func:`hdr_core.distributed.all_reduce_means`
    averages them): ``key_angle`` once per panorama with a key light, so its mean is over those panoramas. Every key
    is created even when a batch has no key light, so all ranks reduce the same keys."""
    for k in LIGHT_METRICS:
        if k == "key_angle":
            store[prefix + k].extend([figures.get(k, 0.0)] * int(figures["key_lights"]))
        elif k in figures:
            store[prefix + k].append(figures[k])


def autocast_context(cfg: TrainConfig, device: torch.device):
    """``(autocast context, GradScaler)`` for ``cfg.amp`` on ``device``: bf16 on CPU and on GPUs that have it, fp16
    (with loss scaling) on older GPUs; without ``amp`` a null context and a disabled scaler."""
    if not cfg.amp:
        return nullcontext(), torch.amp.GradScaler(device.type, enabled=False)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.float16), torch.amp.GradScaler("cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16), torch.amp.GradScaler(device.type, enabled=False)


def cpu_has_native_bf16() -> bool | None:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX), as oneDNN's fast bf16 kernels need; None
    where this torch cannot tell."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return None


def amp_note(cfg: TrainConfig, device: torch.device, native_bf16: bool | None = None) -> str | None:
    """What to say when ``amp`` asks for bf16 on a CPU without bf16 hardware (None otherwise): there oneDNN emulates
    it, and a step is several times slower than in fp32 (``docs/benchmarks.md``)."""
    if not cfg.amp or device.type != "cpu":
        return None
    if (cpu_has_native_bf16() if native_bf16 is None else native_bf16) is not False:
        return None
    return ("amp: this CPU has no bf16 hardware (AVX512-BF16 or AMX), so bf16 autocast is emulated and slower than "
            "fp32 (about 5.5x on an AVX2 AMD EPYC, docs/benchmarks.md); train with --amp false here")


def optimizer_step(cfg: TrainConfig, optimizer, scaler, params: list) -> bool:
    """Clip (``cfg.grad_clip``) and step; returns whether the step was taken. fp16's GradScaler skips a step with
    non-finite gradients itself; bf16 has no scaler, so a step whose gradients are not all finite (bf16 kernels of
    some CPUs leave an inf/NaN now and then; one known case, stride-2 convolutions on one-pixel-wide maps, is avoided in
    ``hdr_core.models.layers.StridedConv2d``) is skipped here instead of writing NaN into the weights for good. Under
    DDP the gradients are already all-reduced, so every rank takes the same decision. fp32 steps are not checked."""
    if cfg.grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    if cfg.amp and not scaler.is_enabled():
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            # GradScaler's own check: one fused pass over every gradient (per-tensor isfinite ops cost ~8 ms a step
            # on the CPU); a scale of 1 leaves the gradients as they are
            found = torch.zeros(1, device=grads[0].device)
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found, torch.ones(1, device=found.device))
            if found.item():
                return False
    scaler.step(optimizer)
    scaler.update()
    return True


def make_optimizer(cfg: TrainConfig, module: torch.nn.Module) -> torch.optim.Adam:
    """Adam (the paper's) over ``module``'s parameters. By default the multi-tensor (``foreach``) implementation: the
    same weights bit for bit as the one-tensor-at-a-time loop (tested), ~1.6x faster on this CPU for panoLANet's
    ~200 parameter tensors; ``cfg.fused_adam``: the fused kernel, faster again, equal to float rounding."""
    kind = {"fused": True} if cfg.fused_adam else {"foreach": True}
    return torch.optim.Adam(module.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), **kind)


def to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    """A batch on the training device; images (4-D tensors) in NHWC memory order if ``channels_last``."""
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if channels_last:
        out = {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v for k, v in out.items()}
    return out


def device_batches(pairs: DevicePairs, sampler: StepSampler, local_batch: int):
    """The batches of ``sampler``'s indices, made on the device by ``pairs``."""
    indices = iter(sampler)
    while chunk := [next(indices, None) for _ in range(local_batch)]:
        if chunk[-1] is None:
            return
        yield pairs.batch(chunk)


def trained_module(net, stage: str):
    """What a stage trains: panoLANet's panorama branch alone on crops (stage 1), else the whole network."""
    return net.pano if stage == "crop" and hasattr(net, "forward_pano") else net


def freeze_unused_by_loss(cfg: TrainConfig, module) -> list[str]:
    """Stop gradients of the parameters whose output the stage's loss never reads, and return their names: in stage 2
    Eq. 9 reads panoLANet's HDR and merge mask, not its panorama branch's segmentation logits. The weights stay as
    they are either way (their gradient is None without this, and Adam skips them); DDP needs it, since it expects a
    gradient for every parameter its outputs reach (``seg_logits`` is an output) and would wait for them forever."""
    head = getattr(getattr(module, "pano", None), "seg_head", None)
    if cfg.stage != "pano" or head is None or hasattr(module, "training_loss") or not hasattr(module, "ceiling"):
        return []
    head.requires_grad_(False)
    return [f"pano.seg_head.{n}" for n, _ in head.named_parameters()]


def tonemap_preview(log_hdr: torch.Tensor) -> torch.Tensor:
    """A display image for TensorBoard: Reinhard x/(1+x) then gamma 1/2.2, ``3xHxW`` in [0, 1]."""
    x = log_hdr.exp()
    return (x / (1 + x)).clamp(0, 1) ** (1 / 2.2)


def param_checksum(model) -> str:
    """SHA-1 of all parameters' bytes (to show DDP ranks hold identical weights)."""
    h = hashlib.sha1()
    for p in model.parameters():
        h.update(p.detach().cpu().numpy().tobytes())
    return h.hexdigest()


class StepSampler(torch.utils.data.Sampler):
    """Indices for steps ``start..steps-1``: step s, rank r gets ``s*global_batch + r*local_batch + k``."""

    def __init__(self, start: int, steps: int, global_batch: int, local_batch: int, rank: int):
        self.start, self.steps, self.g, self.b, self.rank = start, steps, global_batch, local_batch, rank

    def __iter__(self):
        for s in range(self.start, self.steps):
            base = s * self.g + self.rank * self.b
            yield from range(base, base + self.b)

    def __len__(self) -> int:
        return (self.steps - self.start) * self.b


def save_checkpoint(cfg: TrainConfig, net, optimizer, step: int, best_val: float,
                    metrics: dict | None = None) -> None:
    ckdir = Path(cfg.out_dir) / "checkpoints"
    folder = ckdir / f"step_{step:07d}"
    if folder.exists():
        shutil.rmtree(folder)
    save_model(folder, net, extra={"step": step, "stage": cfg.stage})
    import io as _io

    buf = _io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "step": step, "best_val": best_val,
                "torch_rng": torch.get_rng_state(), "metrics": metrics or {}}, buf)
    atomic_write_bytes(folder / "train_state.pt", buf.getvalue())
    atomic_write_text(ckdir / "latest", folder.name)  # the commit point: a checkpoint counts once named here
    old = sorted(p for p in ckdir.glob("step_*") if p.is_dir() and p.name != folder.name)
    for p in old[: max(0, len(old) - (cfg.keep_checkpoints - 1))]:
        shutil.rmtree(p, ignore_errors=True)


def saved_stage(folder: Path) -> str:
    """The training stage a saved model or checkpoint folder was written by (its ``model.json``); "" if unknown."""
    try:
        return str(json.loads((Path(folder) / "model.json").read_text()).get("stage", ""))
    except (OSError, ValueError):
        return ""


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    marker = Path(out_dir) / "checkpoints" / "latest"
    if not marker.is_file():
        return None
    folder = marker.parent / marker.read_text().strip()
    return folder if folder.is_dir() else None


def load_weights(net, folder: Path, strict: bool = True) -> None:
    state = load_state(folder)
    own = net.state_dict().keys()
    if not strict and not own & state.keys() and any(k.startswith("pano.") for k in state):
        # a panoLANet run initialising LANet (the ablation's stage 2): its panorama branch is that network
        state = {k.removeprefix("pano."): v for k, v in state.items() if k.startswith("pano.")}
    if not own & state.keys():
        raise RuntimeError(f"{folder}: no weight in it belongs to this model (a checkpoint of another network?)")
    missing, unexpected = net.load_state_dict(state, strict=False)
    if strict and (missing or unexpected):
        raise RuntimeError(f"{folder}: weights do not match the model (missing {missing[:3]}, unexpected "
                           f"{unexpected[:3]})")


def machine_description() -> str:
    """The machine a run's bits depend on: float results change with the CPU's kernel ISA (PyTorch/oneDNN pick AVX2,
    AVX-512 ... at run time) and with the thread count, so a weight checksum only compares between runs whose
    descriptions match."""
    cpu = platform.processor()
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    n = torch.get_num_threads()
    return (f"{platform.machine()}, {os.cpu_count()} cores ({cpu or 'unknown CPU'}, kernels "
            f"{torch.backends.cpu.get_cpu_capability()}, {n} thread{'s' * (n != 1)}){gpu}, torch {torch.__version__}")


def training_record(cfg: TrainConfig, summary: dict, command: str, train_files: list[Path], val_files: list[Path],
                    excluded: list[Path], finished: str | None = None, duplicates: list[Path] = (),
                    val_groups: dict | None = None, excluded_reasons: dict | None = None,
                    segments: list[dict] = ()) -> dict:
    """What ``RUN/model/training.json`` holds: the command and the resolved config, the data (train / validation /
    excluded by the split rules / lower-resolution duplicates, each panorama with its normalised manifest entry:
    class, site group, licence, provenance; :func:`hdr_core.data.catalog.read_manifest`), the validation groups
    file (path, sha256, groups), the LDR style mix, the final metrics, when and where; each segment of a resumed
    run (its steps, command, config differences, machine: ``command`` and ``config`` are the last segment's); and
    the ``init_from`` run's record, so a stage-2 model carries stage 1's too."""
    def panoramas(files: list[Path]) -> list[dict]:
        entries = entries_for(list(files))
        return [entries[Path(f)] for f in sorted(files)]

    train = panoramas(train_files)
    config = config_dict(cfg)
    record = {
        "command": command,
        "config": config,
        "segments": training_segments(list(segments), config),
        "data": {"train": train, "validation": panoramas(val_files),
                 "excluded_by_split_rules": [{**e, "excluded_because": (excluded_reasons or {}).get(Path(f), "")}
                                             for f, e in zip(sorted(excluded), panoramas(excluded))],
                 "dropped_duplicates": panoramas(list(duplicates)),
                 "validation_groups": val_groups,
                 "train_counts": {"panoramas": len(train),
                                  "by_folder": _counts(e["folder"] for e in train),
                                  "by_class": _counts(e["class"] for e in train)}},
        "ldr_styles": dict(cfg.ldr_styles),
        "metrics": summary,
        "finished_utc": finished or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_description(),
    }
    if cfg.init_from:  # a run folder (its finished model/) or a model folder itself (e.g. the shipped weights)
        for src in (Path(cfg.init_from) / "model" / "training.json", Path(cfg.init_from) / "training.json"):
            if src.is_file():
                record["init_from_record"] = json.loads(src.read_text())
                break
    return record


def config_dict(cfg: TrainConfig) -> dict:
    """The resolved config as JSON values (lists, not tuples): what training.json and the checkpoints store."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def segment_entry(cfg: TrainConfig, command: str, world: int) -> dict:
    """What one segment of a run (the steps one command trained) records besides its steps and end time, which the
    loop adds (:func:`main`): the checkpoints carry the segments across resumes and :func:`training_segments`
    writes them into training.json."""
    return {"command": command, "config": config_dict(cfg), "machine": machine_description(), "world_size": world}


def earlier_segments(state_metrics: dict, out_dir: Path, start_step: int) -> list[dict]:
    """The segments before a resume at ``start_step``: the checkpoint's own list; for a checkpoint written before
    runs kept it, the run's training.json when it ended exactly there (its command and config), else one segment
    marked unrecorded."""
    if start_step == 0:
        return []
    if "segments" in state_metrics:
        return list(state_metrics["segments"])
    try:
        rec = json.loads((out_dir / "model" / "training.json").read_text())
    except (OSError, ValueError):
        rec = {}
    if rec.get("metrics", {}).get("steps") == start_step:
        return rec.get("segments") or [{
            "steps": [0, start_step], "command": rec.get("command"), "config": rec.get("config"),
            "finished_utc": rec.get("finished_utc"), "machine": rec.get("machine"),
            "world_size": rec.get("metrics", {}).get("world_size"),
            "note": "from the run's training.json of before per-segment records: if that run was resumed too, its "
                    "earlier commands are not recorded"}]
    return [{"steps": [0, start_step], "command": None, "config": None,
             "note": "not recorded: the checkpoint was written before training records kept each segment"}]


def training_segments(segments: list[dict], final_config: dict) -> list[dict]:
    """The segments as training.json lists them: each one's config as its differences from the final config (the
    record's ``config``), so what changed between segments (steps, a loss weight) reads at a glance."""
    out = []
    for seg in segments:
        seg = dict(seg)
        cfg = seg.pop("config", None)
        if cfg is not None:
            seg["config_differences"] = {k: v for k, v in cfg.items() if final_config.get(k) != v}
        out.append(seg)
    return out


def _counts(values) -> dict[str, int]:
    return dict(sorted(collections.Counter(values).items()))


# ---------------------------------------------------------------------------------------------------- main


@dataclass
class DataSplit:
    """The panoramas of ``cfg.data`` as a run uses them (:func:`split_files`)."""

    train: list[Path]
    val: list[Path]
    excluded: list[Path]  #: the public test set and its cousins (split rules)
    excluded_reasons: dict  #: why each was excluded
    duplicates: list[Path]  #: smaller copies of panoramas given twice, dropped
    val_groups: dict | None  #: the validation groups file's content, if one was used


def split_files(cfg: TrainConfig, log=print) -> DataSplit:
    """Training and validation panoramas of ``cfg.data``: the public test set and its cousins left out (split
    rules), the larger copy of a panorama given twice kept, validation by ``val_groups_file`` or ``val_scenes``.
    ``log`` (None = silent) hears what was left out; a violated rule is a ``SystemExit``."""
    files = find_hdr_files(cfg.data)
    if not files:
        raise SystemExit(f"no .hdr/.exr panoramas found in {cfg.data}")
    excluded_reasons = violations(files)
    kept = filter_training_files(files)
    excluded = sorted(set(files) - set(kept))
    if log and excluded:
        log(f"split rules: not training on {len(excluded)} test-set panorama(s): {', '.join(map(str, excluded))}",
            flush=True)
    files, duplicates = prefer_originals(kept)
    if log and duplicates:
        log(f"using the larger copy of {len(duplicates)} panorama(s) given twice; dropped "
            f"{', '.join(map(str, duplicates))}", flush=True)
    check_training_files(files)
    val_groups = None
    try:
        if cfg.val_groups_file:
            val_groups = load_validation_groups(cfg.val_groups_file)
            train_files, val_files = split_by_groups(files, val_groups)
        else:
            val_files = [f for f in files if f.stem in set(cfg.val_scenes)]
            train_files = [f for f in files if f.stem not in set(cfg.val_scenes)]
        check_site_groups(train_files, val_files)
    except (ManifestError, SplitViolation) as e:
        raise SystemExit(f"error: {e}") from e
    if not train_files:
        raise SystemExit("every panorama is a validation scene: nothing to train on")
    return DataSplit(train_files, val_files, excluded, excluded_reasons, duplicates, val_groups)


def pair_config(cfg: TrainConfig) -> PairConfig:
    """The training pairs' :class:`PairConfig` (stage 1 crops or stage 2 panoramas, the LDR style mix)."""
    return PairConfig(mode=cfg.stage, crop_size=cfg.crop_size, pano_height=cfg.pano_height,
                      store_height=cfg.store_height if cfg.stage == "crop" else cfg.pano_height,
                      camera=CameraConfig(jpeg_prob=cfg.jpeg_prob), ldr_styles=dict(cfg.ldr_styles),
                      exposure_ev=tuple(float(v) for v in cfg.exposure_ev), insert_light=float(cfg.insert_light),
                      insert_light_share=tuple(float(v) for v in cfg.insert_light_share))


def validation_styles(cfg: TrainConfig) -> list[str]:
    """The LDR styles validated: those of the training mix, then ``val_styles``."""
    mix = [s for s, w in cfg.ldr_styles.items() if float(w) > 0]
    return list(dict.fromkeys(mix + list(cfg.val_styles)))


def validation_pair_config(cfg: TrainConfig) -> PairConfig:
    """The validation pairs' :class:`PairConfig`: the training pairs' with the one exposure error
    ``val_exposure_ev`` and no inserted lights (each style then set per :func:`validation_sets`' dataset)."""
    return dataclasses.replace(pair_config(cfg), exposure_ev=(cfg.val_exposure_ev, cfg.val_exposure_ev),
                               insert_light=0.0, insert_light_share=PairConfig.insert_light_share)


def validation_sets(cfg: TrainConfig, val_files: list[Path], extras: bool = False) -> dict[str, PairDataset]:
    """One :class:`PairDataset` per validation style (the mix's styles, then ``val_styles``): the same held-out pairs
    (views, seeds) in every style, so styles compare pair by pair, ``eval_batches * batch_size`` pairs each (under
    DDP each rank evaluates its share). With ``val_balanced`` the pairs cycle through the panoramas (each counts
    equally when that number is a multiple of their count). Empty without validation files."""
    if not val_files:
        return {}
    pair_cfg = validation_pair_config(cfg)
    panos = load_panoramas(val_files, pair_cfg.store_height)
    return {s: PairDataset(panos, dataclasses.replace(pair_cfg, style=s), cfg.eval_batches * cfg.batch_size,
                           seed=12345, views="standard", augment=False, extras=extras,
                           scenes="cycle" if cfg.val_balanced else "random")
            for s in validation_styles(cfg)}


def unbalanced_note(cfg: TrainConfig, val_files: list[Path]) -> str | None:
    """What to say when ``val_balanced`` pairs cannot count every panorama equally (their number per style is not a
    multiple of the panoramas); None when they can, or when validation is not balanced."""
    n = cfg.eval_batches * cfg.batch_size
    if cfg.val_balanced and val_files and n % len(val_files):
        return f"val_balanced: {n} pairs per style over {len(val_files)} panoramas, not a multiple: some count once " \
               "more than others"
    return None


def validation_setup(cfg: TrainConfig, val_files: list[Path]) -> dict:
    """What a run's validation figures are measured on: the panoramas, styles and number of pairs, how they are made
    and how ``val/loss`` weighs the styles. Checkpoints carry it; a resume whose setup differs cannot compare its
    figures with the checkpoint's first validation or best loss (:func:`main` drops them, saying why)."""
    pairs = dataclasses.asdict(validation_pair_config(cfg))  # size, camera, exposure error, the mix
    for k in ("insert_light", "insert_light_share"):  # never in validation: not part of its setup (nor of older ones)
        pairs.pop(k)
    return {"panoramas": [f.name for f in val_files], "styles": validation_styles(cfg),
            "pairs_per_style": cfg.eval_batches * cfg.batch_size, "balanced": bool(cfg.val_balanced), "pairs": pairs}


def training_device(name: str, local_rank: int, cuda_available: bool) -> torch.device:
    """The device a process trains on: ``auto`` is CUDA when there is one, else the CPU; a CUDA device without an
    index (``cuda``) is this process's GPU, ``cuda:<local_rank>`` (``torch.cuda.set_device`` needs the index, and
    each torchrun rank its own GPU); an explicit index is kept."""
    if name == "auto":
        name = "cuda" if cuda_available else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def process_group_backend(device_type: str) -> str:
    """The ``torch.distributed`` backend for training on ``device_type``: gloo on the CPU; on CUDA, NCCL for the
    device tensors (gradients, SyncBatchNorm) and gloo for the CPU ones (the validation means of
    :func:`hdr_core.distributed.all_reduce_means`), which NCCL alone refuses."""
    return "cuda:nccl,cpu:gloo" if device_type == "cuda" else "gloo"


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(argv)

    # --- distributed and device -------------------------------------------------------------------
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    local_rank = int(os.environ.get("LOCAL_RANK", "0")) if ddp else 0
    device = training_device(cfg.device, local_rank, torch.cuda.is_available())
    if ddp:
        torch.distributed.init_process_group(backend=process_group_backend(device.type))
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    else:
        rank, world = 0, 1
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # every step has the same shapes: let cuDNN pick its fastest kernels
    master = rank == 0
    if cfg.batch_size % world:
        raise SystemExit(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    local_batch = cfg.batch_size // world
    torch.manual_seed(cfg.seed)
    out_dir = Path(cfg.out_dir)
    if master:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    ctx, scaler = autocast_context(cfg, device)
    slow_amp = amp_note(cfg, device)
    if master and slow_amp:
        print(slow_amp, flush=True)

    # --- data ------------------------------------------------------------------------------------
    split = split_files(cfg, log=print if master else None)
    train_files, val_files = split.train, split.val
    pair_cfg = pair_config(cfg)
    net = create_model(cfg.model, **cfg.model_args)
    extras = hasattr(net, "training_loss")  # display / hdr_camera / crf: only the ported baselines' losses read them
    train_panos = load_panoramas(train_files, pair_cfg.store_height)
    scene_weights = None
    if cfg.scene_light_weight:
        scene_weights = scene_light_weights(train_panos, cfg.scene_light_weight)
        if master:
            p = scene_weights / scene_weights.sum()
            most = ", ".join(train_files[j].stem for j in sorted(range(len(p)), key=lambda j: -p[j])[:3])
            print(f"scene_light_weight {cfg.scene_light_weight:g}: panoramas drawn {p.min() * len(p):.2f}x to "
                  f"{p.max() * len(p):.2f}x as often as uniformly (most: {most})", flush=True)
    train_ds = PairDataset(train_panos, pair_cfg, cfg.steps * cfg.batch_size, cfg.seed, extras=extras,
                           scene_weights=scene_weights)
    mix = {s: float(w) for s, w in cfg.ldr_styles.items() if float(w) > 0}
    val_styles = validation_styles(cfg)
    val_sets = validation_sets(cfg, val_files, extras)
    note = unbalanced_note(cfg, val_files)
    if master and note:
        print(note, flush=True)

    # --- model -----------------------------------------------------------------------------------
    if getattr(net, "requires_virtual_camera", False) and set(val_styles) - {"virtual"}:
        raise SystemExit(f"{cfg.model}: its training loss needs the virtual camera's response curve (crf); train and "
                         "validate it with ldr_styles {virtual: 1} and no other val_styles")
    start_step, best_val = 0, float("inf")
    resumed_metrics: dict = {}  # the first validation and the latest logged values, kept across resumes
    resume_from = latest_checkpoint(out_dir) if cfg.resume else None
    if resume_from is not None:
        load_weights(net, resume_from)
    elif cfg.init_from:
        src = latest_checkpoint(cfg.init_from) or Path(cfg.init_from)
        load_weights(net, src, strict=False)
        # from a stage-1 run the ceiling branch starts as the panorama branch; a stage-2 model keeps its own
        if cfg.stage == "pano" and hasattr(net, "init_ceiling_from_pano") and saved_stage(src) != "pano":
            net.init_ceiling_from_pano()
    net.to(device)
    if cfg.channels_last:
        net.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, trained_module(net, cfg.stage))
    if resume_from is not None:
        state = torch.load(resume_from / "train_state.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        start_step, best_val = state["step"], state["best_val"]
        torch.set_rng_state(state["torch_rng"])
        resumed_metrics = state.get("metrics", {})
    val_setup = validation_setup(cfg, val_files)
    was = resumed_metrics.get("val_setup")  # None: a checkpoint from before it was recorded (not checked)
    val_changed = was is not None and was != val_setup
    if val_changed:  # its first validation, best loss and last figures are of other pairs
        changed = sorted(k for k in {*was, *val_setup} if was.get(k) != val_setup.get(k))
        if master:
            print(f"resume: the validation differs from the checkpoint's ({', '.join(changed)}): its first "
                  "validation and best loss are dropped, and the figures are this validation's", flush=True)
        best_val = float("inf")
        resumed_metrics = {**resumed_metrics, "initial_val": {},
                           "last": {k: v for k, v in resumed_metrics.get("last", {}).items()
                                    if not k.startswith("val/")}}
    module = trained_module(net, cfg.stage)
    freeze_unused_by_loss(cfg, module)
    if ddp and cfg.sync_bn:
        sync_batchnorm(module, device)
    model = module
    if ddp:
        # find_unused_parameters walks the autograd graph after every backward: only for a ported baseline's own loss
        # in stage 2, which may leave outputs unused (panoLANet's unread head is frozen above; LANet's loss reads all)
        model = torch.nn.parallel.DistributedDataParallel(
            module, device_ids=[local_rank] if device.type == "cuda" else None,
            find_unused_parameters=cfg.stage == "pano" and hasattr(module, "training_loss"),
            gradient_as_bucket_view=True)  # the same sums, fewer copies
        if cfg.ddp_shared_memory and device.type == "cpu":
            why_not = shared_memory_all_reduce(model)
            if master:
                print("DDP all-reduce: " + (f"gloo ({why_not})" if why_not else "shared memory"), flush=True)
    if cfg.compile:
        model = torch.compile(model)

    workers = cfg.workers
    if cfg.pair_pool and start_step < cfg.steps:
        t = time.time()
        size = min(cfg.pair_pool, len(train_ds))
        # item i reads slot i % size: with a pool size that the global batch divides, rank r reads exactly the slots
        # its sampler gives over the pool's first size / batch steps, so each rank makes only its own share;
        # otherwise every rank makes the whole pool (the same pairs either way)
        slots = (list(StepSampler(0, size // cfg.batch_size, cfg.batch_size, local_batch, rank))
                 if world > 1 and size % cfg.batch_size == 0 else None)
        train_ds = PairPool(train_ds, size, workers=cfg.workers, device=device, slots=slots)
        workers = 0  # nothing left to compute per item
        if master:
            print(f"pair pool: {train_ds.size} pairs ({train_ds.nbytes() / 2**20:.0f} MiB on {device}"
                  f"{f', {len(train_ds.rows)} of them on each of the {world} ranks' if slots else ''}) made in "
                  f"{time.time() - t:.1f} s; each is used {len(train_ds) / train_ds.size:.1f} times", flush=True)
    loader = torch.utils.data.DataLoader(
        train_ds, batch_size=local_batch, num_workers=workers, pin_memory=device.type == "cuda" and not cfg.pair_pool,
        sampler=StepSampler(start_step, cfg.steps, cfg.batch_size, local_batch, rank),
        persistent_workers=workers > 0)

    writer = None
    if master:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tb"), purge_step=start_step)

    val_batches: dict[str, list[dict]] = {}  # the fixed validation pairs, made at the first evaluation, then kept
    val_ldr_light: dict[str, float] = {}  # the plain LDR's light figures on those pairs (stage pano)

    @torch.no_grad()
    def evaluate(done: int) -> dict[str, float]:
        """``val/<style>/loss`` and ``val/<style>/si_mse`` per style; ``val/loss`` and ``val/si_mse`` are their
        means weighted by the training mix (with the default mix, exactly the virtual camera's). Stage ``pano``
        also gives the light-accuracy figures ``val/<style>/irr_err`` ... and, beside them, the plain LDR's own
        (``val/<style>/ldr_irr_err`` ...: the linearised input calibrated to itself, render_eval's "LDR" row; the
        same pairs every time, so computed once). ``done``: the steps taken so far; the loss is that of the last
        one (for the lighting loss's ``light_from_step``)."""
        if not val_sets:
            return {}
        if not val_batches:
            mine = StepSampler(0, cfg.eval_batches, cfg.batch_size, local_batch, rank)  # as a training step
            val_batches.update({s: [to_device(b, device, cfg.channels_last)
                                    for b in torch.utils.data.DataLoader(ds, batch_size=local_batch, sampler=mine)]
                                for s, ds in val_sets.items()})
            if cfg.stage == "pano":
                ldr_light: dict[str, list[float]] = collections.defaultdict(list)
                for s, batches in val_batches.items():
                    for batch in batches:
                        add_light_figures(ldr_light, f"val/{s}/ldr_", light_figures(batch["ldr"].float(), batch))
                val_ldr_light.update(all_reduce_means(ldr_light))
        model.eval()
        out: dict[str, float] = dict(val_ldr_light)
        per_batch: dict[str, list[float]] = collections.defaultdict(list)  # this rank's batches
        for s, batches in val_batches.items():
            for batch in batches:
                with ctx:  # the loss of the last step taken (the first, before any)
                    loss, parts = compute_loss(cfg, module, batch, max(done - 1, 0))
                per_batch[f"val/{s}/loss"].append(loss.item())
                per_batch[f"val/{s}/si_mse"].append(parts["si_mse"])
                if "key_lights" in parts:  # stage "pano"
                    add_light_figures(per_batch, f"val/{s}/", parts)
        out.update(all_reduce_means(per_batch))  # over every rank's batches: one process's figures
        total = sum(mix.values())
        if len(mix) == 1:
            (s,) = mix
            out["val/loss"], out["val/si_mse"] = out[f"val/{s}/loss"], out[f"val/{s}/si_mse"]
        else:
            out["val/loss"] = sum(w * out[f"val/{s}/loss"] for s, w in mix.items()) / total
            out["val/si_mse"] = sum(w * out[f"val/{s}/si_mse"] for s, w in mix.items()) / total
        model.train()
        return out

    def preview(batch: dict, step: int) -> None:
        module.eval()
        with torch.no_grad(), ctx:
            out = module(2.0 * batch["ldr"][:1] - 1.0)
        module.train()
        writer.add_image("preview/ldr", batch["ldr"][0].clamp(0, 1) ** (1 / 2.2), step)
        writer.add_image("preview/pred", tonemap_preview(out.log_hdr[0].float()), step)
        writer.add_image("preview/gt", tonemap_preview(batch["hdr"][0].clamp(1e-8, 1e4).log()), step)

    # --- loop ------------------------------------------------------------------------------------
    from tqdm import tqdm

    initial_val = evaluate(0) if start_step == 0 else dict(resumed_metrics.get("initial_val", {}))

    model.train()
    bar = tqdm(total=cfg.steps, initial=start_step, disable=not (master and cfg.progress), unit="step",
               dynamic_ncols=True)
    step, t0, last = start_step, time.time(), dict(resumed_metrics.get("last", {}))
    if val_changed and start_step >= cfg.steps:  # nothing to train: the summary still gets this validation's figures
        last.update(evaluate(start_step))
    command = "python -m hdr_core.train " + shlex.join(sys.argv[1:] if argv is None else argv)
    segments = earlier_segments(resumed_metrics, out_dir, start_step) if master else []
    this_segment = segment_entry(cfg, command, world) if master else {}

    def with_this_segment() -> list[dict]:  # a resume that trains nothing adds no segment
        if step == start_step and segments:
            return segments
        return [*segments, {"steps": [start_step, step], **this_segment,
                            "finished_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}]
    stop = False  # the time limit is reached
    skipped = 0  # bf16 steps skipped for non-finite gradients (optimizer_step)
    params = list(module.parameters())
    it = device_batches(DevicePairs(train_ds, device), loader.sampler, local_batch) if cfg.pair_device else iter(loader)
    while step < cfg.steps and not stop:
        batch = to_device(next(it), device, cfg.channels_last)
        lr = learning_rate(cfg, step)
        for g in optimizer.param_groups:
            g["lr"] = lr
        with ctx:
            loss, parts = compute_loss(cfg, model, batch, step)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if not optimizer_step(cfg, optimizer, scaler, params):
            skipped += 1
            if master:
                print(f"step {step + 1}: non-finite bf16 gradients, step skipped ({skipped} so far)", flush=True)
        step += 1
        if cfg.time_limit_s:
            stop = time.time() - t0 > cfg.time_limit_s
            if ddp:  # every rank stops after the same step
                flag = torch.tensor(float(stop), device=device)
                torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                stop = bool(flag.item())
        end = stop or step == cfg.steps
        if master:
            # the stage's own figures: siMSE, and in stage "pano" the lighting-loss terms and light figures
            last = {"train/loss": loss.item(), **{f"train/{k}": v for k, v in parts.items() if k != "key_lights"},
                    "lr": lr}
            bar.set_postfix(loss=f"{last['train/loss']:.4f}")
            bar.update(1)
            if step % cfg.log_every == 0 or end:
                dt = time.time() - t0
                last["steps_per_s"] = (step - start_step) / max(dt, 1e-9)
                for k, v in last.items():
                    writer.add_scalar(k, v, step)
        if step % cfg.eval_every == 0 or end:
            val = evaluate(step)
            if master:
                for k, v in val.items():
                    writer.add_scalar(k, v, step)
                best_val = min(best_val, val.get("val/loss", best_val))
                preview(batch, step)
                last.update(val)
        if master and (step % cfg.ckpt_every == 0 or end):
            save_checkpoint(cfg, net, optimizer, step, best_val,
                            {"initial_val": initial_val, "last": last, "segments": with_this_segment(),
                             "val_setup": val_setup})
    bar.close()
    if master and stop:
        print(f"time limit: stopped after step {step} of {cfg.steps} ({time.time() - t0:.0f} s)", flush=True)

    # --- finish ----------------------------------------------------------------------------------
    checksum = param_checksum(net)
    checksums = [checksum]
    if ddp:
        gathered = [None] * world
        torch.distributed.all_gather_object(gathered, checksum)
        checksums = gathered
    summary = {"steps": step, "skipped_steps": skipped, "world_size": world, "param_checksums": checksums, **last,
               **{k.replace("val/", "val/initial_"): v for k, v in initial_val.items()}}
    if master:
        save_model(out_dir / "model", net, extra={"stage": cfg.stage, "steps": step},
                   max_shard_bytes=cfg.max_shard_mib * 2**20)
        record = training_record(cfg, summary, command, train_files, val_files, split.excluded,
                                 duplicates=split.duplicates, val_groups=split.val_groups,
                                 excluded_reasons=split.excluded_reasons,
                                 segments=with_this_segment())
        atomic_write_text(out_dir / "model" / "training.json", json.dumps(record, indent=2))
        atomic_write_text(out_dir / "final.json", json.dumps(summary, indent=2))
        writer.close()
    if ddp:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return summary


if __name__ == "__main__":
    main()
