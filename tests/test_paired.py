"""Paired per-panorama differences against a reference method (render_eval summary), no rendering needed."""

import numpy as np
import pytest
from scipy.stats import t as student_t

from render_eval.pipeline import NOISE_FLOOR, paired_differences
from render_eval.report import paired_lines


def _rows():
    rows = []
    for i, stem in enumerate(["a", "b", "c", "d"]):
        base = 10.0 + 5 * i  # panoramas differ far more than methods do
        rows.append({"stem": stem, "method": "ref", "status": "ok", "psnr": base, "mse_1e3": 2.0})
        rows.append({"stem": stem, "method": "new", "status": "ok", "psnr": base + 1.0 + 0.1 * i, "mse_1e3": 1.0})
        rows.append({"stem": stem, "method": "gt", "status": "ok", "psnr": float("inf"), "mse_1e3": 0.0})
        rows.append({"stem": stem, "method": NOISE_FLOOR, "status": "ok", "psnr": 30.0, "mse_1e3": 0.1})
    rows.append({"stem": "e", "method": "new", "status": "error: bad input"})  # not scored: not paired
    rows.append({"stem": "e", "method": "ref", "status": "ok", "psnr": 99.0, "mse_1e3": 9.0})
    return rows


def test_paired_differences_mean_ci_and_wins():
    (entry,) = paired_differences(_rows(), "ref", ["psnr", "mse_1e3", "ssim"])
    assert entry["method"] == "new" and entry["reference"] == "ref" and "ssim" not in entry
    p = entry["psnr"]
    assert p["n"] == 4 and p["mean"] == pytest.approx(1.15) and p["better"] == 4
    diffs = [1.0, 1.1, 1.2, 1.3]
    sd = (sum((d - 1.15) ** 2 for d in diffs) / 3) ** 0.5
    assert p["ci95"] == pytest.approx(student_t.ppf(0.975, 3) * sd / 2)  # paired: tiny next to the spread of panoramas
    m = entry["mse_1e3"]  # lower is better: a negative difference is a win
    assert m["mean"] == pytest.approx(-1.0) and m["better"] == 4 and m["ci95"] == 0.0
    # Wilcoxon signed-rank, exact for n = 4: all four differences of one sign -> p = 2 / 2^4
    assert p["wilcoxon_p"] == pytest.approx(0.125) and m["wilcoxon_p"] == pytest.approx(0.125)


def test_wilcoxon_p_matches_scipy_and_is_none_when_undefined():
    from scipy.stats import wilcoxon

    from render_eval.pipeline import wilcoxon_p

    d = np.array([0.5, -0.2, 1.1, 0.9, -0.4, 0.7, 1.5, 0.3])
    assert wilcoxon_p(d) == pytest.approx(wilcoxon(d).pvalue)
    assert 0 < wilcoxon_p(d) < 1 and wilcoxon_p(-d) == pytest.approx(wilcoxon_p(d))
    assert wilcoxon_p(np.zeros(5)) is None and wilcoxon_p(np.array([])) is None


def test_paired_table_in_the_summary():
    paired = paired_differences(_rows(), "ref", ["psnr", "mse_1e3"])
    text = "\n".join(paired_lines(paired, ["gt", NOISE_FLOOR, "ref", "new"]))
    assert "against `ref`" in text and "| new | +1.15 ± " in text and "(4/4, p=0.12)" in text
    assert "Wilcoxon" in text
    assert "| gt |" not in text and paired_lines([], ["new"]) == []
