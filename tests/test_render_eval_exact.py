"""The benchmark's ground truth passes through the method path unchanged, whatever its file format, and the
light-accuracy table is computed without rendering."""

import csv
import json

import numpy as np
import pytest
from conftest import synthetic_panorama

from hdr_core.io import read_hdr, write_exr, write_hdr
from render_eval.pipeline import calibrate_to


def _rows(out):
    with open(out / "results.csv") as f:
        return {(r["stem"], r["method"], r["metric"]): r["value"] for r in csv.DictReader(f)}


def _panorama_folder(tmp_path, first_seed, n=3):
    d = tmp_path / "hdr"
    d.mkdir()
    for i in range(n):
        write_exr(d / f"p{i}.exr", synthetic_panorama(32, first_seed + i))
    return d


@pytest.fixture(scope="module")
def awkward_panoramas(tmp_path_factory):
    """Panoramas the old method path altered: a half EXR peaking at the half-float ceiling, an RGBE file whose sun
    is far above it (as in real 1k Radiance files), and a float EXR of an odd, not-2:1 size."""
    d = tmp_path_factory.mktemp("awkward")
    half = synthetic_panorama(32, 3)
    half *= 65504.0 / half.max()
    write_exr(d / "half_ceiling.exr", half, half=True)
    rgbe = synthetic_panorama(32, 4)
    rgbe[5:7, 20:22] = 3.0e6
    write_hdr(d / "rgbe_sun.hdr", rgbe)
    write_exr(d / "odd_size.exr", synthetic_panorama(33, 5)[:, :61])
    return d


def test_calibrate_to_keeps_values_above_the_half_float_ceiling():
    pano = np.ones((8, 16, 3), np.float32)
    pano[2, 3] = 5e6
    ldr_lin = np.minimum(pano * 0.5, 1.0)  # the sun saturates the LDR; everything else is half the HDR
    cal = calibrate_to(pano, ldr_lin)
    assert cal.dtype == np.float32 and cal.max() == pytest.approx(2.5e6) and np.all(np.isfinite(cal))
    assert np.array_equal(calibrate_to(pano.copy(), ldr_lin), cal)  # one deterministic path


def test_awkward_files_really_exceed_half_range(awkward_panoramas):
    assert read_hdr(awkward_panoramas / "half_ceiling.exr").max() == pytest.approx(65504)
    assert read_hdr(awkward_panoramas / "rgbe_sun.hdr").max() > 1e6


@pytest.mark.slow
def test_gt_row_is_exact_on_every_format(awkward_panoramas, tmp_path):
    pytest.importorskip("bpy")
    from render_eval.__main__ import main

    out = tmp_path / "out"
    args = ["--from-hdr", str(awkward_panoramas), "--method", "gt", "--method", "ldr", "--out", str(out),
            "--resolution", "48x27", "--samples", "4", "--no-progress", "--no-report"]
    assert main(args) == 0
    rows = _rows(out)
    for stem in ("half_ceiling", "rgbe_sun", "odd_size"):
        assert rows[(stem, "gt", "psnr")] == "inf", stem
        assert float(rows[(stem, "gt", "mse_1e3")]) == 0.0 and float(rows[(stem, "gt", "mse_hdr_1e3")]) == 0.0
        assert float(rows[(stem, "gt", "vdp_jod")]) == pytest.approx(10.0, abs=1e-6), stem
        # light is measured with BLAS sums: equal to 0 up to float rounding
        assert float(rows[(stem, "gt", "irr_err")]) < 1e-9 and float(rows[(stem, "gt", "light_angle")]) < 1e-9
        assert float(rows[(stem, "noise floor", "mse_hdr_1e3")]) > 0  # another seed does differ
    # The predictions folder keeps the calibrated GT as float32, the sun included.
    saved = read_hdr(out / "predictions" / "gt" / "rgbe_sun.exr")
    assert saved.max() > 65504
    summary = (out / "summary.md").read_text()
    assert "## Light accuracy" in summary and "irradiance error (stops)" in summary


def test_no_render_mode_gives_the_light_table_without_blender_renders(tmp_path):
    pytest.importorskip("scipy")
    from render_eval.__main__ import main

    d = _panorama_folder(tmp_path, first_seed=20)
    out = tmp_path / "out"
    assert main(["--from-hdr", str(d), "--method", "gt", "--method", "ldr", "--method", "koeo", "--out", str(out),
                 "--no-render", "--no-progress", "--paired-ref", "ldr"]) == 0
    assert not (out / "cache").exists()  # nothing was rendered
    rows = _rows(out)
    assert ("p0", "gt", "psnr") not in rows and ("p0", "noise floor", "psnr") not in rows
    assert float(rows[("p0", "gt", "irr_err")]) < 1e-9
    # The LDR clips its sun: its brightest light is too weak and its irradiance too dark.
    assert float(rows[("p0", "ldr", "peak_bias")]) < -1 and float(rows[("p0", "ldr", "irr_bias")]) < 0
    summary = (out / "summary.md").read_text()
    assert "## Light accuracy" in summary and "## Renders" not in summary
    assert "Wilcoxon" in summary and "| koeo |" in summary
    html = (out / "report.html").read_text()
    assert "Light accuracy" in html and "too dark" in html and (out / "plots" / "per_panorama_irr_bias.png").is_file()
    paired_html = html.split("<h2>Paired differences</h2>")[1].split("</table>")[0]  # the headline table, in HTML too
    assert "<td>koeo</td>" in paired_html and "Wilcoxon" in paired_html and "p=" in paired_html
    meta = json.loads((out / "summary.json").read_text())
    assert any("irr_err" in e for e in meta["paired"])
    # the compact tables of docs/results.md come from these outputs
    import importlib.util
    import io
    from contextlib import redirect_stdout
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("results_tables", Path(__file__).parents[1] / "scripts" /
                                                  "results_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert mod.main([str(out)]) == 0
    text = buf.getvalue()
    assert "no rendering" in text and "| koeo | 3/3 |" in text and "Paired against `ldr`" in text
    # --earlier: an earlier run's rows of other methods, paired with this run's reference once its shared rows agree
    lines = (out / "results.csv").read_text().splitlines()
    earlier = tmp_path / "earlier.csv"
    earlier.write_text("\n".join(lines + [ln.replace(",koeo,", ",koeo_before,") for ln in lines if ",koeo," in ln]))
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert mod.main([str(out), "--earlier", str(earlier), "koeo_before"]) == 0
    text = buf.getvalue()
    koeo = [ln for ln in text.splitlines() if ln.startswith("| koeo |") and "p=" in ln]
    before = [ln for ln in text.splitlines() if ln.startswith("| koeo_before |")]
    assert len(koeo) == 1 and len(before) == 1 and koeo[0].split("|")[2:] == before[0].split("|")[2:]
    # its mean rows join the tables, marked, with the same numbers as this run's koeo (the rows are the same)
    means = [ln for ln in text.splitlines() if ln.startswith(("| koeo |", "| koeo_before † |")) and "p=" not in ln]
    assert len(means) == 2 and means[0].split("|")[2:] == means[1].split("|")[2:], means
    # a second --earlier, whose koeo is another model under this run's name: NAME=SHOWN keeps it apart (its rows,
    # 1 dB better here, are not checked against this run's koeo) and marks it with the second dagger
    other = tmp_path / "other.csv"
    other.write_text("\n".join(ln if ",koeo,pu21_psnr," not in ln else
                               ",".join(str(float(v) + 1) if i == 3 and v not in ("", "None") else v
                                        for i, v in enumerate(ln.split(","))) for ln in lines))
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert mod.main([str(out), "--earlier", str(earlier), "koeo_before",
                         "--earlier", str(other), "koeo=koeo_previous"]) == 0
    text = buf.getvalue()
    assert any(ln.startswith("| koeo_before † |") for ln in text.splitlines())
    prev = [ln for ln in text.splitlines() if ln.startswith("| koeo_previous ‡ |")]
    assert len(prev) == 1 and "Paired against `ldr`, an earlier run's rows (‡" in text
    with pytest.raises(SystemExit, match="no rows of \\['masia'\\]"):
        mod.main([str(out), "--earlier", str(earlier), "masia=masia_previous"])
    with pytest.raises(SystemExit, match="not the same renders"):
        mod.main([str(out), "--earlier", str(other), "koeo_previous"])  # without the rename koeo is compared
    moved = [ln.split(",") for ln in lines]
    row = next(r for r in moved if len(r) == 5 and r[1] == "ldr" and r[2] == "irr_err")
    row[3] = str(float(row[3]) + 0.1)  # the shared ldr row no longer reproduces: not the same run settings
    earlier.write_text("\n".join([",".join(r) for r in moved] + [ln.replace(",koeo,", ",koeo_before,")
                                                                   for ln in lines if ",koeo," in ln]))
    with pytest.raises(SystemExit, match="not the same renders"):
        mod.main([str(out), "--earlier", str(earlier), "koeo_before"])


def test_several_ldr_styles_give_one_benchmark_and_one_table_set_each(tmp_path):
    """``--ldr-style a,b,c``: each style's LDR inputs made from the same HDRs in OUT/<style>/, scored on their own,
    one section per style in OUT/summary.md, and the compact tables of docs/results.md read every style."""
    pytest.importorskip("scipy")
    from render_eval.__main__ import main, parse_styles

    d = _panorama_folder(tmp_path, first_seed=30)
    out = tmp_path / "out"
    styles = ["virtual", "mdk08", "phone_hdr"]
    assert main(["--from-hdr", str(d), "--ldr-style", ",".join(styles), "--method", "gt", "--method", "ldr",
                 "--method", "koeo", "--out", str(out), "--no-render", "--no-progress", "--paired-ref", "koeo"]) == 0
    from hdr_core.io import read_ldr

    ldrs = {}
    for s in styles:
        assert json.loads((out / s / "run.json").read_text())["ldr_style"] == s
        assert (out / s / "summary.md").is_file() and (out / s / "results.csv").is_file()
        ldrs[s] = read_ldr(next((out / s / "inputs" / "ldr").glob("p0.*")))[0]
        rows = _rows(out / s)
        assert float(rows[("p0", "gt", "irr_err")]) < 1e-9  # the GT is calibrated to each style's own LDR
    for a, b in [("virtual", "mdk08"), ("virtual", "phone_hdr"), ("mdk08", "phone_hdr")]:
        assert ldrs[a].shape == ldrs[b].shape and np.abs(ldrs[a] - ldrs[b]).mean() > 1 / 255, (a, b)  # [0, 1]
    summary = (out / "summary.md").read_text()
    assert [ln for ln in summary.splitlines() if ln.startswith("## LDR style: ")] == [
        f"## LDR style: {s}" for s in styles]
    sections = summary.split("## LDR style: ")[1:]
    for s, section in zip(styles, sections):  # each style's own light table and paired table
        section = section.split("## Run")[0]
        assert section.startswith(s) and "| koeo |" in section and "| ldr |" in section and "Wilcoxon" in section
    meta = json.loads((out / "summary.json").read_text())
    assert list(meta["styles"]) == styles and meta["context"]["ldr_styles"] == styles
    assert all(any(e["method"] == "ldr" for e in meta["styles"][s]["paired"]) for s in styles)
    with pytest.raises(ValueError, match="distinct names"):
        parse_styles("virtual,instagram")
    with pytest.raises(ValueError, match="distinct names"):
        parse_styles("mdk08,mdk08")
