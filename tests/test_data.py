"""Training pairs and split rules."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hdr_core.calibration import TAU
from hdr_core.data.pairs import PairConfig, PairDataset, find_hdr_files
from hdr_core.data.splits import SplitViolation, check_training_files, filter_training_files


def _panos(n=2, h=32):
    r = np.random.default_rng(0)
    return [np.exp(r.normal(-1, 1.5, (h, 2 * h, 3))).astype(np.float32) for _ in range(n)]


def test_pairs_are_deterministic_per_index_and_calibrated():
    ds = PairDataset(_panos(), PairConfig(mode="crop", crop_size=24, store_height=32), length=10, seed=3)
    a, b = ds[4], ds[4]
    assert torch.equal(a["ldr"], b["ldr"]) and torch.equal(a["hdr"], b["hdr"])
    assert not torch.equal(ds[5]["ldr"], a["ldr"])
    assert a["ldr"].shape == a["hdr"].shape == (3, 24, 24)
    ldr, hdr = a["ldr"].numpy(), a["hdr"].numpy()
    m = ldr.mean(0) < TAU
    assert hdr[:, m].sum() == pytest.approx(ldr[:, m].sum(), rel=1e-4)  # Eq. 1
    assert 0 < ldr.min() and ldr.max() <= 1


def test_pano_mode_and_standard_views():
    ds = PairDataset(_panos(), PairConfig(mode="pano", pano_height=16), length=3, seed=0)
    assert ds[0]["ldr"].shape == (3, 16, 32)
    val = PairDataset(_panos(), PairConfig(crop_size=16, store_height=32), 18, views="standard", augment=False)
    assert torch.equal(val[2]["hdr"], val[2]["hdr"])
    with pytest.raises(ValueError):
        PairDataset(_panos(), PairConfig(mode="cube"), 1)


def test_split_rules(tmp_path):
    names = ["apartment", "bridge", "sunrise", "venice", "studio", "lab"]
    for n in names:
        (tmp_path / f"{n}.hdr").write_bytes(b"")
    files = find_hdr_files([tmp_path])
    with pytest.raises(SplitViolation, match="sunrise|venice|studio"):
        check_training_files(files)
    kept = [f.stem for f in filter_training_files(files)]
    assert kept == ["apartment", "bridge", "lab"]
    check_training_files(filter_training_files(files))
    world = tmp_path / "datafiles" / "studiolights" / "world"
    world.mkdir(parents=True)
    (world / "forest.exr").write_bytes(b"")
    with pytest.raises(SplitViolation, match="public test set"):
        check_training_files([world / "forest.exr"])
    # A user's own folder that merely has a file called studio.hdr is not the pmndrs set.
    own = tmp_path / "own"
    own.mkdir()
    for n in ("studio", "garage"):
        (own / f"{n}.exr").write_bytes(b"")
    check_training_files(find_hdr_files([own]))
    with pytest.raises(FileNotFoundError):
        find_hdr_files([Path(tmp_path / "missing")])
