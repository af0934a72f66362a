"""``fetch polyhaven``: Poly Haven HDRIs through its public API (https://api.polyhaven.com, CC0).

    python -m hdr_core.data fetch polyhaven --slugs-from configs/data/hdri_extra_manifest.json --out data/ph
    python -m hdr_core.data fetch polyhaven --slugs noon_grass,vestibule --res 1k --out data/ph
    python -m hdr_core.data fetch polyhaven --all --res 1k --out data/ph

API use (as its documentation, ``swagger.yml`` of Poly-Haven/Public-API, describes it): ``/assets?t=hdris`` (every
HDRI and its metadata: name, categories, tags, authors; for ``--all``), ``/info/{slug}`` (one asset's metadata)
and ``/files/{slug}`` (``{"hdri": {"1k": {"hdr": {"url", "size", "md5"}, "exr": ...}, ...}, ...}``).

Politeness: one request at a time, ``delay`` seconds between requests, a ``User-Agent`` naming this project.
Robustness: every file is downloaded to ``.<name>.part`` and renamed into place only after its size and MD5 match
what the API announced, so a file under its final name is always complete. A killed run resumes: finished files
whose size and MD5 match are skipped, a partial file continues with an HTTP ``Range`` request (or starts again if
the server ignores it). Network errors, HTTP 429/5xx and truncated transfers are retried (``retries`` times, with
back-off, ``Retry-After`` honoured); a wrong size or hash after a complete transfer is retried once from scratch;
HTTP 4xx answers (an unknown slug) and a missing resolution/format fail at once. Every failure is one line naming
the slug and the problem.

``manifest.json`` in the output folder has the format of ``../shared/data/hdri_extra/manifest.json``: name, file,
width, height, max, median_luminance, stops, class (indoor / outdoor / night from the asset's categories and
attributes), site_group (the slug without a trailing series number: ``kloppenheim_05`` -> ``kloppenheim``, so a
series never straddles a split), source, licence ``CC0-1.0 (Poly Haven)``, polyhaven_slug, categories, tags, md5,
size and notes; slugs that share a site with a public test scene get ``split: "test-site (never train)"``.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

API = "https://api.polyhaven.com"
USER_AGENT = "lanet-hdr/0.1 (HDR panorama research code; fetch polyhaven)"
LICENCE = "CC0-1.0 (Poly Haven)"
_RETRY_STATUS = (408, 425, 429, 500, 502, 503, 504)


class FetchError(RuntimeError):
    """A download that cannot be completed (one line: what and why)."""


class _Retry(Exception):
    def __init__(self, why: str, wait: float | None = None):
        super().__init__(why)
        self.wait = wait


class Client:
    """A polite, retrying HTTP client for the API and its download URLs (one request at a time)."""

    def __init__(self, api: str = API, delay: float = 0.5, retries: int = 4, timeout: float = 60.0,
                 backoff: float = 2.0):
        self.api, self.delay, self.retries = api.rstrip("/"), delay, retries
        self.timeout, self.backoff = timeout, backoff
        self._last = 0.0

    def _wait_turn(self) -> None:
        gap = self.delay - (time.monotonic() - self._last)
        if gap > 0:
            time.sleep(gap)
        self._last = time.monotonic()

    def _open(self, url: str, headers: dict | None = None):
        self._wait_turn()
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            if e.code in _RETRY_STATUS:
                raise _Retry(f"HTTP {e.code} {e.reason}", _retry_after(e.headers.get("Retry-After"))) from e
            raise FetchError(f"{url}: HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as e:
            raise _Retry(f"{getattr(e, 'reason', e)}") from e

    def with_retries(self, what: str, fn):
        """Run ``fn()``, retrying on :class:`_Retry` with exponential back-off; FetchError after the last try."""
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except _Retry as e:
                if attempt == self.retries:
                    raise FetchError(f"{what}: {e} (gave up after {self.retries + 1} tries)") from e
                time.sleep(e.wait if e.wait is not None else self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, path: str):
        url = f"{self.api}{path}"

        def go():
            resp = self._open(url)
            try:
                with resp:
                    body = resp.read()
            except (OSError, ValueError, http.client.HTTPException) as e:
                raise _Retry(f"transfer failed ({e.__class__.__name__}: {e})") from e
            try:
                return json.loads(body)
            except json.JSONDecodeError as e:
                raise _Retry(f"not a JSON answer ({e.msg})") from e

        return self.with_retries(url, go)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(float(value), 300.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, min(300.0, parsed.timestamp() - time.time())) if parsed else None


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(client: Client, url: str, dest: Path, size: int, md5: str, label: str, bar=None) -> Path:
    """Download ``url`` to ``dest`` via ``.dest.part`` (resumed with ``Range``), verified by size and MD5."""
    if dest.is_file() and dest.stat().st_size == size and _md5(dest) == md5:
        return dest
    part = dest.with_name(f".{dest.name}.part")

    def transfer():
        have = part.stat().st_size if part.is_file() else 0
        if have > size:
            part.unlink()
            have = 0
        headers = {"Range": f"bytes={have}-"} if 0 < have < size else {}
        if have < size:
            resp = client._open(url, headers)
            try:
                with resp:
                    status = resp.status
                    if have and status != 206:  # the server ignored the Range request: start again
                        have = 0
                    expected = resp.headers.get("Content-Length")
                    got = 0
                    with open(part, "ab" if have else "wb") as f:
                        while True:
                            chunk = resp.read(1 << 16)
                            if not chunk:
                                break
                            f.write(chunk)
                            got += len(chunk)
                            if bar is not None:
                                bar.update(len(chunk))
                        f.flush()
                        os.fsync(f.fileno())
            except (OSError, ValueError, http.client.HTTPException) as e:
                raise _Retry(f"transfer interrupted ({e.__class__.__name__}: {e})") from e
            if expected is not None and got < int(expected):
                raise _Retry(f"truncated transfer ({got} of {expected} bytes)")
        now = part.stat().st_size
        if now < size:
            raise _Retry(f"truncated file ({now} of {size} bytes)")
        return now

    for attempt in (1, 2):  # a complete transfer with the wrong size/hash is tried once more from scratch
        client.with_retries(f"{label}: {url}", transfer)
        now = part.stat().st_size
        digest = _md5(part)
        if now == size and digest == md5:
            os.replace(part, dest)
            return dest
        part.unlink()
        why = f"size {now} != {size}" if now != size else f"MD5 {digest} != {md5}"
        if attempt == 2:
            raise FetchError(f"{label}: downloaded file does not match the API's record ({why}); nothing written")
    raise AssertionError("unreachable")  # pragma: no cover


def slugs_from_manifest(path: str | Path) -> list[str]:
    """The ``polyhaven_slug`` of every entry of a manifest (a list, or ``{"panoramas": [...]}``)."""
    from hdr_core.data.catalog import ManifestError, _rows

    rows = _rows(Path(path))
    slugs = [r["polyhaven_slug"] for r in rows if r.get("polyhaven_slug")]
    if not slugs:
        raise ManifestError(f"{path}: no entry has a polyhaven_slug")
    return list(dict.fromkeys(slugs))


def site_group(slug: str) -> str:
    """A Poly Haven series shares a site: ``kloppenheim_05`` -> ``kloppenheim``, ``noon_grass`` -> itself."""
    return re.sub(r"_\d+$", "", slug)


def panorama_class(info: dict) -> str:
    """indoor / outdoor / night from an asset's legacy ``categories`` and its ``attributes``."""
    cats = {str(c).lower() for c in info.get("categories", [])}
    attrs = info.get("attributes") or {}
    if "night" in cats or attrs.get("time_of_day") == "night":
        return "night"
    if "indoor" in cats or "studio" in cats or attrs.get("environment") == "indoor":
        return "indoor"
    return "outdoor"


def _entry(slug: str, info: dict, path: Path, spec: dict, res: str) -> dict:
    from hdr_core.data.sources import panorama_stats
    from hdr_core.data.splits import test_site_of_slug

    s = panorama_stats(path)
    notes = []
    if "pure skies" in str(info.get("category", "")).lower() or slug.endswith("_puresky"):
        notes.append("pure sky: the lower hemisphere is synthetic (no real ground)")
    scene = test_site_of_slug(slug)
    e = {"name": slug, "file": path.name, "width": s["width"], "height": s["height"], "max": s["peak"],
         "median_luminance": s["median_luminance"], "stops": s["dynamic_range_stops"],
         "class": panorama_class(info), "site_group": site_group(slug), "source": "api.polyhaven.com",
         "source_url": spec["url"], "resolution": res, "licence": LICENCE, "polyhaven_slug": slug,
         "polyhaven_name": info.get("name"), "authors": info.get("authors", {}),
         "categories": list(info.get("categories", [])), "tags": list(info.get("tags", [])),
         "md5": spec["md5"], "size": spec["size"], "notes": notes}
    if scene:
        e["split"] = "test-site (never train)"
        e["notes"].append(f"shares its site with the public test scene {scene}")
    return e


def fetch_polyhaven(out: str | Path, slugs: list[str] | None = None, all_hdris: bool = False, res: str = "1k",
                    fmt: str = "hdr", api: str = API, delay: float = 0.5, retries: int = 4, timeout: float = 60.0,
                    backoff: float = 2.0, progress: bool = True) -> list[Path]:
    """Download HDRIs by slug (or every HDRI) into ``out`` and (re)write ``out/manifest.json``. Returns the paths."""
    from tqdm import tqdm

    if bool(slugs) == bool(all_hdris):
        raise ValueError("fetch polyhaven: give slugs or all_hdris, not both or neither")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    client = Client(api, delay=delay, retries=retries, timeout=timeout, backoff=backoff)
    if all_hdris:
        assets = client.get_json("/assets?t=hdris")
        if not isinstance(assets, dict) or not assets:
            raise FetchError(f"{api}/assets?t=hdris: expected a non-empty object of assets")
        infos = {slug: assets[slug] for slug in sorted(assets)}
    else:
        infos = {}
        for slug in slugs:
            if not re.fullmatch(r"[A-Za-z0-9_\-]+", slug):
                raise ValueError(f"fetch polyhaven: {slug!r} is not a Poly Haven slug")
            infos[slug] = client.get_json(f"/info/{urllib.parse.quote(slug)}")
    specs = {}
    for slug in infos:
        files = client.get_json(f"/files/{urllib.parse.quote(slug)}")
        hdri = files.get("hdri") if isinstance(files, dict) else None
        if not isinstance(hdri, dict):
            raise FetchError(f"{slug}: the API's file list has no 'hdri' entry (is it an HDRI?)")
        if res not in hdri or fmt not in hdri[res]:
            have = ", ".join(f"{r}/{f}" for r in sorted(hdri) for f in sorted(hdri[r]))
            raise FetchError(f"{slug}: no {res} {fmt} file (available: {have})")
        spec = hdri[res][fmt]
        if not all(k in spec for k in ("url", "size", "md5")):
            raise FetchError(f"{slug}: the API's {res} {fmt} record lacks url/size/md5")
        specs[slug] = spec
    from hdr_core.data.catalog import manifest_rows, write_manifest_rows

    entries = manifest_rows(out)
    paths, done = [], 0
    total = sum(int(s["size"]) for s in specs.values())
    with tqdm(total=total, unit="B", unit_scale=True, disable=not progress, desc="polyhaven") as bar:
        for slug, spec in specs.items():
            dest = out / f"{slug}.{fmt}"
            bar.set_postfix_str(slug)
            download(client, spec["url"], dest, int(spec["size"]), str(spec["md5"]), slug, bar)
            done += int(spec["size"])
            bar.n = done  # skipped (already complete) or restarted files: the bar counts finished bytes
            bar.refresh()
            paths.append(dest)
            entries[dest.name] = _entry(slug, infos[slug], dest, spec, res)
            write_manifest_rows(out, entries)
    return paths
