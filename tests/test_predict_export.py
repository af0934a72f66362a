"""ONNX export, the Predictor and the predict CLI (random-weight models: pipeline behaviour, not quality)."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from hdr_core.calibration import TAU
from hdr_core.checkpoint import load_model, save_model
from hdr_core.export import export_onnx
from hdr_core.export import main as export_main
from hdr_core.io import read_hdr, write_ldr
from hdr_core.models import create_model
from hdr_core.predict import Predictor, fit_to_2to1
from hdr_core.predict import main as predict_main


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Seeded random lanet_small and panolanet_small checkpoints, each with a small ONNX export beside it."""
    root = tmp_path_factory.mktemp("ckpt")
    out = {}
    for name, hw in (("lanet_small", (64, 96)), ("panolanet_small", (64, 128))):
        torch.manual_seed(0)
        model = create_model(name).eval()
        folder = save_model(root / name, model)
        export_onnx(model, folder / "model.onnx", hw)
        out[name] = folder
    return out


def _ldr(h, w, seed=0):
    r = np.random.default_rng(seed)
    img = np.clip(r.normal(0.4, 0.2, (h, w, 3)), 0, 1)
    img[: h // 4, : w // 4] = 1.0  # a saturated region
    return img.astype(np.float32)


@pytest.mark.parametrize("name,shape", [("lanet_small", (1, 3, 64, 96)), ("lanet_small", (2, 3, 96, 160)),
                                        ("panolanet_small", (2, 3, 64, 128))])
def test_onnx_runtime_matches_torch(checkpoints, name, shape):
    model = load_model(checkpoints[name]).eval()
    x = torch.rand(shape) * 2 - 1
    with torch.no_grad():
        ref = model(x)
    sess = ort.InferenceSession(str(checkpoints[name] / "model.onnx"), providers=["CPUExecutionProvider"])
    log_hdr, mask = sess.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(log_hdr, ref.log_hdr.numpy(), atol=2e-3, rtol=0)  # log domain
    if ref.merge_mask is not None:
        np.testing.assert_allclose(mask, ref.merge_mask.numpy(), atol=1e-5)
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["model"] == name and "config" in meta


def test_lanet_onnx_has_dynamic_size_and_predictor_pads_like_torch(checkpoints):
    sess = ort.InferenceSession(str(checkpoints["lanet_small"] / "model.onnx"), providers=["CPUExecutionProvider"])
    for h, w in ((32, 32), (64, 160)):
        assert sess.run(None, {"x": np.zeros((1, 3, h, w), np.float32)})[0].shape == (1, 3, h, w)
    model = load_model(checkpoints["lanet_small"]).eval()
    p = Predictor(checkpoints["lanet_small"], backend="onnx")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 37, 53)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).log_hdr.numpy()
    np.testing.assert_allclose(p.run_network(x)[0], ref, atol=2e-3)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_predictor_is_calibrated_to_the_input(checkpoints, backend):
    p = Predictor(checkpoints["panolanet_small"], backend=backend, size=(128, 64))
    ldr = _ldr(64, 128)
    pred = p.predict(ldr)
    assert pred.hdr.shape == ldr.shape and pred.hdr.dtype == np.float32 and np.isfinite(pred.hdr).all()
    m = pred.ldr_linear.mean(-1) < TAU
    assert pred.hdr[m].sum() == pytest.approx(pred.ldr_linear[m].sum(), rel=1e-3)
    assert pred.merge_mask is not None and pred.merge_mask.shape == (64, 128)


def test_backends_agree(checkpoints):
    ldr = _ldr(64, 128, 1)
    a = Predictor(checkpoints["panolanet_small"], backend="onnx").predict(ldr).hdr
    b = Predictor(checkpoints["panolanet_small"], backend="torch", size=(128, 64)).predict(ldr).hdr
    np.testing.assert_allclose(np.log(a + 1e-6), np.log(b + 1e-6), atol=5e-3)


def test_full_resolution_output_keeps_detail(checkpoints):
    p = Predictor(checkpoints["panolanet_small"], backend="onnx")  # graph is 64x128
    ldr = _ldr(128, 256, 2)
    pred = p.predict(ldr)
    assert pred.hdr.shape == (128, 256, 3)
    # Unsaturated texture comes from the full-resolution input: the HDR/LDR ratio is smooth, not the image.
    ratio = np.log(pred.hdr + 1e-6) - np.log(pred.ldr_linear + 1e-6)
    assert np.abs(np.diff(ratio, axis=1)).mean() < np.abs(np.diff(np.log(pred.ldr_linear), axis=1)).mean()


def test_panorama_model_refuses_non_2to1_unless_fit(checkpoints):
    p = Predictor(checkpoints["panolanet_small"], backend="onnx")
    with pytest.raises(ValueError, match="2:1"):
        p.predict(_ldr(64, 100))
    assert p.predict(_ldr(64, 100), fit="crop").hdr.shape == (50, 100, 3)
    assert fit_to_2to1(_ldr(64, 100), "pad").shape == (64, 128, 3)
    assert fit_to_2to1(_ldr(64, 160), "pad").shape == (80, 160, 3)
    lanet = Predictor(checkpoints["lanet_small"], backend="onnx")
    assert lanet.predict(_ldr(30, 44)).hdr.shape == (30, 44, 3)  # LANet: any size


def test_full_resolution_bands_give_the_same_pixels(checkpoints):
    """The full-resolution step in bands of rows: bit-identical for any band height and thread count, and equal to the
    one-piece formula (bilinear upsampling of the log gain, then Eq. 1 on the whole image)."""
    import cv2

    from hdr_core.calibration import calibrate
    from hdr_core.color import ldr_to_linear
    from hdr_core.resize import resize

    ldr = _ldr(150, 300, 5)  # the graph is 64x128: upsampled by a non-integer factor
    folder = checkpoints["panolanet_small"]
    # the same ONNX Runtime threads throughout (its results depend on them); one band runs unthreaded
    one = Predictor(folder, backend="onnx", band_rows=10**6, threads=2).predict(ldr)
    for rows in (1, 7, 64):
        got = Predictor(folder, backend="onnx", band_rows=rows, threads=2).predict(ldr)
        np.testing.assert_array_equal(got.hdr, one.hdr)
        np.testing.assert_array_equal(got.ldr_linear, one.ldr_linear)
    u8 = np.round(ldr * 255).astype(np.uint8)  # 8-bit input: the same result as v / 255, by table
    np.testing.assert_array_equal(Predictor(folder, backend="onnx", threads=2).predict(u8).hdr,
                                  Predictor(folder, backend="onnx", threads=2).predict(u8 / np.float32(255)).hdr)
    lin = ldr_to_linear(ldr)
    small = resize(lin, (128, 64), "area")
    p = Predictor(folder, backend="onnx")
    log_hdr, _ = p.run_network((2.0 * small - 1.0).transpose(2, 0, 1)[None])
    hdr_small = calibrate(np.exp(log_hdr[0].transpose(1, 2, 0).astype(np.float64)), small.astype(np.float64))
    log_gain = (np.log(np.maximum(hdr_small, 1e-8)) - np.log(np.maximum(small, 1e-8))).astype(np.float32)
    expected = calibrate(lin * np.exp(cv2.resize(log_gain, (300, 150), interpolation=cv2.INTER_LINEAR)), lin)
    np.testing.assert_allclose(one.hdr, expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="band_rows"):
        Predictor(folder, backend="onnx", band_rows=0)


def test_exposure_boost_expands_highlights(checkpoints):
    p = Predictor(checkpoints["lanet_small"], backend="onnx")
    ldr = _ldr(32, 64, 3)
    a, b = p.predict(ldr).hdr, p.predict(ldr, exposure_boost=1.3).hdr
    assert not np.allclose(a, b)
    with pytest.raises(ValueError):
        p.predict(ldr, exposure_boost=0)


def test_predict_cli_end_to_end(checkpoints, tmp_path, capsys):
    inp = tmp_path / "in"
    inp.mkdir()
    write_ldr(inp / "good.png", _ldr(64, 128))
    write_ldr(inp / "square.png", _ldr(64, 64))
    (inp / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "out"
    code = predict_main([str(inp), str(tmp_path / "missing.png"), "-o", str(out), "--weights",
                         str(checkpoints["panolanet_small"]), "--preview", "--masks"])
    err = capsys.readouterr().err
    assert code == 1
    assert read_hdr(out / "good.exr").shape == (64, 128, 3)
    assert (out / "good_preview.png").exists() and (out / "good_mask.png").exists()
    assert not (out / "square.exr").exists() and not (out / "corrupt.exr").exists()
    assert "square.png" in err and "2:1" in err and "corrupt.jpg" in err and "missing.png" in err
    assert predict_main([str(inp / "square.png"), "-o", str(out), "--weights", str(checkpoints["panolanet_small"]),
                         "--fit", "pad"]) == 0
    assert predict_main([str(inp / "good.png"), "-o", str(out), "--weights", str(tmp_path / "nope")]) == 2
    capsys.readouterr()
    # an output "folder" that is a file: one line, no traceback
    assert predict_main([str(inp / "good.png"), "-o", str(inp / "good.png"), "--weights",
                         str(checkpoints["panolanet_small"])]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: output folder {inp / 'good.png'}: File exists"]
    write_ldr(inp / "tiny.png", _ldr(1, 2))
    assert predict_main([str(inp / "tiny.png"), "-o", str(out), "--weights", str(checkpoints["panolanet_small"])]) == 1
    assert "tiny.png: too small: 2x1 pixels" in capsys.readouterr().err
    # half floats by default, 32-bit floats with --precision float
    import OpenEXR

    def channel_type(path):
        return {v.pixels.dtype for v in OpenEXR.File(str(path), separate_channels=True).channels().values()}

    assert channel_type(out / "good.exr") == {np.dtype(np.float16)}
    assert predict_main([str(inp / "good.png"), "-o", str(tmp_path / "f32"), "--weights",
                         str(checkpoints["panolanet_small"]), "--precision", "float"]) == 0
    assert channel_type(tmp_path / "f32" / "good.exr") == {np.dtype(np.float32)}
    np.testing.assert_allclose(read_hdr(out / "good.exr"), read_hdr(tmp_path / "f32" / "good.exr"), rtol=2.0**-10)


def test_export_cli(checkpoints, tmp_path):
    path = export_main(["--weights", str(checkpoints["lanet_small"]), "-o", str(tmp_path / "m.onnx")])
    assert path.is_file() and not list(tmp_path.glob(".m.onnx*"))


def test_export_leaves_the_model_in_eval_mode(tmp_path):
    model = create_model("lanet_small").eval()
    export_onnx(model, tmp_path / "m.onnx", (32, 32))
    assert not any(m.training for m in model.modules())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hdrcnn_small", "singlehdr_small", "fhdr_small"])
def test_ported_baselines_predict_through_onnx_like_torch(name, tmp_path, monkeypatch):
    """A trained baseline's checkpoint folder works in the Predictor (issue #7): exported on first use, padded to its
    own multiple, same prediction as the torch backend."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the on-demand ONNX export lands here
    torch.manual_seed(0)
    folder = save_model(tmp_path / name, create_model(name).eval())
    ldr = _ldr(40, 80, 4)
    onnx_pred = Predictor(folder, backend="onnx", size=(80, 40)).predict(ldr)
    torch_pred = Predictor(folder, backend="torch", size=(80, 40)).predict(ldr)
    assert list((tmp_path / "cache").rglob("*.onnx")) and onnx_pred.hdr.shape == (40, 80, 3)
    assert np.isfinite(onnx_pred.hdr).all()
    np.testing.assert_allclose(np.log(onnx_pred.hdr + 1e-6), np.log(torch_pred.hdr + 1e-6), atol=5e-3)


def _perturbed_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Random batch-norm statistics and affine parameters (a fresh model's are 0/1: a fused BN would hide nothing)."""
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def test_half_precision_checkpoint_and_onnx_keep_the_rounded_model(tmp_path):
    """``save_model(dtype=float16)`` + ``export_onnx(half_weights=True)`` (how the default model ships): half the
    bytes, and ONNX Runtime computes in float32 on exactly the checkpoint's rounded parameters; the sampling grids
    and other constants stay float32."""
    import onnx
    from safetensors import safe_open

    torch.manual_seed(1)
    model = _perturbed_bn(create_model("panolanet_small").eval())
    full = save_model(tmp_path / "full", model)
    half = save_model(tmp_path / "half", model, dtype=torch.float16)
    with safe_open(str(half / "model.safetensors"), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert dtypes == {torch.float16, torch.int64}  # num_batches_tracked stays an integer
    assert load_model(half).config == model.config
    assert (half / "model.safetensors").stat().st_size < 0.55 * (full / "model.safetensors").stat().st_size
    rounded = load_model(half).eval()
    for (k, a), b in zip(rounded.state_dict().items(), model.state_dict().values()):
        assert a.dtype == b.dtype, k
        if a.is_floating_point():
            assert torch.equal(a, b.half().float()), k

    export_onnx(rounded, tmp_path / "half.onnx", (64, 128), half_weights=True)
    export_onnx(rounded, tmp_path / "full.onnx", (64, 128))
    proto = onnx.load(str(tmp_path / "half.onnx"))
    kinds = {t.name: (t.data_type, int(np.prod(t.dims))) for t in proto.graph.initializer}
    assert sum(n for d, n in kinds.values() if d == onnx.TensorProto.FLOAT16) > 0.9 * sum(
        p.numel() for p in rounded.parameters())
    consts = [n.attribute[0].t for n in proto.graph.node if n.op_type == "Constant"]
    grids = [t for t in consts if np.prod(t.dims) >= 64 * 128]  # the P2C/C2P sampling grids
    assert grids and all(t.data_type == onnx.TensorProto.FLOAT for t in grids)
    assert (tmp_path / "half.onnx").stat().st_size < 0.8 * (tmp_path / "full.onnx").stat().st_size
    x = torch.rand(2, 3, 64, 128) * 2 - 1
    with torch.no_grad():
        ref = rounded(x)
    sess = ort.InferenceSession(str(tmp_path / "half.onnx"), providers=["CPUExecutionProvider"])
    log_hdr, mask = sess.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(log_hdr, ref.log_hdr.numpy(), atol=2e-4, rtol=0)
    np.testing.assert_allclose(mask, ref.merge_mask.numpy(), atol=1e-5)


def test_ship_model_packages_a_run_under_its_registered_name(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("ship_model", Path(__file__).parents[1] / "scripts" / "ship_model.py")
    ship_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship_model)
    torch.manual_seed(0)
    run = save_model(tmp_path / "run" / "model", create_model("panolanet_small").eval(), extra={"stage": "pano"})
    (run / "training.json").write_text(json.dumps({"steps": 3}))
    dest = ship_model.ship(run, "panolanet_small", tmp_path / "shipped", size=(64, 128))
    assert sorted(p.name for p in dest.iterdir()) == ["model.json", "model.onnx", "model.safetensors", "training.json"]
    meta = json.loads((dest / "model.json").read_text())
    assert meta["model"] == "panolanet_small" and meta["weights_dtype"] == "float16" and meta["stage"] == "pano"
    hdr = Predictor(dest, backend="onnx").predict(_ldr(64, 128)).hdr
    assert hdr.shape == (64, 128, 3) and np.isfinite(hdr).all()
    with pytest.raises(SystemExit, match="differs from the registered 'panolanet_w24'"):
        ship_model.ship(run, "panolanet_w24", tmp_path / "other")
    assert not (tmp_path / "other").exists()
