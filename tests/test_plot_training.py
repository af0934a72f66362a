"""scripts/plot_training.py: reads TensorBoard logs of consecutive stages and writes one PNG."""

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    return runpy.run_path(str(ROOT / "scripts" / "plot_training.py"))


def _run(folder: Path, losses: list[float]) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(folder / "tb")
    for i, v in enumerate(losses):
        w.add_scalar("train/loss", v, i * 10)
        w.add_scalar("val/si_mse", 2 * v, i * 10)
    w.close()
    return folder


def test_smooth_is_debiased_ema():
    smooth = _script()["smooth"]
    assert smooth([1.0, 1.0, 1.0]) == pytest.approx([1.0, 1.0, 1.0])  # no bias towards 0 at the start
    s = smooth([0.0, 10.0], weight=0.5)
    assert s[0] == 0.0 and 0 < s[1] < 10


def test_two_models_two_stages_make_a_png(tmp_path, monkeypatch):
    runs = [_run(tmp_path / n, [1.0, 0.5, 0.25]) for n in ("a1", "a2", "b1", "b2")]
    data = _script()["read_scalars"](runs[0])
    assert data["train/loss"] == [(0, 1.0), (10, 0.5), (20, 0.25)]
    out = tmp_path / "curves.png"
    monkeypatch.setattr(sys, "argv", ["plot_training.py", *map(str, runs), "--group", "2", "2", "--label", "a",
                                      "--label", "b", "--out", str(out)])
    _script()["main"]()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setattr(sys, "argv", ["plot_training.py", *map(str, runs), "--group", "3", "--out", str(out)])
    with pytest.raises(SystemExit):
        _script()["main"]()
