"""The training speed-ups (docs/benchmarks.md): the exact ones give the same bits, the options stay close; the GPU
run's pieces (data pack, sharded model, time limit, scripts/train_gpu.sh) on CPU."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hdr_core.data.pairs import PairConfig, PairDataset, PairPool
from hdr_core.models import create_model

ROOT = Path(__file__).resolve().parents[1]


def _panos(h: int = 32, n: int = 3) -> list[np.ndarray]:
    from conftest import synthetic_panorama

    return [synthetic_panorama(h, i) for i in range(n)]


@pytest.mark.parametrize("mode", ["crop", "pano"])
@pytest.mark.parametrize("style", ["virtual", "mdk08"])
def test_pairs_without_extras_are_the_same_bits(mode, style):
    cfg = PairConfig(mode=mode, crop_size=16, store_height=32, pano_height=32, style=style)
    full, lean = (PairDataset(_panos(), cfg, 6, seed=3, extras=e) for e in (True, False))
    for i in range(6):
        a, b = full[i], lean[i]
        assert set(a) - set(b) == {"display", "hdr_camera", "crf"} and set(b) == {"ldr", "hdr", "scene", "style"}
        for k in b:
            assert torch.equal(a[k], b[k]), (i, k)


def test_pair_pool_item_i_is_pair_i_mod_size():
    ds = PairDataset(_panos(), PairConfig(mode="crop", crop_size=16, store_height=32), 20, seed=1)
    pool = PairPool(ds, 7, chunk=3)
    assert len(pool) == 20 and pool.nbytes() > 0
    for i in (0, 6, 7, 13, 19):
        a, b = pool[i], ds[i % 7]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), i
    assert not torch.equal(pool[1]["hdr"], pool[2]["hdr"])
    with pytest.raises(ValueError):
        PairPool(ds, 0)
    # a DDP rank's share (global batch 4, rank 1 of 2: slots j with j % 4 in {2, 3}) holds the same pairs
    part = PairPool(ds, 8, slots=[2, 3, 6, 7])
    assert part.nbytes() * 2 == PairPool(ds, 8).nbytes()
    for i in (2, 3, 6, 7, 10, 11, 15):
        a, b = part[i], ds[i % 8]
        assert all(torch.equal(a[k], b[k]) for k in a), i
    with pytest.raises(KeyError, match="did not make"):
        part[4]
    with pytest.raises(ValueError):
        PairPool(ds, 8, slots=[8])


def _args(pano_folder, out, *extra):
    return ["--config", str(ROOT / "configs" / "smoke.yaml"), "--data", str(pano_folder), "--val-scenes", "v0",
            "--out-dir", str(out), "--crop-size", "32", "--store-height", "32", "--progress", "false",
            "--model", "panolanet_small", "--steps", "3", "--eval-every", "3", *extra]


def _weights(run: Path) -> dict:
    return load_file(str(run / "model" / "model.safetensors"))


def test_a_pair_pool_as_long_as_the_run_trains_the_same_bits(tmp_path, pano_folder):
    from hdr_core.train import main

    fresh = main(_args(pano_folder, tmp_path / "fresh"))
    pooled = main(_args(pano_folder, tmp_path / "pool", "--pair-pool", "12"))  # 3 steps x batch 4: every pair once
    assert fresh["param_checksums"] == pooled["param_checksums"]
    assert fresh["val/loss"] == pooled["val/loss"] and fresh["train/loss"] == pooled["train/loss"]
    reused = main(_args(pano_folder, tmp_path / "reuse", "--pair-pool", "4"))  # one batch, seen three times
    assert reused["param_checksums"] != fresh["param_checksums"]


def _loss_and_grads(net, batch, channels_last=False, amp=False):
    from hdr_core.train import TrainConfig, autocast_context, compute_loss, to_device

    cfg = TrainConfig(data=["x"], stage="crop", amp=amp, channels_last=channels_last)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    ctx, _ = autocast_context(cfg, torch.device("cpu"))
    net.zero_grad(set_to_none=True)
    with ctx:
        loss, _ = compute_loss(cfg, net, to_device(batch, torch.device("cpu"), channels_last))
    loss.backward()
    return loss.item(), torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])


def test_channels_last_is_fp32_in_another_order_and_bf16_stays_close():
    import copy

    torch.manual_seed(0)
    net = create_model("panolanet_small").pano
    ds = PairDataset(_panos(64), PairConfig(mode="crop", crop_size=64, store_height=64), 4, seed=0, extras=False)
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    loss, g = _loss_and_grads(copy.deepcopy(net), batch)
    loss_cl, g_cl = _loss_and_grads(copy.deepcopy(net), batch, channels_last=True)
    loss_bf, g_bf = _loss_and_grads(copy.deepcopy(net), batch, amp=True)
    assert loss_cl == pytest.approx(loss, rel=1e-5)
    # At this random start the gradient is ill-conditioned in float32: against float64 the contiguous one is ~7 % off
    # (AMD EPYC, 2026-12-08), and channels-last kernels round differently (with one thread they came out ten times
    # closer to float64, so the two float32 gradients differed by ~7 %). So each is checked against float64: a
    # channels-last gradient is as accurate as the contiguous one, not the same bits.
    loss64, g64 = _loss_and_grads(copy.deepcopy(net).double(), {k: v.double() if v.is_floating_point() else v
                                                               for k, v in batch.items()})
    assert loss == pytest.approx(loss64, rel=1e-5)

    def error(grad):
        return ((grad.double() - g64).norm() / g64.norm()).item()

    assert error(g) < 0.2 and error(g_cl) <= max(1.5 * error(g), 1e-3)
    cos = torch.nn.functional.cosine_similarity
    assert cos(g_cl.double(), g64, dim=0) > 0.99
    assert loss_bf != loss and loss_bf == pytest.approx(loss, rel=0.02)
    # bf16 moves the gradient (cos 0.76 on this machine's AVX-512 CPU): an option, not exact. Some CPUs' bf16
    # kernels leave an odd non-finite entry (seen once in CI: the cosine was NaN); optimizer_step skips such a step,
    # so here they may be rare, and the rest must still point the same way.
    finite = g_bf.isfinite()
    assert finite.float().mean() > 0.999, f"{(~finite).sum().item()} non-finite bf16 gradient entries"
    assert 0.5 < cos(g_bf[finite], g[finite], dim=0) < 0.999


def test_the_multi_tensor_adam_gives_the_same_bits():
    """hdr_core.train's Adam (foreach) against the one-tensor-at-a-time loop: the same weights after a few steps."""
    import copy
    import dataclasses

    from hdr_core.train import TrainConfig, make_optimizer

    torch.manual_seed(0)
    net = create_model("panolanet_small").pano
    nets, initial = [net, copy.deepcopy(net)], copy.deepcopy(net)
    cfg = TrainConfig(data=["x"], lr=1e-3)
    opts = [make_optimizer(cfg, nets[0]),
            torch.optim.Adam(nets[1].parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), foreach=False)]
    assert opts[0].defaults["foreach"] and not opts[1].defaults["foreach"]
    for _ in range(4):
        grads = [torch.randn_like(p) for p in net.parameters()]
        for n, opt in zip(nets, opts):
            for p, g in zip(n.parameters(), grads):
                p.grad = g.clone()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters()))
    assert not any(torch.equal(a, b) for a, b in zip(nets[0].parameters(), initial.parameters()))
    # --fused-adam: another kernel, the same update to float rounding
    fused_net = copy.deepcopy(initial)
    fused = make_optimizer(dataclasses.replace(cfg, fused_adam=True), fused_net)
    assert fused.defaults["fused"]
    torch.manual_seed(0)
    net = create_model("panolanet_small").pano  # the same draws as above
    for _ in range(4):
        for p, g in zip(fused_net.parameters(), [torch.randn_like(p) for p in net.parameters()]):
            p.grad = g
        fused.step()
    for a, b in zip(fused_net.parameters(), nets[0].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_bf16_padding_and_upsampling_in_bf16_give_the_same_outputs(monkeypatch):
    """Under CPU autocast the replicate pads and nearest upsamplings run in the activations' bf16 (CPU autocast would
    run them in float32, two extra copies per conv): panoLANet's outputs are the same bits as through float32, its
    gradients the same to bf16 rounding (an edge pixel's copies are summed in bf16)."""
    import contextlib
    import copy

    from hdr_core.models import layers

    torch.manual_seed(0)
    net = create_model("panolanet_small").to(memory_format=torch.channels_last)
    x = (2 * torch.rand(2, 3, 64, 128) - 1).contiguous(memory_format=torch.channels_last)

    def run(model):
        with torch.autocast("cpu", torch.bfloat16):
            out = model(x)
        (out.log_hdr.float().square().mean()).backward()
        return out.log_hdr, torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    y, g = run(copy.deepcopy(net))
    monkeypatch.setattr(layers, "copy_in_place_dtype", lambda x: contextlib.nullcontext())  # float32 pads, as before
    y_ref, g_ref = run(copy.deepcopy(net))
    assert torch.equal(y, y_ref)
    assert torch.nn.functional.cosine_similarity(g.float(), g_ref.float(), dim=0) > 0.999
    # what the context changes: CPU autocast pads a bf16 tensor in float32, the context keeps bf16
    xb = x.to(torch.bfloat16)
    with torch.autocast("cpu", torch.bfloat16):
        assert torch.nn.functional.pad(xb, (1, 1, 1, 1), mode="replicate").dtype == torch.float32
        monkeypatch.undo()
        with layers.copy_in_place_dtype(xb):
            assert torch.nn.functional.pad(xb, (1, 1, 1, 1), mode="replicate").dtype == torch.bfloat16


def test_a_bf16_step_with_non_finite_gradients_is_skipped_and_fp32_ones_are_not_checked():
    from hdr_core.train import TrainConfig, autocast_context, optimizer_step

    def step(amp, bad):
        w = torch.nn.Parameter(torch.ones(3))
        opt = torch.optim.SGD([w], lr=0.1)
        w.grad = torch.tensor([1.0, float("nan") if bad else 1.0, 1.0])
        cfg = TrainConfig(data=["x"], amp=amp)
        taken = optimizer_step(cfg, opt, autocast_context(cfg, torch.device("cpu"))[1], [w])
        return taken, w.detach()

    taken, w = step(amp=True, bad=True)
    assert not taken and torch.equal(w, torch.ones(3))  # the weights stay as they were
    taken, w = step(amp=True, bad=False)
    assert taken and torch.allclose(w, torch.full((3,), 0.9))
    taken, w = step(amp=False, bad=True)  # fp32: stepped as before (bit-exact path, no check)
    assert taken and torch.isnan(w[1])


def test_training_with_every_option_runs(tmp_path, pano_folder):
    from hdr_core.train import main

    base = main(_args(pano_folder, tmp_path / "base"))
    fast = main(_args(pano_folder, tmp_path / "fast", "--channels-last", "true", "--amp", "true", "--pair-pool", "8",
                      "--fused-adam", "true"))
    assert fast["steps"] == 3 and fast["val/loss"] == pytest.approx(base["val/loss"], rel=0.2)
    w = _weights(tmp_path / "fast")
    assert all(v.dtype == torch.float32 for v in w.values() if v.is_floating_point())  # saved as plain fp32


def test_replicate_conv_under_compile_matches_eager():
    from hdr_core.models.layers import ReplicateConv2d

    torch.manual_seed(0)
    conv = ReplicateConv2d(5, 4, 3)
    x = torch.randn(2, 5, 9, 7).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    ref = conv(x)
    ref.square().sum().backward()
    gx, gw = x.grad.clone(), conv.weight.grad.clone()
    x.grad, conv.weight.grad = None, None
    out = torch.compile(conv)(x)  # inductor: the slice padding path
    out.square().sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(x.grad, gx)
    torch.testing.assert_close(conv.weight.grad, gw)
    # under autocast too: the graph handed to the compiler has no replicate pad (inductor's would assert)
    graphs = []

    def capture(gm, inputs):
        graphs.append(gm.code)
        return gm.forward

    torch._dynamo.reset()
    with torch.autocast("cpu", torch.bfloat16):
        out = torch.compile(conv, backend=capture)(x)
        ref = conv(x)
    assert graphs and not any("replicate" in g for g in graphs)
    torch.testing.assert_close(out, ref)


def test_the_network_compiles_as_one_graph_and_trains_like_eager():
    """``torch.compile`` captures LANet whole (no graph break) and its AOT-autograd graph gives eager's loss and
    gradients. (Inductor's code generation of the whole network takes minutes on 2 cores: docs/benchmarks.md.)"""
    from hdr_core.losses import si_mse

    torch.manual_seed(0)
    net = create_model("lanet_small")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    gt = torch.randn(2, 3, 32, 32)
    ref_loss = si_mse(net(x).log_hdr, gt)
    ref_loss.backward()
    ref = {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
    net.zero_grad(set_to_none=True)
    loss = si_mse(torch.compile(net, backend="aot_eager", fullgraph=True)(x).log_hdr, gt)
    loss.backward()
    torch.testing.assert_close(loss, ref_loss, rtol=1e-4, atol=1e-6)
    for k, g in ref.items():
        torch.testing.assert_close(dict(net.named_parameters())[k].grad, g, rtol=1e-3, atol=1e-5, msg=k)


def test_sharded_checkpoints_load_like_one_file(tmp_path):
    from safetensors.torch import load_file

    from hdr_core.checkpoint import INDEX, WEIGHTS, load_model, save_model, weight_files

    torch.manual_seed(0)
    net = create_model("lanet_small")
    one, shards = tmp_path / "one", tmp_path / "shards"
    save_model(one, net)
    limit = max(v.numel() * 4 for v in net.state_dict().values())  # the largest tensor (a tensor never splits)
    save_model(shards, net, max_shard_bytes=limit)
    files = weight_files(shards)
    assert len(files) > 2 and not (shards / WEIGHTS).exists() and (shards / INDEX).is_file()
    sizes = [f.stat().st_size for f in files]
    assert max(sizes) <= limit + 2**10  # a shard holding only the largest tensor: the limit plus its header entry
    assert all(s <= limit for f, s in zip(files, sizes) if len(load_file(f)) > 1)  # the rest: header included
    a, b = load_model(one).state_dict(), load_model(shards).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a limit the first tensors' bytes fill exactly: their shard's header must not push the file over it
    nbytes = [v.numel() * v.element_size() for v in net.state_dict().values()]
    exact = next(s for s in itertools.accumulate(nbytes) if s >= max(nbytes))
    save_model(tmp_path / "exact", net, max_shard_bytes=exact)
    assert all(f.stat().st_size <= exact for f in weight_files(tmp_path / "exact") if len(load_file(f)) > 1)
    save_model(shards, net)  # saved again as one file: the old shards go
    assert weight_files(shards) == [shards / WEIGHTS] and not list(shards.glob("model-*"))


def test_pack_keeps_the_split_rules_names_and_manifest(tmp_path):
    from conftest import synthetic_panorama

    from hdr_core.data.catalog import read_manifest
    from hdr_core.data.pack import pack_panoramas
    from hdr_core.io import read_hdr, write_hdr

    src = tmp_path / "src"
    src.mkdir()
    rows = []
    for i, (name, slug) in enumerate([("a", "noon_grass"), ("b", "vestibule"), ("c", "studio_small_05")]):
        img = synthetic_panorama(64, i)
        if name == "a":
            img[:8, :8] = 2e5  # brighter than a half float holds
        write_hdr(src / f"{name}.hdr", img)
        rows.append({"name": name, "file": f"{name}.hdr", "class": "indoor", "site_group": f"g{name}",
                     "licence": "CC0-1.0", "polyhaven_slug": slug})
    (src / "manifest.json").write_text(json.dumps(rows))
    (src / "LICENSE-x.txt").write_text("licence text")
    files = pack_panoramas([src], tmp_path / "pack", height=16)
    assert sorted(f.name for f in files) == ["a.exr", "b.exr"]  # c: the test studio's series, never packed
    entries = read_manifest(tmp_path / "pack" / "src")
    assert entries["a.exr"]["site_group"] == "ga" and entries["b.exr"]["polyhaven_slug"] == "vestibule"
    assert entries["a.exr"]["packed_scale"] == 0.25 and "packed_scale" not in entries["b.exr"]
    assert (tmp_path / "pack" / "src" / "LICENSE-x.txt").is_file()
    img = read_hdr(files[1])
    assert img.shape == (16, 32, 3) and np.isfinite(img).all() and img.max() > 0


def test_time_limit_stops_on_time_and_resume_finishes(tmp_path, pano_folder):
    from hdr_core.train import main

    out = tmp_path / "run"
    first = main(_args(pano_folder, out, "--steps", "50", "--time-limit-s", "1e-9"))
    assert first["steps"] == 1 and "val/loss" in first and (out / "model" / "training.json").is_file()
    done = main(_args(pano_folder, out, "--steps", "2", "--resume", "true", "--lr", "3e-4"))
    assert done["steps"] == 2
    # training.json records both segments: each one's steps and command, and how its config differs from the last
    record = json.loads((out / "model" / "training.json").read_text())
    first, second = record["segments"]
    assert first["steps"] == [0, 1] and second["steps"] == [1, 2] and second["command"] == record["command"]
    assert "--time-limit-s" in first["command"] and "--time-limit-s" not in second["command"]
    assert first["config_differences"]["steps"] == 50 and first["config_differences"]["lr"] != 3e-4
    assert first["config_differences"]["time_limit_s"] == 1e-9 and second["config_differences"] == {}
    assert first["world_size"] == 1 and "kernels" in first["machine"]
    # a resume that trains nothing adds no segment
    main(_args(pano_folder, out, "--steps", "2", "--resume", "true", "--lr", "3e-4"))
    assert json.loads((out / "model" / "training.json").read_text())["segments"] == record["segments"]


def test_segments_before_per_segment_records(tmp_path):
    """A run resumed from a checkpoint of before per-segment records: its earlier training.json when that ended
    at the resumed step (the shipped model's first segment was such a run), else one unrecorded segment."""
    from hdr_core.train import earlier_segments

    assert earlier_segments({}, tmp_path, 0) == []
    kept = [{"steps": [0, 5], "command": "a"}]
    assert earlier_segments({"segments": kept}, tmp_path, 5) == kept
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "training.json").write_text(json.dumps(
        {"command": "python -m hdr_core.train --steps 800", "config": {"steps": 800}, "machine": "m",
         "finished_utc": "t", "metrics": {"steps": 800, "world_size": 2}}))
    (seg,) = earlier_segments({}, tmp_path, 800)
    assert seg["steps"] == [0, 800] and seg["command"].endswith("--steps 800") and seg["world_size"] == 2
    (seg,) = earlier_segments({}, tmp_path, 60)  # the record ended elsewhere: nothing known about steps 0-60
    assert seg["steps"] == [0, 60] and seg["command"] is None and "not recorded" in seg["note"]


def test_train_gpu_script_runs_both_stages_on_cpu(tmp_path, pano_folder):
    from hdr_core.checkpoint import load_model, weight_files

    pack, out = tmp_path / "pack", tmp_path / "runs"
    tiny = ["--device", "cpu", "--model", "panolanet_small", "--model-args", "{}", "--amp", "true",
            "--channels-last", "false", "--steps", "2", "--light-from-step", "1", "--batch-size", "2",
            "--crop-size", "32", "--store-height", "32", "--pano-height", "32", "--pair-pool", "3", "--workers", "0",
            "--val-groups-file", "", "--val-scenes", "v0", "--eval-every", "2", "--eval-batches", "1",
            "--max-shard-mib", "4"]
    sent = tmp_path / "sent"  # MODEL_TO: e.g. the folder a GPU machine sends back ($OUT there, set beside the run)
    env = {**os.environ, "PY": sys.executable, "DATA": str(pack), "RUN_DIR": str(out), "MODEL_TO": str(sent),
           "OUT": str(tmp_path / "not_here"), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "hdr_core.data", "pack", str(pano_folder), "--out", str(pack),
                    "--height", "32"], check=True, env=env, cwd=ROOT, capture_output=True)
    if not torch.cuda.is_available():  # without --device the script wants a GPU, and says so before any training
        res = subprocess.run(["sh", "scripts/train_gpu.sh", "--steps", "1"], env=env, cwd=ROOT, capture_output=True,
                             text=True)
        assert res.returncode != 0 and "sees no CUDA GPU (set PY)" in res.stderr and not out.exists()
    res = subprocess.run(["sh", "scripts/train_gpu.sh", *tiny], env=env, cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    model = out / "stage2" / "model"
    shards = weight_files(model)
    assert len(shards) >= 2 and all(f.stat().st_size <= 4 * 2**20 for f in shards)
    record = json.loads((model / "training.json").read_text())
    assert record["config"]["stage"] == "pano" and record["init_from_record"]["config"]["stage"] == "crop"
    assert record["metrics"]["steps"] == 2 and [p["name"] for p in record["data"]["validation"]] == ["v0"]
    assert load_model(model).config.encoder_width == 16  # panolanet_small, rebuilt from the shards
    assert record["config"]["light_irradiance_weight"] > 0 and record["config"]["amp"]  # stage 2 as on the GPU
    assert "train/light_irradiance" in record["metrics"]  # its second step had the lighting loss
    assert sorted(f.name for f in sent.iterdir()) == sorted(f.name for f in model.iterdir())  # the model's files only
    assert not (tmp_path / "not_here").exists()  # a variable OUT (the GPU machine's) is not the run folder


@pytest.mark.parametrize("mode,insert", [("crop", 0.0), ("pano", 0.0), ("crop", 0.6), ("pano", 0.6)])
def test_device_pairs_match_the_numpy_pairs(mode, insert):
    from hdr_core.data.pairs import DevicePairs

    cfg = PairConfig(mode=mode, crop_size=32, store_height=64, pano_height=32, insert_light=insert)
    ds = PairDataset(_panos(64), cfg, 100, seed=5, extras=False)
    dev = DevicePairs(ds)
    idx = [0, 3, 17, 42, 99]
    lit = [i for i in idx if dev.draws(i)["light"] is not None]
    assert (len(lit) > 0) == (insert > 0) and (insert == 0 or len(lit) < len(idx))  # inserted lights, in some
    ref = torch.utils.data.default_collate([ds[i] for i in idx])
    got = dev.batch(idx)
    assert torch.equal(got["scene"], ref["scene"]) and torch.equal(got["style"], ref["style"])
    code = lambda lin: torch.round(torch.where(lin <= 0.0031308, lin * 12.92,  # noqa: E731
                                               1.055 * lin.clamp_min(0) ** (1 / 2.4) - 0.055) * 255)
    diff = (code(got["ldr"]) - code(ref["ldr"])).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3  # a float32 rounding across a code boundary, rarely
    same = (diff == 0).all(dim=1, keepdim=True).expand_as(diff)
    torch.testing.assert_close(got["ldr"][same], ref["ldr"][same], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(got["hdr"], ref["hdr"], rtol=2e-3, atol=1e-6)  # Eq. 1's scale moves with those codes
    for i in idx:  # the exposures themselves, against the numpy camera's
        from hdr_core.camera import auto_exposure

        d = dev.draws(i)
        h = dev._hdr(d)
        e_np = auto_exposure(h.permute(1, 2, 0).numpy(), d["dr"], d["sigma"], d["n"])
        e_t = dev.auto_exposure(h[None], *(torch.tensor([[[d[k]]]], dtype=torch.float64) for k in ("dr", "sigma", "n")))
        assert e_t.item() == pytest.approx(e_np, rel=1e-9)
    with pytest.raises(ValueError, match="only the virtual camera"):
        DevicePairs(PairDataset(_panos(64), PairConfig(mode=mode, style="mdk08"), 4))


def test_training_on_device_pairs_stays_close_to_the_cpu_pairs(tmp_path, pano_folder):
    from hdr_core.train import main, parse_config

    cpu = main(_args(pano_folder, tmp_path / "cpu"))
    dev = main(_args(pano_folder, tmp_path / "dev", "--pair-device", "true"))
    # the pairs' inputs differ by an 8-bit code now and then: before any step the loss differs by ~1e-7, after 3 Adam
    # steps (sign-like at first, so tiny gradient differences flip whole steps) by 0.4-2.9e-3 over seeds 0-2 and
    # both instance-norm kernels (2026-12-06)
    assert dev["steps"] == 3 and dev["train/loss"] == pytest.approx(cpu["train/loss"], rel=5e-3)
    assert dev["val/loss"] == pytest.approx(cpu["val/loss"], rel=1e-2)
    with pytest.raises(SystemExit):
        parse_config(_args(pano_folder, tmp_path, "--pair-device", "true", "--ldr-styles", "{virtual: 1, mdk08: 1}"))


@pytest.mark.slow
@pytest.mark.parametrize("opts", [["--pair-pool", "8", "--channels-last", "true", "--time-limit-s", "600"],
                                  ["--pair-device", "true", "--amp", "true"]], ids=["pool_nhwc", "device_bf16"])
def test_ddp_two_cpu_processes_with_the_options_keep_identical_weights(tmp_path, pano_folder, opts):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
           "-m", "hdr_core.train", *_args(pano_folder, out, "--steps", "4", "--eval-every", "2", *opts)]
    res = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "final.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 4
    assert len(set(summary["param_checksums"])) == 1


@pytest.mark.parametrize("amp", [False, True])
def test_the_reported_si_mse_is_the_loss_own(amp):
    """Stage 1 reports the siMSE its LANet loss computed (not a second pass): the value a separate siMSE of the same
    output gives, in fp32 and under bf16 autocast."""
    from hdr_core.losses import si_mse
    from hdr_core.train import TrainConfig, autocast_context, compute_loss

    cfg = TrainConfig(stage="crop", model="lanet_small", amp=amp)
    torch.manual_seed(0)
    net = create_model("lanet_small")
    g = torch.Generator().manual_seed(2)
    hdr = torch.rand(2, 3, 32, 32, generator=g) * 6
    batch = {"hdr": hdr, "ldr": (hdr / 3).clamp(0, 1)}
    ctx, _ = autocast_context(cfg, torch.device("cpu"))
    with ctx:
        loss, parts = compute_loss(cfg, net, batch)
        expected = si_mse(net(2.0 * batch["ldr"] - 1.0).log_hdr, batch["hdr"].clamp(1e-8, 1e4).log()).item()
    assert parts["si_mse"] == expected and loss.item() > parts["si_mse"]  # the loss adds the segmentation term
