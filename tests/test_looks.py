"""LDR styles (hdr_core.looks): every look is seeded, recorded, and does what its name says."""

import json

import cv2
import numpy as np
import pytest

from hdr_core import looks as L
from hdr_core.camera import virtual_camera
from hdr_core.color import luminance, srgb_to_linear


def _room(h=64, seed=0, window=300.0):
    """A dark textured room (0.02-0.2) with a bright textured window (x300) in the middle: ~4.5 decades."""
    r = np.random.default_rng(seed)
    tex = np.exp(r.normal(0, 0.35, (h, 2 * h, 1))).astype(np.float32)
    tex = cv2.GaussianBlur(tex, (0, 0), 1.0)[..., None]
    img = 0.05 * tex * np.array([1.0, 0.9, 0.8], np.float32)
    win = (slice(h // 4, h // 2), slice(3 * h // 4, 5 * h // 4))
    img[win] *= window
    return img.astype(np.float32), win


def _laplacian_energy(img):
    g = img.astype(np.float32).mean(-1) if img.ndim == 3 else img.astype(np.float32)
    return float(np.mean(cv2.Laplacian(g, cv2.CV_32F) ** 2))


# ---------------------------------------------------------------------------------------------- every style


@pytest.mark.parametrize("style", L.LDR_STYLES)
@pytest.mark.parametrize("shape", [(32, 64), (40, 40)])  # a 2:1 panorama and a square perspective crop
def test_every_style_is_seeded_uint8_and_recorded(style, shape):
    hdr, _ = _room(shape[0])
    hdr = np.ascontiguousarray(cv2.resize(hdr, (shape[1], shape[0]), interpolation=cv2.INTER_AREA))
    a, pa = L.make_ldr(hdr, style, 7)
    b, pb = L.make_ldr(hdr, style, np.random.default_rng(7))
    c, _ = L.make_ldr(hdr, style, 8)
    assert a.dtype == np.uint8 and a.shape == (*shape, 3)
    assert np.array_equal(a, b) and pa == pb
    assert not np.array_equal(a, c)
    assert pa["style"] == style
    assert json.loads(json.dumps(pa)) == pa
    assert 5 < a.mean() < 250  # an exposed image, neither black nor white


@pytest.mark.parametrize("style", L.LDR_STYLES)
def test_exposure_error_scales_the_metered_exposure_and_nothing_else(style):
    """``exposure_ev``: the style's metered exposure times 2**ev, the same random numbers; 0 is the plain look;
    brighter clips more. MDK08 has no exposure to get wrong (its curve ignores the input's scale)."""
    hdr, _ = _room()
    plain, p0 = L.make_ldr(hdr, style, 5)
    zero, pz = L.make_ldr(hdr, style, 5, exposure_ev=0.0)
    assert np.array_equal(plain, zero) and p0 == pz and "exposure_ev" not in p0
    over, p1 = L.make_ldr(hdr, style, 5, exposure_ev=1.0)
    under, pm = L.make_ldr(hdr, style, 5, exposure_ev=-1.0)
    if style == "mdk08":
        assert np.array_equal(over, plain) and np.array_equal(under, plain) and p1 == p0
        return
    if style == "phone_hdr":  # the bracket as metered, the fused image shifted
        assert p1["exposure"] == p0["exposure"] and p1["short_ev"] == p0["short_ev"]
    else:
        assert p1["exposure"] == pytest.approx(2 * p0["exposure"], rel=1e-12)
        assert pm["exposure"] == pytest.approx(p0["exposure"] / 2, rel=1e-12)
    assert p1["exposure_ev"] == 1.0 and pm["exposure_ev"] == -1.0  # recorded, in every style it acts on
    if style != "virtual":
        assert {k: v for k, v in p1.items() if k not in ("exposure", "exposure_ev",
                                                                                    "clipped_fraction")} == \
            {k: v for k, v in p0.items() if k not in ("exposure", "clipped_fraction")}
    assert under.mean() < plain.mean() < over.mean()
    assert (over.max(-1) == 255).mean() >= (plain.max(-1) == 255).mean()


def test_unknown_style_and_bad_inputs():
    with pytest.raises(ValueError, match="valid styles: virtual, mdk08"):
        L.make_ldr(np.ones((8, 16, 3), np.float32), "instagram", 0)
    with pytest.raises(ValueError, match="HxWx3"):
        L.make_ldr(np.ones((8, 16), np.float32), "filmic", 0)
    with pytest.raises(ValueError, match="black"):
        L.make_ldr(np.zeros((8, 16, 3), np.float32), "mdk08", 0)


def test_virtual_style_is_the_virtual_camera():
    hdr, _ = _room(32)
    ldr, p = L.make_ldr(hdr, "virtual", 3)
    ref, cam = virtual_camera(hdr, np.random.default_rng(3))
    assert np.array_equal(ldr, ref) and p == {"style": "virtual", **cam.to_dict()}


# ---------------------------------------------------------------------------------------------- building blocks


def test_white_balance_saturation_contrast():
    grey = np.full((4, 4, 3), 0.5, np.float32)
    assert np.allclose(L.white_balance(grey, (1.1, 1.0, 0.9))[0, 0], [0.55, 0.5, 0.45])
    d = np.random.default_rng(0).uniform(0.2, 0.8, (16, 16, 3)).astype(np.float32)
    chroma = lambda x: float(np.abs(x - x.mean(-1, keepdims=True)).mean())  # noqa: E731
    assert np.allclose(L.saturate(d, 1.0), d, atol=1e-6)
    assert chroma(L.saturate(d, 1.3)) > 1.2 * chroma(d) and chroma(L.saturate(d, 0.5)) < 0.6 * chroma(d)
    v = np.linspace(0, 1, 101)
    out = L.contrast(v, 0.3)
    assert out[0] == 0 and out[50] == pytest.approx(0.5) and out[-1] == 1 and np.all(np.diff(out) > 0)
    assert (out[51] - out[49]) / (v[51] - v[49]) == pytest.approx(1.3, rel=1e-3)  # steeper mid-tones
    with pytest.raises(ValueError):
        L.contrast(v, 0.6)


def test_sharpen_adds_and_resample_blur_removes_fine_detail():
    d = np.random.default_rng(0).uniform(0.3, 0.7, (64, 64, 3)).astype(np.float32)
    d = cv2.GaussianBlur(d, (0, 0), 1.5)
    e = _laplacian_energy(d)
    assert _laplacian_energy(L.sharpen(d, 0.8, 1.0)) > 1.5 * e
    assert _laplacian_energy(L.resample_blur(d, 2.0)) < 0.6 * e
    assert abs(L.resample_blur(d, 2.0).mean() - d.mean()) < 1e-3  # blur, not a brightness change


# ---------------------------------------------------------------------------------------------- mdk08


def test_mdk08_slopes_closed_form():
    p = np.array([0.1, 0.4, 0.0, 0.3, 0.2])
    assert np.array_equal(L.mdk08_slopes(p, 6.0), np.ones(5))  # fits the display: contrast untouched
    s = L.mdk08_slopes(p, 3.0)
    assert s.sum() == pytest.approx(3.0) and s[2] == 0.0  # uses the whole range; no slope on empty bins
    assert s[1] > s[3] > s[4] > s[0] >= 0  # more pixels at a luminance -> more contrast there
    s = L.mdk08_slopes(np.array([0.01, 0.49, 0.5]), 1.2)  # a rare bin would go negative: it gets 0
    assert s[0] == 0 and s.sum() == pytest.approx(1.2)


def test_mdk08_fits_the_display_and_keeps_order():
    hdr, win = _room(64)
    v, info = L.mdk08(hdr, peak=200.0, contrast_ratio=1000.0, ambient_lux=100.0)
    assert info["image_range_log10"] > info["display_range_log10"]
    assert info["curve_compression"] == pytest.approx(info["display_range_log10"] / info["image_range_log10"],
                                                      rel=0.02)
    # the displayed luminance (display model) spans the display's range, brightest pixel at the peak
    refl = 0.01 / np.pi * 100.0
    ld = (200.0 - 0.2) * luminance(v.astype(np.float64) ** 2.2) + 0.2 + refl
    assert np.log10(ld.max() / ld.min()) == pytest.approx(info["display_range_log10"], abs=0.15)
    # monotonic in luminance (colour ratios aside: a grey ramp)
    ramp = np.repeat(np.logspace(-3, 3, 200, dtype=np.float32)[None, :, None], 3, axis=2)
    out = L.mdk08(ramp, 200.0, 1000.0, 100.0)[0][0, :, 0]
    assert np.all(np.diff(out) >= 0)
    # the window keeps its texture and the room is not crushed (a 4.5-decade scene in 8 bits)
    ldr, _ = L.make_ldr(hdr, "mdk08", 0)
    assert ldr[win].std() > 2 and (ldr.max(-1) == 255).mean() < 0.02 and (ldr.max(-1) <= 2).mean() < 0.02


# ---------------------------------------------------------------------------------------------- phone looks


def test_phone_hdr_fuses_the_bracket_into_a_well_exposed_image():
    hdr, win = _room(64)
    room = np.ones(hdr.shape[:2], bool)
    room[win] = False
    ldr, p = L.make_ldr(hdr, "phone_hdr", 0)
    single, _ = L.make_ldr(hdr, "virtual", 0)
    assert 1.5 <= p["bracket_ev"] <= 2.5 and 80 <= p["jpeg_quality"] <= 95
    # a single exposure clips the window flat; the fused image keeps its texture and keeps the room visible
    assert ldr[win].std() > 3 * max(single[win].std(), 0.5) and ldr[win].mean() < 250
    assert ldr[room].mean() > 30
    # exposure fusion alone: the fused frame holds the dark frame's window and the bright frame's room
    frames = [np.clip(np.rint(255 * np.clip(hdr * e, 0, 1) ** (1 / 2.2)), 0, 255).astype(np.uint8)
              for e in (0.02, 1.0, 8.0)]
    fused = L.exposure_fusion(frames)
    assert fused[win].std() > 0.03 and fused[room].mean() > frames[1][room].mean() / 255


def test_exposure_fusion_runs_on_one_opencv_thread_and_restores_the_count(monkeypatch):
    """MergeMertens sums the frames' pyramids in the order its threads finish: with several threads the same frames
    gave other bits now and then, so the fusion runs on one (and leaves OpenCV's thread count as it was)."""
    seen = []
    real = cv2.createMergeMertens

    class Recording:
        def __init__(self, *args):
            self.merge = real(*args)

        def process(self, frames):
            seen.append(cv2.getNumThreads())
            return self.merge.process(frames)

    monkeypatch.setattr(L.cv2, "createMergeMertens", Recording)
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        frames = [np.full((16, 32, 3), v, np.uint8) for v in (40, 120, 220)]
        L.exposure_fusion(frames)
        assert seen == [1] and cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


def test_phone_local_compresses_the_base_and_keeps_the_detail():
    hdr, win = _room(64)
    out = L.local_tone_map(hdr, base_range=1.5, detail=1.0)
    lo_in, lo_out = np.log10(luminance(hdr)), np.log10(luminance(out))
    # the 2.5-decade step between room and window shrinks ...
    step_in = np.median(lo_in[win]) - np.median(lo_in[:8])
    step_out = np.median(lo_out[win]) - np.median(lo_out[:8])
    assert step_in > 2.3 and step_out < 0.75 * step_in
    # ... while the texture inside the window (fine log-luminance detail, away from the window's edges) is kept
    hp = lambda a: a - cv2.GaussianBlur(a.astype(np.float32), (0, 0), 1.0)  # noqa: E731
    inner = (slice(win[0].start + 4, win[0].stop - 4), slice(win[1].start + 4, win[1].stop - 4))
    assert hp(lo_out)[inner].std() == pytest.approx(hp(lo_in)[inner].std(), rel=0.25)
    boosted = L.local_tone_map(hdr, base_range=1.5, detail=1.3)
    assert hp(np.log10(luminance(boosted)))[inner].std() > 1.15 * hp(lo_out)[inner].std()
    ldr, p = L.make_ldr(hdr, "phone_local", 1)
    assert ldr[win].std() > 3 and 75 <= p["jpeg_quality"] <= 92


def test_filmic_rolls_highlights_off_instead_of_clipping():
    x = np.linspace(0, 20, 2001, dtype=np.float32)
    y = L.hable(x, white=8.0)
    assert y[0] == pytest.approx(0, abs=1e-6) and L.hable(np.float32(8.0), 8.0) == pytest.approx(1.0)
    slope = np.diff(y) / np.diff(x)
    assert np.all(slope >= 0) and slope[500] < 0.5 * slope[50]  # a shoulder: highlights compressed
    # on the same image, the filmic look leaves more distinct levels in the bright window than the virtual camera
    hdr, win = _room(64, window=20.0)  # highlights a filmic curve can hold
    film, p = L.make_ldr(hdr, "filmic", 0)
    virt, _ = L.make_ldr(hdr, "virtual", 0)
    assert 4.0 <= p["white"] <= 16.0 and 85 <= p["jpeg_quality"] <= 95
    assert len(np.unique(film[win][..., 1])) > len(np.unique(virt[win][..., 1]))
    assert (film[win].max(-1) == 255).mean() < (virt[win].max(-1) == 255).mean()


def test_camera360_seams_are_blurred_and_only_on_panoramas():
    r = np.random.default_rng(0)
    h = 64
    hdr = (0.2 * np.exp(r.normal(0, 0.6, (h, 2 * h, 1))) * np.ones(3)).astype(np.float32)
    d = np.clip(srgb_to_linear(np.full((h, 2 * h, 3), 0.5)) + 0.2 * r.standard_normal((h, 2 * h, 3)), 0, 1)
    d = d.astype(np.float32)
    seamed = L.stitch_seams(d, offset=0.25, band=0.1, sigma=2.0, gain=1.0)
    hf = np.abs(cv2.Laplacian(seamed.mean(-1), cv2.CV_32F)).mean(0)
    cols = (np.arange(2 * h) + 0.5) / (2 * h)
    at_seam = (np.abs(cols - 0.25) < 0.02) | (np.abs(cols - 0.75) < 0.02)
    far = (np.abs(cols - 0.5) < 0.1) | (cols < 0.1) | (cols > 0.9)
    assert hf[at_seam].mean() < 0.5 * hf[far].mean()
    gained = L.stitch_seams(np.full((8, 64, 3), 0.5, np.float32), 0.25, 0.1, 1.0, gain=1.04)
    assert gained[0, 32, 0] == pytest.approx(0.52) and gained[0, 0, 0] == pytest.approx(0.5)  # one lens brighter
    pano, p = L.make_ldr(hdr, "camera360", 0)
    crop, pc = L.make_ldr(hdr[:, :h], "camera360", 0)
    assert p["seams"] and not pc["seams"] and 70 <= p["jpeg_quality"] <= 88
    # softer than the virtual camera's photograph of the same panorama (resampling, seams, JPEG)
    virt, _ = L.make_ldr(hdr, "virtual", 0)
    assert _laplacian_energy(pano) < 0.7 * _laplacian_energy(virt)
