"""The highlight gain (beyond the paper): the op, the models that carry it, its ONNX graph, fitting and shipping it."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hdr_core.calibration import calibration_scale
from hdr_core.checkpoint import load_model, save_model
from hdr_core.masks import highlight_gain, saturation_ramp
from hdr_core.models import create_model

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ldr_with_a_sun(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A linear LDR ``1x3xHxW`` in [0, 1]: noise below 0.8, a white disc and a soft ramp around it."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h, w, generator=g) * 0.8
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    d = ((yy - h // 4) ** 2 + (xx - w // 3) ** 2).float().sqrt()
    x = torch.maximum(x, (1.2 - d / (h / 4)).clamp(0, 1).expand(1, 3, h, w))
    return x.clamp(0, 1)


def test_gain_is_zero_at_or_below_the_threshold_and_full_where_white():
    lin = _ldr_with_a_sun(32, 64)
    log_hdr = torch.randn(1, 3, 32, 64)
    assert highlight_gain(log_hdr, lin, 0.0) is log_hdr  # no op: the paper's output and graph
    out = highlight_gain(log_hdr, lin, 1.5)
    mean = lin.mean(1, keepdim=True).expand_as(log_hdr)
    assert torch.equal(out[mean <= 0.83], log_hdr[mean <= 0.83])
    white = (mean == 1.0)
    assert white.any()
    torch.testing.assert_close(out[white] - log_hdr[white], torch.full_like(log_hdr[white], 1.5 * math.log(2)))
    ramp = saturation_ramp(lin).expand_as(log_hdr)
    torch.testing.assert_close(out - log_hdr, 1.5 * math.log(2) * ramp)
    # Eq. 1 reads only pixels below the threshold: the calibration scale is the same with and without the gain
    s0, _ = calibration_scale(log_hdr.exp(), lin, channel_axis=1)
    s1, _ = calibration_scale(out.exp(), lin, channel_axis=1)
    assert torch.equal(s0, s1)


@pytest.mark.parametrize("name", ["lanet_small", "panolanet_small"])
def test_a_model_with_a_gain_is_the_same_model_plus_the_gain_once(name):
    torch.manual_seed(0)
    base = create_model(name).eval()
    gained = create_model(name, highlight_gain=1.25).eval()
    gained.load_state_dict(base.state_dict())
    lin = _ldr_with_a_sun(64, 128)
    x = 2 * lin - 1
    with torch.no_grad():
        a, b = base(x), gained(x)
    torch.testing.assert_close(b.log_hdr - a.log_hdr, 1.25 * math.log(2) * saturation_ramp(lin).expand_as(a.log_hdr),
                               atol=1e-5, rtol=0)
    if name == "panolanet_small":
        assert gained.pano.config.highlight_gain == 0.0  # the branch does not add it a second time
        torch.testing.assert_close(a.pano_log_hdr, b.pano_log_hdr, atol=0, rtol=0)
        with torch.no_grad():  # stage 1 (the panorama branch on crops) never sees it
            torch.testing.assert_close(base.forward_pano(x[..., :64, :64]).log_hdr,
                                       gained.forward_pano(x[..., :64, :64]).log_hdr, atol=0, rtol=0)


def test_the_gain_travels_in_model_json_and_the_onnx_graph(tmp_path):
    from hdr_core.export import export_onnx
    from hdr_core.predict import Predictor

    torch.manual_seed(0)
    net = create_model("panolanet_small", highlight_gain=2.0).eval()
    folder = save_model(tmp_path / "m", net)
    assert json.loads((folder / "model.json").read_text())["config"]["highlight_gain"] == 2.0
    assert load_model(folder).config.highlight_gain == 2.0
    export_onnx(load_model(folder), folder / "model.onnx", (64, 128))
    lin = _ldr_with_a_sun(64, 128).numpy()
    onnx_log, _ = Predictor(folder, backend="onnx").run_network(2 * lin - 1)
    with torch.no_grad():
        ref = net(torch.from_numpy(2 * lin - 1)).log_hdr.numpy()
    np.testing.assert_allclose(onnx_log, ref, atol=2e-4, rtol=0)
    # a model.json written before the field existed loads with gain 0
    meta = json.loads((folder / "model.json").read_text())
    del meta["config"]["highlight_gain"]
    (folder / "model.json").write_text(json.dumps(meta))
    assert load_model(folder).config.highlight_gain == 0.0


def test_choose_gain_takes_the_smallest_gain_near_the_best_within_the_simse_bound():
    fit = _script("fit_highlight_gain")
    table = {0.0: {"si_mse": 0.30, "irr_err": 0.70}, 0.5: {"si_mse": 0.30, "irr_err": 0.55},
             1.0: {"si_mse": 0.305, "irr_err": 0.47}, 1.5: {"si_mse": 0.31, "irr_err": 0.44},
             2.0: {"si_mse": 0.33, "irr_err": 0.40}}  # 2.0: best light, but siMSE 10 % up
    assert fit.choose_gain(table, tolerance=0.04, max_simse_rise=0.05) == 1.0  # 0.47 <= 0.44 + 0.04
    assert fit.choose_gain(table, tolerance=0.0, max_simse_rise=0.05) == 1.5
    assert fit.choose_gain(table, tolerance=0.0, max_simse_rise=0.2) == 2.0
    assert fit.choose_gain({0.0: {"si_mse": 0.3, "irr_err": 0.5}, 1.0: {"si_mse": 0.3, "irr_err": 0.6}}, 0.04,
                           0.05) == 0.0  # a gain that does not help is not taken
    assert fit.parse_grid("0:1:0.25") == [0.0, 0.25, 0.5, 0.75, 1.0] and fit.parse_grid("0,1.5") == [0.0, 1.5]
    with pytest.raises(ValueError, match="gain 0"):
        fit.choose_gain({1.0: {"si_mse": 0.3, "irr_err": 0.5}}, 0.04, 0.05)


def test_fit_script_scores_validation_pairs_and_ship_model_writes_the_gain(tmp_path, pano_folder, capsys):
    """End to end on tiny data: the fit's gain-0 row is hdr_core.train's own validation of the model; shipping
    with the chosen gain writes it into model.json and the ONNX graph."""
    from hdr_core.train import main as train_main

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data: [{pano_folder}]\nval_scenes: [v0]\nmodel: panolanet_small\nstage: pano\npano_height: 32\n"
                   "batch_size: 4\neval_batches: 1\nldr_styles: {virtual: 1}\nval_styles: [virtual, phone_hdr]\n")
    run = tmp_path / "run"
    summary = train_main(["--config", str(cfg), "--out-dir", str(run), "--steps", "1", "--lr", "0", "--eval-every", "1",
                          "--progress", "false"])
    fit = _script("fit_highlight_gain")
    chosen = fit.main([str(run / "model"), "--config", str(cfg), "--gains", "0,1,2", "--eval-batches", "1",
                       "--json", str(tmp_path / "fit.json")])
    assert "chosen highlight gain" in capsys.readouterr().out
    rec = json.loads((tmp_path / "fit.json").read_text())
    assert rec["chosen"] == chosen and set(rec["table"]) == {"0", "1", "2"}
    for style, (g, e0, eg) in rec["leave_one_style_out"].items():  # the other style alone chooses g
        other = {"virtual": "phone_hdr", "phone_hdr": "virtual"}[style]
        sub = {float(k): {"si_mse": v[f"{other}/si_mse"], "irr_err": v[f"{other}/irr_err"]}
               for k, v in rec["table"].items()}
        assert g == fit.choose_gain(sub, 0.04, 0.05)
        assert (e0, eg) == (rec["table"]["0"][f"{style}/irr_err"], rec["table"][f"{g:g}"][f"{style}/irr_err"])
    for style in ("virtual", "phone_hdr"):  # gain 0 = training's own validation of the same weights, same pairs
        for k in ("si_mse", "irr_err", "peak_bias"):
            assert rec["table"]["0"][f"{style}/{k}"] == pytest.approx(summary[f"val/{style}/{k}"], rel=1e-5), (style, k)
    # --balanced: with one validation panorama the cycled pairs are the random ones, so the figures are the same
    fit.main([str(run / "model"), "--config", str(cfg), "--gains", "0,1,2", "--eval-batches", "1", "--balanced",
              "--json", str(tmp_path / "fit_bal.json")])
    bal = json.loads((tmp_path / "fit_bal.json").read_text())
    assert bal["balanced"] is True and rec["balanced"] is False and bal["table"] == rec["table"]
    fit.main([str(run / "model"), "--config", str(cfg), "--gains", "0", "--eval-batches", "1",
              "--exposure-ev=-1e-05", "--json", str(tmp_path / "fit_ev.json")])  # passed on as a number, not a flag
    assert json.loads((tmp_path / "fit_ev.json").read_text())["exposure_ev"] == -1e-05
    pairs = rec["pairs"]  # every pair: its panorama, style, input figures and irradiance error at each gain
    assert len(pairs) == 8 and [p["style"] for p in pairs] == ["virtual"] * 4 + ["phone_hdr"] * 4
    assert all(p["panorama"] == "v0" and len(p["irr_err"]) == 3 and 0 <= p["saturated"] <= 1 for p in pairs)
    for k, g in enumerate(rec["gains"]):
        assert sum(p["irr_err"][k] for p in pairs) / 8 == pytest.approx(rec["table"][f"{g:g}"]["irr_err"], rel=1e-6)
    capsys.readouterr()
    fit.main([str(run / "model"), "--config", str(cfg), "--gains", "0,1,2", "--eval-batches", "1", "--by-image"])
    said = capsys.readouterr().out
    errs = [[p["irr_err"][k] for p in pairs] for k in range(3)]
    assert f"each pair at its own best gain: {sum(map(min, zip(*errs))) / 8:.4f}" in said
    assert "| ldr_mean | 1 (" in said and "| saturated | 1 (" in said
    per_pano = rec["panoramas_irr_err"]["1"]  # one validation panorama: its 4 pairs in both styles
    assert list(per_pano) == ["v0"] and len(per_pano["v0"]) == 8
    assert sum(per_pano["v0"]) / 8 == pytest.approx(rec["table"]["1"]["irr_err"], rel=1e-6)
    # a sun-less tiny panorama may or may not want a gain; what a gain does to its light is monotone in the peak
    assert rec["table"]["2"]["peak_bias"] >= rec["table"]["1"]["peak_bias"] >= rec["table"]["0"]["peak_bias"]
    ship = _script("ship_model")
    dest = ship.ship(run / "model", "panolanet_small", tmp_path / "shipped", size=(32, 64), highlight_gain=0.75)
    assert json.loads((dest / "model.json").read_text())["config"]["highlight_gain"] == 0.75
    assert load_model(dest).config.highlight_gain == 0.75
    with pytest.raises(SystemExit, match="already has a highlight gain .*--without-gain"):
        fit.main([str(dest), "--config", str(cfg)])
    fit.main([str(dest), "--config", str(cfg), "--gains", "0,1", "--eval-batches", "1", "--without-gain",
              "--json", str(tmp_path / "fit_shipped.json")])  # the shipped network without its gain: the run's
    shipped = json.loads((tmp_path / "fit_shipped.json").read_text())
    assert shipped["carried_gain"] == 0.75 and rec["carried_gain"] == 0.0 and shipped["gains"] == [0, 0.75, 1]
    for g in ("0", "1"):  # the same figures, to the fp16 rounding of the shipped weights
        for k, v in rec["table"][g].items():
            assert shipped["table"][g][k] == pytest.approx(v, rel=1e-3, abs=1e-3), (g, k)
    assert "scored without it" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="not a 'lanet_small' checkpoint"):  # another architecture: one line
        ship.ship(run / "model", "lanet_small", tmp_path / "wrong")
    assert not (tmp_path / "wrong").exists()


def test_the_shipped_models_graph_is_its_checkpoint_gain_included():
    """``hdr_core/weights/panolanet_w24``: the ONNX graph the add-on and ``predict`` run carries the same config
    (highlight gain included) as ``model.json`` and predicts what the safetensors weights predict."""
    from hdr_core.predict import Predictor, default_weights

    folder = default_weights()
    meta = json.loads((folder / "model.json").read_text())
    onnx = Predictor(folder, backend="onnx")
    assert onnx.meta["config"] == load_model(folder).config.to_dict() == {**meta["config"]}
    assert meta["config"]["highlight_gain"] > 0  # the shipped model has its fitted gain (docs/models.md)
    lin = _ldr_with_a_sun(256, 512, seed=3).numpy()
    onnx_log, _ = onnx.run_network(2 * lin - 1)
    torch_log, _ = Predictor(folder, backend="torch").run_network(2 * lin - 1)
    np.testing.assert_allclose(onnx_log, torch_log, atol=2e-3, rtol=0)
    white = lin.mean(1, keepdims=True).repeat(3, 1) == 1.0
    assert white.any() and (onnx_log[white] > np.log(1.0)).mean() > 0.9  # clipped pixels expanded above the LDR
