"""``fetch polyhaven`` against a real HTTP server on 127.0.0.1 that plays the Poly Haven API.

The server answers ``/assets?t=hdris``, ``/info/{slug}`` and ``/files/{slug}`` with JSON shaped as the API's
published schema (Poly-Haven/Public-API ``swagger.yml``: ``hdri -> resolution -> format -> {url, size, md5}``) and
serves tiny HDR panoramas made here; faults (HTTP 503, a truncated transfer, a corrupted file, an ignored Range
header, unknown slugs) are injected per request. No test reaches the internet.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from hdr_core.data.__main__ import main as data_main
from hdr_core.data.polyhaven import FetchError, fetch_polyhaven, site_group, slugs_from_manifest
from hdr_core.io import read_hdr, write_hdr

SLUGS = {"noon_grass": ["outdoor", "nature", "midday", "clear"], "kloppenheim_05": ["outdoor", "skies"],
         "vestibule": ["indoor", "artificial light"], "studio_small_05": ["indoor", "studio"]}


class PolyHavenServer:
    """A ThreadingHTTPServer with the recorded answers, per-file fault queues and a request log."""

    def __init__(self, tmp: Path):
        self.blobs: dict[str, bytes] = {}
        for i, slug in enumerate(SLUGS):
            img = np.random.default_rng(i).uniform(0.01, 50.0, (8, 16, 3)).astype(np.float32)
            img[0, 0] = 2000.0 * (i + 1)
            write_hdr(tmp / f"src_{slug}.hdr", img)
            self.blobs[f"{slug}_1k.hdr"] = (tmp / f"src_{slug}.hdr").read_bytes()
        self.faults: dict[str, list[str]] = {}
        self.corrupt_always: set[str] = set()
        self.log: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep pytest output clean
                pass

            def _json(self, obj, status=200):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802 - http.server's name
                with server._lock:
                    server.log.append({"path": self.path, "range": self.headers.get("Range"),
                                       "ua": self.headers.get("User-Agent")})
                self._route()

            def _route(self):
                p = self.path
                if p == "/assets?t=hdris":
                    return self._json({s: server.info(s) for s in SLUGS})
                if p.startswith("/info/") or p.startswith("/files/"):
                    slug = p.split("/", 2)[2]
                    if slug not in SLUGS:
                        return self._json({"error": "Not found"}, 404)
                    return self._json(server.info(slug) if p.startswith("/info/") else server.files(slug))
                if p.startswith("/dl/"):
                    return self._file(p[len("/dl/"):])
                self._json({"error": "bad path"}, 400)

            def _file(self, name):
                data = server.blobs[name]
                fault = server.faults.get(name, []).pop(0) if server.faults.get(name) else None
                if fault == "503":
                    return self._json({"error": "busy"}, 503)
                if name in server.corrupt_always or fault == "corrupt":
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                start = 0
                rng = self.headers.get("Range")
                if rng and fault != "ignore_range":
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if fault == "truncate" else body)
                self.wfile.flush()
                if fault == "truncate":
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def info(self, slug):
        return {"name": slug.replace("_", " ").title(), "type": 0, "date_published": 1600725600,
                "authors": {"Greg Zaal": "All"}, "categories": SLUGS[slug], "tags": ["test", slug.split("_")[0]],
                "max_resolution": [16, 8], "evs_cap": 15,
                "attributes": {"environment": "indoor" if "indoor" in SLUGS[slug] else "outdoor"}}

    def files(self, slug):
        def rec(name):
            data = self.blobs[name]
            return {"url": f"{self.url}/dl/{name}", "md5": hashlib.md5(data).hexdigest(), "size": len(data)}

        return {"hdri": {"1k": {"hdr": rec(f"{slug}_1k.hdr"), "exr": rec(f"{slug}_1k.hdr")}},
                "tonemapped": {"url": f"{self.url}/dl/none.jpg", "md5": "0" * 32, "size": 1}}

    def downloads(self):
        return [r for r in self.log if r["path"].startswith("/dl/")]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    s = PolyHavenServer(tmp_path)
    yield s
    s.close()


def _fetch(server, out, slugs=None, **kw):
    return fetch_polyhaven(out, slugs, api=server.url, delay=0.0, backoff=0.01, progress=False, **kw)


def _count_open_responses(monkeypatch) -> dict:
    """Wrap the real ``urllib.request.urlopen`` the client calls so that the test sees how many of its responses are
    open at once (from urlopen's return to the response's close). Counted in the client, not in the server, whose
    handler threads may still be unwinding when a sequential client has already read its answer and asked again."""
    import urllib.request

    real, lock, state = urllib.request.urlopen, threading.Lock(), {"open": 0, "max_open": 0, "opened": 0}

    def counting_urlopen(*args, **kwargs):
        resp = real(*args, **kwargs)
        with lock:
            state["open"] += 1
            state["opened"] += 1
            state["max_open"] = max(state["max_open"], state["open"])
        close, closed = resp.close, [False]

        def counted_close():
            with lock:
                if not closed[0]:
                    closed[0] = True
                    state["open"] -= 1
            close()

        resp.close = counted_close
        return resp

    monkeypatch.setattr(urllib.request, "urlopen", counting_urlopen)
    return state


def test_fetch_by_slug_retries_faults_verifies_and_writes_the_manifest(server, tmp_path, monkeypatch):
    responses = _count_open_responses(monkeypatch)
    server.faults = {"noon_grass_1k.hdr": ["503"], "kloppenheim_05_1k.hdr": ["truncate"],
                     "vestibule_1k.hdr": ["corrupt"]}
    out = tmp_path / "ph"
    paths = _fetch(server, out, ["noon_grass", "kloppenheim_05", "vestibule", "studio_small_05"])
    assert [p.name for p in paths] == ["noon_grass.hdr", "kloppenheim_05.hdr", "vestibule.hdr", "studio_small_05.hdr"]
    for p in paths:
        assert p.read_bytes() == server.blobs[f"{p.stem}_1k.hdr"]
    assert read_hdr(out / "kloppenheim_05.hdr").shape == (8, 16, 3)
    assert not list(out.glob(".*.part")) and not list(out.glob("*.tmp"))
    assert responses["opened"] >= 5 and responses["max_open"] == 1  # one request at a time
    assert all(r["ua"].startswith("lanet-hdr/") for r in server.log)
    assert sum(r["path"] == "/dl/noon_grass_1k.hdr" for r in server.log) == 2  # 503, then the file
    assert sum(r["path"] == "/dl/vestibule_1k.hdr" for r in server.log) == 2  # bad hash: fetched again
    half = len(server.blobs["kloppenheim_05_1k.hdr"]) // 2  # truncated: the rest is fetched with a Range request
    assert [r["range"] for r in server.log if r["path"] == "/dl/kloppenheim_05_1k.hdr"] == [None, f"bytes={half}-"]
    rows = {r["name"]: r for r in json.loads((out / "manifest.json").read_text())}
    assert set(rows) == set(SLUGS)
    k = rows["kloppenheim_05"]
    assert k["licence"] == "CC0-1.0 (Poly Haven)" and k["polyhaven_slug"] == "kloppenheim_05"
    assert k["class"] == "outdoor" and k["site_group"] == "kloppenheim" and k["tags"] == ["test", "kloppenheim"]
    assert k["width"] == 16 and k["max"] == pytest.approx(4000.0, rel=0.01)
    assert rows["vestibule"]["class"] == "indoor" and "split" not in rows["vestibule"]
    assert rows["studio_small_05"]["split"].startswith("test-site")  # the test studio's series
    # the folder is ready for training: the split rules read the manifest
    from hdr_core.data.splits import filter_training_files

    assert sorted(p.stem for p in filter_training_files(paths)) == ["kloppenheim_05", "noon_grass", "vestibule"]


def test_resume_from_a_partial_file_and_skip_finished_ones(server, tmp_path):
    out = tmp_path / "ph"
    out.mkdir()
    blob = server.blobs["noon_grass_1k.hdr"]
    (out / ".noon_grass.hdr.part").write_bytes(blob[:100])  # a killed run
    _fetch(server, out, ["noon_grass"])
    (req,) = server.downloads()
    assert req["range"] == "bytes=100-" and (out / "noon_grass.hdr").read_bytes() == blob
    n = len(server.downloads())
    _fetch(server, out, ["noon_grass"])  # finished and verified: not downloaded again
    assert len(server.downloads()) == n
    # a server that ignores Range: the partial file is started again, still correct
    (out / ".vestibule.hdr.part").write_bytes(b"garbage" * 10)
    server.faults = {"vestibule_1k.hdr": ["ignore_range"]}
    _fetch(server, out, ["vestibule"])
    assert (out / "vestibule.hdr").read_bytes() == server.blobs["vestibule_1k.hdr"]


def test_bad_answers_fail_clearly_and_write_nothing(server, tmp_path):
    out = tmp_path / "ph"
    with pytest.raises(FetchError, match=r"/info/no_such_hdri: HTTP 404"):
        _fetch(server, out, ["no_such_hdri"])
    with pytest.raises(FetchError, match=r"noon_grass: no 2k hdr file \(available: 1k/exr, 1k/hdr\)"):
        _fetch(server, out, ["noon_grass"], res="2k")
    server.corrupt_always.add("vestibule_1k.hdr")
    with pytest.raises(FetchError, match="vestibule: downloaded file does not match the API's record .MD5"):
        _fetch(server, out, ["vestibule"])
    assert not (out / "vestibule.hdr").exists() and not list(out.glob(".*.part"))
    server.faults = {"noon_grass_1k.hdr": ["503"] * 10}
    with pytest.raises(FetchError, match=r"noon_grass: .*HTTP 503.*gave up after 3 tries"):
        _fetch(server, out, ["noon_grass"], retries=2)
    assert not (out / "noon_grass.hdr").exists()
    with pytest.raises(ValueError, match="not a Poly Haven slug"):
        _fetch(server, out, ["../etc"])


def test_cli_slugs_from_a_manifest_and_all(server, tmp_path, capsys):
    manifest = tmp_path / "extra_manifest.json"
    manifest.write_text(json.dumps([{"file": "noon_grass.hdr", "polyhaven_slug": "noon_grass"},
                                    {"file": "ilm.exr", "licence": "BSD-3-Clause"},
                                    {"file": "vestibule.hdr", "polyhaven_slug": "vestibule"}]))
    assert slugs_from_manifest(manifest) == ["noon_grass", "vestibule"]
    out = tmp_path / "ph"
    common = ["--out", str(out), "--api", server.url, "--delay", "0", "--no-progress"]
    assert data_main(["fetch", "polyhaven", "--slugs-from", str(manifest), *common]) == 0
    assert sorted(p.name for p in out.glob("*.hdr")) == ["noon_grass.hdr", "vestibule.hdr"]
    assert data_main(["fetch", "polyhaven", "--all", *common]) == 0
    assert sorted(p.stem for p in out.glob("*.hdr")) == sorted(SLUGS)
    assert len(json.loads((out / "manifest.json").read_text())) == len(SLUGS)
    capsys.readouterr()
    assert data_main(["fetch", "polyhaven", "--slugs", "nope", *common]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "nope" in err[0] and "404" in err[0]


def test_site_groups_of_series():
    assert site_group("kloppenheim_05") == "kloppenheim" and site_group("noon_grass") == "noon_grass"


def test_the_repo_lists_the_extra_training_scenes_by_slug():
    """``configs/data/hdri_extra_manifest.json`` (a copy of ``../shared/data/hdri_extra/manifest.json``) lets a user
    without ``../shared`` fetch the same 33 Poly Haven scenes; every validation site group that is not a pmndrs scene
    is among them under the site group ``fetch polyhaven`` will give it."""
    from hdr_core.data.catalog import load_validation_groups

    root = Path(__file__).resolve().parents[1]
    manifest = root / "configs" / "data" / "hdri_extra_manifest.json"
    slugs = slugs_from_manifest(manifest)
    assert len(slugs) == 33 and "studio_small_05" in slugs  # fetched like the rest, excluded by the split rules
    groups = load_validation_groups(root / "configs" / "data" / "validation_groups.yaml")["site_groups"]
    extra = {e["name"]: e for e in json.loads(manifest.read_text())}
    val_extra = [g for g in groups if g in {e["site_group"] for e in extra.values()}]
    assert len(val_extra) == 5
    assert all(site_group(extra[g]["polyhaven_slug"]) == g for g in val_extra)
    shared = root.parent / "shared" / "data" / "hdri_extra" / "manifest.json"
    if shared.is_file():  # where the shared data is at hand, the copy is exact
        assert json.loads(shared.read_text()) == json.loads(manifest.read_text())


def test_progress_bar_counts_the_bytes_of_every_file(server, tmp_path, capsys):
    slugs = ["noon_grass", "vestibule"]
    total = sum(len(server.blobs[f"{s}_1k.hdr"]) for s in slugs)
    fetch_polyhaven(tmp_path / "ph", slugs, api=server.url, delay=0.0, backoff=0.01, progress=True)
    err = capsys.readouterr().err
    last = err.replace("\r", "\n").strip().splitlines()[-1]  # the bar's final state
    assert last.startswith("polyhaven: 100%") and "vestibule" in last, last
    from tqdm import tqdm

    size = tqdm.format_sizeof(total)  # unit_scale: e.g. 1.15k
    assert f"| {size}/{size} [" in last, last  # every byte of both files counted once
