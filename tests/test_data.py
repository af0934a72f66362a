"""Training pairs and split rules."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hdr_core import looks as L
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


def test_each_pair_records_what_was_drawn():
    """``PairDataset.params(i)``: the panorama, augmentation, view, style and camera/look numbers of item i, as JSON;
    replaying them (the same generator after the layout draws) gives the item's LDR bit for bit."""
    import json

    from hdr_core.augment import apply_pano_augment
    from hdr_core.color import ldr_to_linear
    from hdr_core.looks import make_ldr
    from hdr_core.projections import perspective_crop

    mix = {"virtual": 0.4, "phone_hdr": 0.3, "filmic": 0.3}
    ds = PairDataset(_panos(3), PairConfig(mode="crop", crop_size=24, store_height=32, ldr_styles=mix), 30, seed=7)
    seen = set()
    for i in range(12):
        p, item = ds.params(i), ds[i]
        assert json.loads(json.dumps(p)) == p and p == ds.params(i)  # JSON as it is, and deterministic
        assert p["item"] == i and p["scene"] == item["scene"].item() and p["style"] == ds.style_of(i)
        assert L.LDR_STYLES.index(p["style"]) == item["style"].item() and p["ldr"]["style"] == p["style"]
        assert set(p["augment"]) == {"shift", "flip", "scale", "wb"} and set(p["view"]) == {"yaw", "pitch", "fov"}
        seen.add(p["style"])
        if p["style"] == "virtual":
            assert {"exposure", "sigma", "n", "dynamic_range_ev"} <= set(p["ldr"])
            continue
        rng = np.random.default_rng([ds.seed, i])
        ds._draw_layout(rng, i)  # the generator as the look found it
        hdr = apply_pano_augment(ds.panoramas[p["scene"]], {**p["augment"], "wb": np.array(p["augment"]["wb"])})
        v = p["view"]
        t = torch.from_numpy(np.ascontiguousarray(hdr)).permute(2, 0, 1)[None]
        hdr = perspective_crop(t, v["yaw"], v["pitch"], v["fov"], 24)[0].permute(1, 2, 0).numpy()
        ldr, look = make_ldr(np.maximum(hdr, 0).astype(np.float32), p["style"], rng)
        assert look == p["ldr"]
        assert torch.equal(torch.from_numpy(ldr_to_linear(ldr.astype(np.float32) / 255).transpose(2, 0, 1)),
                           item["ldr"])
    assert seen == set(mix)
    plain = PairDataset(_panos(), PairConfig(mode="pano", pano_height=16), 2, seed=0, augment=False).params(1)
    assert "augment" not in plain and "view" not in plain and plain["style"] == "virtual"


def test_pano_mode_and_standard_views():
    ds = PairDataset(_panos(), PairConfig(mode="pano", pano_height=16), length=3, seed=0)
    assert ds[0]["ldr"].shape == (3, 16, 32)
    val = PairDataset(_panos(), PairConfig(crop_size=16, store_height=32), 18, views="standard", augment=False)
    assert torch.equal(val[2]["hdr"], val[2]["hdr"])
    with pytest.raises(ValueError):
        PairDataset(_panos(), PairConfig(mode="cube"), 1)


def test_cycled_scenes_count_every_panorama_equally_and_keep_the_other_draws():
    """``scenes="cycle"`` (validation with ``val_balanced``): item i is panorama i % n, each panorama in every
    standard view in turn, and every other draw (style, camera) is the random-scene item's."""
    mix = {"virtual": 0.5, "filmic": 0.5}
    cfg = PairConfig(mode="crop", crop_size=16, store_height=32, ldr_styles=mix)
    cyc = PairDataset(_panos(3), cfg, 54, views="standard", augment=False, scenes="cycle")
    rnd = PairDataset(_panos(3), cfg, 54, views="standard", augment=False)
    scenes = [cyc.params(i)["scene"] for i in range(54)]
    assert scenes == [i % 3 for i in range(54)] and len(set(scenes[:18])) == 3
    random_scenes = [rnd.params(i)["scene"] for i in range(54)]
    assert random_scenes != scenes  # the default draws them
    views = {(cyc.params(i)["scene"], cyc.params(i)["view"]["yaw"], cyc.params(i)["view"]["pitch"]) for i in range(54)}
    assert len(views) == 54  # 3 panoramas x 18 standard views, each once
    for i in range(12):  # the same style, and the generator in the same state for the camera or look after the layout
        assert cyc.params(i)["style"] == rnd.params(i)["style"]
        r1, r2 = np.random.default_rng([cyc.seed, i]), np.random.default_rng([rnd.seed, i])
        cyc._draw_layout(r1, i), rnd._draw_layout(r2, i)
        assert r1.bit_generator.state == r2.bit_generator.state
    with pytest.raises(ValueError, match="scenes"):
        PairDataset(_panos(), cfg, 1, scenes="balanced")


def test_exposure_error_of_pairs_is_drawn_on_its_own_and_zero_keeps_the_paper_pairs():
    mix = {"virtual": 0.5, "filmic": 0.5}
    base = PairConfig(mode="pano", pano_height=16, ldr_styles=mix)
    plain = PairDataset(_panos(3), base, 12, seed=4)
    zero = PairDataset(_panos(3), PairConfig(mode="pano", pano_height=16, ldr_styles=mix, exposure_ev=(0.0, 0.0)), 12,
                       seed=4)
    jit = PairDataset(_panos(3), PairConfig(mode="pano", pano_height=16, ldr_styles=mix, exposure_ev=(-1.0, 1.0)), 12,
                      seed=4)
    evs = [jit.exposure_ev_of(i) for i in range(12)]
    assert all(-1 <= e <= 1 for e in evs) and len(set(evs)) == 12 and evs == [jit.exposure_ev_of(i) for i in range(12)]
    assert [plain.exposure_ev_of(i) for i in range(12)] == [0.0] * 12
    for i in range(6):
        a, z, j = plain.params(i), zero.params(i), jit.params(i)
        assert a == z and torch.equal(plain[i]["ldr"], zero[i]["ldr"])  # (0, 0) is the paper's pairs, bit for bit
        assert (j["scene"], j["style"], j["augment"]["shift"]) == (a["scene"], a["style"], a["augment"]["shift"])
        assert j["ldr"]["exposure"] == pytest.approx(a["ldr"]["exposure"] * 2 ** evs[i], rel=1e-9)
    fixed = PairDataset(_panos(3), PairConfig(mode="pano", pano_height=16, style="filmic", exposure_ev=(1.0, 1.0)), 4)
    assert all(fixed.params(i)["ldr"]["exposure_ev"] == 1.0 for i in range(4))
    with pytest.raises(ValueError, match="exposure_ev"):
        PairConfig(exposure_ev=(1.0, -1.0))


def test_inserted_lights_are_drawn_on_their_own_and_zero_keeps_the_paper_pairs():
    """``insert_light``: some pairs get a light (its own generator: scene, augmentation, view, style and the camera's
    draws stay those of the pair without it), recorded in ``params``; 0 is the paper's pairs bit for bit."""
    from hdr_core.lighting import light_share

    mix = {"virtual": 0.5, "filmic": 0.5}
    plain = PairDataset(_panos(3), PairConfig(mode="pano", pano_height=32, ldr_styles=mix), 16, seed=2)
    lit = PairDataset(_panos(3), PairConfig(mode="pano", pano_height=32, ldr_styles=mix, insert_light=0.5,
                                            insert_light_share=(0.5, 0.6)), 16, seed=2)
    zero = PairDataset(_panos(3), PairConfig(mode="pano", pano_height=32, ldr_styles=mix, insert_light=0.0), 16,
                       seed=2)
    with_light = [i for i in range(16) if "light" in lit.params(i)]
    assert 3 <= len(with_light) <= 13 and with_light == [i for i in range(16) if lit.inserted_light_of(i)]
    for i in range(16):
        a, b = plain.params(i), lit.params(i)
        assert a == zero.params(i) and torch.equal(plain[i]["hdr"], zero[i]["hdr"])
        if i not in with_light:
            assert a == b and torch.equal(plain[i]["ldr"], lit[i]["ldr"])
            continue
        assert {k: v for k, v in b.items() if k not in ("light", "ldr")} == {k: v for k, v in a.items() if k != "ldr"}
        share = float(light_share(lit[i]["hdr"][None].double())[0])
        assert share > 0.3 + float(light_share(plain[i]["hdr"][None].double())[0])  # the light now dominates
        assert lit[i]["ldr"].amax() == 1.0  # and clips in the LDR, as a sun does
    crop = PairDataset(_panos(3), PairConfig(mode="crop", crop_size=16, store_height=32, insert_light=1.0), 4)
    crop0 = PairDataset(_panos(3), PairConfig(mode="crop", crop_size=16, store_height=32), 4)
    assert all("light" in crop.params(i) for i in range(4))  # inserted before the crop, in stage 1 too
    assert any(not torch.equal(crop[i]["hdr"], crop0[i]["hdr"]) for i in range(4))  # in view in some crops
    for bad in ({"insert_light": 1.5}, {"insert_light": -0.1}, {"insert_light_share": (0.6, 0.5)},
                {"insert_light_share": (0.2, 1.0)}, {"insert_light_share": (0.2,)}):
        with pytest.raises(ValueError, match="insert_light"):
            PairConfig(**bad)


#: (mode, item, style, scene, azimuth shift, mirror, exposure scale, the look's exposure (mdk08: display peak),
#: JPEG quality, mean of the linear LDR, mean of the calibrated HDR) of items of the pinned set below, as made on
#: 2026-12-07 (numpy 1.26, the pairs every shipped model and documented figure was trained and scored on)
PINNED_PAIRS = [
    ("crop", 0, "phone_hdr", 0, 8, True, 1.15108687051, 0.2277458843, 95, 0.18205954, 0.18205954),
    ("crop", 1, "filmic", 0, 12, False, 1.79283168807, 0.1728807766, 93, 0.1569074, 0.1569074),
    ("crop", 5, "mdk08", 2, 4, True, 0.85579451629, 206.5063215, None, 0.085547469, 0.085547462),
    ("crop", 7, "virtual", 2, 35, True, 0.773713387717, 0.3473975173, None, 0.25559371, 0.25542949),
    ("crop", 8, "camera360", 0, 46, True, 1.49926774572, 0.2246229882, 83, 0.21317496, 0.21317496),
    ("crop", 10, "phone_local", 2, 26, False, 0.703377298476, 0.6172216258, 82, 0.18539323, 0.18506782),
    ("pano", 0, "phone_hdr", 0, 4, True, 1.15108687051, 0.1887020241, 85, 0.22631707, 0.22631707),
    ("pano", 1, "filmic", 0, 6, False, 1.79283168807, 0.2642744637, 85, 0.21397421, 0.21397423),
    ("pano", 5, "mdk08", 2, 2, True, 0.85579451629, 255.1143557, None, 0.053539382, 0.053539384),
    ("pano", 7, "virtual", 2, 17, True, 0.773713387717, 0.3056789821, None, 0.24214741, 0.24214741),
    ("pano", 8, "camera360", 0, 23, True, 1.49926774572, 0.2233046085, 72, 0.22288455, 0.22288452),
    ("pano", 10, "phone_local", 2, 13, False, 0.703377298476, 0.8290422639, 81, 0.15697434, 0.15697432),
]


@pytest.mark.parametrize("row", PINNED_PAIRS, ids=lambda r: f"{r[0]}-{r[1]}-{r[2]}")
def test_pairs_are_the_pinned_ones(row):
    """Every documented figure rests on the pairs being what they were: the same draws in the same order (scene,
    augmentation, view, style, camera or look) and the same synthesis. A change meant to be exact (a faster meter, a
    new option left at its default) must keep these; the numbers are pinned to float rounding (another CPU's SIMD
    may round a pixel differently, a changed draw or look moves them by far more). A change meant to alter the
    pairs updates the table and says so in docs/method-notes.md."""
    mode, i, style, scene, shift, flip, scale, number, quality, ldr_mean, hdr_mean = row
    size = {"crop_size": 24, "store_height": 32} if mode == "crop" else {"pano_height": 16}
    ds = PairDataset(_panos(3), PairConfig(mode=mode, ldr_styles={s: 1.0 for s in L.LDR_STYLES}, **size), 40, seed=11)
    p, item = ds.params(i), ds[i]
    assert (p["style"], p["scene"], p["augment"]["shift"], p["augment"]["flip"]) == (style, scene, shift, flip)
    assert p["augment"]["scale"] == pytest.approx(scale, rel=1e-9)
    assert p["ldr"].get("exposure", p["ldr"].get("display_peak")) == pytest.approx(number, rel=1e-6)
    assert p["ldr"].get("jpeg_quality") == quality
    assert item["ldr"].double().mean().item() == pytest.approx(ldr_mean, rel=1e-4)
    assert item["hdr"].double().mean().item() == pytest.approx(hdr_mean, rel=1e-4)


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


# ---------------------------------------------------------------------------------------------- manifests, groups

import json  # noqa: E402

from hdr_core.data.catalog import (  # noqa: E402
    ManifestError,
    entries_for,
    load_validation_groups,
    prefer_originals,
    read_manifest,
    split_by_groups,
)
from hdr_core.data.splits import check_site_groups, violations  # noqa: E402
from hdr_core.io import write_hdr  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _extra_folder(tmp_path, rows, as_dict=False):
    """A manifest-described folder like ../shared/data/hdri_extra (empty files: nothing here reads pixels)."""
    d = tmp_path / "extra"
    d.mkdir()
    for r in rows:
        (d / r["file"]).write_bytes(b"")
    (d / "manifest.json").write_text(json.dumps({"panoramas": rows} if as_dict else rows))
    return d


def _row(name, cls, group=None, **kw):
    return {"name": name, "file": f"{name}.hdr", "class": cls, "site_group": group or name,
            "licence": "CC0-1.0 (Poly Haven)", "polyhaven_slug": name, "source_repo": "someone/some-repo", **kw}


def test_manifests_are_normalised_for_both_kinds_of_folder(tmp_path):
    extra = _extra_folder(tmp_path, [_row("noon_grass", "outdoor"), _row("brown_photostudio_01", "indoor", "brown")])
    e = read_manifest(extra)
    assert e["noon_grass.hdr"]["class"] == "outdoor" and e["brown_photostudio_01.hdr"]["site_group"] == "brown"
    assert e["noon_grass.hdr"]["source_repo"] == "someone/some-repo"  # provenance carried through
    (extra / "manifest.json").write_text(json.dumps({"panoramas": [_row("noon_grass", "outdoor")]}))
    assert read_manifest(extra)["noon_grass.hdr"]["class"] == "outdoor"  # {"panoramas": [...]} form too
    assert read_manifest(extra)["brown_photostudio_01.hdr"]["class"] == "unknown"  # not in the manifest
    # the pmndrs originals come without a manifest: the catalogue says what they are
    pm = tmp_path / "hdri"
    pm.mkdir()
    for n in ("lab", "park", "night", "sunrise"):
        (pm / f"{n}.hdr").write_bytes(b"")
    e = read_manifest(pm)
    assert e["lab.hdr"]["class"] == "indoor" and e["night.hdr"]["class"] == "night"
    assert e["park.hdr"]["polyhaven_slug"] == "rooitou_park" and e["park.hdr"]["licence"].startswith("CC0")
    # asked about one or two of its files (a run's validation panoramas), the folder is still the pmndrs set
    one = entries_for([pm / "lab.hdr"])[pm / "lab.hdr"]
    assert one["class"] == "indoor" and one["set"] == "pmndrs" and one["licence"].startswith("CC0")
    assert read_manifest(pm, [pm / "night.hdr", pm / "park.hdr"])["night.hdr"]["class"] == "night"
    (extra / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="manifest.json: not a readable JSON manifest"):
        read_manifest(extra)


def test_split_rules_by_slug_and_manifest(tmp_path):
    extra = _extra_folder(tmp_path, [_row("noon_grass", "outdoor"), _row("studio_small_05", "indoor"),
                                     _row("spruit_sunrise", "outdoor"), _row("mine", "indoor", split="test")])
    bad = violations(find_hdr_files([extra]))
    assert sorted(p.stem for p in bad) == ["mine", "spruit_sunrise", "studio_small_05"]
    assert "test scene studio" in bad[extra / "studio_small_05.hdr"]
    assert [p.stem for p in filter_training_files(find_hdr_files([extra]))] == ["noon_grass"]
    with pytest.raises(SplitViolation, match="shares its site with test scene"):
        check_training_files([extra / "studio_small_05.hdr"])


def test_a_copy_of_a_test_image_is_a_test_image_whatever_its_name(tmp_path, blender_hdri_path):
    import cv2

    from hdr_core.data.splits import same_image_as_test
    from hdr_core.io import read_hdr, write_exr

    forest = read_hdr(blender_hdri_path("forest"))
    copy = 0.25 * np.roll(forest[:, ::-1], 200, axis=1)  # mirrored, turned, 2 stops darker
    mine = tmp_path / "mine"
    mine.mkdir()
    write_exr(mine / "my_walk.exr", cv2.resize(copy, (256, 128), interpolation=cv2.INTER_AREA), half=True)
    other = np.exp(np.random.default_rng(0).normal(0, 1.5, (64, 128, 3))).astype(np.float32)
    write_exr(mine / "other.exr", other)
    files = [mine / "my_walk.exr", mine / "other.exr"]
    bad = violations(files)
    assert list(bad) == [mine / "my_walk.exr"]
    assert bad[mine / "my_walk.exr"].startswith("the same image as test scene forest by content (score 0.99")
    assert filter_training_files(files) == [mine / "other.exr"]
    with pytest.raises(SplitViolation, match=r"my_walk\.exr: the same image as test scene forest"):
        check_training_files(files)
    assert same_image_as_test(mine / "no-such-file.exr") is None  # reading it later says what is wrong


def _groups_file(tmp_path, groups):
    import yaml

    p = tmp_path / "val.yaml"
    p.write_text(yaml.safe_dump({"version": 1, "groups": groups}))
    return p


def test_validation_groups_hold_out_whole_site_groups(tmp_path):
    rows = [_row(f"sun{i}", "outdoor") for i in range(3)] + [_row(f"room{i}", "indoor") for i in range(2)]
    rows += [_row("studio_a", "indoor", "brown"), _row("studio_b", "indoor", "brown"), _row("dark", "night"),
             _row("field", "outdoor")]
    extra = _extra_folder(tmp_path, rows)
    files = find_hdr_files([extra])
    g = load_validation_groups(_groups_file(tmp_path, {"sunny_outdoor": ["sun0", "sun1", "sun2"],
                                                       "indoor": ["room0", "room1", "brown"], "night": ["dark"]}))
    assert len(g["sha256"]) == 64 and "brown" in g["site_groups"]
    train, val = split_by_groups(files, g)
    assert sorted(f.stem for f in val) == ["dark", "room0", "room1", "studio_a", "studio_b", "sun0", "sun1", "sun2"]
    assert [f.stem for f in train] == ["field"]
    check_site_groups(train, val)
    with pytest.raises(SplitViolation, match="site group 'brown' is also in training"):
        check_site_groups([extra / "studio_a.hdr"], [extra / "studio_b.hdr"])
    # too few groups of a kind, an unknown group, a class that contradicts the manifest: clear errors
    with pytest.raises(ManifestError, match="at least 1 'night'"):
        load_validation_groups(_groups_file(tmp_path, {"sunny_outdoor": ["a", "b", "c"], "indoor": ["d", "e", "f"]}))
    bad = load_validation_groups(_groups_file(tmp_path, {"sunny_outdoor": ["sun0", "sun1", "room0"],
                                                         "indoor": ["room1", "brown", "zzz"], "night": ["dark"]}))
    with pytest.raises(ManifestError, match=r"\['zzz'\] not found"):
        split_by_groups(files, bad)
    bad["groups"]["indoor"] = ["room1", "brown", "field"]
    with pytest.raises(ManifestError, match="(room0|field).hdr is listed as .* but its manifest class"):
        split_by_groups(files, bad)


def test_the_repos_validation_groups_file_is_valid():
    g = load_validation_groups(REPO / "configs" / "data" / "validation_groups.yaml")
    assert len(g["groups"]["sunny_outdoor"]) >= 3 and len(g["groups"]["indoor"]) >= 3 and g["groups"]["night"]


def test_prefer_the_larger_pmndrs_originals(tmp_path):
    npm, orig = tmp_path / "npm", tmp_path / "orig"
    for folder, h in ((npm, 4), (orig, 8)):
        folder.mkdir()
        for n in ("lab", "park", "hall"):
            write_hdr(folder / f"{n}.hdr", np.ones((h, 2 * h, 3), np.float32))
    (npm / "bridge.hdr").write_bytes(b"")  # only in one folder: kept, not read
    kept, dropped = prefer_originals(find_hdr_files([npm, orig]))
    assert sorted(f.parent.name + "/" + f.stem for f in kept) == ["npm/bridge", "orig/hall", "orig/lab", "orig/park"]
    assert sorted(f.parent.name for f in dropped) == ["npm"] * 3
    assert entries_for(kept)[orig / "lab.hdr"]["folder"] == str(orig)


def test_style_mix_keeps_the_virtual_pairs_and_draws_styles_per_pair():
    base = PairConfig(mode="crop", crop_size=24, store_height=32)
    default = PairDataset(_panos(), base, length=40, seed=3)
    same = PairDataset(_panos(), PairConfig(mode="crop", crop_size=24, store_height=32,
                                            ldr_styles={"virtual": 1.0}), length=40, seed=3)
    mixed = PairDataset(_panos(), PairConfig(mode="crop", crop_size=24, store_height=32,
                                             ldr_styles={"virtual": 0.5, "mdk08": 0.3, "camera360": 0.2}),
                        length=40, seed=3)
    styles = [mixed.style_of(i) for i in range(40)]
    assert set(styles) == {"virtual", "mdk08", "camera360"} and styles == [mixed.style_of(i) for i in range(40)]
    for i in range(8):
        a, b, m = default[i], same[i], mixed[i]
        assert torch.equal(a["ldr"], b["ldr"]) and torch.equal(a["hdr"], b["hdr"])
        assert m["style"].item() == L.LDR_STYLES.index(styles[i])
        if styles[i] == "virtual":  # a mix does not move the virtual camera's pairs
            assert torch.equal(m["ldr"], a["ldr"]) and torch.equal(m["crf"], a["crf"])
        else:
            assert not torch.equal(m["ldr"], a["ldr"]) and torch.isnan(m["crf"]).all()
            lin, hdr = m["ldr"].numpy(), m["hdr"].numpy()
            mask = lin.mean(0) < TAU
            assert hdr[:, mask].sum() == pytest.approx(lin[:, mask].sum(), rel=1e-4)  # calibrated to its LDR
    fixed = PairDataset(_panos(), PairConfig(mode="crop", crop_size=24, store_height=32, style="filmic"), 3, seed=3)
    assert all(fixed.style_of(i) == "filmic" for i in range(3))
    with pytest.raises(ValueError, match="unknown style"):
        PairConfig(ldr_styles={"sepia": 1.0})
    with pytest.raises(ValueError, match="positive sum"):
        PairConfig(ldr_styles={"virtual": 0.0})


def test_scene_weights_draw_panoramas_in_proportion_and_none_keeps_the_paper_pairs():
    from hdr_core.data.pairs import scene_light_weights
    cfg = PairConfig(mode="pano", pano_height=8)
    panos = _panos(3, h=8)
    uniform = PairDataset(panos, cfg, 10)
    assert [uniform.params(i)["scene"] for i in range(10)] == \
        [PairDataset(panos, cfg, 10, scene_weights=None).params(i)["scene"] for i in range(10)]
    weighted = PairDataset(panos, cfg, 10, scene_weights=[3.0, 0.0, 1.0])
    draws = [weighted._draw_layout(np.random.default_rng([weighted.seed, i]), i)["scene"] for i in range(4000)]
    counts = np.bincount(draws, minlength=3)
    assert counts[1] == 0 and abs(counts[0] / 4000 - 0.75) < 0.03  # binomial sd 0.007
    item = weighted.params(5)  # the item is made from its drawn panorama
    assert item["scene"] == draws[5] and torch.equal(weighted[5]["scene"], torch.tensor(draws[5]))
    for bad in ([1.0, 1.0], [1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [1.0, float("nan"), 1.0]):
        with pytest.raises(ValueError, match="scene_weights"):
            PairDataset(panos, cfg, 1, scene_weights=bad)
    # light weights: a sun over a dim sky outweighs even light; strength 0 weighs all alike
    sun = np.full((16, 32, 3), 0.5, np.float32)
    sun[4, 10] = 5e4
    even = np.full((16, 32, 3), 0.5, np.float32)
    w = scene_light_weights([sun, even], 4.0)
    assert w[0] > 4.0 and w[1] == pytest.approx(1.0, abs=0.05)
    assert scene_light_weights([sun, even], 0.0).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match=">= 0"):
        scene_light_weights([sun], -1.0)
