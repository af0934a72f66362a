"""scripts/average_models.py: the weight average of runs of one model, with its batch norms measured again."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from hdr_core.checkpoint import load_model, load_state

ROOT = Path(__file__).resolve().parents[1]


def _avg():
    spec = importlib.util.spec_from_file_location("average_models", ROOT / "scripts" / "average_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _two_runs(tmp_path, pano_folder, config: str) -> tuple[Path, list[Path]]:
    """A config (``config`` after the data lines) and two 2-step runs of it, seeds 0 and 1: (config, their models)."""
    from hdr_core.train import main as train_main

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data: [{pano_folder}]\nval_scenes: [v0]\nmodel: panolanet_small\n{config}")
    runs = []
    for seed in (0, 1):
        run = tmp_path / f"run{seed}"
        train_main(["--config", str(cfg), "--out-dir", str(run), "--steps", "2", "--seed", str(seed),
                    "--eval-every", "2", "--progress", "false"])
        runs.append(run / "model")
    return cfg, runs


def _mean(a: dict, b: dict, k: str) -> torch.Tensor:
    """The members' mean of weight ``k``, as the script computes it (float64, cast back)."""
    return ((a[k].double() + b[k].double()) / 2).float()


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Conv2d(4, 3, 1))


def test_average_state_is_the_mean_of_floats_and_keeps_the_first_integer_buffers():
    avg = _avg()
    a, b, c = _net(0), _net(1), _net(2)
    a[1].num_batches_tracked += 7
    mean = avg.average_state([a.state_dict(), b.state_dict(), c.state_dict()])
    for k, v in mean.items():
        if v.is_floating_point():
            want = (a.state_dict()[k].double() + b.state_dict()[k].double() + c.state_dict()[k].double()) / 3
            torch.testing.assert_close(v, want.float(), atol=0, rtol=0)
            if not k.startswith("1."):  # the convolutions differ between the nets (the norm starts at 1 and 0)
                assert not torch.equal(v, a.state_dict()[k]), k
        else:
            assert torch.equal(v, a.state_dict()[k]) and v.item() == 7
    with pytest.raises(ValueError, match="other weights"):
        avg.average_state([a.state_dict(), torch.nn.Conv2d(3, 4, 3).state_dict()])


def test_batch_norm_statistics_are_the_plain_mean_over_the_batches_and_nothing_else_changes():
    avg = _avg()
    net = _net(0)
    net[1].momentum = 0.1
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    g = torch.Generator().manual_seed(0)
    batches = [{"ldr": torch.rand(2, 3, 8, 8, generator=g) * (1 + i)} for i in range(5)]
    net.eval()
    assert avg.recompute_batch_norm(net, batches) == 1
    assert not net.training and net[1].momentum == 0.1  # mode and momentum restored
    with torch.no_grad():  # what the norm saw: the first conv's outputs
        feats = [net[0](2 * b["ldr"] - 1) for b in batches]
    means = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats])
    variances = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in feats])
    torch.testing.assert_close(net[1].running_mean, means.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net[1].running_var, variances.mean(0), rtol=1e-5, atol=1e-6)
    assert net[1].num_batches_tracked.item() == 5
    for k, v in before.items():
        assert torch.equal(net.state_dict()[k], v), k
    assert avg.recompute_batch_norm(torch.nn.Conv2d(3, 3, 1), iter(())) == 0  # no norms: nothing read


def test_script_averages_two_runs_and_measures_their_batch_norms(tmp_path, pano_folder, capsys):
    from hdr_core.train import main as train_main

    avg = _avg()
    cfg, runs = _two_runs(tmp_path, pano_folder, "stage: pano\npano_height: 32\nbatch_size: 2\neval_batches: 1\n"
                                                 "ldr_styles: {virtual: 1}\n")
    out = avg.main([str(tmp_path / "avg"), *map(str, runs), "--config", str(cfg), "--bn-batches", "2"])
    assert "averaged 2 models" in capsys.readouterr().out
    a, b, m = (load_state(f) for f in (*runs, out))
    model = load_model(out)  # a checkpoint like a run's model/
    assert json.loads((out / "model.json").read_text())["stage"] == "pano"
    for k, v in m.items():
        if "running" in k:  # measured again: not the members' mean
            continue
        if v.is_floating_point():
            torch.testing.assert_close(v, _mean(a, b, k), atol=0, rtol=0)
    running = [k for k in m if k.endswith("running_mean")]
    assert running and any(not torch.allclose(m[k], (a[k] + b[k]) / 2) for k in running)
    record = json.loads((out / "training.json").read_text())
    assert [r["folder"] for r in record["averaged_from"]] == [str(r) for r in runs]
    assert record["averaged_from"][0]["training"]["config"]["seed"] == 0
    assert record["batch_norm"]["batches"] == 2 and record["batch_norm"]["layers"] > 0
    assert record["batch_norm"]["panoramas"] == ["a0.hdr", "a1.hdr", "a2.hdr"]  # training panoramas, not v0
    from hdr_core.train import param_checksum
    assert record["checksum"] == param_checksum(model)
    # --bn-batches 0 keeps the members' mean statistics
    kept = load_state(avg.main([str(tmp_path / "avg0"), *map(str, runs), "--config", str(cfg), "--bn-batches", "0"]))
    for k in running:
        torch.testing.assert_close(kept[k], _mean(a, b, k), atol=0, rtol=0)
    # runs of another model, or a folder that is not a checkpoint: one-line errors
    other = tmp_path / "lanet"
    train_main(["--config", str(cfg), "--model", "lanet_small", "--out-dir", str(other), "--steps", "1",
                "--eval-every", "1", "--progress", "false"])
    with pytest.raises(SystemExit, match="its model differs"):
        avg.main([str(tmp_path / "bad"), str(runs[0]), str(other / "model"), "--config", str(cfg)])
    with pytest.raises(SystemExit, match="not a checkpoint folder"):
        avg.main([str(tmp_path / "bad"), str(runs[0]), str(tmp_path), "--config", str(cfg)])
    assert not (tmp_path / "bad").exists()


def test_stage_one_runs_measure_the_branch_they_trained_on_crops(tmp_path, pano_folder):
    """Stage 1 of panoLANet trains its panorama branch on square crops: the batch norms are measured through that
    branch (the whole network takes only 2:1 panoramas), and the ceiling branch's statistics are the members' mean."""
    avg = _avg()
    cfg, runs = _two_runs(tmp_path, pano_folder, "stage: crop\ncrop_size: 32\nstore_height: 32\nbatch_size: 2\n"
                                                 "eval_batches: 1\n")
    out = avg.main([str(tmp_path / "avg"), *map(str, runs), "--config", str(cfg), "--bn-batches", "2"])
    a, b, m = (load_state(f) for f in (*runs, out))
    pano = [k for k in m if k.startswith("pano.") and k.endswith("running_mean")]
    ceiling = [k for k in m if k.startswith("ceiling.") and k.endswith("running_mean")]
    assert pano and ceiling
    assert any(not torch.allclose(m[k], (a[k] + b[k]) / 2) for k in pano)  # measured again
    for k in ceiling:  # not run: the members' mean
        torch.testing.assert_close(m[k], _mean(a, b, k), atol=0, rtol=0)
