"""render_eval end to end at tiny size: CLI, from-HDR mode, baselines, resume, shards + merge, report."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bpy")

from conftest import synthetic_panorama  # noqa: E402

from hdr_core.io import write_exr, write_ldr  # noqa: E402
from render_eval.__main__ import main  # noqa: E402
from render_eval.methods import parse_method  # noqa: E402
from render_eval.report import check_in_chromium, read_results_csv  # noqa: E402

TINY = ["--resolution", "48x27", "--samples", "4", "--no-progress", "--no-vdp"]


@pytest.fixture(scope="module")
def hdr_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("hdr")
    for i, name in enumerate(["p0", "p1", "p2"]):
        write_exr(d / f"{name}.exr", synthetic_panorama(32, 10 + i))
    return d


def _rows(out: Path) -> dict:
    rows = {}
    with open(out / "results.csv") as f:
        for r in csv.DictReader(f):
            rows[(r["stem"], r["method"], r["metric"])] = r
    return rows


def test_parse_method(tmp_path):
    assert parse_method("koeo").kind == "baseline" and parse_method("gt").kind == "gt"
    assert parse_method(f"mine={tmp_path}").kind == "dir"
    m = parse_method("panolanet_small=model:/x/y")
    assert (m.kind, m.arg) == ("model", "/x/y")
    for bad in ("nonsense", f"a b={tmp_path}", "x=/no/such/dir"):
        with pytest.raises(ValueError):
            parse_method(bad)


@pytest.mark.slow
def test_from_hdr_benchmark_resume_and_report(hdr_dir, tmp_path):
    out = tmp_path / "out"
    args = ["--from-hdr", str(hdr_dir), "--method", "gt", "--method", "ldr", "--method", "koeo", "--out", str(out)]
    assert main(args + TINY) == 0
    rows = _rows(out)
    assert float(rows[("p0", "gt", "mse_1e3")]["value"]) == 0.0  # GT vs GT, same seed: perfect
    assert rows[("p0", "gt", "psnr")]["value"] == "inf"
    assert float(rows[("p0", "noise floor", "mse_1e3")]["value"]) > 0  # another seed: render noise
    assert float(rows[("p1", "ldr", "mse_1e3")]["value"]) > 0
    summary = (out / "summary.md").read_text()
    assert "VDP" not in summary.split("## Run")[0] or "ColorVideoVDP" in summary
    assert "| koeo | 3/3 |" in summary and "noise floor" in summary
    for f in ("summary.csv", "report.html", "plots/psnr.png", "visuals/p0/_LDR.input.png",
              "visuals/p0/koeo.render.png", "visuals/p0/koeo.error.png", "inputs/ldr/p0.png"):
        assert (out / f).is_file(), f
    # Resume: a second run re-renders nothing and gives the same table.
    cache_files = sorted((out / "cache").iterdir())
    before = (out / "results.csv").read_text()
    assert main(args + TINY) == 0
    assert sorted((out / "cache").iterdir()) == cache_files and (out / "results.csv").read_text() == before
    # Shards merged give the single run's results.
    shard_dirs = []
    for i in range(2):
        d = tmp_path / f"shard{i}"
        assert main(["--from-hdr", str(hdr_dir), "--method", "gt", "--method", "ldr", "--method", "koeo",
                     "--out", str(d), "--shard", f"{i}/2", "--no-report"] + TINY) == 0
        shard_dirs.append(d)
    merged = tmp_path / "merged"
    assert main(["merge", str(merged), *map(str, shard_dirs)]) == 0
    single = {k: v["value"] for k, v in _rows(out).items()}
    assert {k: v["value"] for k, v in _rows(merged).items()} == single
    # Two worker processes (one render thread each): the same numbers, up to Cycles' thread-order rounding (seen up
    # to 2.5e-5 relative, in a noise-floor MSE of these tiny renders; another seed or item changes them by O(1)).
    par = tmp_path / "jobs2"
    assert main(["--from-hdr", str(hdr_dir), "--method", "gt", "--method", "ldr", "--method", "koeo",
                 "--out", str(par), "--jobs", "2", "--no-report"] + TINY) == 0
    par_rows = {k: v["value"] for k, v in _rows(par).items()}
    assert par_rows.keys() == single.keys()
    for k, v in single.items():
        assert float(par_rows[k]) == pytest.approx(float(v), rel=1e-3, abs=1e-9), k
    assert read_results_csv(merged / "results.csv")
    if shutil.which("chromium"):
        ok, failed = check_in_chromium(out / "report.html")
        assert ok > 10 and failed == 0


@pytest.mark.slow
def test_predictions_on_disk_and_bad_files_are_reported(hdr_dir, tmp_path):
    gt, ldr, pred = tmp_path / "gt", tmp_path / "ldr", tmp_path / "pred"
    for d in (gt, ldr, pred):
        d.mkdir()
    shutil.copy(hdr_dir / "p0.exr", gt / "p0.exr")
    shutil.copy(hdr_dir / "p1.exr", gt / "p1.exr")
    write_ldr(ldr / "p0.png", np.full((32, 64, 3), 0.5, np.float32))
    (ldr / "p1.png").write_bytes(b"not a png")
    write_exr(pred / "p0.exr", synthetic_panorama(32, 99))
    out = tmp_path / "out"
    code = main(["--gt", str(gt), "--ldr", str(ldr), "--method", f"mine={pred}", "--out", str(out),
                 "--no-noise-floor"] + TINY)
    assert code == 1  # p1's LDR is corrupt: reported, not averaged
    rows = read_results_csv(out / "results.csv")
    status = {(r["stem"], r["method"]): r["status"] for r in rows}
    assert status[("p0", "mine")] == "ok" and "bad input" in status[("p1", "mine")]
    assert "| mine | 1/2 |" in (out / "summary.md").read_text()


def test_method_signature_and_model_size_parsing():
    from hdr_core.predict import parse_size

    assert parse_size("512x256") == (512, 256) and parse_size("64X32") == (64, 32)
    for bad in ("512", "0x2", "ax2", "1x2x3", "-5x4"):
        with pytest.raises(ValueError):
            parse_size(bad)
    m = parse_method("mine=model:/w")  # no such folder: no digest ("-"); predicting it fails in its row
    assert m.signature() == "model:/w#-" and m.signature((512, 256)) == "model:/w@512x256#-"
    assert m.signature((512, 256), weights=False) == "model:/w@512x256"
    shipped = parse_method("panolanet_w24=model").signature()  # the shipped files, by name
    assert shipped.startswith("model:#") and len(shipped) == len("model:#") + 12
    assert parse_method("koeo").signature((512, 256)) == "baseline:koeo"  # the size concerns models only


@pytest.mark.slow
def test_model_method_and_model_size_change_recomputes_only_that_method(hdr_dir, tmp_path):
    import torch

    from hdr_core.checkpoint import save_model
    from hdr_core.models import create_model

    torch.manual_seed(0)
    weights = save_model(tmp_path / "tiny", create_model("lanet_small", encoder_width=8).eval())
    gt = tmp_path / "gt"
    gt.mkdir()
    shutil.copy(hdr_dir / "p0.exr", gt / "p0.exr")
    out = tmp_path / "out"
    args = ["--from-hdr", str(gt), "--method", "ldr", "--method", f"tiny=model:{weights}", "--out", str(out),
            "--no-noise-floor", "--no-report", "--paired-ref", "ldr"] + TINY
    item = out / "items" / "p0"
    assert main(args + ["--model-size", "64x32"]) == 0
    first = {m: json.loads((item / f"{m}.json").read_text()) for m in ("ldr", "tiny")}
    assert first["tiny"]["status"] == "ok" and "@64x32#" in first["tiny"]["signature"]
    stamps = {m: (item / f"{m}.json").stat().st_mtime_ns for m in ("ldr", "tiny")}
    assert main(args + ["--model-size", "64x32"]) == 0  # same definition: nothing recomputed
    assert stamps == {m: (item / f"{m}.json").stat().st_mtime_ns for m in ("ldr", "tiny")}
    assert main(args + ["--model-size", "128x64"]) == 0  # another working size: only the model's row is redone
    second = {m: json.loads((item / f"{m}.json").read_text()) for m in ("ldr", "tiny")}
    assert (item / "ldr.json").stat().st_mtime_ns == stamps["ldr"] and second["ldr"] == first["ldr"]
    assert (item / "tiny.json").stat().st_mtime_ns != stamps["tiny"]
    assert second["tiny"]["status"] == "ok" and "@128x64#" in second["tiny"]["signature"]
    assert "| tiny | " in (out / "summary.md").read_text().split("Paired differences against `ldr`")[1]
    stamps = {m: (item / f"{m}.json").stat().st_mtime_ns for m in ("ldr", "tiny")}
    assert main(args + ["--model-size", "128x64", "--samples", "5"]) == 0  # other render settings: every row redone
    assert all((item / f"{m}.json").stat().st_mtime_ns != stamps[m] for m in ("ldr", "tiny"))
    assert main(args + ["--model-size", "bad"]) == 2


def test_rows_cached_before_a_light_metric_existed_get_it_from_their_saved_prediction(hdr_dir, tmp_path):
    out = tmp_path / "out"
    args = ["--from-hdr", str(hdr_dir), "--method", "ldr", "--method", "koeo", "--out", str(out), "--no-render",
            "--no-report", "--paired-ref", "ldr", "--no-progress"]
    assert main(args) == 0
    row_path, pred = out / "items" / "p1" / "koeo.json", out / "predictions" / "koeo" / "p1.exr"
    full = json.loads(row_path.read_text())
    assert "key_angle" in full and full["light_angle"] >= 0
    old = {k: v for k, v in full.items() if k not in ("key_angle", "light_angle")}  # as cached before they existed
    row_path.write_text(json.dumps(old))
    stamp = pred.stat().st_mtime_ns
    assert main(args) == 0
    again = json.loads(row_path.read_text())
    assert again == full and pred.stat().st_mtime_ns == stamp  # measured on the saved prediction, not predicted anew
    pred.unlink()  # without its prediction a cached row stays as it is
    row_path.write_text(json.dumps(old))
    assert main(args) == 0 and json.loads(row_path.read_text()) == old


def test_weights_retrained_in_the_same_folder_are_scored_again(hdr_dir, tmp_path):
    """A model's rows are keyed by a digest of its files: new weights in the same folder are predicted and scored
    anew. A row cached before the digest existed is kept only if the model predicts its saved panorama exactly."""
    import torch

    from hdr_core.checkpoint import save_model
    from hdr_core.models import create_model

    weights = tmp_path / "tiny"
    torch.manual_seed(0)
    save_model(weights, create_model("lanet_small", encoder_width=8).eval())
    out = tmp_path / "out"
    args = ["--from-hdr", str(hdr_dir), "--method", f"tiny=model:{weights}", "--out", str(out), "--no-render",
            "--no-report", "--no-progress", "--model-size", "64x32"]
    row_path, pred = out / "items" / "p0" / "tiny.json", out / "predictions" / "tiny" / "p0.exr"
    assert main(args) == 0
    first = json.loads(row_path.read_text())
    assert "@64x32#" in first["signature"]
    legacy = {**first, "signature": first["signature"].replace("#" + first["signature"].split("#")[1].split("|")[0],
                                                                  "")}
    assert "#" not in legacy["signature"]
    row_path.write_text(json.dumps(legacy))
    stamp = pred.stat().st_mtime_ns
    assert main(args) == 0  # the same weights: the old row is kept, its prediction not written again
    assert json.loads(row_path.read_text()) == first and pred.stat().st_mtime_ns == stamp
    row_path.write_text(json.dumps(legacy))  # an old row (and its saved prediction) of the first weights ...
    torch.manual_seed(1)
    save_model(weights, create_model("lanet_small", encoder_width=8).eval())  # ... which are retrained in place
    assert main(args) == 0
    second = json.loads(row_path.read_text())  # not the saved prediction: scored anew
    assert second["signature"] != first["signature"] and second["si_mse_log"] != first["si_mse_log"]
    assert pred.stat().st_mtime_ns != stamp
    stamp = pred.stat().st_mtime_ns
    torch.manual_seed(2)
    save_model(weights, create_model("lanet_small", encoder_width=8).eval())  # retrained again: a new digest
    assert main(args) == 0 and json.loads(row_path.read_text())["si_mse_log"] != second["si_mse_log"]
    assert pred.stat().st_mtime_ns != stamp


def test_cli_usage_errors(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--method", "nonsense", "--gt", str(tmp_path), "--ldr", str(tmp_path)]) == 2
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--method", "ldr"])  # no inputs
    assert main(["merge", str(tmp_path / "nothing")]) == 2
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--method", "ldr", "--paired-ref", "koeo", "--gt", str(tmp_path), "--ldr",
              str(tmp_path)])  # the reference must be one of the methods
    (tmp_path / "a_file").write_text("x")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "a_file"), "--method", "ldr", "--gt", str(tmp_path), "--ldr", str(tmp_path)])
    assert "a_file: is a file, not a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_run_py_inside_python_with_blender_style_argv(hdr_dir, tmp_path):
    """render_eval/run.py takes the arguments after '--' (as under `blender -b --python`)."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, str(root / "render_eval" / "run.py"), "--", "--from-hdr", str(hdr_dir),
                          "--method", "ldr", "--out", str(out), "--no-noise-floor", "--no-report", *TINY],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["summary"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("blender") is None, reason="no `blender` binary on PATH (Debian: apt-get install "
                    "blender; `make test` installs it when run as root)")
def test_run_py_inside_a_real_blender_binary(hdr_dir, tmp_path):
    """`blender -b --python render_eval/run.py -- ...` (Debian's Blender 3.4 here): a complete run, exit status 0."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "out"
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender-user")}
    res = subprocess.run(["blender", "-b", "--factory-startup", "--python", str(root / "render_eval" / "run.py"), "--",
                          "--from-hdr", str(hdr_dir), "--method", "gt", "--method", "koeo", "--out", str(out),
                          "--no-noise-floor", *TINY, "--set", "denoiser=null"],  # Debian's 3.4 has no OIDN
                         capture_output=True, text=True, timeout=900, env=env)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    rows = _rows(out)
    assert rows[("p0", "gt", "psnr")]["value"] == "inf"
    assert {stem for stem, method, _ in rows if method == "koeo"} == {"p0", "p1", "p2"}
    assert summary["summary"] and (out / "report.html").is_file()
    renders = sorted((out / "cache").rglob("*.exr"))
    assert renders, "no renders were cached"
