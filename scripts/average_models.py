"""Average the weights of several trained runs of one model, then recompute its batch-norm statistics (beyond the
paper; docs/models.md, "Weight averaging").

    .venv/bin/python scripts/average_models.py OUT RUN_A/model RUN_B/model [...] \
        --config configs/real50_panolanet_w24_fast_stage2.yaml [--bn-batches 32]

Runs fine-tuned from the same start (two seeds of one recipe: a uniform "model soup", Wortsman et al. 2022) or
checkpoints of one run's trajectory (as stochastic weight averaging, Izmailov et al. 2018) often lie in one basin
of the loss, and their mean generalises at least as well as each. Every floating-point weight and buffer is the
mean over the models (accumulated in float64); the models must share the registered name and config (a highlight
gain included: average before fitting one). A weight average is not a network whose batch-norm running statistics
are the mean of the members', so they are then measured again, as SWA does: ``--bn-batches`` batches of training
pairs of ``--config`` (its training panoramas, LDR-style mix, pair size and batch; never validation) through what
its stage trains (stage 1 of panoLANet: the panorama branch on crops), each
layer's statistics the plain mean over those batches (``momentum=None``), no gradient, no weight change.
``--bn-batches 0`` keeps the averaged statistics.

Writes ``OUT/model.safetensors`` + ``model.json`` (the members' stage, the largest of their steps) and
``OUT/training.json``: the command, each member's folder, weight checksum and ``training.json``, and the
batch-norm pass. The folder is a checkpoint like a run's ``model/``: ``scripts/fit_highlight_gain.py``,
``hdr_core.train --init-from`` and ``scripts/ship_model.py`` take it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def average_state(states: list[dict]) -> dict:
    """The mean of state dicts with the same keys and shapes: floating-point tensors averaged in float64 and cast
    back; integer tensors (batch norm's ``num_batches_tracked``) taken from the first."""
    keys = list(states[0])
    for i, s in enumerate(states[1:], 1):
        if list(s) != keys:
            raise ValueError(f"model {i + 1} has other weights than model 1")
    out = {}
    for k in keys:
        first = states[0][k]
        if any(s[k].shape != first.shape for s in states):
            raise ValueError(f"weight {k!r} has different shapes")
        if first.is_floating_point():
            out[k] = (sum(s[k].double() for s in states) / len(states)).to(first.dtype)
        else:
            out[k] = first.clone()
    return out


def recompute_batch_norm(model, batches) -> int:
    """Measure every batch-norm layer's running mean and variance again: reset, then the cumulative mean over
    ``batches`` (dicts with ``ldr``, linear LDR in [0, 1]) of forward passes in training mode without gradients.
    Nothing else changes. Returns the number of layers (0: nothing to do, the batches are not read)."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative moving average: the plain mean over the batches
    was_training = model.training
    model.train()
    with torch.no_grad():
        for batch in batches:
            model(2.0 * batch["ldr"] - 1.0)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)
    return len(norms)


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder to write the averaged model into")
    p.add_argument("models", type=Path, nargs="+", help="checkpoint folders (a run's model/ or checkpoints/step_N)")
    p.add_argument("--config", required=True, help="training config whose training pairs measure the batch norms")
    p.add_argument("--bn-batches", type=int, default=32, help="batches of training pairs for the batch-norm "
                                                              "statistics (0: keep the averaged ones)")
    p.add_argument("--seed", type=int, default=None, help="seed of those pairs (default: the config's)")
    args = p.parse_args(argv)

    import torch

    from hdr_core.checkpoint import atomic_write_text, load_model, read_meta, save_model
    from hdr_core.data.pairs import PairDataset, load_panoramas
    from hdr_core.models import create_model
    from hdr_core.train import (
        machine_description,
        pair_config,
        param_checksum,
        parse_config,
        split_files,
        trained_module,
    )

    if len(args.models) < 2:
        raise SystemExit("average_models: give at least two models")
    if args.bn_batches < 0:
        raise SystemExit(f"--bn-batches must be >= 0, got {args.bn_batches}")
    metas = []
    for folder in args.models:
        try:
            metas.append(read_meta(folder))
        except FileNotFoundError as e:
            raise SystemExit(f"{folder}: not a checkpoint folder ({e})") from None
    for folder, meta in zip(args.models[1:], metas[1:]):
        for key in ("model", "config", "stage"):
            if meta.get(key) != metas[0].get(key):
                raise SystemExit(f"{folder}: its {key} differs from {args.models[0]}'s; only runs of one model "
                                 "average")
    net = create_model(metas[0]["model"], config=metas[0]["config"])
    members = []
    states = []
    for folder, meta in zip(args.models, metas):
        member = load_model(folder)
        states.append(member.state_dict())  # float32, whatever the file stored
        record = folder / "training.json"
        members.append({"folder": str(folder), "steps": meta.get("steps"),
                        "checksum": param_checksum(member),
                        "training": json.loads(record.read_text()) if record.is_file() else None})
    net.load_state_dict(average_state(states))

    bn: dict = {"batches": args.bn_batches}
    if args.bn_batches:
        cfg = parse_config(["--config", args.config])
        if cfg.stage != metas[0].get("stage", cfg.stage):
            raise SystemExit(f"{args.config}: stage {cfg.stage!r}, the models were trained in stage "
                             f"{metas[0]['stage']!r}")
        files = split_files(cfg, log=None).train
        pcfg = pair_config(cfg)
        seed = cfg.seed if args.seed is None else args.seed
        ds = PairDataset(load_panoramas(files, pcfg.store_height), pcfg, length=args.bn_batches * cfg.batch_size,
                         seed=seed, extras=False)
        t0 = time.perf_counter()
        # what the stage trains sees its pairs (stage 1 of panoLANet: the panorama branch, on crops)
        layers = recompute_batch_norm(trained_module(net, cfg.stage),
                                      torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size))
        bn.update(config=args.config, seed=seed, batch_size=cfg.batch_size, layers=layers,
                  panoramas=[f.name for f in files], seconds=round(time.perf_counter() - t0, 1))
    net.eval()
    extra = {"stage": metas[0].get("stage"), "steps": max(int(m.get("steps") or 0) for m in metas)}
    save_model(args.out, net, extra={k: v for k, v in extra.items() if v is not None})
    record = {"command": " ".join(["scripts/average_models.py", *(argv if argv is not None else sys.argv[1:])]),
              "averaged_from": members, "batch_norm": bn, "checksum": param_checksum(net),
              "machine": machine_description(), "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write_text(args.out / "training.json", json.dumps(record, indent=1))
    print(f"averaged {len(args.models)} models into {args.out} (checksum {record['checksum'][:8]}); batch norm: "
          + (f"{bn['layers']} layers measured on {args.bn_batches} batches of training pairs" if args.bn_batches
             else "the members' statistics averaged"))
    return args.out


if __name__ == "__main__":
    main()
