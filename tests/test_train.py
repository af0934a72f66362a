"""Training: smoke run, exact resume after SIGKILL, DDP on 2 CPU processes (gloo)."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from hdr_core.train import TrainConfig, learning_rate, parse_config

ROOT = Path(__file__).resolve().parents[1]


def _args(pano_folder, out, *extra):
    return ["--config", str(ROOT / "configs" / "smoke.yaml"), "--data", str(pano_folder), "--val-scenes", "v0",
            "--out-dir", str(out), "--crop-size", "32", "--store-height", "32", "--progress", "false", *extra]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return env


def test_config_yaml_and_flags(tmp_path, pano_folder):
    cfg = parse_config(_args(pano_folder, tmp_path, "--steps", "7", "--model-args", "{encoder_width: 8}"))
    assert cfg.steps == 7 and cfg.batch_size == 4 and cfg.model_args == {"encoder_width": 8}
    with pytest.raises(SystemExit):
        parse_config(["--stage", "cube", "--data", "x"])
    with pytest.raises(SystemExit):
        parse_config([])  # no data


def _repo_config(path: Path) -> TrainConfig:
    """A config of configs/ as training would resolve it (configs without ``data`` get it from --data)."""
    has_data = "data" in (yaml.safe_load(path.read_text()) or {})
    return parse_config(["--config", str(path), *([] if has_data else ["--data", "DATA"])])


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_repo_config_parses_and_names_a_registered_model(config):
    from hdr_core.models import is_model

    cfg = _repo_config(config)
    assert is_model(cfg.model), f"{config.name}: model {cfg.model!r} is not registered"
    assert cfg.stage in ("crop", "pano") and cfg.steps > 0
    if (ROOT / cfg.init_from / "model.json").is_file():  # a fine-tune of shipped weights: they fit the model
        from hdr_core.models import create_model
        from hdr_core.train import load_weights

        load_weights(create_model(cfg.model, **cfg.model_args), ROOT / cfg.init_from, strict=True)
    elif cfg.init_from:  # a stage-2 config starts from a stage-1 run defined in the repo: of the same model, or of
        # panoLANet for LANet (the ablation starts from the shipped model's stage 1, whose panorama branch is LANet)
        stage1 = [c for c in (ROOT / "configs").glob("*.yaml") if _repo_config(c).out_dir == cfg.init_from]
        assert stage1 and _repo_config(stage1[0]).model in (cfg.model, "pano" + cfg.model)


def test_learning_rate_schedule():
    cfg = TrainConfig(lr=1.0, lr_decay_steps=10, lr_decay_rate=0.5)
    assert learning_rate(cfg, 0) == 1.0 and learning_rate(cfg, 10) == 0.5 and learning_rate(cfg, 5) == 0.5**0.5
    cfg.lr_staircase = True
    assert learning_rate(cfg, 9) == 1.0


def test_smoke_training_lowers_the_loss_and_writes_a_run(tmp_path, pano_folder):
    from hdr_core.train import main

    out = tmp_path / "run"
    summary = main(_args(pano_folder, out, "--steps", "30", "--eval-every", "30"))
    assert summary["val/loss"] < summary["val/initial_loss"]
    for f in ("config.yaml", "final.json", "model/model.safetensors", "model/model.json", "checkpoints/latest"):
        assert (out / f).exists(), f
    assert list((out / "tb").glob("events.out.tfevents.*"))
    from hdr_core.checkpoint import load_model

    model = load_model(out / "model")  # rebuilt from the checkpoint alone
    assert model.config.to_dict() == json.loads((out / "model" / "model.json").read_text())["config"]
    # Resuming a finished run trains nothing and keeps its record (first validation, last values) intact.
    again = main(_args(pano_folder, out, "--steps", "30", "--eval-every", "30", "--resume", "true"))
    assert again == summary == json.loads((out / "final.json").read_text())
    # Resumed with other validation pairs, its figures are the new pairs' (those of scoring the model on them), and
    # the first validation, measured on the old pairs, is dropped rather than compared with them.
    more = ("--eval-batches", "3", "--val-balanced", "true")
    rescored = main(_args(pano_folder, out, "--steps", "30", "--eval-every", "30", "--resume", "true", *more))
    scored = main(_args(pano_folder, tmp_path / "score", "--steps", "0", "--init-from", str(out / "model"), *more))
    assert rescored["val/loss"] == scored["val/initial_loss"] != summary["val/loss"]
    assert not any(k.startswith("val/initial_") for k in rescored)


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_weights(tmp_path, pano_folder):
    steps = ["--steps", "16", "--ckpt-every", "4", "--eval-every", "8"]
    ref = tmp_path / "ref"
    subprocess.run([sys.executable, "-m", "hdr_core.train", *_args(pano_folder, ref, *steps)], check=True,
                   env=_env(), capture_output=True)
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "hdr_core.train", *_args(pano_folder, run, *steps)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = run / "checkpoints" / "latest"
    deadline = time.time() + 120
    while time.time() < deadline and not (latest.exists() and latest.read_text().strip() >= "step_0000008"):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "final.json").exists(), "the run finished before it was killed: make it longer"
    subprocess.run([sys.executable, "-m", "hdr_core.train", *_args(pano_folder, run, *steps, "--resume", "true")],
                   check=True, env=_env(), capture_output=True)
    a = load_file(str(ref / "model" / "model.safetensors"))
    b = load_file(str(run / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)


@pytest.mark.slow
def test_ddp_two_cpu_processes_keep_identical_weights_and_reproduce_them(tmp_path, pano_folder):
    """The ranks agree on the weights, and the same command run again gives the same bits: the checksum in
    training.json is what a rerun on the same machine (``machine`` in the record) is compared with."""
    checksums = []
    for name in ("ddp", "again"):
        out = tmp_path / name
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
               "-m", "hdr_core.train", *_args(pano_folder, out, "--steps", "6", "--eval-every", "3")]
        res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        summary = json.loads((out / "final.json").read_text())
        assert summary["world_size"] == 2
        assert len(summary["param_checksums"]) == 2 and len(set(summary["param_checksums"])) == 1
        checksums.append(summary["param_checksums"][0])
    assert checksums[0] == checksums[1]
    record = json.loads((tmp_path / "again" / "model" / "training.json").read_text())
    assert "kernels" in record["machine"] and "1 thread)" in record["machine"]  # torchrun's one thread per rank


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_trains_as_one_process(tmp_path, pano_folder):
    """torchrun on 2 ranks, each half of every batch, is the one-process training of the same config: weights as
    close as float rounding leaves them after a few steps (global batch norm statistics, averaged gradients), the
    same validation figures before any step (each rank evaluates half the pairs, the means taken over all). Each
    rank normalising with its own half batch (``--sync-bn false``) is not: the gradients differ from step 1 (the
    exact check is in test_distributed.py)."""
    import torch

    extra = ("--steps", "3", "--eval-every", "3", "--eval-batches", "2", "--batch-size", "8", "--workers", "0")
    for name, more in (("one", ()), ("start", ("--lr", "0"))):
        subprocess.run([sys.executable, "-m", "hdr_core.train", *_args(pano_folder, tmp_path / name, *extra, *more)],
                       check=True, env=_env(), capture_output=True)
    runs = {}
    for name, port, sync in (("sync", 29521, "true"), ("rank", 29523, "false")):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
               "-m", "hdr_core.train", *_args(pano_folder, tmp_path / name, *extra, "--sync-bn", sync)]
        res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        runs[name] = tmp_path / name

    def weights(run):
        return load_file(str(run / "model" / "model.safetensors"))

    one, sync, rank = weights(tmp_path / "one"), weights(runs["sync"]), weights(runs["rank"])
    assert one.keys() == sync.keys() == rank.keys()
    start = weights(tmp_path / "start")
    keys = [k for k in one if "running" not in k and one[k].is_floating_point()]

    def distance(w):  # to the one-process weights, relative to how far those moved
        num = sum(float((w[k].double() - one[k].double()).square().sum()) for k in keys)
        return (num / sum(float((one[k].double() - start[k].double()).square().sum()) for k in keys)) ** 0.5

    # Adam's first steps are near sign(gradient) * lr, so float rounding alone moves an element by up to 2 lr: the
    # same one-process run on 2 threads instead of 1 ends 0.24 away (2026-12-04). Global batch norm stays at that
    # level; each rank's own statistics (another gradient from step 1) end several times further.
    assert distance(sync) < 0.5 * distance(rank), (distance(sync), distance(rank))
    f_one = json.loads((tmp_path / "one" / "final.json").read_text())
    f_sync = json.loads((runs["sync"] / "final.json").read_text())
    assert f_sync["world_size"] == 2 and len(set(f_sync["param_checksums"])) == 1
    val_keys = [k for k in f_one if k.startswith("val/")]
    assert any(k.startswith("val/initial_") for k in val_keys) and len(val_keys) > 2
    for k in val_keys:  # before any step the weights are the same, only the sharding of the pairs differs; after 3
        tol = 1e-6 if k.startswith("val/initial_") else 2e-2  # steps, the rounding above
        torch.testing.assert_close(f_sync[k], f_one[k], rtol=tol, atol=1e-7, msg=k)


def test_stage2_freezes_exactly_the_parameters_eq9_does_not_reach():
    """Eq. 9 leaves the panorama branch's segmentation head without a gradient: freezing it changes no weight (Adam
    skips a None gradient) and is what lets DDP train stage 2 (every other parameter gets one)."""
    import torch

    from hdr_core.models import create_model
    from hdr_core.train import compute_loss, freeze_unused_by_loss

    cfg = TrainConfig(stage="pano", model="panolanet_small")
    torch.manual_seed(0)
    hdr = torch.rand(2, 3, 32, 64) * 4
    batch = {"hdr": hdr, "ldr": (hdr / 2).clamp(0, 1)}
    net = create_model("panolanet_small")
    compute_loss(cfg, net, batch)[0].backward()
    no_grad = sorted(n for n, p in net.named_parameters() if p.grad is None)
    fresh = create_model("panolanet_small")
    frozen = freeze_unused_by_loss(cfg, fresh)
    assert no_grad and sorted(frozen) == no_grad
    assert sorted(n for n, p in fresh.named_parameters() if not p.requires_grad) == no_grad
    assert freeze_unused_by_loss(TrainConfig(stage="crop"), create_model("panolanet_small")) == []
    assert freeze_unused_by_loss(cfg, create_model("lanet_small")) == []  # the ablation's loss reads its seg head
    lanet = create_model("lanet_small")  # ... so every parameter gets a gradient: DDP needs no find_unused_parameters
    compute_loss(TrainConfig(stage="pano", model="lanet_small"), lanet, batch)[0].backward()
    assert all(p.grad is not None for p in lanet.parameters())


@pytest.mark.slow
def test_ddp_two_cpu_processes_train_panolanet_stage2(tmp_path, pano_folder):
    """torchrun on stage 2 (whole panoramas, Eq. 9): ranks agree on the weights after a few steps."""
    s1, out = tmp_path / "s1", tmp_path / "ddp2"
    from hdr_core.train import main

    main(_args(pano_folder, s1, "--model", "panolanet_small", "--steps", "1", "--eval-every", "1"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29519",
           "-m", "hdr_core.train", *_args(pano_folder, out, "--model", "panolanet_small", "--stage", "pano",
                                           "--pano-height", "32", "--init-from", str(s1), "--steps", "3",
                                           "--eval-every", "3")]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "final.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    assert len(summary["param_checksums"]) == 2 and len(set(summary["param_checksums"])) == 1


def test_panolanet_two_stages_and_dataloader_workers(tmp_path, pano_folder):
    """Stage 1 trains the panorama branch on crops; stage 2 starts from it with the ceiling encoder copied."""
    from hdr_core.checkpoint import load_model
    from hdr_core.train import main

    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    main(_args(pano_folder, s1, "--model", "panolanet_small", "--steps", "2", "--eval-every", "2", "--workers", "2"))
    stage1 = load_model(s1 / "model")
    before = {k: v.clone() for k, v in stage1.ceiling.named_parameters()}
    summary = main(_args(pano_folder, s2, "--model", "panolanet_small", "--stage", "pano", "--pano-height", "32",
                         "--init-from", str(s1), "--steps", "2", "--eval-every", "2", "--lr", "0"))
    assert summary["steps"] == 2 and summary["val/loss"] > 0
    # beside the model's light figures, the plain LDR's on the same pairs: fixed, and darker than the truth (it clips)
    assert summary["val/initial_virtual/ldr_irr_err"] == summary["val/virtual/ldr_irr_err"] > 0
    assert summary["val/virtual/ldr_irr_bias"] < 0 and "val/virtual/irr_err" in summary
    stage2 = load_model(s2 / "model")
    pano1, pano2 = dict(stage1.pano.named_parameters()), dict(stage2.pano.named_parameters())
    assert all((pano1[k] == pano2[k]).all() for k in pano1)  # lr 0: the stage-1 branch is carried over
    enc = dict(stage2.pano.encoder.named_parameters())
    for k, v in stage2.ceiling.encoder.named_parameters():
        assert (v == enc[k]).all(), k  # init_ceiling_from_pano
    assert any((before[f"encoder.{k}"] != v).any() for k, v in stage2.ceiling.encoder.named_parameters())
    # the saved model carries its training record, and stage 1's inside it
    record = json.loads((s2 / "model" / "training.json").read_text())
    assert record["command"].startswith("python -m hdr_core.train --config ") and "--init-from" in record["command"]
    assert record["config"]["stage"] == "pano" and record["metrics"]["steps"] == 2
    assert [p["file"] for p in record["data"]["validation"]] == ["v0.hdr"]
    assert "v0.hdr" not in [p["file"] for p in record["data"]["train"]] and record["data"]["train"]
    assert record["init_from_record"]["config"]["stage"] == "crop"
    assert record["init_from_record"]["metrics"] == json.loads((s1 / "final.json").read_text())
    # from a stage-2 model (fine-tuning or scoring a finished one, e.g. the shipped weights) the ceiling is its own
    import torch

    from hdr_core.checkpoint import save_model

    with torch.no_grad():  # a finished model's ceiling encoder is no copy of its panorama encoder
        for v in stage2.ceiling.encoder.parameters():
            v.add_(0.01)
    save_model(tmp_path / "finished", stage2, extra={"stage": "pano"})
    main(_args(pano_folder, tmp_path / "s2b", "--model", "panolanet_small", "--stage", "pano", "--pano-height", "32",
               "--init-from", str(tmp_path / "finished"), "--steps", "1", "--eval-every", "1", "--lr", "0"))
    ceiling2, again = dict(stage2.ceiling.named_parameters()), load_model(tmp_path / "s2b" / "model").ceiling
    assert all((ceiling2[k] == v).all() for k, v in again.named_parameters())
    # the ablation's stage 2: LANet starts from the same stage-1 run (panoLANet's panorama branch is that LANet)
    lanet = main(_args(pano_folder, tmp_path / "lanet", "--model", "lanet_small", "--stage", "pano", "--pano-height",
                       "32", "--init-from", str(s1), "--steps", "1", "--eval-every", "1", "--lr", "0"))
    assert lanet["steps"] == 1
    ablation = dict(load_model(tmp_path / "lanet" / "model").named_parameters())
    assert ablation.keys() == pano1.keys() and all((pano1[k] == ablation[k]).all() for k in pano1)
    with pytest.raises(RuntimeError, match="no weight in it belongs to this model"):
        main(_args(pano_folder, tmp_path / "fhdr", "--model", "fhdr_small", "--stage", "pano", "--pano-height", "32",
                   "--init-from", str(s1), "--steps", "1"))


def test_training_record_takes_each_panoramas_manifest_entry(tmp_path):
    from hdr_core.train import training_record

    (tmp_path / "manifest.json").write_text(json.dumps({"panoramas": [
        {"name": "a", "file": "a.exr", "licence": "CC0-1.0", "split": "train/val"},
        {"name": "t", "file": "t.exr", "licence": "CC0-1.0", "split": "test-site"}]}))
    other = tmp_path / "no_manifest"
    cfg = TrainConfig(data=[str(tmp_path), str(other)], init_from=str(tmp_path / "missing_run"))
    rec = training_record(cfg, {"steps": 3}, "python -m hdr_core.train --steps 3", [tmp_path / "a.exr"],
                          [other / "v.hdr"], [tmp_path / "t.exr"], finished="2026-12-02 09:00 UTC")
    assert rec["data"]["train"] == [{"folder": str(tmp_path), "name": "a", "file": "a.exr", "licence": "CC0-1.0",
                                     "split": "train/val", "class": "unknown", "site_group": "a"}]
    assert rec["data"]["validation"] == [{"folder": str(other), "file": "v.hdr", "name": "v", "class": "unknown",
                                          "site_group": "v", "licence": "unknown"}]
    assert rec["data"]["train_counts"] == {"panoramas": 1, "by_folder": {str(tmp_path): 1}, "by_class": {"unknown": 1}}
    assert rec["ldr_styles"] == {"virtual": 1.0}
    assert rec["data"]["excluded_by_split_rules"][0]["split"] == "test-site"
    assert rec["data"]["excluded_by_split_rules"][0]["excluded_because"] == ""  # no reason given to this call
    assert rec["metrics"] == {"steps": 3} and rec["finished_utc"] == "2026-12-02 09:00 UTC"
    assert "init_from_record" not in rec and json.loads(json.dumps(rec)) == rec
    model_dir = tmp_path / "weights"  # init_from a model folder (as the shipped weights are) finds its record
    model_dir.mkdir()
    (model_dir / "training.json").write_text(json.dumps({"command": "stage 1"}))
    rec = training_record(dataclasses.replace(cfg, init_from=str(model_dir)), {}, "c", [], [], [])
    assert rec["init_from_record"] == {"command": "stage 1"}


def test_pano_si_weight_adds_the_whole_panorama_simse_to_eq9():
    import torch

    from hdr_core.losses import si_mse
    from hdr_core.models import create_model
    from hdr_core.train import compute_loss

    torch.manual_seed(0)
    net = create_model("panolanet_small").eval()
    hdr = torch.rand(1, 3, 32, 64) * 4 + 0.01
    batch = {"ldr": hdr.clamp(0, 1), "hdr": hdr}
    cfg = TrainConfig(data=["x"], stage="pano")
    with torch.no_grad():
        eq9, parts = compute_loss(cfg, net, batch)
        mixed, _ = compute_loss(dataclasses.replace(cfg, pano_si_weight=0.5), net, batch)
        expected = 0.5 * si_mse(net(2.0 * batch["ldr"] - 1.0).log_hdr, hdr.log())
    assert parts["si_mse"] > 0 and mixed.item() == pytest.approx(eq9.item() + expected.item(), rel=1e-5)


def test_light_loss_weights_add_the_lighting_terms_and_validation_reports_light_accuracy():
    import torch

    from hdr_core.losses import light_loss
    from hdr_core.models import create_model
    from hdr_core.train import compute_loss

    torch.manual_seed(0)
    net = create_model("panolanet_small").eval()
    hdr = torch.rand(1, 3, 32, 64) * 4 + 0.01
    hdr[..., 5:7, 20:22] = 500.0  # a sun the LDR clips
    batch = {"ldr": hdr.clamp(0, 1), "hdr": hdr}
    cfg = TrainConfig(data=["x"], stage="pano")
    with torch.no_grad():
        base, parts = compute_loss(cfg, net, batch)
        lit, lit_parts = compute_loss(dataclasses.replace(cfg, light_irradiance_weight=1.0, light_glossy_weight=0.5,
                                                          light_peak_weight=0.25), net, batch)
        expected = light_loss(net(2.0 * batch["ldr"] - 1.0).log_hdr, hdr, batch["ldr"], 1.0, 0.5, 0.25)
    assert expected.item() > 0 and lit.item() == pytest.approx(base.item() + expected.item(), rel=1e-5)
    assert {"irr_err", "irr_bias", "light_angle", "peak_err", "peak_bias"} <= set(parts)
    assert {"light_irradiance", "light_glossy", "light_peak"} <= set(lit_parts) and "light_peak" not in parts
    assert parts["peak_bias"] < 0  # an untrained net does not restore the clipped sun
    crop, crop_parts = compute_loss(dataclasses.replace(cfg, stage="crop", light_peak_weight=1.0), net, batch)
    assert "irr_err" not in crop_parts  # crops are not panoramas: no light terms
    late = dataclasses.replace(cfg, light_irradiance_weight=1.0, light_from_step=5)  # from step index 5 on
    with torch.no_grad():
        assert compute_loss(late, net, batch, 4)[0].item() == base.item()
        assert compute_loss(late, net, batch, 5)[0].item() == compute_loss(late, net, batch)[0].item() > base.item()


def test_validation_key_angle_is_a_mean_over_the_panoramas_with_a_key_light():
    import collections

    import torch

    from hdr_core.distributed import all_reduce_means
    from hdr_core.lighting import light_errors
    from hdr_core.train import add_light_figures, light_figures

    def pano(*lights):  # a dim sky with 2x2-pixel lights of the given strengths at the given columns
        p = torch.full((3, 32, 64), 0.2)
        for col, value in lights:
            p[:, 10:12, col:col + 2] = value
        return p

    key, two = pano((10, 400.0)), pano((10, 400.0), (42, 400.0))  # a key light; two equal lights 180 deg apart
    hdr = torch.stack([key, two, two])
    batch = {"hdr": hdr, "ldr": hdr.clamp(0, 1)}
    errors = light_errors(hdr.clamp(0, 1), hdr)
    assert torch.isfinite(errors["key_angle"]).tolist() == [True, False, False]
    figures = light_figures(batch["ldr"], batch)
    assert figures["key_lights"] == 1.0 and figures["key_angle"] == errors["light_angle"][0].item()
    assert figures["light_angle"] == pytest.approx(errors["light_angle"].mean().item())
    store = collections.defaultdict(list)
    add_light_figures(store, "v/", figures)
    no_key = {"hdr": hdr[1:], "ldr": batch["ldr"][1:]}
    add_light_figures(store, "v/", light_figures(no_key["ldr"], no_key))  # no key light: nothing added, key kept
    means = all_reduce_means(store)
    assert len(store["v/key_angle"]) == 1 and means["v/key_angle"] == figures["key_angle"]
    assert len(store["v/irr_err"]) == 2 and "key_lights" not in str(sorted(store))


def test_lighting_terms_stay_fp32_under_autocast():
    """Under bf16 autocast (``--amp true``, the GPU recipe) the lighting loss and the light figures are the fp32
    ones of the same prediction: autocast would run their matrix products in bf16 (in fp16 a sun overflows)."""
    import torch

    from hdr_core.losses import light_loss
    from hdr_core.models import create_model
    from hdr_core.train import compute_loss, light_figures

    torch.manual_seed(0)
    net = create_model("panolanet_small").eval()
    hdr = torch.rand(2, 3, 32, 64) * 4 + 0.01
    hdr[..., 5:7, 20:22] = 3e4  # a sun the LDR clips
    batch = {"ldr": hdr.clamp(0, 1), "hdr": hdr}
    cfg = TrainConfig(data=["x"], stage="pano", light_irradiance_weight=1.0, light_glossy_weight=0.5,
                      light_peak_weight=0.25)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        _, parts = compute_loss(cfg, net, batch)
        log_hdr = net(2.0 * batch["ldr"] - 1.0).log_hdr  # the same prediction (eval mode: deterministic)
        in_autocast = light_loss(log_hdr.float(), hdr, batch["ldr"], return_parts=True)[1]
    with torch.no_grad():
        _, fp32 = light_loss(log_hdr.float(), hdr, batch["ldr"], return_parts=True)
        figures = light_figures(log_hdr.float().exp(), batch)
    assert all(parts[f"light_{k}"] == v.item() for k, v in fp32.items())
    assert any(in_autocast[k].item() != v.item() for k, v in fp32.items())  # what the guard is for
    assert all(parts[k] == v for k, v in figures.items())


def test_light_from_step_is_the_two_segment_recipe(tmp_path, pano_folder):
    """One run with ``--light-from-step K`` ends with the same weights as the shipped model's two segments: K steps
    with the lighting weights at 0, then ``--resume`` with them set; training.json lists both segments."""
    from hdr_core.train import main

    s1 = tmp_path / "s1"
    main(_args(pano_folder, s1, "--model", "panolanet_small", "--steps", "1", "--eval-every", "1"))
    common = ["--model", "panolanet_small", "--stage", "pano", "--pano-height", "32", "--init-from", str(s1),
              "--eval-every", "2", "--ckpt-every", "2", "--light-irradiance-weight", "0.5",
              "--light-glossy-weight", "0.5", "--light-peak-weight", "0.1"]
    off = ["--light-irradiance-weight", "0", "--light-glossy-weight", "0", "--light-peak-weight", "0"]
    main(_args(pano_folder, tmp_path / "two", *common, "--steps", "3", *off))
    two = main(_args(pano_folder, tmp_path / "two", *common, "--steps", "6", "--resume", "true"))
    one = main(_args(pano_folder, tmp_path / "one", *common, "--steps", "6", "--light-from-step", "3"))
    lit = main(_args(pano_folder, tmp_path / "lit", *common, "--steps", "6"))  # the lighting loss from the start
    assert one["param_checksums"] == two["param_checksums"] != lit["param_checksums"]
    record = json.loads((tmp_path / "two" / "model" / "training.json").read_text())
    assert [seg["steps"] for seg in record["segments"]] == [[0, 3], [3, 6]]
    assert record["segments"][0]["config_differences"]["light_peak_weight"] == 0.0


def test_light_loss_is_scale_free_after_calibration_and_sees_the_sun():
    import torch

    from hdr_core.losses import light_loss

    gt = torch.rand(2, 3, 32, 64) * 0.5 + 0.05
    gt[..., 4:6, 10:12] = 3e4
    ldr = gt.clamp(max=1)
    exact = light_loss(gt.log(), gt, ldr)
    assert exact.item() < 1e-10
    assert light_loss((gt * 7).log(), gt, ldr).item() < 1e-8  # Eq. 1 undoes a global scale, as render_eval does
    weak = gt.clone()
    weak[..., 4:6, 10:12] = 30.0  # the sun 1000x too weak
    loss, parts = light_loss(weak.log(), gt, ldr, return_parts=True)
    assert parts["peak"] > parts["glossy"] > 0 and parts["irradiance"] > 0.1  # ln(1000)^2 = 48 for the peak
    x = weak.log().requires_grad_(True)
    light_loss(x, gt, ldr).backward()
    assert torch.isfinite(x.grad).all() and x.grad[..., 4:6, 10:12].abs().sum() > 0


def _manifest_folder(tmp_path):
    """Synthetic panoramas with a manifest (classes, a two-file site group) and a validation groups file."""
    from conftest import synthetic_panorama

    from hdr_core.io import write_hdr

    folder = tmp_path / "extra"
    folder.mkdir()
    rows = []
    spec = [("s0", "outdoor"), ("s1", "outdoor"), ("s2", "outdoor"), ("r0", "indoor"), ("r1", "indoor"),
            ("r2", "indoor"), ("n0", "night"), ("t0", "outdoor"), ("t1", "indoor"), ("g0", "indoor"), ("g1", "indoor"),
            ("x0", "indoor")]
    for i, (name, cls) in enumerate(spec):
        write_hdr(folder / f"{name}.hdr", synthetic_panorama(32, i))
        rows.append({"name": name, "file": f"{name}.hdr", "class": cls, "site_group": "g" if name[0] == "g" else name,
                     "licence": "CC0-1.0 (Poly Haven)", "source_repo": "x/y",
                     "polyhaven_slug": "studio_small_09" if name == "x0" else name})  # x0: the test studio's series
    (folder / "manifest.json").write_text(json.dumps(rows))
    groups = tmp_path / "val.yaml"
    groups.write_text(yaml.safe_dump({"version": 1, "groups": {"sunny_outdoor": ["s0", "s1", "s2"],
                                                               "indoor": ["r0", "r1", "g"], "night": ["n0"]}}))
    return folder, groups


def test_style_mix_validation_per_style_and_groups_in_the_record(tmp_path):
    from hdr_core.train import main

    folder, groups = _manifest_folder(tmp_path)
    out = tmp_path / "run"
    summary = main(["--config", str(ROOT / "configs" / "smoke.yaml"), "--data", str(folder), "--out-dir", str(out),
                    "--crop-size", "32", "--store-height", "32", "--progress", "false", "--steps", "2",
                    "--eval-every", "2", "--val-groups-file", str(groups),
                    "--ldr-styles", "{virtual: 0.75, phone_hdr: 0.25}", "--val-styles", "mdk08"])
    for s in ("virtual", "phone_hdr", "mdk08"):
        assert summary[f"val/{s}/loss"] > 0 and f"val/initial_{s}/loss" in summary
    mix = 0.75 * summary["val/virtual/loss"] + 0.25 * summary["val/phone_hdr/loss"]
    assert summary["val/loss"] == pytest.approx(mix)
    rec = json.loads((out / "model" / "training.json").read_text())
    assert sorted(e["name"] for e in rec["data"]["train"]) == ["r2", "t0", "t1"]
    assert sorted(e["name"] for e in rec["data"]["validation"]) == ["g0", "g1", "n0", "r0", "r1", "s0", "s1", "s2"]
    assert rec["data"]["train"][0]["source_repo"] == "x/y"
    assert rec["data"]["train_counts"]["by_class"] == {"indoor": 2, "outdoor": 1}
    assert rec["data"]["validation_groups"]["site_groups"] == sorted(["s0", "s1", "s2", "r0", "r1", "g", "n0"])
    assert rec["ldr_styles"] == {"virtual": 0.75, "phone_hdr": 0.25}
    (x0,) = rec["data"]["excluded_by_split_rules"]
    assert x0["name"] == "x0" and "shares its site with test scene studio" in x0["excluded_because"]


def test_exposure_error_options_reach_the_training_and_validation_pairs(tmp_path):
    from hdr_core.train import pair_config, validation_sets

    cfg = parse_config(["--data", "x", "--exposure-ev", "-1", "1.5", "--val-exposure-ev", "-0.5"])
    assert cfg.exposure_ev == [-1.0, 1.5] and pair_config(cfg).exposure_ev == (-1.0, 1.5)
    from hdr_core.io import write_hdr
    write_hdr(tmp_path / "v.hdr", np.full((8, 16, 3), 0.5, np.float32))
    (val,) = validation_sets(parse_config(["--data", "x", "--val-exposure-ev", "-0.5", "--stage", "pano",
                                           "--pano-height", "8"]), [tmp_path / "v.hdr"]).values()
    assert val.config.exposure_ev == (-0.5, -0.5) and val.exposure_ev_of(3) == -0.5
    assert parse_config(["--data", "x"]).exposure_ev == [0.0, 0.0]  # as metered: the paper's pairs
    from hdr_core.train import unbalanced_note
    files = [tmp_path / f"p{i}.hdr" for i in range(7)]
    balanced = parse_config(["--data", "x", "--val-balanced", "true", "--batch-size", "4", "--eval-batches", "8"])
    assert "32 pairs per style over 7 panoramas" in unbalanced_note(balanced, files)
    assert unbalanced_note(dataclasses.replace(balanced, eval_batches=14), files) is None  # 56 = 8 x 7
    assert unbalanced_note(dataclasses.replace(balanced, val_balanced=False), files) is None
    for bad in (["1", "-1"], ["1"], ["a", "b"]):
        with pytest.raises(SystemExit):
            parse_config(["--data", "x", "--exposure-ev", *bad])
    with pytest.raises(SystemExit):  # the device pairs are the paper's virtual camera alone
        parse_config(["--data", "x", "--pair-device", "true", "--exposure-ev", "-1", "1"])


def test_bad_style_options_and_singlehdr_needs_the_virtual_camera(tmp_path, pano_folder):
    from hdr_core.train import main

    with pytest.raises(SystemExit):
        parse_config(["--data", "x", "--ldr-styles", "{instagram: 1}"])
    with pytest.raises(SystemExit):
        parse_config(["--data", "x", "--val-styles", "sepia"])
    with pytest.raises(SystemExit, match="virtual camera's response curve"):
        main(_args(pano_folder, tmp_path / "s", "--model", "singlehdr_small", "--steps", "1",
                   "--ldr-styles", "{virtual: 0.5, filmic: 0.5}"))
    folder, _ = _manifest_folder(tmp_path)  # val_scenes that split a site group: one clear error
    with pytest.raises(SystemExit, match="site group 'g' is also in training"):
        main(["--config", str(ROOT / "configs" / "smoke.yaml"), "--data", str(folder), "--val-scenes", "g0",
              "--out-dir", str(tmp_path / "g"), "--progress", "false", "--steps", "1"])


def test_scene_light_weight_option_reaches_the_training_draws(tmp_path, pano_folder, capsys):
    from hdr_core.train import main

    assert parse_config(["--data", "x"]).scene_light_weight == 0.0  # every panorama equally often: the paper
    for bad in ("-1", "nan"):
        with pytest.raises(SystemExit):
            parse_config(["--data", "x", "--scene-light-weight", bad])
    main(_args(pano_folder, tmp_path / "run", "--steps", "2", "--eval-every", "2", "--scene-light-weight", "4"))
    assert "scene_light_weight 4: panoramas drawn" in capsys.readouterr().out


def test_insert_light_option_reaches_the_training_pairs_and_never_validation(tmp_path, pano_folder, capsys):
    from hdr_core.io import write_hdr
    from hdr_core.train import main, pair_config, validation_sets

    assert parse_config(["--data", "x"]).insert_light == 0.0  # no inserted lights: the paper's pairs
    cfg = parse_config(["--data", "x", "--stage", "pano", "--pano-height", "8", "--insert-light", "0.3",
                        "--insert-light-share", "0.4", "0.6"])
    assert pair_config(cfg).insert_light == 0.3 and pair_config(cfg).insert_light_share == (0.4, 0.6)
    write_hdr(tmp_path / "v.hdr", np.full((8, 16, 3), 0.5, np.float32))
    (val,) = validation_sets(cfg, [tmp_path / "v.hdr"]).values()
    assert val.config.insert_light == 0.0  # validation scores the real panoramas only
    from hdr_core.train import validation_setup
    assert validation_setup(cfg, [tmp_path / "v.hdr"]) == validation_setup(  # nor do they change its setup
        dataclasses.replace(cfg, insert_light=0.0, insert_light_share=[0.3, 0.75]), [tmp_path / "v.hdr"])
    assert "insert_light" not in validation_setup(cfg, [tmp_path / "v.hdr"])["pairs"]  # as checkpoints before it
    for bad in (["--insert-light", "2"], ["--insert-light", "nan"], ["--insert-light-share", "0.5", "1"],
                ["--insert-light-share", "a", "b"], ["--insert-light-share", "0.5"]):
        with pytest.raises(SystemExit):
            parse_config(["--data", "x", *bad])
        assert "insert_light" in capsys.readouterr().err  # the one line names the option
    yaml_scalar = tmp_path / "c.yaml"
    yaml_scalar.write_text("insert_light_share: 0.5\n")
    with pytest.raises(SystemExit):
        parse_config(["--data", "x", "--config", str(yaml_scalar)])
    assert "insert_light / insert_light_share: expected" in capsys.readouterr().err
    main(_args(pano_folder, tmp_path / "run", "--steps", "2", "--eval-every", "2", "--insert-light", "0.5"))
    record = json.loads((tmp_path / "run" / "model" / "training.json").read_text())
    assert record["config"]["insert_light"] == 0.5 and record["config"]["insert_light_share"] == [0.3, 0.75]


def test_amp_on_a_cpu_without_bf16_hardware_says_so():
    from hdr_core.train import amp_note, cpu_has_native_bf16

    cpu, amp = torch.device("cpu"), parse_config(["--data", "x", "--amp", "true"])
    assert "--amp false" in amp_note(amp, cpu, native_bf16=False)
    assert amp_note(amp, cpu, native_bf16=True) is None
    assert amp_note(parse_config(["--data", "x"]), cpu, native_bf16=False) is None  # fp32: nothing to say
    assert amp_note(amp, torch.device("cuda"), native_bf16=False) is None  # GPUs choose their own type
    assert cpu_has_native_bf16() in (True, False, None)


def test_each_process_trains_on_its_own_indexed_device():
    """``--device cuda`` names no GPU: each torchrun rank takes ``cuda:<local rank>`` (``torch.cuda.set_device``
    refuses a CUDA device without an index); on CUDA the process group sends CPU tensors (the validation means)
    through gloo, which NCCL alone refuses."""
    from torch.distributed.distributed_c10d import BackendConfig

    from hdr_core.train import process_group_backend, training_device

    assert training_device("cuda", 3, cuda_available=True) == torch.device("cuda", 3)
    assert training_device("cuda:1", 3, cuda_available=True) == torch.device("cuda", 1)  # an explicit index stays
    assert training_device("auto", 2, cuda_available=True) == torch.device("cuda", 2)
    assert training_device("auto", 2, cuda_available=False) == torch.device("cpu")
    assert training_device("cpu", 1, cuda_available=True) == torch.device("cpu")
    backends = BackendConfig(torch.distributed.Backend(process_group_backend("cuda"))).get_device_backend_map()
    assert backends == {"cuda": "nccl", "cpu": "gloo"}
    assert process_group_backend("cpu") == "gloo"
